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
* ``robust=True``: the CI from ranks (Moses's interval, exact Mann-Whitney), for 10 or so repeats
  where a throttled repeat is expected; Welch stays the default (it has more power at 5 repeats).
* ``sensitivity``: the minimum detectable effect of a comparison and the repeats that would resolve
  its threshold, for "inconclusive" messages. Against a history of sessions: ``results.history``.
"""

from __future__ import annotations

import difflib
import functools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from llenergymeasure.results.metrics import METRIC_NAMES, METRICS
from llenergymeasure.results.stats import t95
from llenergymeasure.results.tables import fmt

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

    @property
    def spec(self) -> str:
        """The gate as ``parse`` reads it: ``joules_per_token:5%``, ``joules_per_token:0.01``."""
        return f"{self.metric}:{self.value * 100:g}%" if self.relative else f"{self.metric}:{self.value:g}"


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
                   threshold: Threshold, *, robust: bool = False) -> Comparison:
    """``compare_values`` with the direction (is higher better?) looked up for ``metric``."""
    if threshold.metric != metric:
        raise ValueError(f"threshold is for {threshold.metric}, not {metric}")
    return compare_values(baseline_values, candidate_values, threshold, higher_is_better=metric in HIGHER_IS_BETTER,
                          robust=robust)


def compare_values(baseline: list[float], candidate: list[float], threshold: Threshold, *,
                   higher_is_better: bool = False, robust: bool = False) -> Comparison:
    """Compare per-repeat values of ``threshold.metric``; see the module docstring for the method.
    The Welch interval is closed-form: the verdict is deterministic.

    ``robust=True`` takes the 95% CI from ranks instead: Moses's interval for the shift, from the
    exact Mann-Whitney distribution, which one wild repeat (a throttled run) cannot stretch. It
    costs power on clean repeats at 5 per side, and 3 per side cannot reach 95% at all, so it is an
    option for 8-10 or more repeats where outliers are expected (docs/compare.md has the rates)."""
    check_values("baseline", baseline)
    check_values("candidate", candidate)
    base_median, cand_median = statistics.median(baseline), statistics.median(candidate)
    result = VerdictBuilder(threshold, base_median, cand_median, higher_is_better)

    if threshold.relative and base_median <= 0:
        return result.inconclusive(f"relative change undefined: baseline median is {base_median:.4g}; "
                                   f"use an absolute threshold")
    if len(baseline) == 1 or len(candidate) == 1:
        return result.from_point("single repeat: no noise estimate")
    if threshold.relative and min(*baseline, *candidate) <= 0:
        return result.inconclusive("a relative CI needs positive values on both sides; use an absolute threshold")
    if not robust:
        return result.from_ci(*_welch_ci(baseline, candidate, threshold.relative))
    ci = _rank_ci(baseline, candidate, threshold.relative)
    if ci is None:
        return result.from_point(f"{len(baseline)} and {len(candidate)} repeats: too few for a 95% rank CI",
                                 "measure 4 or more repeats on both sides for a rank-based verdict")
    return result.from_ci(*ci, "rank-based")


@dataclass(frozen=True)
class Sensitivity:
    """What the data can resolve. ``mde``: the smallest change (a fraction for a relative threshold,
    the metric's unit for an absolute one) that the verdict calls ``regressed`` about 80% of the
    time at the repeats measured, NaN when no verdict is possible. ``repeats_to_resolve``: the
    repeats (per side; per session against a history) at which a change the size of the threshold
    is told apart from no change 80% of the time (then a candidate that did not change can also come
    out ``unchanged``); None when no number of repeats does. ``text``: one line for a report."""

    mde: float
    repeats: int
    repeats_to_resolve: int | None
    text: str


def minimum_detectable_effect(se: float, df: float, threshold: Threshold, *, power: float = 0.8,
                              point_se: float | None = None) -> float:
    """The smallest change that "CI clear of zero AND point estimate past the threshold" calls
    ``regressed`` with probability ``power``, for a CI of standard error ``se`` (of the log ratio for
    a relative threshold) and ``df`` degrees of freedom, and a point estimate of standard error
    ``point_se`` (default ``se``; a ratio of medians scatters more than the means the CI is built on).
    Normal approximation with the two conditions taken as independent: they are positively
    correlated, which errs toward a larger MDE, as does ``t95`` rounding df down; simulated, the
    power at the MDE is 75-85% (docs/compare.md)."""
    point_se = se if point_se is None else point_se
    clear, limit = t95(df) * se, _on_scale(threshold)
    normal = statistics.NormalDist()

    def called(change: float) -> float:
        ci = normal.cdf((change - clear) / se) if se else float(change > clear)
        point = normal.cdf((change - limit) / point_se) if point_se else float(change > limit)
        return ci * point

    low, high = max(clear, limit), max(clear, limit) + 10 * max(se, point_se) + 1e-12
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if called(mid) < power else (low, mid)
    return math.expm1(high) if threshold.relative else high


def repeats_to_resolve(se_at: Callable[[int], tuple[float, float]], threshold: Threshold, *,
                       power: float = 0.8, most: int = 1000) -> int | None:
    """The fewest repeats n (2..``most``) at which (t95(df) + z(power)) * se <= the threshold, where
    ``se_at(n)`` gives (se, df) at n repeats: a change the size of the threshold is then significant
    with probability ``power``. None when even ``most`` repeats do not get there."""
    z, limit = statistics.NormalDist().inv_cdf(power), _on_scale(threshold)

    def resolves(n: int) -> bool:
        se, df = se_at(n)
        return (t95(df) + z) * se <= limit

    if not resolves(most):
        return None
    low, high = 1, most  # resolves(high) holds; the SE only shrinks with n, so bisect
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if resolves(mid) else (mid, high)
    return high


def sensitivity(baseline: list[float], candidate: list[float], threshold: Threshold) -> Sensitivity:
    """The MDE of ``compare_values`` on these repeats (Welch SE and df) and the repeats per side that
    would resolve the threshold, from the pooled spread of both sides, for messages such as
    "MDE 12% at 5 repeats; ~14 repeats per side would resolve the 5% threshold"."""
    check_values("baseline", baseline)
    check_values("candidate", candidate)
    repeats = len(candidate)
    at = f"{repeats} repeats" if len(baseline) == repeats else f"{len(baseline)}/{repeats} repeats"
    if threshold.relative and min(*baseline, *candidate) <= 0:
        return Sensitivity(math.nan, repeats, None, "no MDE: a relative threshold needs positive values")
    sides = [[math.log(v) for v in side] if threshold.relative else side for side in (baseline, candidate)]
    spread = [side for side in sides if len(side) > 1]
    if not spread:
        return Sensitivity(math.nan, repeats, None, "no MDE: a single repeat on each side gives no noise estimate")
    df_pooled = sum(len(side) - 1 for side in spread)
    pooled = math.fsum(_variance_of_mean(side) * len(side) * (len(side) - 1) for side in spread) / df_pooled
    needed = repeats_to_resolve(lambda n: (math.sqrt(2 * pooled / n), 2 * n - 2), threshold)
    if len(spread) < 2:
        mde, head = math.nan, f"no MDE at {at}: a single repeat gives no verdict"
    else:
        var_b, var_c = (_variance_of_mean(side) for side in sides)
        se = math.sqrt(var_b + var_c)
        # The point estimate is a ratio of medians: sqrt(pi/2) times the means' SE for normal repeats.
        mde = minimum_detectable_effect(se, _welch_df(sides[0], sides[1]), threshold,
                                        point_se=se * math.sqrt(math.pi / 2))
        head = f"MDE {format_amount(threshold, mde)} at {at}"
    return Sensitivity(mde, repeats, needed, f"{head}; {resolve_text(threshold, needed, repeats, 'per side ')}")


class VerdictBuilder:
    """Turns the point estimate (and CI, when there is one) into a Comparison and its text."""

    def __init__(self, threshold: Threshold, baseline: float, candidate: float, higher_is_better: bool, *,
                 change: float | None = None, confidence: float = 0.95) -> None:
        """``change`` defaults to the change from ``baseline`` to ``candidate``; an analysis whose point
        estimate is not that (the paired A/B one) passes its own. ``confidence``: the CI's level,
        for its label (a confirmation is held to 98.5%)."""
        self.threshold = threshold
        self.confidence = confidence
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
            reason = f"too noisy: the {self.ci_name} includes no change" if low <= 0 <= high else \
                f"the {self.ci_name} reaches past the threshold"
        return self._build(low, high, verdict, self._ci_text(low, high, note), reason)

    def from_drift(self, low: float, high: float, note: str) -> Comparison | None:
        """``regressed`` when the whole CI of the change lies past the threshold on the bad side (the
        level is known to have moved by more than the threshold), else None. For drift since a
        segment's pinned level: ``note`` says since when ("since accepted on 2026-12-03, 9 sessions")."""
        bad_low = min(self._bad(low), self._bad(high))
        if not _beyond(bad_low, self.threshold.value):
            return None
        return self._build(low, high, "regressed", self._ci_text(low, high, ""),
                           f"drift: the whole {self.ci_name} is past the threshold", change_note=note)

    @property
    def ci_name(self) -> str:
        return f"{round(self.confidence * 100, 2):g}% CI"

    def _ci_text(self, low: float, high: float, note: str) -> str:
        return f"{self.ci_name} {self._format_change(low)}..{self._format_change(high)}" + (f", {note}" if note else "")

    def inconclusive(self, reason: str) -> Comparison:
        return self._build(math.nan, math.nan, "inconclusive", "", reason)

    def _bad(self, change: float) -> float:
        """The change measured in the bad direction: positive means worse."""
        return -change if self.higher_is_better else change

    def _build(self, low: float, high: float, verdict: Verdict, note: str, reason: str, *,
               change_note: str = "") -> Comparison:
        metric = self.threshold.metric
        text = f"{metric} {fmt(self.candidate)} vs {fmt(self.baseline)}"
        if not math.isnan(self.change):
            change = self._format_change(self.change) + (f" {change_note}" if change_note else "")
            details = ", ".join([change, *([note] if note else [])])
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
        half = t95(_welch_df(baseline, candidate)) * math.sqrt(var_b + var_c)
    if relative:
        return math.expm1(diff - half), math.expm1(diff + half)
    return diff - half, diff + half



def _rank_ci(baseline: list[float], candidate: list[float], relative: bool) -> tuple[float, float] | None:
    """Moses's 95% CI for the shift candidate - baseline (log scale for a relative threshold): the
    (c+1)-th smallest and largest of the m*n pairwise differences, c the largest count with
    P(U <= c) <= 2.5% under no change. None when even the full range cannot reach 95%."""
    if relative:
        baseline, candidate = [math.log(v) for v in baseline], [math.log(v) for v in candidate]
    c = _rank_critical(len(baseline), len(candidate))
    if c is None:
        return None
    diffs = sorted(y - x for x in baseline for y in candidate)
    low, high = diffs[c], diffs[len(diffs) - 1 - c]
    return (math.expm1(low), math.expm1(high)) if relative else (low, high)


@functools.lru_cache(maxsize=None)
def _rank_critical(m: int, n: int) -> int | None:
    """The largest c with P(U <= c) <= 2.5% for the Mann-Whitney U of samples of m and n; None when
    P(U = 0) alone is more (3 and 3 repeats: 1/20)."""
    counts, total, cumulative = _mann_whitney_counts(m, n), math.comb(m + n, m), 0
    for u, count in enumerate(counts):
        cumulative += count
        if 40 * cumulative > total:
            return u - 1 if u else None
    raise AssertionError("unreachable: the counts sum to the total")


def _mann_whitney_counts(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) orderings give U = 0, 1, ..., m*n: the coefficients of the Gaussian
    binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), multiplied out exactly."""
    poly = [1] + [0] * (m * n + m)
    for i in range(1, m + 1):
        for j in range(len(poly) - 1, n + i - 1, -1):  # times (1 - q^(n+i))
            poly[j] -= poly[j - n - i]
        for j in range(i, len(poly)):  # divided by (1 - q^i): exact, the quotient is a polynomial
            poly[j] += poly[j - i]
    return poly[:m * n + 1]


def _welch_df(baseline: list[float], candidate: list[float]) -> float:
    """Welch-Satterthwaite degrees of freedom, written so tiny variances cannot underflow."""
    var_b, var_c = _variance_of_mean(baseline), _variance_of_mean(candidate)
    if var_b + var_c == 0:
        return len(baseline) + len(candidate) - 2
    share = var_b / (var_b + var_c)
    return 1 / (share**2 / (len(baseline) - 1) + (1 - share) ** 2 / (len(candidate) - 1))


def _on_scale(threshold: Threshold) -> float:
    """The threshold on the scale the CI is built on: log(1 + t) for a relative one."""
    return math.log1p(threshold.value) if threshold.relative else threshold.value


def format_amount(threshold: Threshold, amount: float) -> str:
    """An amount of change in the threshold's terms: ``12.3%`` (relative) or ``0.0123 J/token``."""
    return f"{amount:.1%}" if threshold.relative else _format_threshold(threshold, float(f"{amount:.3g}"))


def resolve_text(threshold: Threshold, needed: int | None, repeats: int, per: str) -> str:
    """What would resolve ``threshold``: "~14 repeats per side would resolve the 5% threshold", or why none would."""
    name = f"the {threshold} threshold"
    if needed is None:
        return f"no number of repeats would resolve {name}"
    if needed <= repeats:
        return f"{repeats} repeats resolve {name}"
    return f"~{needed} repeats {per}would resolve {name}"


def _variance_of_mean(values: list[float]) -> float:
    # Plain float arithmetic: statistics.variance is exact (fractions) and ~10x slower, which the
    # thousands of comparisons in a power simulation notice.
    mean = statistics.fmean(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)


def check_values(side: str, values: list[float]) -> None:
    """ValueError naming ``side`` when its values are empty or not all finite."""
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
