"""Sampler overhead: tokens/s of the tiny CPU model with the telemetry sampler running vs not.

Runs the real backend and the real Sampler thread (100 ms interval; the probe reads process
CPU time and RSS, as cheap as an NVML query), alternating on/off windows in one process so
machine noise hits both sides alike. Prints the median ratio sampler-on / sampler-off.

    python benchmarks/sampler_overhead.py [--pairs 10] [--interval-ms 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--interval-ms", type=int, default=100)
    args = parser.parse_args()

    from llenergymeasure.backends.pytorch import PyTorchBackend
    from llenergymeasure.config.loader import load_experiment_config
    from llenergymeasure.datasets import load_prompts
    from llenergymeasure.energy.sampler import Sampler
    from llenergymeasure.testing.tiny_model import build_tiny_gpt2

    model = build_tiny_gpt2(tempfile.mkdtemp() + "/tiny")
    config = load_experiment_config(cli_overrides={"model": str(model), "precision": "fp32", "n": 16,
                                                   "max_output_tokens": 64, "pytorch.batch_size": 4},
                                    user_config_defaults={})
    backend = PyTorchBackend()
    backend.load(config, "cpu")
    batches = backend.prepare(load_prompts("builtin", config.n))
    for batch in batches[:2]:
        backend.generate(batch)

    def probe() -> dict[str, float]:
        with open("/proc/self/statm") as fh:
            rss_pages = int(fh.read().split()[1])
        return {"process_cpu_s": time.process_time(), "rss_mb": rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20}

    def window(sampled: bool) -> float:
        sampler = Sampler({"cpu": probe}, args.interval_ms / 1000) if sampled else None
        if sampler:
            sampler.start()
        start = time.perf_counter()
        tokens = sum(backend.generate(batch).output_tokens for batch in batches)
        elapsed = time.perf_counter() - start
        if sampler:
            sampler.stop()
        return tokens / elapsed

    ratios = alternating_ratios(window, args.pairs)
    print(f"sampler on/off tokens/s ratio: median {statistics.median(ratios):.4f} over {args.pairs} pairs "
          f"(min {min(ratios):.4f}, max {max(ratios):.4f}); overhead {1 - statistics.median(ratios):+.2%}")


def alternating_ratios(window: Callable[[bool], float], pairs: int) -> list[float]:
    """``window(True) / window(False)`` per pair, the order alternating so drift hits both sides alike.
    Also used by gpu_measurements.py."""
    ratios = []
    for pair in range(pairs):
        order = (True, False) if pair % 2 else (False, True)
        rates = {sampled: window(sampled) for sampled in order}
        ratios.append(rates[True] / rates[False])
    return ratios


if __name__ == "__main__":
    main()
