"""Error rates of the interleaved A/B verdict (llenergymeasure.results.ab.compare_ab), with the
unpaired Welch verdict (results.compare.compare_values) on the same windows for contrast.

One simulated session: after the warm-up, 2 x REPEATS windows in ``abba_schedule`` order. Window i
(0-based) of config X measures

    1.0 x (1 + offset) x (1 + drift x i) x (1 + shift if X is B) x (1 + noise)

with ``offset`` drawn once per session from N(0, OFFSET) (common to A and B), ``noise`` drawn per
window from N(0, CV), and ``drift`` the same in every session (linear across it). The "Welch,
across sessions" rows measure A and B in two separate sessions (each with its own offset, drift
from its own first window): what comparing against a baseline from another run sees. The outlier
rows multiply one window, chosen at random, by 1 + OUTLIER (a thermal event). Relative threshold;
a cell counts trials with verdict "regressed", or whose 95% CI contains the true shift (coverage).
Seeded per cell, so every cell is reproducible on its own.

    python benchmarks/compare_ab.py [--trials 2000] [--repeats 5,10] [--cv 3] [--offset 4] [--drift 1]
                                    [--shift 10] [--outlier 20] [--threshold 5] [--seed 0] [--alternatives]

``--alternatives`` also prints the designs that were considered for the paired analysis and not
kept (docs/compare.md says why).

A third table puts a transient on the first window of each session (``--transient``, +5%: a GPU
still warm from the warm-ups, a clock still ramping) and compares the session design of
``run_ab`` (``session_schedule``: the first block's order drawn at random, a settling pair run
first and not measured) with the one before it (A first, every window measured), with Wilson 95%
intervals.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections.abc import Callable

from llenergymeasure.results.ab import abba_schedule, compare_ab, hodges_lehmann, paired_t_ci, session_schedule
from llenergymeasure.results.compare import Comparison, Threshold, compare_values
from llenergymeasure.results.stats import t95

Session = tuple[list[float], list[float], list[str]]


def session(rng: random.Random, *, pairs: int, shift: float, cv: float, offset: float, drift: float,
            outlier: float = 0.0) -> Session:
    """One interleaved session: the A values, the B values (each in measured order) and the order."""
    order = abba_schedule(pairs)
    common = 1.0 + rng.gauss(0.0, offset)
    values = [common * (1.0 + drift * i) * (1.0 + shift if w == "B" else 1.0) * (1.0 + rng.gauss(0.0, cv))
              for i, w in enumerate(order)]
    if outlier:
        values[rng.randrange(len(values))] *= 1.0 + outlier
    return ([v for v, w in zip(values, order) if w == "A"], [v for v, w in zip(values, order) if w == "B"], order)


def separate_sessions(rng: random.Random, *, pairs: int, shift: float, cv: float, offset: float,
                      drift: float) -> Session:
    """A measured in one session, B in another: each has its own offset and drift from window 0."""
    def one(mean: float) -> list[float]:
        common = 1.0 + rng.gauss(0.0, offset)
        return [common * (1.0 + drift * i) * mean * (1.0 + rng.gauss(0.0, cv)) for i in range(pairs)]
    return one(1.0), one(1.0 + shift), []


# The paired designs that were considered and not kept; each maps the per-pair log ratios (in
# session order) to (point, low, high) on the log scale.
def _crossover(diffs: list[float]) -> tuple[float, float, float]:
    """Two-sequence fit: d_k = change + (+-)drift + e, the sign by block (AB/BA); df = pairs - 2."""
    ab, ba = diffs[0::2], diffs[1::2]
    centre = (statistics.fmean(ab) + statistics.fmean(ba)) / 2
    residual = math.fsum((d - statistics.fmean(ab)) ** 2 for d in ab) + \
        math.fsum((d - statistics.fmean(ba)) ** 2 for d in ba)
    half = t95(len(diffs) - 2) * math.sqrt(residual / (len(diffs) - 2) * (1 / len(ab) + 1 / len(ba)) / 4)
    return centre, centre - half, centre + half


def _signed_rank(diffs: list[float]) -> tuple[float, float, float]:
    """Hodges-Lehmann estimate with the exact Wilcoxon signed-rank interval (the widest one,
    93.75%, when 5 pairs cannot reach 95%)."""
    n = len(diffs)
    walsh = sorted((diffs[i] + diffs[j]) / 2 for i in range(n) for j in range(i, n))
    counts = [1] + [0] * (n * (n + 1) // 2)  # number of sign patterns giving each W
    for k in range(1, n + 1):
        for w in range(len(counts) - 1, k - 1, -1):
            counts[w] += counts[w - k]
    cut, below = 0, 0  # largest c with P(W <= c) <= 2.5% (0 when none): CI = [walsh[c], walsh[-1 - c]]
    for c, count in enumerate(counts):
        below += count
        if below > 0.025 * 2**n:
            break
        cut = c
    return statistics.median(walsh), walsh[cut], walsh[-1 - cut]


def _mad_screen(diffs: list[float]) -> tuple[float, float, float]:
    """Drop the pair farthest from the median when it is more than 4 robust SDs (MAD) away, then t."""
    centre = statistics.median(diffs)
    scale = 1.4826 * statistics.median(abs(d - centre) for d in diffs)
    worst = max(range(len(diffs)), key=lambda k: abs(diffs[k] - centre))
    if scale > 0 and abs(diffs[worst] - centre) > 4 * scale:
        diffs = diffs[:worst] + diffs[worst + 1:]
    return (hodges_lehmann(diffs), *paired_t_ci(diffs))


def _paired_t(diffs: list[float]) -> tuple[float, float, float]:
    return (hodges_lehmann(diffs), *paired_t_ci(diffs))


ALTERNATIVES: dict[str, Callable[[list[float]], tuple[float, float, float]]] = {
    "paired t (kept)": _paired_t,
    "crossover fit, df = pairs-2": _crossover,
    "signed-rank HL interval": _signed_rank,
    "MAD screen (4 SD) + t": _mad_screen,
}


def _regressed(point: float, low: float, high: float, threshold: float) -> bool:
    """The verdict rule of results.compare for a lower-is-better metric, on the ratio scale."""
    return low > 0 and point > threshold and not math.isclose(point, threshold, rel_tol=1e-9, abs_tol=1e-12)


class Cell:
    """Counts over the trials of one (scenario, repeats, shift)."""

    def __init__(self) -> None:
        self.trials = self.regressed = self.covered = 0
        self.widths: list[float] = []

    def add(self, regressed: bool, low: float, high: float, shift: float) -> None:
        self.trials += 1
        self.regressed += regressed
        self.covered += low <= shift <= high
        self.widths.append(high - low)

    @property
    def rate(self) -> float:
        return self.regressed / self.trials

    @property
    def coverage(self) -> float:
        return self.covered / self.trials


def simulate(*, pairs: int, shift: float, trials: int, seed: str, cv: float, offset: float, drift: float,
             outlier: float, threshold: Threshold) -> dict[str, Cell]:
    """Paired A/B and Welch on the same sessions, and Welch across sessions (without outliers)."""
    rng = random.Random(seed)
    cells = {"paired A/B": Cell(), "Welch, same session": Cell()}
    if not outlier:
        cells["Welch, across sessions"] = Cell()

    def add(name: str, result: Comparison) -> None:
        cells[name].add(result.verdict == "regressed", result.ci_low, result.ci_high, shift)

    for _ in range(trials):
        a, b, order = session(rng, pairs=pairs, shift=shift, cv=cv, offset=offset, drift=drift, outlier=outlier)
        add("paired A/B", compare_ab(a, b, threshold, order=order))
        add("Welch, same session", compare_values(a, b, threshold))
        if not outlier:
            a, b, _ = separate_sessions(rng, pairs=pairs, shift=shift, cv=cv, offset=offset, drift=drift)
            add("Welch, across sessions", compare_values(a, b, threshold))
    return cells


def simulate_alternatives(*, pairs: int, shift: float, trials: int, seed: str, cv: float, offset: float,
                          drift: float, outlier: float, threshold: float) -> dict[str, Cell]:
    rng = random.Random(seed)
    cells = {name: Cell() for name in ALTERNATIVES}
    for _ in range(trials):
        a, b, _ = session(rng, pairs=pairs, shift=shift, cv=cv, offset=offset, drift=drift, outlier=outlier)
        diffs = [math.log(y) - math.log(x) for x, y in zip(a, b)]
        for name, method in ALTERNATIVES.items():
            point, low, high = (math.expm1(v) for v in method(diffs))
            cells[name].add(_regressed(point, low, high, threshold), low, high, shift)
    return cells


def transient_session(rng: random.Random, *, pairs: int, shift: float, cv: float, offset: float, drift: float,
                      transient: float, design: str) -> Session:
    """One session whose first window reads ``transient`` high: ``design`` "before" measures from
    the first window with A first; "run_ab" runs ``session_schedule`` (settling pair, random first)."""
    if design == "before":
        settled, order = [], abba_schedule(pairs)
    else:
        settled, order = session_schedule(pairs, rng.randrange(2**31))
    common = 1.0 + rng.gauss(0.0, offset)
    values = [common * (1.0 + drift * i) * (1.0 + shift if w == "B" else 1.0) * (1.0 + rng.gauss(0.0, cv))
              for i, w in enumerate(settled + order)]
    values[0] *= 1.0 + transient
    kept = values[len(settled):]
    return ([v for v, w in zip(kept, order) if w == "A"], [v for v, w in zip(kept, order) if w == "B"], order)


def transient_table(args: argparse.Namespace, threshold: Threshold, repeats: list[int]) -> None:
    from nights import rate

    print(f"\nFirst window {args.transient:+g}% (a transient), CV {args.cv:g}%, offset SD {args.offset:g}%, drift "
          f"{args.drift:g}% per window, {args.trials} trials per cell\n")
    print(f"| windows a side | session design | false alarm (0%) | detect +{args.shift:g}% |")
    print("|---|---|---|---|")
    for pairs in repeats:
        for design, label in (("before", "A first, every window measured (before)"),
                              ("run_ab", "first block at random, a settling pair (run_ab)")):
            hits = []
            for shift in (0.0, args.shift / 100):
                rng, count = random.Random(f"{args.seed}/transient/{design}/{pairs}/{shift}"), 0
                for _ in range(args.trials):
                    a, b, order = transient_session(rng, pairs=pairs, shift=shift, cv=args.cv / 100,
                                                    offset=args.offset / 100, drift=args.drift / 100,
                                                    transient=args.transient / 100, design=design)
                    count += compare_ab(a, b, threshold, order=order).verdict == "regressed"
                hits.append(count)
            print(f"| {pairs} | {label} | {rate(hits[0], args.trials)} | {rate(hits[1], args.trials)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", default="5,10", help="windows of each config per session, comma-separated")
    parser.add_argument("--cv", type=float, default=3.0, help="per-window noise, percent")
    parser.add_argument("--offset", type=float, default=4.0, help="SD of the session offset, percent")
    parser.add_argument("--drift", type=float, default=1.0, help="drift per window, percent")
    parser.add_argument("--shift", type=float, default=10.0, help="true change of B to detect, percent")
    parser.add_argument("--outlier", type=float, default=20.0, help="size of the one outlier window, percent "
                        "(0: no outlier rows)")
    parser.add_argument("--threshold", type=float, default=5.0, help="relative threshold, percent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alternatives", action="store_true", help="also compare the designs not kept")
    parser.add_argument("--transient", type=float, default=5.0, help="how high the first window reads, percent")
    args = parser.parse_args()

    threshold = Threshold.parse(f"joules_per_token:{args.threshold:g}%")
    cv, offset, drift, shift = args.cv / 100, args.offset / 100, args.drift / 100, args.shift / 100
    repeats = [int(r) for r in args.repeats.split(",")]
    scenarios = [("clean", 0.0)] + ([(f"one window {args.outlier:+g}%", args.outlier / 100)] if args.outlier else [])
    print(f"CV {args.cv:g}% per window, session offset SD {args.offset:g}%, drift {args.drift:g}% per window, "
          f"threshold {threshold}, {args.trials} trials per cell, seed {args.seed}\n")
    shift_label = f"+{args.shift:g}%"
    header = ["windows a side", "scenario", "analysis", "false alarm (0%)", f"detect {shift_label}",
              "CI coverage (0%)", f"CI coverage ({shift_label})", "median CI width"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, outlier in scenarios:
        for pairs in repeats:
            common = dict(pairs=pairs, trials=args.trials, cv=cv, offset=offset, drift=drift, outlier=outlier)
            null = simulate(shift=0.0, seed=f"{args.seed}/{label}/{pairs}/null", threshold=threshold, **common)
            real = simulate(shift=shift, seed=f"{args.seed}/{label}/{pairs}/shift", threshold=threshold, **common)
            for name in null:
                width = statistics.median(null[name].widths + real[name].widths)
                print(f"| {pairs} | {label} | {name} | {null[name].rate:.1%} | {real[name].rate:.1%} | "
                      f"{null[name].coverage:.1%} | {real[name].coverage:.1%} | {width:.1%} |")

    transient_table(args, threshold, repeats)
    if not args.alternatives:
        return
    print("\nPaired designs considered (same sessions for every design in a row):\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, outlier in scenarios:
        for pairs in repeats:
            common = dict(pairs=pairs, trials=args.trials, cv=cv, offset=offset, drift=drift, outlier=outlier,
                          threshold=threshold.value)
            null = simulate_alternatives(shift=0.0, seed=f"{args.seed}/alt/{label}/{pairs}/null", **common)
            real = simulate_alternatives(shift=shift, seed=f"{args.seed}/alt/{label}/{pairs}/shift", **common)
            for name in null:
                width = statistics.median(null[name].widths + real[name].widths)
                print(f"| {pairs} | {label} | {name} | {null[name].rate:.1%} | {real[name].rate:.1%} | "
                      f"{null[name].coverage:.1%} | {real[name].coverage:.1%} | {width:.1%} |")


if __name__ == "__main__":
    main()
