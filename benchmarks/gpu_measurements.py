"""GPU figures for docs/measurements.md, on a GPT-2-sized model with random weights on cuda:0.

    (a) energy counter vs integrated power: over N measurement windows of real generation, the
        NVML counter's joules against the trapezoid integral of the sampler's power readings
    (b) idle baseline power, measured the way the runner does, before any CUDA work
    (c) J/token and its CV over repeats, from run_experiment (repeats=5 by default)
    (d) sampler overhead: tokens/s with the NVML meter on vs off, alternating pairs in one process
        (the approach of benchmarks/sampler_overhead.py), reported as the median on/off ratio

The model (12 layers, width 768, 12 heads) is built from a config, offline; nothing is
downloaded. Only GPU 0 is measured (CUDA_VISIBLE_DEVICES defaults to 0). Prints a markdown
section ready to paste, with the command line; progress goes to stderr. Without a usable GPU it
exits 1 at once, saying why.

    python benchmarks/gpu_measurements.py [--windows 10] [--repeats 5] [--pairs 8] [--precision fp16]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.gpu.gpu_support

from sampler_overhead import alternating_ratios  # noqa: E402  (beside this script)
from tests.gpu.gpu_support import gpu_unavailable_reason, integrated_energy_j, power_limit_w  # noqa: E402

GPT2_SIZE = {"layers": 12, "width": 768, "context": 1024}
Row = tuple[str, str]  # (what, figure)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=10, help="windows for counter vs integrated power (a)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats for J/token and its CV (c)")
    parser.add_argument("--pairs", type=int, default=8, help="on/off pairs for the sampler overhead (d)")
    parser.add_argument("-n", type=int, default=64, help="prompts per window")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16")
    parser.add_argument("--input-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--interval-ms", type=int, default=100, help="sampler interval (energy.sample_interval_ms)")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle baseline duration (b)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")  # energy is summed over visible GPUs: see only cuda:0
    reason = gpu_unavailable_reason()
    if reason:
        print(f"gpu_measurements: no usable NVIDIA GPU: {reason}\n"
              "This script measures a GPU; run it on a machine with one (the CPU figures come from "
              "benchmarks/sampler_overhead.py and llem run).", file=sys.stderr)
        return 1

    idle = idle_baseline(args)  # first: before this process has done any CUDA work
    with tempfile.TemporaryDirectory() as tmp:
        _note("building the GPT-2-sized model (random weights)")
        from llenergymeasure.testing.tiny_model import build_tiny_gpt2

        model = build_tiny_gpt2(Path(tmp) / "gpt2-sized", **GPT2_SIZE)
        rows = [counter_vs_power(model, args), idle, joules_per_token(model, args), sampler_overhead(model, args)]
        print(markdown(rows, model, args, shlex.join(["python", sys.argv[0], *argv])))
    return 0


def experiment_config(model: Path, args: argparse.Namespace, **overrides: Any) -> Any:
    """The measured workload, from the arguments alone (no user config file)."""
    from llenergymeasure.config.loader import load_experiment_config

    values = {
        "model": str(model),
        "n": args.n,
        "dataset": "synthetic",  # offline, and exactly --output-tokens per prompt
        "precision": args.precision,
        "max_input_tokens": args.input_tokens,
        "max_output_tokens": args.output_tokens,
        "pytorch.batch_size": args.batch_size,
        "pytorch.device": "cuda:0",
        "energy.source": "nvml",
        "energy.sample_interval_ms": args.interval_ms,
        **overrides,
    }
    return load_experiment_config(cli_overrides=values, user_config_defaults={})


def counter_vs_power(model: Path, args: argparse.Namespace) -> Row:
    """(a) integrated power / counter, per window, over ``--windows`` measured repeats."""
    from llenergymeasure import run_experiment

    _note(f"(a) counter vs integrated power over {args.windows} windows")
    result = run_experiment(experiment_config(model, args, repeats=args.windows, **{"baseline.enabled": False}))
    what = "energy counter vs integrated power"
    if result.energy_source != "nvml_counter":
        return what, f"not comparable: this GPU has no energy counter (source {result.energy_source})"
    ratios = [integrated_energy_j(timeline[device["device"]]) / device["energy_j"]
              for repeat, timeline in zip(result.repeats, result.full_timeline) for device in repeat.devices]
    differences = [ratio - 1 for ratio in ratios]
    seconds = statistics.median(repeat.metrics.duration_s for repeat in result.repeats)
    samples = statistics.median(device["samples"] for repeat in result.repeats for device in repeat.devices)
    return what, (
        f"integrated / counter: median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
        f"difference median {statistics.median(differences):+.1%}, largest {max(differences, key=abs):+.1%}; "
        f"{len(ratios)} windows of {seconds:.1f} s, {samples:.0f} power samples each"
    )


def idle_baseline(args: argparse.Namespace) -> Row:
    """(b) mean idle power over ``--idle-seconds``, through the runner's own baseline function."""
    from llenergymeasure.energy.baseline import idle_power_w
    from llenergymeasure.energy.nvml import NvmlMeter, open_nvml

    _note(f"(b) idle baseline over {args.idle_seconds:g} s")
    meter = NvmlMeter(*open_nvml(), args.interval_ms / 1000)
    try:
        watts = idle_power_w(meter, "gpu_measurements", args.idle_seconds, ttl_s=0.0)
        limit = sum(power_limit_w(meter.nvml, device) for device in meter.devices)
    finally:
        meter.close()
    return "idle baseline power", f"{_fmt(watts, '.1f')} W over {args.idle_seconds:g} s (power limit {limit:.0f} W)"


