"""A result's power timeline as plain series to draw: one trace per device, the phases as spans.

Results carry the session's timeline (``ExperimentResult.timeline``: devices and phases, seconds
since the timeline started). Older results, and results whose session timeline is empty, only
have each repeat's sampler samples (``repeats[i].timeline``, ``t`` in perf_counter seconds): those
are put on one axis from the first sample, each repeat a "window" span, with a gap between repeats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.results.model import ExperimentResult


@dataclass
class Trace:
    device: str
    t: list[float] = field(default_factory=list)  # NaN between repeats: a gap in the line, not a ramp
    power_w: list[float] = field(default_factory=list)
    estimated: bool = False


@dataclass
class Span:
    name: str
    start: float
    end: float
    repeat: int | None = None


@dataclass
class Timeline:
    traces: list[Trace]
    phases: list[Span]
    per_repeat: bool  # drawn from the repeats' samples (no session timeline in the result)


def timeline_of(result: ExperimentResult) -> Timeline | None:
    """The result's timeline, or None when it holds no power samples at all."""
    session: dict[str, Any] = dict(getattr(result, "timeline", None) or {})
    traces = [_trace(device, samples, result) for device, samples in (session.get("devices") or {}).items()]
    traces = [trace for trace in traces if trace.t]
    if traces:
        phases = [Span(str(p.get("name")), float(p["start"]), float(p["end"]), p.get("repeat"))
                  for p in session.get("phases") or [] if _number(p.get("start")) and _number(p.get("end"))]
        return Timeline(traces, phases, per_repeat=False)
    return _from_repeats(result)


def _from_repeats(result: ExperimentResult) -> Timeline | None:
    times = [s["t"] for r in result.repeats for samples in r.timeline.values() for s in samples if _number(s.get("t"))]
    if not times:
        return None
    origin = min(times)
    traces: dict[str, Trace] = {}
    phases = []
    for repeat in result.repeats:
        window = []
        for device, samples in repeat.timeline.items():
            piece = _trace(device, samples, result, origin)
            if not piece.t:
                continue
            trace = traces.setdefault(device, Trace(device, estimated=piece.estimated))
            if trace.t:
                trace.t.append(math.nan)
                trace.power_w.append(math.nan)
            trace.t.extend(piece.t)
            trace.power_w.extend(piece.power_w)
            trace.estimated = trace.estimated or piece.estimated
            window.extend(piece.t)
        if window:
            phases.append(Span("window", min(window), max(window), repeat.index))
    if not traces:
        return None
    return Timeline(list(traces.values()), phases, per_repeat=True)


def _trace(device: str, samples: Any, result: ExperimentResult, origin: float = 0.0) -> Trace:
    """The samples with a finite time and power, in time order."""
    points = sorted((float(s["t"]) - origin, float(s["power_w"])) for s in samples or []
                    if isinstance(s, dict) and _number(s.get("t")) and _number(s.get("power_w")))
    estimated = any(isinstance(s, dict) and s.get("estimated") for s in samples or []) or (
        device == "cpu" and result.energy_source == "cpu_estimate")
    return Trace(device, [t for t, _ in points], [w for _, w in points], estimated)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
