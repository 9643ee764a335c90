"""Wall time of the README's main run with and without the run core's ``gc.freeze()``.

Builds the tiny GPT-2 in a temporary folder, then runs

    llem run --model <tiny model> -d builtin -n 8 --batch-size 4 -p fp32 -q

alternately with the freeze (the default) and without it (``LLEM_GC_FREEZE=0``), ``--runs`` times
each after one unmeasured run that warms the file cache, and prints each run's wall time, the
medians and their ratio (with / without: below 1 is faster). Alternating puts what drifts on a
shared machine on both sides alike.

    python benchmarks/startup_run.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llenergymeasure.testing.tiny_model import build_tiny_gpt2

RUN = ["-d", "builtin", "-n", "8", "--batch-size", "4", "-p", "fp32", "-q"]


def wall_s(model: Path, freeze: bool, env: dict[str, str]) -> float:
    """One ``llem run`` from process start to exit, in seconds."""
    command = [sys.executable, "-m", "llenergymeasure.cli", "run", "--model", str(model), *RUN]
    start = time.perf_counter()
    subprocess.run(command, env={**env, "LLEM_GC_FREEZE": "1" if freeze else "0"}, check=True,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each kind (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        model = build_tiny_gpt2(Path(root) / "tiny-gpt2")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LLEM_CONFIG": str(Path(root) / "no-user-config.yaml")}
        wall_s(model, True, env)
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.runs):
            for freeze in (True, False) if i % 2 == 0 else (False, True):
                times[freeze].append(wall_s(model, freeze, env))
                print(f"run {i + 1}, gc.freeze {'on ' if freeze else 'off'}: {times[freeze][-1]:.2f} s", flush=True)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"median wall: {on:.2f} s with gc.freeze, {off:.2f} s without; ratio {on / off:.2f}x")


if __name__ == "__main__":
    main()
