"""Spread of a metric over repeats: median, IQR, coefficient of variation and a 95% CI."""

from __future__ import annotations

import statistics

from pydantic import BaseModel

from llenergymeasure.results.metrics import percentile

# Two-sided 95% Student t quantiles by degrees of freedom; 1.96 beyond the table.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


class MetricStats(BaseModel):
    """Distribution of one metric over the repeats; the CI is for the mean (Student t)."""

    n: int
    median: float
    mean: float
    std: float
    iqr: float
    cv: float | None
    ci95_low: float
    ci95_high: float


def summarize(values: list[float]) -> MetricStats:
    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    half = _t95(n - 1) * std / n**0.5 if n > 1 else 0.0
    return MetricStats(
        n=n,
        median=statistics.median(values),
        mean=mean,
        std=std,
        iqr=(percentile(values, 75) or 0.0) - (percentile(values, 25) or 0.0),
        cv=std / mean if mean else None,
        ci95_low=mean - half,
        ci95_high=mean + half,
    )


def _t95(df: int) -> float:
    eligible = [k for k in _T95 if k <= df]
    return _T95[max(eligible)] if df <= 30 else 1.96
