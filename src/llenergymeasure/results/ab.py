"""Interleaved A/B: two configs measured in one session, their windows in ABBA order, compared pair
by pair, so that what the session shares (its offset) and what changes slowly across it (drift)
cancel instead of landing in the verdict.

A (the baseline, the reference) and B (the candidate) are both warmed up, then measured in blocks
of two windows, ``A B`` and ``B A`` alternating (``abba_schedule``). Each block is one pair:

* an offset common to the session (this machine today, its clocks, its cooling) multiplies both
  windows of a pair and is gone from their ratio;
* a drift across the session moves the two windows of a pair by one window's worth: +d in an
  ``A B`` block, -d in a ``B A`` block. Over an ``A B B A`` quad that cancels exactly for a linear
  drift (an even number of pairs); with an odd number one block is left over and a drift of d per
  window biases the mean by d/pairs (0.2% for 1%/window over 5 pairs). Smooth curved drift cancels
  to first order within each pair.

``compare_ab`` (docs/compare.md, "Interleaved A/B", has the simulated error rates):

* per pair, the log ratio B/A (relative threshold) or the difference B - A (absolute);
* point estimate: the Hodges-Lehmann estimate of those (the median of all pairwise means, each
  pair with itself included), back on the ratio scale: robust to one odd pair, and as efficient
  as the mean on normal data;
* 95% CI: the paired t interval on their mean, df = pairs - 1;
* the verdict rule and text of ``results.compare``: ``regressed`` when the CI is clear of zero on
  the bad side AND the point estimate is past the threshold, ``improved`` symmetrically,
  ``unchanged`` when the CI lies inside +-threshold, ``inconclusive`` otherwise.

Chosen over the alternatives by simulation (benchmarks/compare_ab.py, 3% CV per window, 1% drift
per window): a two-sequence crossover fit (pair differences on a common change plus +-d, which
removes even a steep linear drift from the error term) costs a degree of freedom and caught +10%
only 89% of the time at 5 pairs; pairing whole ABBA quads leaves 2 quads at 5 pairs. A Wilcoxon
signed-rank (Hodges-Lehmann) interval cannot reach 95% with 5 pairs (its widest interval has
93.75%), and does not bound one outlier window at 10 pairs either: one pair moves ``pairs`` of the
Walsh averages, more than the interval trims (a +20% window: +10% caught 91% of the time against
97% for t). Dropping a pair more than 4 robust SDs (MAD) from the others catches more under an
outlier but covers only 91% on clean data at 5 pairs. With the t interval one outlier window
inflates the spread, so it makes the verdict ``inconclusive`` but does not raise a false alarm.

The ``baseline`` and ``candidate`` of the returned Comparison are the medians of the A and of the B
windows, as in ``compare_values``; ``change`` is the paired estimate, which is not their ratio
when the session drifts.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

from llenergymeasure.results.compare import (
    Comparison,
    Sensitivity,
    Threshold,
    VerdictBuilder,
    check_values,
    format_amount,
    minimum_detectable_effect,
    repeats_to_resolve,
    resolve_text,
)
from llenergymeasure.results.stats import t_quantile

BLOCKS = (("A", "B"), ("B", "A"))


def abba_schedule(pairs: int, first: str = "A") -> list[str]:
    """The order of the measured windows for ``pairs`` windows of each config, after the warm-up:
    blocks of two, alternating ``A B`` and ``B A``, the first block starting with ``first``
    (A B B A A B B A ... or B A A B B A A B ...). Block k holds the k-th window of A and the k-th of
    B, which ``compare_ab`` pairs. An odd ``pairs`` ends on a block like the first: 5 gives A B B A A
    B B A A B (see the module docstring for what that leaves of a drift). Use an even number when
    you can. ``run_ab`` draws ``first`` at random for each session: whatever the first window of a
    session suffers (a warm GPU, a clock still ramping) then falls on A as often as on B."""
    if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 1:
        raise ValueError(f"pairs must be a whole number >= 1, got {pairs!r}")
    if first not in ("A", "B"):
        raise ValueError(f"first must be 'A' or 'B', got {first!r}")
    start = 0 if first == "A" else 1
    return [window for k in range(pairs) for window in BLOCKS[(k + start) % 2]]


SETTLING_PAIRS = 1  # windows of each config a session runs first and does not measure


def session_schedule(pairs: int, seed: int) -> tuple[list[str], list[str]]:
    """(the settling windows, the measured windows) of an A/B session of ``pairs`` pairs: the first
    block's order drawn from ``seed``, a settling pair in ABBA order before the measured ones."""
    schedule = abba_schedule(pairs + SETTLING_PAIRS, random.Random(seed).choice("AB"))
    return schedule[:2 * SETTLING_PAIRS], schedule[2 * SETTLING_PAIRS:]


