"""``expect:`` gates: absolute bounds on metrics, checked after each experiment.

A gate on an energy metric fails when the metric was not measured, and when the sanity checks
doubted the energy (``energy_suspect``), whatever its value: a gate that passes on a number
nobody can trust hides exactly the fault it should catch.
"""

from __future__ import annotations

from dataclasses import dataclass

from llenergymeasure.config.benchmark_file import Bound
from llenergymeasure.energy.sanity import suspect_reasons
from llenergymeasure.results.metrics import ENERGY_METRICS
from llenergymeasure.results.model import ExperimentResult
from llenergymeasure.results.tables import fmt


@dataclass(frozen=True)
class GateVerdict:
    metric: str
    value: float | None
    bound: Bound
    passed: bool
    text: str  # e.g. "joules_per_token 0.412 > max 0.400 (+3.0%)"


def check_expect(result: ExperimentResult, expect: dict[str, Bound]) -> list[GateVerdict]:
    """One verdict per gated metric. A metric that was not measured fails its gate: a CI gate
    that passes when nothing was measured would hide exactly the machine it should catch."""
    verdicts = []
    for metric, bound in expect.items():
        value = getattr(result.metrics, metric)
        if value is None:
            reason = result.unmeasured_reason(metric)
            text = f"{metric} not measured" + (f" ({reason})" if reason else "")
            verdicts.append(GateVerdict(metric, None, bound, False, text))
        elif result.energy_suspect and metric in ENERGY_METRICS:
            verdicts.append(GateVerdict(metric, value, bound, False, f"{metric} {fmt(value)} {suspect_text(result)}"))
        elif bound.max is not None and value > bound.max:
            verdicts.append(GateVerdict(metric, value, bound, False, _text(metric, value, ">", "max", bound.max)))
        elif bound.min is not None and value < bound.min:
            verdicts.append(GateVerdict(metric, value, bound, False, _text(metric, value, "<", "min", bound.min)))
        else:
            limits = " ".join(f"{k} {fmt(v)}" for k, v in (("min", bound.min), ("max", bound.max)) if v is not None)
            verdicts.append(GateVerdict(metric, value, bound, True, f"{metric} {fmt(value)} within {limits}"))
    return verdicts


def _text(metric: str, value: float, op: str, side: str, limit: float) -> str:
    change = f" ({(value - limit) / limit:+.1%})" if limit else ""
    return f"{metric} {fmt(value)} {op} {side} {fmt(limit)}{change}"


def suspect_text(result: ExperimentResult) -> str:
    """``not trusted: energy suspect (why)`` for a result whose energy the sanity checks doubted."""
    reasons = suspect_reasons(result.measurement_warnings)
    return "not trusted: energy suspect" + (f" ({reasons[0]})" if reasons else "")
