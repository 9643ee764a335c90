"""Spread of a metric over repeats: median, IQR, coefficient of variation and a 95% CI."""

from __future__ import annotations

import functools
import math
import statistics

from pydantic import BaseModel

from llenergymeasure.results.metrics import percentile


class MetricStats(BaseModel):
    """Distribution of one metric over the repeats; the CI is for the mean (Student t), never
    below ``summarize``'s ``floor`` (0 for every metric llem measures)."""

    n: int
    median: float
    mean: float
    std: float
    iqr: float
    cv: float | None
    ci95_low: float
    ci95_high: float


def summarize(values: list[float], *, floor: float | None = 0.0) -> MetricStats:
    """Median, mean, spread and the 95% Student t interval for the mean of ``values``.

    The interval is cut at ``floor``, the smallest value the quantity can take: 0 for energy,
    J/token, tokens/s, latency and memory, so with few noisy repeats their lower bound reads 0,
    not a negative number no measurement could produce. Cutting keeps the interval honest: the
    true mean is never below the floor, so the cut interval holds it exactly when the uncut one
    does (coverage stays 95%), and the upper bound is untouched. A t interval on the log scale
    would stay positive too, but it is an interval for the geometric mean, not for the mean
    beside it, and cannot take a zero (net energy can be 0). ``floor=None``, or values below
    the floor (a quantity that can be negative, such as a difference): not cut.
    """
    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    half = t95(n - 1) * std / n**0.5 if n > 1 else 0.0
    return MetricStats(
        n=n,
        median=statistics.median(values),
        mean=mean,
        std=std,
        iqr=(percentile(values, 75) or 0.0) - (percentile(values, 25) or 0.0),
        cv=std / mean if mean else None,
        ci95_low=mean - half if floor is None or min(values) < floor else max(floor, mean - half),
        ci95_high=mean + half,
    )


def t95(df: float) -> float:
    """The two-sided 95% Student t quantile for ``df`` degrees of freedom (at least 1)."""
    return t_quantile(0.975, df)


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom, exact for a fractional
    ``df`` too (Welch-Satterthwaite's, a history's): a df rounded down widens young histories'
    intervals by a third (K = 5 sessions: 2.9 df read as 2, t 4.30 instead of 3.25). Whole df at
    the 95% level, what a run's summary needs, is computed here; anything else by scipy, imported
    only on that path (the compare path), so ``llem run`` and the plugin's start stay light. A df
    below 1 is taken as 1; an infinite one gives the normal quantile."""
    df = max(1.0, df)
    if math.isinf(df):
        return statistics.NormalDist().inv_cdf(p)
    if p == 0.975 and df == math.floor(df):
        return _t95(int(df))
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


@functools.lru_cache(maxsize=None)
def _t95(df: int) -> float:
    """Exact for whole ``df``, by bisection on the distribution function."""
    low, high = 0.0, 1.0
    while _t_within(high, df) < 0.95:
        low, high = high, high * 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_within(mid, df) < 0.95 else (low, mid)
    return high


def _t_within(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer ``df``: the exact finite series of
    Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    odd = df % 2
    total, term = 0.0, math.cos(theta) if odd else 1.0
    for j in range(1, df // 2 + 1):
        total += term
        term *= cos2 * (2 * j - 1 + odd) / (2 * j + odd)
    if odd:
        return 2 / math.pi * (theta + math.sin(theta) * total)
    return math.sin(theta) * total
