"""Error rates of the verdict against a history of sessions (llenergymeasure.results.history),
with the single-baseline Welch verdict (results.compare) for contrast.

Each trial draws a history of sessions and a candidate session: per-repeat values 1.0 x (1 + N(0, CV))
times a session offset exp(N(0, s)) drawn once per session, the candidate's times (1 + shift) as
well. The verdict is taken with a 5% relative threshold; "false alarm" is the share of trials called
"regressed" at shift 0, "detect +10%" at shift 10%, "coverage" the share whose 95% CI holds the true
change (0 or +10%; the sessions' offsets are noise, not change), over both. The outlier scenarios
multiply one repeat in ten (r = 10) by 1.15: in every session, or only in the candidate. A second
table compares one baseline session with one candidate session without offsets (``compare_values``),
Welch against the rank-based CI (``robust=True``), with one repeat per session made an outlier. Seeded.

    python benchmarks/compare_history.py [--trials 2000] [--sessions 10] [--cv 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable

from llenergymeasure.results.compare import Comparison, Threshold, compare_values
from llenergymeasure.results.history import compare_history

THRESHOLD = Threshold("joules_per_token", 0.05, True)
SHIFT = 0.10

# (label, between-session SD, repeats, where the +15% outliers go)
SCENARIOS = (
    ("s = 0, 5 repeats", 0.0, 5, None),
    ("s = 2%, 5 repeats", 0.02, 5, None),
    ("s = 4%, 5 repeats", 0.04, 5, None),
    ("s = 0, 10 repeats, 1 in 10 at +15% in every session", 0.0, 10, "all"),
    ("s = 2%, 10 repeats, 1 in 10 at +15% in every session", 0.02, 10, "all"),
    ("s = 2%, 10 repeats, 1 in 10 at +15% in the candidate only", 0.02, 10, "candidate"),
)

Method = Callable[[list[list[float]], list[float]], Comparison]
METHODS: dict[str, Method] = {
    "history (Hodges-Lehmann)": lambda history, candidate: compare_history(history, candidate, THRESHOLD),
    "history (means)": lambda history, candidate: compare_history(history, candidate, THRESHOLD, robust=False),
    "last session, Welch": lambda history, candidate: compare_values(history[-1], candidate, THRESHOLD),
}


def draw_session(rng: random.Random, *, cv: float, s: float, repeats: int, shift: float,
                 outlier: bool) -> list[float]:
    scale = (1 + shift) * math.exp(rng.gauss(0, s))
    values = [scale * rng.gauss(1.0, cv) for _ in range(repeats)]
    if outlier:
        values[rng.randrange(repeats)] *= 1.15
    return values


def draw_trial(rng: random.Random, *, cv: float, s: float, repeats: int, sessions: int, shift: float,
               outliers: str | None) -> tuple[list[list[float]], list[float]]:
    history = [draw_session(rng, cv=cv, s=s, repeats=repeats, shift=0.0, outlier=outliers == "all")
               for _ in range(sessions)]
    candidate = draw_session(rng, cv=cv, s=s, repeats=repeats, shift=shift, outlier=outliers is not None)
    return history, candidate


def rates(rng: random.Random, *, cv: float, s: float, repeats: int, sessions: int, outliers: str | None,
          trials: int) -> dict[str, tuple[float, float, float]]:
    """Per method: (false alarm, detect +10%, coverage), every method on the same draws."""
    counts = {name: [0, 0, 0] for name in METHODS}
    for shift, column in ((0.0, 0), (SHIFT, 1)):
        for _ in range(trials):
            history, candidate = draw_trial(rng, cv=cv, s=s, repeats=repeats, sessions=sessions, shift=shift,
                                            outliers=outliers)
            for name, method in METHODS.items():
                result = method(history, candidate)
                counts[name][column] += result.verdict == "regressed"
                counts[name][2] += result.ci_low <= shift <= result.ci_high
    return {name: (c[0] / trials, c[1] / trials, c[2] / (2 * trials)) for name, c in counts.items()}


# (label, repeats per side, outlier size or None)
WITHIN = (
    ("5 repeats", 5, None),
    ("10 repeats", 10, None),
    ("5 repeats, 1 at +15% in each session", 5, 0.15),
    ("10 repeats, 1 at +15% in each session", 10, 0.15),
    ("10 repeats, 1 at +30% in each session", 10, 0.30),
)


def within_rates(rng: random.Random, *, cv: float, repeats: int, outlier: float | None,
                 trials: int) -> list[float]:
    """[Welch false alarm, Welch detect +10%, rank false alarm, rank detect +10%], on the same draws."""
    hits = [0, 0, 0, 0]
    for shift, column in ((0.0, 0), (SHIFT, 1)):
        for _ in range(trials):
            baseline, candidate = ([(1 + delta) * rng.gauss(1.0, cv) for _ in range(repeats)] for delta in (0.0, shift))
            if outlier is not None:
                baseline[rng.randrange(repeats)] *= 1 + outlier
                candidate[rng.randrange(repeats)] *= 1 + outlier
            for method, robust in enumerate((False, True)):
                result = compare_values(baseline, candidate, THRESHOLD, robust=robust)
                hits[2 * method + column] += result.verdict == "regressed"
    return [h / trials for h in hits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials per cell")
    parser.add_argument("--sessions", type=int, default=10, help="history sessions")
    parser.add_argument("--cv", type=float, default=3.0, help="CV between repeats, in percent")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    print(f"{args.sessions} history sessions, CV {args.cv:g}% between repeats, threshold {THRESHOLD}, "
          f"{args.trials} trials per cell, seed {args.seed}\n")
    print("| scenario | method | false alarm | detect +10% | CI coverage |")
    print("|---|---|---|---|---|")
    for label, s, repeats, outliers in SCENARIOS:
        table = rates(rng, cv=args.cv / 100, s=s, repeats=repeats, sessions=args.sessions, outliers=outliers,
                      trials=args.trials)
        for name, (false_alarm, detect, coverage) in table.items():
            print(f"| {label} | {name} | {false_alarm:.1%} | {detect:.1%} | {coverage:.1%} |")

    print(f"\nOne baseline session vs one candidate session, no offsets (compare_values), CV {args.cv:g}%\n")
    print("| repeats per side | Welch: false alarm | Welch: detect +10% | rank (robust=True): false alarm "
          "| rank: detect +10% |")
    print("|---|---|---|---|---|")
    for label, repeats, outlier in WITHIN:
        cells = within_rates(rng, cv=args.cv / 100, repeats=repeats, outlier=outlier, trials=args.trials)
        print(f"| {label} | " + " | ".join(f"{rate:.1%}" for rate in cells) + " |")


if __name__ == "__main__":
    main()