def compare_ab(a: list[float], b: list[float], threshold: Threshold, *, order: Sequence[str] | None = None,
               higher_is_better: bool = False, confidence: float = 0.95) -> Comparison:
    """Compare B (candidate) with A (baseline) from one interleaved session.

    ``a`` and ``b`` are the per-window values of ``threshold.metric``, each in the order it was
    measured; ``order`` is the whole session's window sequence ("A"/"B", warm-up excluded), by
    default ``abba_schedule(len(a))``. It must consist of blocks of two windows, each ``A B`` or
    ``B A``, with as many of one kind as of the other (or one more, for an odd number of pairs), so
    that a linear drift cancels: when a window fails, drop its whole block. The k-th A is paired with
    the k-th B. See the module docstring for the method.
    """
    check_values("A", a)
    check_values("B", b)
    if len(a) != len(b):
        raise ValueError(f"an A/B comparison needs as many A windows as B windows, got {len(a)} and {len(b)}")
    _check_order(abba_schedule(len(a)) if order is None else list(order), len(a))
    pairs = len(a)
    base_median, cand_median = statistics.median(a), statistics.median(b)

    if threshold.relative and base_median <= 0:
        return VerdictBuilder(threshold, base_median, cand_median, higher_is_better).inconclusive(
            f"relative change undefined: median of A is {base_median:.4g}; use an absolute threshold")
    if threshold.relative and min(*a, *b) <= 0:
        return VerdictBuilder(threshold, base_median, cand_median, higher_is_better).inconclusive(
            "a relative CI needs positive values on both sides; use an absolute threshold")

    if threshold.relative:
        diffs = [math.log(y) - math.log(x) for x, y in zip(a, b)]
    else:
        diffs = [y - x for x, y in zip(a, b)]
    point = hodges_lehmann(diffs)
    result = VerdictBuilder(threshold, base_median, cand_median, higher_is_better,
                            change=math.expm1(point) if threshold.relative else point, confidence=confidence)
    if pairs == 1:
        return result.from_point("single A/B pair: no noise estimate", "measure 3 or more A/B pairs for a verdict")
    low, high = paired_t_ci(diffs, confidence)
    if threshold.relative:
        low, high = math.expm1(low), math.expm1(high)
    return result.from_ci(low, high, f"paired over {pairs} A/B pairs")


def ab_sensitivity(a: list[float], b: list[float], threshold: Threshold) -> Sensitivity:
    """What an A/B of these windows can resolve: the MDE of ``compare_ab`` (the paired SE and
    df, the Hodges-Lehmann point estimate taken as efficient as the mean), and the pairs at which
    a change the size of the threshold would be told apart 80% of the time: "MDE 7.9% at 5 pairs;
    ~9 pairs would resolve the 5% threshold"."""
    check_values("A", a)
    check_values("B", b)
    pairs = len(a)
    if len(b) != pairs or pairs < 2:
        return Sensitivity(math.nan, pairs, None, "no MDE: measure 3 or more A/B pairs")
    if threshold.relative and min(*a, *b) <= 0:
        return Sensitivity(math.nan, pairs, None, "no MDE: a relative threshold needs positive values")
    diffs = [math.log(y / x) if threshold.relative else y - x for x, y in zip(a, b)]
    mean = statistics.fmean(diffs)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (pairs - 1))
    mde = minimum_detectable_effect(sd / math.sqrt(pairs), pairs - 1, threshold)
    needed = repeats_to_resolve(lambda n: (sd / math.sqrt(n), n - 1), threshold)
    tail = resolve_text(threshold, needed, pairs, "").replace("repeats", "pairs")
    return Sensitivity(mde, pairs, needed, f"MDE {format_amount(threshold, mde)} at {pairs} pairs; {tail}")


def paired_t_ci(diffs: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """The t interval (95% by default) for the mean of the per-pair differences, df = len(diffs) - 1."""
    n = len(diffs)
    mean = statistics.fmean(diffs)
    variance = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    half = t_quantile(0.5 + confidence / 2, n - 1) * math.sqrt(variance / n)  # 0 when every pair differs alike
    return mean - half, mean + half


def hodges_lehmann(diffs: list[float]) -> float:
    """The median of the Walsh averages (d_i + d_j) / 2, i <= j: the one-sample Hodges-Lehmann
    estimate of the centre."""
    return statistics.median([(diffs[i] + diffs[j]) / 2 for i in range(len(diffs)) for j in range(i, len(diffs))])


def _check_order(order: list[str], pairs: int) -> None:
    if len(order) != 2 * pairs:
        raise ValueError(f"order has {len(order)} windows; {pairs} A/B pairs need {2 * pairs}")
    blocks = [tuple(order[i:i + 2]) for i in range(0, len(order), 2)]
    bad = next((i for i, block in enumerate(blocks) if block not in BLOCKS), None)
    if bad is not None:
        raise ValueError(f"order must be blocks of two windows, each 'A','B' or 'B','A' (abba_schedule); "
                         f"block {bad + 1} is {list(blocks[bad])}")
    ab = sum(block == BLOCKS[0] for block in blocks)
    if abs(ab - (pairs - ab)) > 1:
        raise ValueError(f"order has {ab} A-B blocks and {pairs - ab} B-A blocks; a drift across the session "
                         f"cancels only when they are balanced (at most one more of either): use abba_schedule")
