"""Noise-aware comparison of a metric between a baseline and a candidate: the verdict that gates
CI on energy regressions.

Given the per-repeat values of one metric on both sides and a threshold ("joules_per_token:5%"),
``compare_values`` says whether the candidate ``regressed``, ``improved``, is ``unchanged`` or
whether the data cannot tell (``inconclusive``), and writes one line that explains why.

Method (docs/compare.md has the justification and the simulated error rates):

* Point estimate: the ratio of the medians, minus 1 (relative threshold), or their difference
  (absolute threshold). Medians, so one odd repeat does not move the headline number.
* 95% CI: Welch's unequal-variance t interval for the difference of the means, taken on the log
  scale for a relative threshold (so it is a CI of the ratio of geometric means, which equals the
  ratio of medians when repeats scatter multiplicatively), on the raw scale for an absolute one.
  Each side keeps its own variance; the degrees of freedom come from Welch-Satterthwaite.
* Verdict: ``regressed`` when the whole CI lies on the bad side of zero AND the point estimate is
  past the threshold on that side; ``improved`` symmetrically on the good side; ``unchanged`` when
  the CI lies inside +-threshold; ``inconclusive`` otherwise. "CI clear of zero" is a two-sided
  5% test, so identical distributions raise a false alarm at most ~2.5% of the time before the
  threshold condition cuts that further; requiring only the point estimate (not the CI's far end)
  past the threshold keeps 5 repeats enough to catch a 10% regression at 3% noise.
* A single repeat on either side gives no spread, so no verdict: ``inconclusive``, with the point
  estimate and "single repeat: no noise estimate" in the text. A gate on one repeat would raise
  false alarms on noise alone (11% of the time at 3% CV).
"""

from __future__ import annotations

import difflib
import math
import statistics
from dataclasses import dataclass
from typing import Literal

from llenergymeasure.results.metrics import METRIC_NAMES, METRICS
from llenergymeasure.results.stats import t95

Verdict = Literal["regressed", "improved", "unchanged", "inconclusive"]

# Derived from the metrics table so the direction of a metric is defined in one place.
HIGHER_IS_BETTER: frozenset[str] = frozenset(name for name, (_, better, _) in METRICS.items() if better == "higher")


@dataclass(frozen=True)
class Threshold:
    """How large a change in ``metric`` counts: ``value`` 0.05 with ``relative`` is 5%; without,
    it is an absolute change in the metric's unit."""

    metric: str
    value: float
    relative: bool

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"threshold for {self.metric} must be a finite number >= 0, got {self.value}")

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """``"joules_per_token:5%"`` (relative) or ``"joules_per_token:0.01"`` (absolute, in J/token)."""
        metric, sep, amount = text.partition(":")
        metric, amount = metric.strip(), amount.strip()
        if not sep or not metric or not amount:
            raise ValueError(f"expected METRIC:THRESHOLD such as 'joules_per_token:5%' or "
                             f"'joules_per_token:0.01', got {text!r}")
        if metric not in METRICS:
            raise ValueError(_unknown_metric_message(metric))
        relative = amount.endswith("%")
        number = amount[:-1].strip() if relative else amount
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"threshold {amount!r} for {metric} is not a number; write '5%' for a relative "
                             f"threshold or '0.01' for an absolute change in {METRICS[metric][0]}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"threshold {amount!r} for {metric} must be a finite number >= 0")
        return cls(metric, value / 100 if relative else value, relative)

    def __str__(self) -> str:
        return _format_threshold(self, self.value)


@dataclass(frozen=True)
class Comparison:
    """The verdict on one metric. ``ci_low``/``ci_high`` are NaN when no CI could be formed;
    ``change`` is NaN when a relative change is undefined (baseline median <= 0)."""

    metric: str
    baseline: float
    candidate: float
    change: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    threshold: Threshold
    text: str


def compare_metric(metric: str, baseline_values: list[float], candidate_values: list[float],
                   threshold: Threshold) -> Comparison:
    """``compare_values`` with the direction (is higher better?) looked up for ``metric``."""
    if threshold.metric != metric:
        raise ValueError(f"threshold is for {threshold.metric}, not {metric}")
    return compare_values(baseline_values, candidate_values, threshold, higher_is_better=metric in HIGHER_IS_BETTER)


def compare_values(baseline: list[float], candidate: list[float], threshold: Threshold, *,
                   higher_is_better: bool = False) -> Comparison:
    """Compare per-repeat values of ``threshold.metric``; see the module docstring for the method.
    The Welch interval is closed-form: the verdict is deterministic."""
    _check_values("baseline", baseline)
    _check_values("candidate", candidate)
    base_median, cand_median = statistics.median(baseline), statistics.median(candidate)
    result = _Builder(threshold, base_median, cand_median, higher_is_better)

    if threshold.relative and base_median <= 0:
        return result.inconclusive(f"relative change undefined: baseline median is {base_median:.4g}; "
                                   f"use an absolute threshold")
    if len(baseline) == 1 or len(candidate) == 1:
        return result.from_point("single repeat: no noise estimate")
    if threshold.relative and min(*baseline, *candidate) <= 0:
        return result.inconclusive("a relative CI needs positive values on both sides; use an absolute threshold")
    return result.from_ci(*_welch_ci(baseline, candidate, threshold.relative))


