"""Each experiment's saved sessions over time, as the report draws them: its J/token per session,
the pinned level of each segment, accepted steps and red sessions marked (the view every
change-point tool gives of a benchmark's history).

Two sources: baseline files given to ``llem report`` (``.llem/baselines/<machine>/``: every
experiment they hold, per machine), and the ``regression.history`` a pytest session recorded
for each item it judged against its history (``--llem-json``, ``--llem-html``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llenergymeasure.report.inputs import Measured
from llenergymeasure.results.baselines import Baseline, sessions_in
from llenergymeasure.results.segments import Point, chart_points


@dataclass
class History:
    label: str
    points: list[Point]
    pins: list[float | None]  # per segment, oldest first

    @property
    def steps(self) -> list[Point]:
        """The accepted sessions: where a new level was accepted."""
        return [p for p in self.points if p.kind == "accepted"]

    @property
    def flagged(self) -> list[Point]:
        return [p for p in self.points if p.segment is None]


def histories(baselines: list[tuple[str, Baseline]], measured: list[Measured]) -> list[History]:
    """One history per experiment and machine of the baseline files (when there are two or more
    sessions of it), then one per session item that recorded its own."""
    found: list[History] = []
    keys = dict.fromkeys((b.machine.key, key) for _, b in baselines for key in b.entries)
    machines = {machine for machine, _ in keys}
    for machine, key in keys:
        files = [b for _, b in baselines if b.machine.key == machine]
        sessions = sessions_in(files, key, "")  # by key only: what the files hold under it
        if len(sessions) < 2:
            continue
        points, pins = chart_points(sessions, "joules_per_token")
        found.append(History(key if len(machines) == 1 else f"{key} ({machine})", points, pins))
    for item in measured:
        recorded = ((item.record or {}).get("regression") or {}).get("history")
        if isinstance(recorded, dict) and recorded.get("points"):
            found.append(History(item.label, *_from_record(recorded)))
    return found


def _from_record(recorded: dict[str, Any]) -> tuple[list[Point], list[float | None]]:
    points = []
    for raw in recorded["points"]:
        try:
            saved_at = datetime.fromisoformat(str(raw["saved_at"]))
        except (KeyError, ValueError):
            continue
        value = raw.get("joules_per_token")
        value = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
        segment = raw.get("segment") if isinstance(raw.get("segment"), int) else None
        points.append(Point(saved_at, value, str(raw.get("kind", "passed")), segment))
    pins = [float(p) if isinstance(p, (int, float)) and math.isfinite(p) else None
            for p in recorded.get("pins") or []]
    return points, pins
