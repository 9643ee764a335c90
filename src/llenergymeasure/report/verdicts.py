"""Baseline against candidate, per experiment and gated metric, for the report.

Two sources: the regression records a pytest session wrote (``--llem-json`` items'
``"regression"``), and baseline files given beside results, compared here the way ``llem
compare`` does (``check_regression`` across machines, one file as the two-session verdict,
several as a history, oldest first, the default ``joules_per_token:5%`` gate).
"""

from __future__ import annotations

import math
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


@dataclass
class ExperimentVerdict:
    experiment: str  # the report's label of the candidate
    verdict: str
    against: str
    metrics: list[MetricVerdict] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def session_verdicts(measured: list[Measured]) -> list[ExperimentVerdict]:
    """The verdicts a pytest session recorded for its items."""
    verdicts = []
    for item in measured:
        regression = (item.record or {}).get("regression")
        if not isinstance(regression, dict):
            continue
        rows = []
        for change in regression.get("changes") or []:
            metric = str(change.get("metric", "?"))
            candidate = _median(item, metric)
            amount, relative = _finite(change.get("change")), bool(change.get("relative"))
            rows.append(MetricVerdict(metric, _before(candidate, amount, relative), candidate, amount, relative,
                                      _finite(change.get("ci_low")), _finite(change.get("ci_high")),
                                      str(change.get("verdict", "-"))))
        verdicts.append(ExperimentVerdict(item.label, str(regression.get("verdict", "-")),
                                          str(regression.get("against", "the session's baseline")), rows,
                                          [str(line) for line in regression.get("lines") or []]))
    return verdicts


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
        rows = [MetricVerdict(c.metric, c.baseline, c.candidate, _finite(c.change), c.threshold.relative,
                              _finite(c.ci_low), _finite(c.ci_high), c.verdict) for c in check.comparisons]
        for metric in check.lost:
            values = found[-1].values(metric) if found else []
            rows.append(MetricVerdict(metric, statistics.median(values) if values else None, None, None, True,
                                      None, None, "not measured"))
        verdicts.append(ExperimentVerdict(item.label, check.verdict, against, rows, check.lines()))
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
