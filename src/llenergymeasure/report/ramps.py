"""Load ramps among a report's results: the load points of one ``openai.load`` ramp, in ramp order,
for its Pareto chart (J/token and goodput against the throughput served) and its table.

Each load point of a ramp is one result carrying a ``load_point`` (serving/point.py), named after
the ramp with its rate in the parameters: ``myramp[rate=1]``, ``myramp[rate=inf]``, and in a study
swept over other keys too ``study[batch_size=8,rate=4]`` (config/benchmark_file.py). ``ramp_name``
takes the ``rate=...`` part out of a name; results with the same ramp name, read from the same
folder (or session file), are one ramp. Its points run from the lightest offered rate to the
heaviest, a closed loop (``rate=inf``) last, as the ramp ran them.

The SLO point of a ramp is the one ``serving.slo.slo_point`` picks (the highest achieved rate
among the points that meet the SLO), the point a gate ``at: slo`` reads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from llenergymeasure.report.inputs import Measured
from llenergymeasure.results.metrics import Metrics

RAMP_KEY = "openai.load.rates"  # the flattened config key a ramp's points differ in
_PARAMS = re.compile(r"\[([^\[\]]*)\]$")


def ramp_name(name: str) -> str | None:
    """``name`` without its ``rate=...`` parameter: ``myramp`` from ``myramp[rate=4]``,
    ``study[batch_size=8]`` from ``study[batch_size=8,rate=inf]``; None when it has none."""
    found = _PARAMS.search(name)
    if not found:
        return None
    parts = found.group(1).split(",")
    kept = [part for part in parts if not part.startswith("rate=")]
    if len(kept) == len(parts):
        return None
    return name[:found.start()] + (f"[{','.join(kept)}]" if kept else "")


def rate_of(name: str) -> str | None:
    """The ``rate=...`` value of a load point's name (``4``, ``inf``), else None."""
    found = _PARAMS.search(name)
    for part in found.group(1).split(",") if found else []:
        if part.startswith("rate="):
            return part[len("rate="):]
    return None


@dataclass
class RampPoint:
    item: Measured
    point: dict[str, Any]  # the result's load_point

    @property
    def metrics(self) -> Metrics:
        assert self.item.result is not None
        return self.item.result.metrics

    @property
    def rate(self) -> str:
        """The point's rate as its id shows it (``4``, ``inf``)."""
        return rate_of(self.item.name) or ("inf" if self.offered is None else f"{self.offered:g}")

    @property
    def offered(self) -> float | None:
        """Requests/s offered; None for a closed loop."""
        return _number(self.point.get("offered_rate"))

    @property
    def achieved(self) -> float | None:
        return _number(self.point.get("achieved_rate"))

    @property
    def in_flight(self) -> float | None:
        return _number(self.point.get("concurrency_mean"))

    @property
    def saturated(self) -> bool:
        return bool(self.point.get("saturated"))

    @property
    def slo_met(self) -> bool | None:
        """Whether the point meets the config's ``slo:``; None without one."""
        return bool(self.point["slo_met"]) if "slo_met" in self.point else None

    def order(self) -> float:
        """Where the point comes in its ramp: its offered rate, a closed loop after every rate."""
        return math.inf if self.offered is None else self.offered


@dataclass
class Ramp:
    name: str  # the points' name without its rate=... part
    points: list[RampPoint]  # in ramp order

    @property
    def has_slo(self) -> bool:
        return any(p.slo_met is not None for p in self.points)

    @property
    def slo_point(self) -> RampPoint | None:
        """The ramp's SLO point (the module text); None when no point meets the SLO (or there is none)."""
        from llenergymeasure.serving.slo import slo_point

        chosen = slo_point([p.point for p in self.points])
        return next((p for p in self.points if p.point is chosen), None)


def find_ramps(measured: list[Measured]) -> list[Ramp]:
    """The ramps among ``measured``: results with a ``load_point`` grouped by ``ramp_name`` and the
    folder (or session file) they were read from, in the order they first appear; a load point
    whose name has no ``rate=`` part is a ramp of its own."""
    groups: dict[tuple[str, str], list[RampPoint]] = {}
    for item in measured:
        point = item.result.load_point if item.result is not None else None
        if not isinstance(point, dict):
            continue
        name = ramp_name(item.name) or item.name
        groups.setdefault((name, _source(item)), []).append(RampPoint(item, point))
    return [Ramp(name, sorted(points, key=RampPoint.order)) for (name, _), points in groups.items()]


def _source(item: Measured) -> str:
    """Where a point was read from: a session file (its items all in it), or a result file's folder."""
    return item.origin if item.record is not None else str(PurePath(item.origin).parent)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None
