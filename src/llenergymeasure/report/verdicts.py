"""Baseline against candidate, per experiment and gated metric, for the report.

Three sources: the regression records a pytest session wrote (``--llem-json`` items'
``"regression"``), baseline files given beside results, compared here the way ``llem
compare`` does (``check_regression`` across machines, one file as the two-session verdict,
several as a history, oldest first, the default ``joules_per_token:5%`` gate), and the paired
verdict of an interleaved A/B session (report/ab.py, through ``from_check``).

Every metric's verdict keeps its gate's threshold, for the +-threshold band the comparison chart
draws around the baseline. A session record written before records carried it gives it in its
verdict line ("> 10% threshold", "within ±5% threshold"), which is where it is read from then.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.report.inputs import Measured
from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo
from llenergymeasure.results.regression import check_regression, thresholds


@dataclass
class MetricVerdict:
    metric: str
    baseline: float | None  # medians
    candidate: float | None
    change: float | None  # relative (0.05 = +5%) when ``relative``, else in the metric's unit
    relative: bool
    ci_low: float | None
    ci_high: float | None
    verdict: str
    threshold: float | None = None  # the gate: a fraction when ``relative`` (0.05 = 5%), else in the unit


@dataclass
class ExperimentVerdict:
    experiment: str  # the report's label of the candidate
    verdict: str
    against: str
    metrics: list[MetricVerdict] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    paired: bool = False  # an interleaved A/B session's paired verdict


def session_verdicts(measured: list[Measured]) -> list[ExperimentVerdict]:
    """The verdicts a pytest session recorded for its items."""
    verdicts = []
    for item in measured:
        regression = (item.record or {}).get("regression")
        if not isinstance(regression, dict):
            continue
        rows = []
        lines = [str(line) for line in regression.get("lines") or []]
        for change in regression.get("changes") or []:
            metric = str(change.get("metric", "?"))
            candidate = _median(item, metric)
            amount, relative = _finite(change.get("change")), bool(change.get("relative"))
            threshold = _finite(change.get("threshold"))
            rows.append(MetricVerdict(metric, _before(candidate, amount, relative), candidate, amount, relative,
                                      _finite(change.get("ci_low")), _finite(change.get("ci_high")),
                                      str(change.get("verdict", "-")),
                                      threshold if threshold is not None else threshold_in(lines, metric, relative)))
        against = str(regression.get("against", "the session's baseline"))
        verdicts.append(ExperimentVerdict(item.label, str(regression.get("verdict", "-")), against, rows, lines,
                                          paired=against.endswith("(A/B)")))
    return verdicts


def from_check(label: str, against: str, check: Any, *, paired: bool = False) -> ExperimentVerdict:
    """A ``RegressionCheck`` (a baseline comparison's, or an A/B session's) as the report shows it."""
    rows = [MetricVerdict(c.metric, c.baseline, c.candidate, _finite(c.change), c.threshold.relative,
                          _finite(c.ci_low), _finite(c.ci_high), c.verdict, c.threshold.value)
            for c in check.comparisons]
    return ExperimentVerdict(label, check.verdict, against, rows, check.lines(), paired=paired)


_THRESHOLD = r"\) (?:[<>] -?|within ±)(\d+(?:\.\d+)?(?:e[-+]?\d+)?)(%?)[^:]* threshold"


def threshold_in(lines: list[str], metric: str, relative: bool) -> float | None:
    """A gate's threshold as its verdict line words it: "joules_per_token 0.2 vs 0.1 (+100.0%, ...)
    > 10% threshold: regressed" gives 0.10."""
    for line in lines:
        if not line.startswith(f"{metric} "):
            continue
        found = re.search(_THRESHOLD, line)
        if found and bool(found.group(2)) == relative:
            value = float(found.group(1))
            return value / 100 if relative else value
    return None


def baseline_verdicts(measured: list[Measured], baselines: list[tuple[str, Baseline]]
                      ) -> tuple[list[ExperimentVerdict], list[str]]:
    """Each measured result against the baseline files (a history, oldest first), and the labels
    of the results none of them has. An item its session already judged keeps that verdict only."""
    if not baselines:
        return [], []
    history = [baseline for _, baseline in baselines]
    against = ", ".join(origin for origin, _ in baselines)
    gates = thresholds({}, [])
    verdicts, missing = [], []
    for item in measured:
        if item.result is None or isinstance((item.record or {}).get("regression"), dict):
            continue
        key = str((item.record or {}).get("baseline_key") or item.result.name)
        entry, machine = BaselineEntry.from_result(item.result), MachineInfo.from_result(item.result)
        found = [b.entries[name] for b in history if (name := b.find(key, entry.experiment)) is not None]
        if not found:
            missing.append(item.label)
            continue
        # one file: the two-session verdict, saying what it cannot hold; several: a history
        check = check_regression(history[0] if len(history) == 1 else history, key, entry, machine, gates,
                                 across_machines=True)
        verdict = from_check(item.label, against, check)
        for metric in check.lost:
            values = found[-1].values(metric) if found else []
            verdict.metrics.append(MetricVerdict(metric, statistics.median(values) if values else None, None, None,
                                                 True, None, None, "not measured"))
        verdicts.append(verdict)
    return verdicts, missing


def _median(item: Measured, metric: str) -> float | None:
    if item.result is not None:
        value = getattr(item.result.metrics, metric, None)
    else:
        value = (item.record or {}).get(metric)
    return _finite(value)


def _before(candidate: float | None, change: float | None, relative: bool) -> float | None:
    """The baseline's median, from the candidate's and the change between them."""
    if candidate is None or change is None:
        return None
    if relative:
        return candidate / (1 + change) if change != -1 else None
    return candidate - change


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
