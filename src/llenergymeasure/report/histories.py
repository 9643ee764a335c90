"""Each experiment's saved sessions over time, as the report draws them: its J/token per session,
the pinned level of each segment, accepted steps and red sessions marked (the view every
change-point tool gives of a benchmark's history).

Two sources: baseline files given to ``llem report`` (``.llem/baselines/<machine>/``: every
experiment they hold, per machine), and the ``regression.history`` a pytest session recorded
for each item it judged against its history (``--llem-json``, ``--llem-html``).

Each session is drawn once. A schema-1 baseline file held, beside what its session measured, a copy
of the previous file's entry for every experiment the session did not run: such a carried-over
entry is the earlier session again, not a new one, and is left out (``carried_over``), as the
verdict leaves it out (results/segments.py). So is a file read twice (the same time and repeats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llenergymeasure.report.inputs import Measured
from llenergymeasure.results.baselines import Baseline, Session, sessions_in
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
        sessions = distinct(sessions_in(files, key, ""))  # by key only: what the files hold under it
        if len(sessions) < 2:
            continue
        points, pins = chart_points(sessions, "joules_per_token")
        found.append(History(key if len(machines) == 1 else f"{key} ({machine})", points, pins))
    for item in measured:
        recorded = ((item.record or {}).get("regression") or {}).get("history")
        if isinstance(recorded, dict) and recorded.get("points"):
            found.append(History(item.label, *_from_record(recorded)))
    return found


def distinct(sessions: list[Session]) -> list[Session]:
    """``sessions`` without the carried-over copies and the duplicates (see the module docstring),
    each session kept where it was first saved."""
    kept: list[Session] = []
    for session in sorted(sessions, key=lambda s: s.saved_at):
        if not any(_same(session, earlier) for earlier in kept):
            kept.append(session)
    return kept


def carried_over(baselines: list[tuple[str, Baseline]]) -> dict[tuple[int, str], str]:
    """The carried-over entries of ``baselines`` (oldest first): (file index, key) -> the file
    that first held it."""
    copies: dict[tuple[int, str], str] = {}
    for index, (_, baseline) in enumerate(baselines):
        if baseline.schema_version != 1:
            continue
        for key, entry in baseline.entries.items():
            earlier = next((origin for origin, older in baselines[:index]
                            if older.machine.key == baseline.machine.key and key in older.entries
                            and older.entries[key].repeats == entry.repeats), None)
            if earlier is not None:
                copies[(index, key)] = earlier
    return copies


def _same(session: Session, earlier: Session) -> bool:
    if session.entry.repeats != earlier.entry.repeats:
        return False
    return session.legacy or session.saved_at == earlier.saved_at


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
