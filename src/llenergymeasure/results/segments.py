"""Which saved sessions of an experiment a candidate is judged against: the plugin's selection
logic, as pure functions over stored entries (the simulation in benchmarks/compare_history.py runs
this same code).

An experiment's saved sessions are of two kinds. **References** (status passed or accepted, energy
not suspect) are what later runs are judged against. **Red** sessions (regressed, failed) and
suspect ones are kept for the record and the report, and are never a reference: an unfixed
regression is judged against the level from before it, however many nights it stays red and
whatever other experiments did, so it stays red until it is fixed or accepted.

References fall into **segments**. A segment begins at an accepted session (``--llem-accept``: the
new level after an intended change) or where the config changes. A candidate is judged against
the newest segment:

* the **level**: its newest ``k`` sessions (``--llem-history``);
* the **pin**: its first ``PIN_SESSIONS`` sessions (the accepted one first). Once the segment is
  longer than the level, the candidate is also judged against the pin, for the drift since then;
* the **noise**: the newest ``max(k, NOISE_SESSIONS)`` references of any segment, in runs that
  never cross a boundary (results/history.py estimates how sessions differ from their successive
  differences), so the first nights of a new segment borrow the between-session variation of the
  segment before: they are not one-session comparisons.

A candidate whose config differs from the newest segment's (the night a config change lands) is
judged against that segment's level, with a note; it has no pin.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from llenergymeasure.results.baselines import BaselineEntry, Session
from llenergymeasure.results.history import Reference

NOISE_SESSIONS = 30  # references the between-session variation is estimated from, at least
PIN_SESSIONS = 3  # first sessions of a segment whose mean is its pinned level


@dataclass
class Selection:
    """What an experiment's saved sessions give its candidate: ``segment``, the newest segment's
    references, oldest first; ``noise``, runs of references (oldest first, each oldest first);
    ``red``, the red or suspect sessions met on the way (oldest first)."""

    segment: list[Session]
    noise: list[list[Session]]
    red: list[Session]
    k: int
    config_changed: bool

    @property
    def flagged(self) -> list[Session]:
        """The red or suspect sessions saved since the segment began."""
        return [s for s in self.red if s.saved_at > self.segment[0].saved_at]

    @property
    def level(self) -> list[Session]:
        return self.segment[-self.k:]

    @property
    def pin(self) -> list[Session]:
        """The pinned sessions, when the candidate is judged against them (the segment has outgrown
        its level, and the candidate runs the segment's config)."""
        if len(self.segment) <= self.k or self.config_changed:
            return []
        return self.segment[:PIN_SESSIONS]

    @property
    def accepted(self) -> Session | None:
        """The session whose accept began the segment, if one did."""
        return self.segment[0] if self.segment[0].entry.status == "accepted" else None

    @property
    def pin_note(self) -> str:
        """Since when the pin holds: "since accepted on 2026-12-03, 9 sessions"."""
        first = self.segment[0]
        day = first.saved_at.strftime("%Y-%m-%d")
        since = f"since accepted on {day}" if self.accepted else f"since {day}"
        return f"{since}, {len(self.segment) + len(self.flagged)} sessions"

    def seen(self) -> list[Session]:
        """Every session the selection holds (the noise, the segment, its red ones), oldest first."""
        held = {id(s): s for s in [*[s for run in self.noise for s in run], *self.segment, *self.red]}
        return sorted(held.values(), key=lambda s: s.saved_at)

    def reference(self, metric: str) -> Reference | None:
        """The values of ``metric`` as results/history.py takes them; None when no session of the
        level measured it. Sessions that did not measure it are left out."""
        values = {id(s): s.entry.values(metric) for run in self.noise for s in run}
        values.update({id(s): s.entry.values(metric) for s in [*self.level, *self.pin] if id(s) not in values})
        level = [values[id(s)] for s in self.level if values[id(s)]]
        if not level:
            return None
        noise = [[values[id(s)] for s in run if values[id(s)]] for run in self.noise]
        pin = [values[id(s)] for s in self.pin if values[id(s)]]
        return Reference(level=level, noise=[run for run in noise if run], pin=pin, pin_note=self.pin_note)


def begins_segment(older: BaselineEntry, newer: BaselineEntry) -> bool:
    """Whether reference ``newer``, saved after reference ``older``, begins a new segment."""
    return newer.status == "accepted" or bool(newer.config_changes(older))


def select(sessions: Iterable[Session], candidate: BaselineEntry, k: int) -> Selection | None:
    """Choose from ``sessions`` (newest first; consumed only as far as needed) what ``candidate``
    is judged against with a level of ``k`` sessions; None when none is a reference."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    wanted = max(k, NOISE_SESSIONS)
    runs: list[list[Session]] = []  # newest first, each newest first
    red: list[Session] = []
    seen: list[list[dict[str, float | None]]] = []
    taken = 0
    for session in sessions:
        entry = session.entry
        if session.legacy and any(entry.repeats == other for other in seen):
            continue  # a schema-1 file's copy of an entry another file holds
        seen.append(entry.repeats)
        if not entry.is_reference:
            red.append(session)
            continue
        newer = runs[-1][-1] if runs else None
        if newer is None or begins_segment(entry, newer.entry):
            if runs and taken >= wanted:
                break  # the newest segment is whole and the noise full
            runs.append([])
        elif len(runs) > 1 and taken >= wanted:
            break
        runs[-1].append(session)
        taken += 1
    if not runs:
        return None
    segment = runs[0][::-1]
    noise, left = [], wanted
    for run in runs:
        if left <= 0:
            break
        noise.append(run[:left][::-1])
        left -= len(noise[-1])
    return Selection(segment=segment, noise=noise[::-1], red=red[::-1], k=k,
                     config_changed=bool(candidate.config_changes(segment[-1].entry)))


@dataclass(frozen=True)
class Point:
    """One saved session as a history chart draws it: the median of the metric over its repeats
    (None: not measured), what it was (passed, accepted, regressed, failed or suspect), and the
    segment it belongs to (0, 1, ... oldest first; None for red and suspect sessions)."""

    saved_at: datetime
    value: float | None
    kind: str
    segment: int | None


def chart_points(sessions: list[Session], metric: str) -> tuple[list[Point], list[float | None]]:
    """``sessions`` (oldest first) as points, and each segment's pinned level (the geometric mean
    of its first PIN_SESSIONS references' medians; None when they did not measure ``metric``)."""
    points, pins, firsts = [], [], []
    previous: BaselineEntry | None = None
    for session in sorted(sessions, key=lambda s: s.saved_at):
        entry, values = session.entry, session.entry.values(metric)
        value = statistics.median(values) if values else None
        if not entry.is_reference:
            points.append(Point(session.saved_at, value, "suspect" if entry.energy_suspect else entry.status, None))
            continue
        if previous is None or begins_segment(previous, entry):
            firsts.append([])
        if len(firsts[-1]) < PIN_SESSIONS and value is not None and value > 0:
            firsts[-1].append(value)
        points.append(Point(session.saved_at, value, entry.status, len(firsts) - 1))
        previous = entry
    for first in firsts:
        pins.append(math.exp(statistics.fmean(math.log(v) for v in first)) if first else None)
    return points, pins
