"""Error rates of the verdict against a history of sessions (llenergymeasure.results.history),
with the single-baseline Welch verdict (results.compare) for contrast; and the gate over months
of CI nights, simulated through the plugin's own selection, confirmation and saving code
(benchmarks/nights.py), with Wilson 95% intervals.

``--part sessions`` (the first two tables): one history against one candidate, as below.

Each trial draws a history of sessions and a candidate session: per-repeat values 1.0 x (1 + N(0, CV))
times a session offset exp(N(0, s)) drawn once per session, the candidate's times (1 + shift) as
well. The verdict is taken with a 5% relative threshold; "false alarm" is the share of trials called
"regressed" at shift 0, "detect +10%" at shift 10%, "coverage" the share whose 95% CI holds the true
change (0 or +10%; the sessions' offsets are noise, not change), over both. The outlier scenarios
multiply one repeat in ten (r = 10) by 1.15: in every session, or only in the candidate. A second
table compares one baseline session with one candidate session without offsets (``compare_values``),
Welch against the rank-based CI (``robust=True``), with one repeat per session made an outlier. Seeded.

    python benchmarks/compare_history.py --part sessions [--trials 2000] [--sessions 10] [--cv 3] [--seed 0]

``--part nights``: a 2-item suite saved every night, K = 10 unless a row says otherwise, CV 3%,
5 repeats, session offsets of SD s shared by a night's measurements in the share rho (nights.py):
an unfixed regression, an accepted step, slow creep, false alarms for every K and around config
changes and accepts, and the power to catch +10%. ``--part suite``: a 20-item suite's nightly
false alarms with and without confirmation, and its per-item power. Each history is seeded by its
row and number, so a row is reproducible on its own; ``--workers`` runs histories in parallel.

    python benchmarks/compare_history.py --part nights [--histories 1000] [--workers 2]
    python benchmarks/compare_history.py --part suite [--histories 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
from collections.abc import Callable

from nights import Suite, rate

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
    ("s = 2%, 5 repeats, heavy tails: t3 windows, 1 in 20 at +30%", 0.02, 5, "heavy"),
)

Method = Callable[[list[list[float]], list[float]], Comparison]
METHODS: dict[str, Method] = {
    "history (Hodges-Lehmann)": lambda history, candidate: compare_history(history, candidate, THRESHOLD),
    "history (means)": lambda history, candidate: compare_history(history, candidate, THRESHOLD, robust=False),
    "last session, Welch": lambda history, candidate: compare_values(history[-1], candidate, THRESHOLD),
}


def draw_session(rng: random.Random, *, cv: float, s: float, repeats: int, shift: float,
                 outlier: bool, heavy: bool = False) -> list[float]:
    scale = (1 + shift) * math.exp(rng.gauss(0, s))
    if heavy:  # Student t with 3 df, scaled to SD cv; each window 1 in 20 at +30%
        values = [scale * (1 + cv * _t3(rng) / math.sqrt(3)) * (1.3 if rng.random() < 0.05 else 1.0)
                  for _ in range(repeats)]
    else:
        values = [scale * rng.gauss(1.0, cv) for _ in range(repeats)]
    if outlier:
        values[rng.randrange(repeats)] *= 1.15
    return values


def _t3(rng: random.Random) -> float:
    return rng.gauss(0, 1) / math.sqrt(sum(rng.gauss(0, 1) ** 2 for _ in range(3)) / 3)


def draw_trial(rng: random.Random, *, cv: float, s: float, repeats: int, sessions: int, shift: float,
               outliers: str | None) -> tuple[list[list[float]], list[float]]:
    heavy = outliers == "heavy"
    history = [draw_session(rng, cv=cv, s=s, repeats=repeats, shift=0.0, outlier=outliers == "all", heavy=heavy)
               for _ in range(sessions)]
    candidate = draw_session(rng, cv=cv, s=s, repeats=repeats, shift=shift,
                             outlier=outliers in ("all", "candidate"), heavy=heavy)
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


def sessions_part(args: argparse.Namespace) -> None:
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


# --- CI nights -------------------------------------------------------------------------------------

WARM = 30  # nights saved before a scenario begins: a history that has been running for a month
PAIR = ("a", "b")


def _suite(name: str, number: int, *, s: float, rho: float, k: int = 10, items: tuple[str, ...] = PAIR,
           confirm: int = 1, cv: float = 0.03) -> Suite:
    return Suite(list(items), random.Random(f"{name}/{number}"), cv=cv, s=s, rho=rho, k=k, confirm=confirm)


def _warm(suite: Suite, nights: int = WARM) -> None:
    for _ in range(nights):
        suite.night(dict.fromkeys(suite.items, 1.0))


def unfixed(number: int, s: float, rho: float) -> list[int]:
    """a +20% on night 1, never fixed: [red nights of a among nights 2-21, nights, night 1 red,
    red nights of b (unchanged) among nights 1-21]."""
    suite = _suite("unfixed", number, s=s, rho=rho)
    _warm(suite)
    nights = [suite.night({"a": 1.2, "b": 1.0}) for _ in range(21)]
    return [sum(n.red["a"] for n in nights[1:]), 20, int(nights[0].red["a"]), sum(n.red["b"] for n in nights)]


def accepted(number: int, s: float, rho: float) -> list[int]:
    """a +20% on night 1, accepted on night 2 (--llem-accept): [red nights of a among the 20 after
    the accept, 20, the accept night red]."""
    suite = _suite("accepted", number, s=s, rho=rho)
    _warm(suite)
    suite.night({"a": 1.2, "b": 1.0})
    accept = suite.night({"a": 1.2, "b": 1.0}, accept=frozenset({"a"}))
    after = [suite.night({"a": 1.2, "b": 1.0}) for _ in range(20)]
    return [sum(n.red["a"] for n in after), 20, int(accept.red["a"])]


def creep(number: int, s: float, rho: float) -> list[int]:
    """a +1% a night from night 1: [red on night 20, 1, first red night (99: none by night 20)]."""
    suite = _suite("creep", number, s=s, rho=rho)
    _warm(suite)
    first = 99
    for night in range(1, 21):
        red = suite.night({"a": 1.01**night, "b": 1.0}).red["a"]
        first = night if red and first == 99 else first
    return [int(red), 1, first]


def steady(number: int, s: float, rho: float, k: int) -> list[int]:
    """No change, K = ``k``: [red nights among 10 after the warm-up, 10, flagged ones (first measurement)]."""
    suite = _suite(f"steady{k}", number, s=s, rho=rho, k=k, items=("a",))
    _warm(suite)
    nights = [suite.night({"a": 1.0}) for _ in range(10)]
    return [sum(n.red["a"] for n in nights), 10, sum(n.flagged["a"] for n in nights)]


def young(number: int, s: float, rho: float, saved: int) -> list[int]:
    """No change, the night after ``saved`` saved sessions: [red, 1, flagged]."""
    suite = _suite(f"young{saved}", number, s=s, rho=rho, items=("a",))
    _warm(suite, saved)
    night = suite.night({"a": 1.0})
    return [int(night.red["a"]), 1, int(night.flagged["a"])]


def changed(number: int, s: float, rho: float, how: str) -> list[int]:
    """No change in energy; on night 1 a config change (``how`` = "config") or an accept: [red
    nights among nights 1-3, 3, flagged ones]."""
    suite = _suite(f"changed-{how}", number, s=s, rho=rho, items=("a",))
    _warm(suite)
    if how == "config":
        suite.configs["a"] = {"model": "m", "n": 8, "pytorch.batch_size": 1}
        nights = [suite.night({"a": 1.0}) for _ in range(3)]
    else:
        nights = [suite.night({"a": 1.0}, accept=frozenset({"a"}))] + [suite.night({"a": 1.0}) for _ in range(3)]
        nights = nights[1:]
    return [sum(n.red["a"] for n in nights), 3, sum(n.flagged["a"] for n in nights)]


def power(number: int, s: float, rho: float, k: int, history: int) -> list[int]:
    """+10% on the night after ``history`` saved sessions, K = ``k``: [red, 1, flagged]."""
    suite = _suite(f"power{k}/{history}", number, s=s, rho=rho, k=k, items=("a",))
    _warm(suite, history)
    night = suite.night({"a": 1.1})
    return [int(night.red["a"]), 1, int(night.flagged["a"])]


SUITE = tuple(f"i{n:02d}" for n in range(20))


def suite_noise(number: int, s: float, rho: float, confirm: int) -> list[int]:
    """A 20-item suite, no change: [nights with any item red among 5 after the warm-up, 5]."""
    suite = _suite(f"suite{confirm}", number, s=s, rho=rho, items=SUITE, confirm=confirm)
    _warm(suite)
    return [sum(any(suite.night(dict.fromkeys(SUITE, 1.0)).red.values()) for _ in range(5)), 5]


def suite_power(number: int, s: float, rho: float) -> list[int]:
    """A 20-item suite, one item +10% tonight: [that item red, 1, flagged, any other item red]."""
    suite = _suite("suite-power", number, s=s, rho=rho, items=SUITE)
    _warm(suite)
    night = suite.night({**dict.fromkeys(SUITE, 1.0), SUITE[0]: 1.1})
    return [int(night.red[SUITE[0]]), 1, int(night.flagged[SUITE[0]]), int(any(night.red[i] for i in SUITE[1:]))]


def _totals(job: tuple) -> list[int]:
    scenario, histories, args = job
    totals: list[int] = []
    for number in range(*histories):
        counts = scenario(number, *args)
        totals = [t + c for t, c in zip(totals, counts)] if totals else list(counts)
    return totals


def run(scenario: Callable[..., list[int]], histories: int, workers: int, *args: object) -> list[int]:
    """Sum ``scenario``'s counts over ``histories`` seeded histories, split over ``workers`` processes."""
    chunks = [(scenario, (i * histories // workers, (i + 1) * histories // workers), args) for i in range(workers)]
    if workers == 1:
        parts = [_totals(chunks[0])]
    else:
        with multiprocessing.Pool(workers) as pool:
            parts = pool.map(_totals, chunks)
    return [sum(column) for column in zip(*parts)]


def nights_part(args: argparse.Namespace) -> None:
    h, w = args.histories, args.workers
    print(f"CI nights: CV 3% between repeats, 5 repeats, threshold {THRESHOLD}, K = 10, {WARM} nights saved "
          f"before each scenario, {h} histories per row, seed by row; rho: the share of a session's offset\n"
          "shared by all of a night's measurements. Rates with Wilson 95% intervals.\n")
    print("| scenario | s | rho | what | rate |")
    print("|---|---|---|---|---|")
    for s in (0.0, 0.01, 0.02):
        red, nights, first, other = run(unfixed, h, w, s, 0.5)
        print(f"| +20% on night 1, never fixed | {s:.0%} | 0.5 | red nights 2-21 | {rate(red, nights)} |")
        print(f"| +20% on night 1, never fixed | {s:.0%} | 0.5 | red on night 1 | {rate(first, h)} |")
        print(f"| +20% on night 1, never fixed | {s:.0%} | 0.5 | the unchanged item red, nights 1-21 | "
              f"{rate(other, 21 * h)} |")
    for s in (0.0, 0.02, 0.04):
        for rho in (0.5, 1.0):
            red, nights, on_accept = run(accepted, h, w, s, rho)
            print(f"| +20% on night 1, accepted on night 2 | {s:.0%} | {rho:g} | red nights among the 20 after "
                  f"| {rate(red, 20 * h)} |")
    for s in (0.0, 0.01, 0.02):
        red, _, first_total = run(creep, h, w, s, 0.5)
        print(f"| +1% a night from night 1 | {s:.0%} | 0.5 | red on night 20 | {rate(red, h)} |")

    print("\nFalse alarms (no change) at s = 4%: red (confirmed) and flagged (the first measurement regressed)\n")
    print("| history | rho | red | flagged |")
    print("|---|---|---|---|")
    for rho in (0.5, 1.0):
        for k in (1, 2, 3, 5, 10, 20):
            red, nights, flagged = run(steady, h, w, 0.04, rho, k)
            print(f"| K = {k}, {WARM} nights saved, the next 10 | {rho:g} | {rate(red, 10 * h)} | "
                  f"{rate(flagged, 10 * h)} |")
        for saved in (1, 2, 3, 5, 10):
            red, _, flagged = run(young, h, w, 0.04, rho, saved)
            print(f"| the night after {saved} saved session(s) | {rho:g} | {rate(red, h)} | {rate(flagged, h)} |")
        for how, label in (("config", "a config change (no effect): that night and the 2 after"),
                           ("accept", "an accept (no change): the 3 nights after")):
            red, _, flagged = run(changed, h, w, 0.04, rho, how)
            print(f"| {label} | {rho:g} | {rate(red, 3 * h)} | {rate(flagged, 3 * h)} |")

    print("\nCatching +10% at s = 2%: red (confirmed, the default) and flagged (--llem-confirm=0)\n")
    print("| K | saved sessions | rho | red | flagged |")
    print("|---|---|---|---|---|")
    for k in (5, 10):
        for history in (k, WARM):
            for rho in (0.0, 0.5, 1.0):
                red, _, flagged = run(power, h, w, 0.02, rho, k, history)
                print(f"| {k} | {history} | {rho:g} | {rate(red, h)} | {rate(flagged, h)} |")


def suite_part(args: argparse.Namespace) -> None:
    h, w = args.histories, args.workers
    print(f"A 20-item suite saved nightly ({WARM} nights before, K = 10, CV 3%, 5 repeats), {h} histories per "
          "row, 5 nights each.\n")
    print("| rho | nights failed on noise, s = 4%, confirmation on | off (--llem-confirm=0) | "
          "+10% in one item caught, s = 2% (confirmed) | flagged | another item red that night |")
    print("|---|---|---|---|---|---|")
    for rho in (0.0, 0.5, 1.0):
        on, nights = run(suite_noise, h, w, 0.04, rho, 1)
        off, _ = run(suite_noise, h, w, 0.04, rho, 0)
        red, _, flagged, other = run(suite_power, h, w, 0.02, rho)
        print(f"| {rho:g} | {rate(on, nights)} | {rate(off, nights)} | {rate(red, h)} | {rate(flagged, h)} | "
              f"{rate(other, h)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("sessions", "nights", "suite", "all"), default="all")
    parser.add_argument("--trials", type=int, default=2000, help="trials per cell (--part sessions)")
    parser.add_argument("--sessions", type=int, default=10, help="history sessions (--part sessions)")
    parser.add_argument("--cv", type=float, default=3.0, help="CV between repeats, in percent (--part sessions)")
    parser.add_argument("--seed", type=int, default=0, help="--part sessions")
    parser.add_argument("--histories", type=int, default=1000, help="simulated histories per row (nights, suite)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the histories")
    args = parser.parse_args()
    if args.part in ("sessions", "all"):
        sessions_part(args)
    if args.part in ("nights", "all"):
        nights_part(args)
    if args.part in ("suite", "all"):
        suite_part(args)


if __name__ == "__main__":
    main()
