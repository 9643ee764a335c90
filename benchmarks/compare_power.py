"""False-alarm and detection rates of the regression verdict (llenergymeasure.results.compare).

Draws per-repeat values from a normal distribution (baseline mean 1.0, candidate mean 1.0 + shift,
both with the given coefficient of variation), compares them with a relative threshold, and counts
how often the verdict is "regressed". Seeded, so the table is reproducible.

    python benchmarks/compare_power.py [--trials 2000] [--repeats 5] [--threshold 5] [--cvs 1,3,5] [--seed 0]
"""

from __future__ import annotations

import argparse
import random

from llenergymeasure.results.compare import Threshold, compare_values

SHIFTS = (0.0, 0.05, 0.10, 0.20)


def regressed_rate(rng: random.Random, *, cv: float, shift: float, repeats: int, trials: int,
                   threshold: Threshold) -> float:
    hits = 0
    for _ in range(trials):
        baseline = [rng.gauss(1.0, cv) for _ in range(repeats)]
        candidate = [rng.gauss(1.0 + shift, cv * (1.0 + shift)) for _ in range(repeats)]
        hits += compare_values(baseline, candidate, threshold).verdict == "regressed"
    return hits / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5, help="repeats on each side")
    parser.add_argument("--threshold", type=float, default=5.0, help="relative threshold in percent")
    parser.add_argument("--cvs", default="1,3,5", help="coefficients of variation in percent, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    threshold = Threshold.parse(f"joules_per_token:{args.threshold:g}%")
    rng = random.Random(args.seed)
    print(f"repeats={args.repeats} per side, threshold {threshold}, {args.trials} trials per cell, "
          f"seed {args.seed}; cells: share of trials with verdict 'regressed'\n")
    header = ["CV", "false alarm (0%)", *(f"detect +{shift:.0%}" for shift in SHIFTS[1:])]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for cv in (float(percent) / 100 for percent in args.cvs.split(",")):
        rates = [regressed_rate(rng, cv=cv, shift=shift, repeats=args.repeats, trials=args.trials,
                                threshold=threshold) for shift in SHIFTS]
        print("| " + " | ".join([f"{cv * 100:g}%", *(f"{rate:.1%}" for rate in rates)]) + " |")


if __name__ == "__main__":
    main()