class _Builder:
    """Turns the point estimate (and CI, when there is one) into a Comparison and its text."""

    def __init__(self, threshold: Threshold, baseline: float, candidate: float, higher_is_better: bool, *,
                 change: float | None = None) -> None:
        """``change`` defaults to the change from ``baseline`` to ``candidate``; an analysis whose point
        estimate is not that (the paired A/B one) passes its own."""
        self.threshold = threshold
        self.baseline = baseline
        self.candidate = candidate
        self.higher_is_better = higher_is_better
        if change is not None:
            self.change = change
        elif threshold.relative:
            self.change = candidate / baseline - 1 if baseline > 0 else math.nan
        else:
            self.change = candidate - baseline

    def from_point(self, note: str,
                   reason: str = "measure repeats: 3 or more on both sides for a verdict") -> Comparison:
        """No spread on one side: the point estimate is shown, but no verdict is given on it."""
        return self._build(math.nan, math.nan, "inconclusive", note, reason)

    def from_ci(self, low: float, high: float, note: str = "") -> Comparison:
        """``note`` follows the CI in the text ("paired over 5 A/B pairs")."""
        bad_low, bad_high = sorted((self._bad(low), self._bad(high)))
        bad, limit = self._bad(self.change), self.threshold.value
        reason = ""
        if bad_low > 0 and _beyond(bad, limit):
            verdict: Verdict = "regressed"
        elif bad_high < 0 and _beyond(-bad, limit):
            verdict = "improved"
        elif not _beyond(bad_high, limit) and not _beyond(-bad_low, limit):
            verdict = "unchanged"
        else:
            verdict = "inconclusive"
            reason = "too noisy: the 95% CI includes no change" if low <= 0 <= high else \
                "the 95% CI reaches past the threshold"
        ci = f"95% CI {self._format_change(low)}..{self._format_change(high)}" + (f", {note}" if note else "")
        return self._build(low, high, verdict, ci, reason)

    def inconclusive(self, reason: str) -> Comparison:
        return self._build(math.nan, math.nan, "inconclusive", "", reason)

    def _bad(self, change: float) -> float:
        """The change measured in the bad direction: positive means worse."""
        return -change if self.higher_is_better else change

    def _build(self, low: float, high: float, verdict: Verdict, note: str, reason: str) -> Comparison:
        metric = self.threshold.metric
        text = f"{metric} {self.candidate:.4g} vs {self.baseline:.4g}"
        if not math.isnan(self.change):
            details = ", ".join([self._format_change(self.change), *([note] if note else [])])
            text += f" ({details}) {self._relation()} threshold"
        text += f": {verdict}" + (f" ({reason})" if reason else "")
        return Comparison(metric, self.baseline, self.candidate, self.change, low, high, verdict, self.threshold, text)

    def _relation(self) -> str:
        limit = self.threshold.value
        if _beyond(self.change, limit):
            return f"> {_format_threshold(self.threshold, limit)}"
        if _beyond(-self.change, limit):
            return f"< {_format_threshold(self.threshold, -limit)}"
        return f"within ±{_format_threshold(self.threshold, limit)}"

    def _format_change(self, change: float) -> str:
        return f"{change:+.1%}" if self.threshold.relative else f"{change:+.4g}"


def _beyond(value: float, limit: float) -> bool:
    """value > limit, where a value equal to the limit up to float rounding (1.05/1.0 - 1) is not beyond."""
    return value > limit and not math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def _welch_ci(baseline: list[float], candidate: list[float], relative: bool) -> tuple[float, float]:
    """95% CI of mean(candidate) - mean(baseline) with Welch's unequal-variance t interval; on the log
    scale for a relative threshold, returned as a relative change of the geometric means."""
    if relative:
        baseline, candidate = [math.log(v) for v in baseline], [math.log(v) for v in candidate]
    diff = statistics.fmean(candidate) - statistics.fmean(baseline)
    var_b, var_c = _variance_of_mean(baseline), _variance_of_mean(candidate)
    if var_b + var_c == 0:
        half = 0.0  # identical repeats on both sides: nothing to be unsure about
    else:
        share = var_b / (var_b + var_c)  # Welch-Satterthwaite df, written so tiny variances cannot underflow
        df = 1 / (share**2 / (len(baseline) - 1) + (1 - share) ** 2 / (len(candidate) - 1))
        half = t95(df) * math.sqrt(var_b + var_c)
    if relative:
        return math.expm1(diff - half), math.expm1(diff + half)
    return diff - half, diff + half


def _variance_of_mean(values: list[float]) -> float:
    # Plain float arithmetic: statistics.variance is exact (fractions) and ~10x slower, which the
    # thousands of comparisons in a power simulation notice.
    mean = statistics.fmean(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)


def _check_values(side: str, values: list[float]) -> None:
    if not values:
        raise ValueError(f"no {side} values to compare")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{side} values must be finite numbers, got {values}")


def _format_threshold(threshold: Threshold, value: float) -> str:
    if threshold.relative:
        return f"{value * 100:g}%"
    unit = METRICS[threshold.metric][0] if threshold.metric in METRICS else ""
    return f"{value:g} {unit}".rstrip()


def _unknown_metric_message(metric: str) -> str:
    close = difflib.get_close_matches(metric, METRIC_NAMES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown metric {metric!r}{hint}; known metrics: {', '.join(METRIC_NAMES)}"
