"""``expect:`` gates: absolute bounds on metrics, checked after each experiment, or with ``at: slo``
once per load ramp, at its SLO point (``check_at_slo``).

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
        if bound.at is not None:
            continue  # checked once per ramp: check_at_slo
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


@dataclass(frozen=True)
class SloPoint:
    """A load ramp's SLO point: its id and result (None when no point met the SLO), and ``where``:
    the words a verdict there starts with (which point, and what the next one missed), or, without
    one, what each point missed."""

    point_id: str | None
    result: ExperimentResult | None
    where: str


def find_slo_point(points: list[tuple[str, ExperimentResult | None]], skipped: list[str] | None = None) -> SloPoint:
    """The SLO point of a ramp (serving/slo.py) among ``points`` ((id, result or None for a point
    that failed to run), in ramp order); ``skipped``: the ids of points not run (the ramp stopped
    at saturation)."""
    from llenergymeasure.serving.slo import slo_point

    measured = [(point_id, result) for point_id, result in points if result is not None and result.load_point]
    best = slo_point([result.load_point for _, result in measured])  # type: ignore[misc]
    missing = [point_id for point_id, result in points if result is None]
    if best is None:
        tried = "; ".join(f"{point_id} missed {', '.join(result.load_point.get('slo_missed') or ['it'])}"  # type: ignore[union-attr]
                          for point_id, result in measured) or "no load point was measured"
        if missing:
            tried += f"; {', '.join(missing)} failed to run"
        return SloPoint(None, None, f"no load point meets the SLO ({tried})")
    at = next(index for index, (_, result) in enumerate(measured) if result.load_point is best)
    point_id, result = measured[at]
    where = f"at the SLO point {point_id} ({fmt(best.get('achieved_rate'), 3)} requests/s served"
    beyond = next(((other_id, other) for other_id, other in measured[at + 1:]), None)
    if beyond is not None:
        where += f"; {beyond[0]} missed {', '.join(beyond[1].load_point.get('slo_missed') or ['it'])}"  # type: ignore[union-attr]
    elif skipped:
        where += f"; {', '.join(skipped)} not run: the ramp stopped at saturation"
    return SloPoint(point_id, result, where + ")")


def at_slo_bounds(expect: dict[str, Bound]) -> dict[str, Bound]:
    """The ``at: slo`` gates of ``expect``, as plain bounds to check at the SLO point."""
    return {metric: Bound(bound.min, bound.max) for metric, bound in expect.items() if bound.at == "slo"}


def check_at_slo(points: list[tuple[str, ExperimentResult | None]], expect: dict[str, Bound],
                 skipped: list[str] | None = None) -> list[GateVerdict]:
    """The ``at: slo`` gates of one load ramp: each metric at its SLO point, the verdict's text
    naming the point and what the next one missed (``find_slo_point``). Without an SLO point
    every gate fails, saying what each point missed."""
    gates = at_slo_bounds(expect)
    if not gates:
        return []
    found = find_slo_point(points, skipped)
    if found.result is None:
        return [GateVerdict(metric, None, bound, False, f"{metric} at the SLO point: {found.where}")
                for metric, bound in gates.items()]
    return [GateVerdict(v.metric, v.value, v.bound, v.passed, f"{found.where}: {v.text}")
            for v in check_expect(found.result, gates)]


def _text(metric: str, value: float, op: str, side: str, limit: float) -> str:
    change = f" ({(value - limit) / limit:+.1%})" if limit else ""
    return f"{metric} {fmt(value)} {op} {side} {fmt(limit)}{change}"


def suspect_text(result: ExperimentResult) -> str:
    """``not trusted: energy suspect (why)`` for a result whose energy the sanity checks doubted."""
    reasons = suspect_reasons(result.measurement_warnings)
    return "not trusted: energy suspect" + (f" ({reasons[0]})" if reasons else "")
