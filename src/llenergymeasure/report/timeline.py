"""A result's power timeline as plain series to draw: one trace per device, the phases as spans.

Results carry the session's timeline (``ExperimentResult.timeline``: devices and phases, seconds
since the timeline started). Older results, and results whose session timeline is empty, only
have each repeat's sampler samples (``repeats[i].timeline``, ``t`` in perf_counter seconds): those
are put on one axis from the first sample, each repeat a "window" span, with a gap between repeats.

Every measurement window carries its label, the number the chart writes over it: ``1``..``n`` in
the order they ran, or ``A1``, ``B1``... in an interleaved A/B session (``ab_timeline``: both sides'
results share the session's samples, so it is drawn once, each side's phases on it).
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
    label: str = ""  # a measurement window's number on the chart ("3", "B2"); "" for other phases


@dataclass
class Timeline:
    traces: list[Trace]
    phases: list[Span]
    per_repeat: bool  # drawn from the repeats' samples (no session timeline in the result)

    @property
    def windows(self) -> list[Span]:
        return [span for span in self.phases if span.name == "window"]


def timeline_of(result: ExperimentResult) -> Timeline | None:
    """The result's timeline, or None when it holds no power samples at all."""
    side = _side(result)
    session = _session(result)
    traces = _traces(session, result)
    if traces:
        return Timeline(traces, _number_windows(_phases(session, side), bool(side)), per_repeat=False)
    timeline = _from_repeats(result)
    if timeline is not None:
        timeline.phases = _number_windows(timeline.phases, bool(side), side)
    return timeline


def ab_timeline(a: ExperimentResult, b: ExperimentResult) -> Timeline | None:
    """The one session of an interleaved A/B pair: its samples (each side's result holds the same
    ones) with both sides' phases, the windows labelled A1, B1, ... in the order they ran. None
    when the session timeline holds no samples (older results: each side's own are drawn)."""
    session = _session(a)
    traces = _traces(session, a)
    if not traces:
        return None
    phases = _phases(session, "A") + _phases(_session(b), "B")
    shared = {(p.name, p.start, p.end) for p in phases if p.label == "A"} & \
        {(p.name, p.start, p.end) for p in phases if p.label == "B"}  # recorded for the whole session
    phases = [p for p in phases if not ((p.name, p.start, p.end) in shared and p.label == "B")]
    phases.sort(key=lambda p: (p.start, p.end))
    return Timeline(traces, _number_windows(phases, True), per_repeat=False)


def _session(result: ExperimentResult) -> dict[str, Any]:
    """The result's session timeline (empty in older results)."""
    return dict(getattr(result, "timeline", None) or {})


def _traces(session: dict[str, Any], result: ExperimentResult) -> list[Trace]:
    """The traces of the session's devices that hold samples."""
    traces = [_trace(device, samples, result) for device, samples in (session.get("devices") or {}).items()]
    return [trace for trace in traces if trace.t]


def _phases(session: dict[str, Any], side: str) -> list[Span]:
    """The session's phases; ``side`` ("A", "B" or "") kept in each span's label until numbered."""
    return [Span(str(p.get("name")), float(p["start"]), float(p["end"]), p.get("repeat"), side)
            for p in session.get("phases") or [] if isinstance(p, dict)
            and _number(p.get("start")) and _number(p.get("end"))]


def _number_windows(phases: list[Span], sided: bool, side: str = "") -> list[Span]:
    """Each window labelled with its number in time order, per side in an A/B session ("B2": B's
    second window); other phases unlabelled."""
    counts: dict[str, int] = {}
    for span in sorted(phases, key=lambda p: p.start):
        if span.name != "window":
            span.label = ""
            continue
        key = (span.label or side) if sided else ""
        counts[key] = counts.get(key, 0) + 1
        span.label = f"{key}{counts[key]}"
    return phases


def _side(result: ExperimentResult) -> str:
    """``A`` or ``B`` for a result measured in an interleaved A/B session, else ""."""
    side = (getattr(result, "ab", None) or {}).get("side")
    return side if side in ("A", "B") else ""


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
