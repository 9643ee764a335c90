"""Sweeps among a report's experiments: results that differ in one config key, for a chart of
J/token against that key's value.

For each config key that varies, the experiments are grouped by every other varying key; a group
with two or more values of the key is one series (a line). A study swept over ``precision`` and
``pytorch.batch_size`` thus gives a chart against batch size (a line per precision) and one
against precision (a line per batch size). A load ramp's rate (``openai.load.rates``) is never an
axis here (each ramp has its own chart, report/ramps.py), only what tells lines apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llenergymeasure.report.inputs import Measured
from llenergymeasure.report.ramps import RAMP_KEY
from llenergymeasure.results.baselines import NOT_COMPARED_KEYS

MAX_SWEEPS = 6  # charts; more varying keys than this is not a sweep a chart can show


@dataclass
class Series:
    label: str  # the other keys' values, "" when nothing else varies
    points: list[tuple[Any, Measured]]  # (value of the key, experiment), in axis order


@dataclass
class Sweep:
    key: str
    numeric: bool
    series: list[Series]


def find_sweeps(measured: list[Measured]) -> list[Sweep]:
    items = [m for m in measured if m.joules_per_token is not None and m.config]
    configs = [m.config for m in items]
    varying = [key for key in dict.fromkeys(k for c in configs for k in c)
               if key not in NOT_COMPARED_KEYS and len({_key(c.get(key)) for c in configs}) > 1]
    sweeps = []
    for key in varying:
        if key == RAMP_KEY:
            continue
        others = [k for k in varying if k != key]
        groups: dict[tuple[str, ...], list[Measured]] = {}
        for item in items:
            groups.setdefault(tuple(_key(item.config.get(k)) for k in others), []).append(item)
        values = [item.config.get(key) for item in items]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        order = {k: i for i, k in enumerate(dict.fromkeys(_key(v) for v in values))}
        series = []
        for members in groups.values():
            if len({_key(m.config.get(key)) for m in members}) < 2:
                continue
            first = members[0].config
            label = ", ".join(f"{k.rsplit('.', 1)[-1]}={first.get(k)}" for k in others)
            points = [(m.config.get(key), m) for m in members]
            points.sort(key=lambda p: p[0] if numeric else order[_key(p[0])])
            series.append(Series(label, points))
        if series:
            sweeps.append(Sweep(key, numeric, series))
    return sweeps[:MAX_SWEEPS]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