def joules_per_token(model: Path, args: argparse.Namespace) -> Row:
    """(c) the headline metric and its spread over ``--repeats``, as ``llem run --repeats`` gives it."""
    from llenergymeasure import run_experiment

    _note(f"(c) J/token over {args.repeats} repeats")
    result = run_experiment(experiment_config(model, args, repeats=args.repeats))
    metrics, spread = result.metrics, result.stats.get("joules_per_token")
    codes = sorted({warning.code for warning in result.measurement_warnings})
    return f"J/token over {args.repeats} repeats", (
        f"{_fmt(metrics.joules_per_token, '.4f')} J/token, CV {_fmt(spread.cv if spread else None, '.1%')}; "
        f"net {_fmt(metrics.net_joules_per_token, '.4f')} J/token "
        f"(baseline {_fmt(metrics.baseline_power_w, '.0f')} W); "
        f"{_fmt(metrics.tokens_per_second, '.0f')} tokens/s; source {result.energy_source}; "
        f"warnings: {', '.join(codes) or 'none'}"
    )


def sampler_overhead(model: Path, args: argparse.Namespace) -> Row:
    """(d) tokens/s in the runner's own measurement window, with the NVML meter vs no meter."""
    from llenergymeasure.backends import get_backend
    from llenergymeasure.core.runner import _window as measurement_window
    from llenergymeasure.datasets import load_prompts
    from llenergymeasure.energy.base import NoEnergyMeter
    from llenergymeasure.energy.nvml import NvmlMeter, open_nvml

    _note(f"(d) sampler overhead over {args.pairs} on/off pairs")
    config = experiment_config(model, args)
    backend = get_backend(config.backend)
    backend.load(config, "cuda:0")
    meters = {True: NvmlMeter(*open_nvml(), args.interval_ms / 1000), False: NoEnergyMeter("sampler off")}
    try:
        prompts = load_prompts(config.dataset, config.n, seed=config.random_seed, input_tokens=config.max_input_tokens)
        batches = backend.prepare(prompts)
        for batch in batches[: config.warmup.n_warmup]:
            backend.generate(batch)

        def tokens_per_second(sampled: bool) -> float:
            outputs, _, seconds = measurement_window(backend, meters[sampled], batches, batches)
            return sum(output.output_tokens for output in outputs) / seconds

        ratios = alternating_ratios(tokens_per_second, args.pairs)
    finally:
        meters[True].close()
        backend.unload()
    median = statistics.median(ratios)
    return "sampler overhead", (
        f"on/off tokens/s median ratio {median:.4f} over {args.pairs} pairs (min {min(ratios):.4f}, "
        f"max {max(ratios):.4f}); overhead {1 - median:+.2%}; NVML sampler every {args.interval_ms} ms"
    )


def markdown(rows: list[Row], model: Path, args: argparse.Namespace, command: str) -> str:
    """A docs/measurements.md section: heading with the machine, the workload, then the table."""
    shape = json.loads((model / "config.json").read_text())
    workload = (
        f"Model: GPT-2-sized, random weights built offline ({shape['n_layer']} layers, width {shape['n_embd']}, "
        f"{shape['n_head']} heads, vocabulary {shape['vocab_size']}); {args.precision}, batch {args.batch_size}, "
        f"n {args.n}, {args.input_tokens} input -> {args.output_tokens} output tokens (synthetic prompts), "
        f"energy.source nvml, sampler every {args.interval_ms} ms."
    )
    lines = [f"## GPU ({describe_machine()}) — {date.today().isoformat()}", "", workload, "",
             "| what | figure | command |", "|---|---|---|"]
    lines += [f"| {what} | {figure} | `{command}` |" for what, figure in rows]
    return "\n".join(lines)


def describe_machine() -> str:
    """GPU name, driver, and the torch / CUDA / transformers versions."""
    import torch
    import transformers

    from llenergymeasure.energy.nvml import open_nvml

    nvml, devices = open_nvml()
    try:
        driver = nvml.nvmlSystemGetDriverVersion()
    finally:
        nvml.nvmlShutdown()
    driver = driver.decode() if isinstance(driver, bytes) else driver
    names = ", ".join(device.name for device in devices)
    return (f"{names}, driver {driver}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
            f"transformers {transformers.__version__}")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _note(message: str) -> None:
    print(f"gpu_measurements: {message} ...", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
