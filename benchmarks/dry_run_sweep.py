"""Dry run of a big sweep: per-model work done once per process vs once per experiment.

Builds the tiny GPT-2 offline, writes a sweep of ``--points`` experiments on it (batch size x
seed, a .jsonl dataset), loads it once, then dry-runs every experiment twice in this process:
"per experiment" clears the per-model caches before each one (the model's config.json and
safetensors headers, the dataset file, the package lookups are worked out again, as before the
caches), "cached" keeps them. The two passes alternate in blocks so machine noise hits both.
Prints the time of each and the ratio cached / per experiment.

    python benchmarks/dry_run_sweep.py [--points 10000] [--blocks 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_sweep(folder: Path, model: Path, points: int) -> Path:
    side = max(1, math.isqrt(points))
    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"prompt number {i}"}) + "\n" for i in range(64)))
    sweep = folder / "llem_big.yaml"
    seeds = math.ceil(points / side)
    sweep.write_text(
        f"name: big\nmodel: {model}\ndataset: {prompts}\nn: 8\nmax_output_tokens: 8\nprecision: fp32\n"
        f"sweep:\n  pytorch.batch_size: {list(range(1, side + 1))}\n  random_seed: {list(range(seeds))}\n"
    )
    return sweep


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--blocks", type=int, default=4, help="alternating blocks per pass")
    args = parser.parse_args()

    from llenergymeasure.config.benchmark_file import load_benchmark_file
    from llenergymeasure.core.dry_run import clear_caches, dry_run
    from llenergymeasure.testing.tiny_model import build_tiny_gpt2

    folder = Path(tempfile.mkdtemp(prefix="llem-dry-run-sweep."))
    model = build_tiny_gpt2(folder / "tiny-gpt2")
    started = time.perf_counter()
    configs = [e.config for e in load_benchmark_file(write_sweep(folder, model, args.points)).experiments]
    print(f"{len(configs):,} experiments, loaded in {time.perf_counter() - started:.2f} s")

    def per_experiment(block: list) -> None:
        for config in block:
            clear_caches()
            assert not dry_run(config, None).problems

    def cached(block: list) -> None:
        for config in block:
            assert not dry_run(config, None).problems

    totals = {"per experiment": 0.0, "cached": 0.0}
    size = math.ceil(len(configs) / args.blocks)
    for start in range(0, len(configs), size):
        block = configs[start:start + size]
        for name, run in (("per experiment", per_experiment), ("cached", cached)):
            clear_caches()
            began = time.perf_counter()
            run(block)
            totals[name] += time.perf_counter() - began
    for name, seconds in totals.items():
        print(f"{name:>15}: {seconds:7.2f} s  ({seconds / len(configs) * 1e3:.3f} ms per experiment)")
    print(f"ratio cached / per experiment: {totals['cached'] / totals['per experiment']:.2f}x")


if __name__ == "__main__":
    main()
