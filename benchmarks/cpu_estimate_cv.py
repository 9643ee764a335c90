"""Run-to-run spread of the CPU estimate: J/token over separate ``llem run`` processes.

Each run is its own process (as a CI job would be), on the tiny model with the CPU estimate.
Prints, over the runs, the coefficient of variation of

    joules_per_token    what a gate compares
    tokens_per_second   how fast the machine was in that run
    estimated power     energy_j / duration_s: the estimator's own contribution

The estimate is CPU time x a constant, so when every core is busy its power is constant and
J/token follows throughput: the first CV is then the machine's speed noise, not the estimator's.

    python benchmarks/cpu_estimate_cv.py [--runs 5] [--n 32] [--batch-size 4] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    from llenergymeasure.testing.tiny_model import build_tiny_gpt2

    work = Path(tempfile.mkdtemp(prefix="llem-cv-"))
    model = build_tiny_gpt2(work / "tiny")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "llenergymeasure.cli", "run", "--model", str(model), "-d", "builtin",
               "-n", str(args.n), "--batch-size", str(args.batch_size), "-p", "fp32", "--repeats", str(args.repeats),
               "-q", "-o", str(work / "results")]
    for _ in range(args.runs):
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    metrics = [json.loads(p.read_text())["metrics"] for p in sorted((work / "results").glob("*.json"))
               if not p.name.endswith(".timeline.json")]
    columns = {
        "joules_per_token": [m["joules_per_token"] for m in metrics],
        "tokens_per_second": [m["tokens_per_second"] for m in metrics],
        "estimated power (W)": [m["energy_j"] / m["duration_s"] for m in metrics],
    }
    print(f"{args.runs} runs of: llem run --model TINY -d builtin -n {args.n} --batch-size {args.batch_size} "
          f"-p fp32 --repeats {args.repeats}")
    for name, values in columns.items():
        cv = statistics.stdev(values) / statistics.fmean(values)
        print(f"  {name:<20} CV {cv:6.1%}   " + " ".join(f"{v:.4g}" for v in values))


if __name__ == "__main__":
    main()
