"""CI nights of a benchmark suite, simulated through the plugin's own verdict code: what
benchmarks/compare_history.py runs to measure the regression gate across months of nightly runs.

A ``Suite`` is what README's CI job does on main every night: each item is measured (``repeats``
windows), judged against this machine's saved sessions with ``check_regression`` (the function
the plugin calls, with results/segments.py choosing the reference), a regressed item is measured
again and judged at the confirmation level (``RegressionCheck.needs_confirmation``, ``confirm``),
accepted items are marked as ``--llem-accept`` marks them, and the night is saved as a baseline
file would be, every item with the status ``pytest_llem.baselines.status`` gives its record. The
files are kept in memory (``Baseline`` objects, what ``MachineHistory`` reads from disk).

Values: item i's window measures ``level_i x exp(offset) x N(1, cv)``. A measurement's offset is
``c + u``: ``c`` ~ N(0, s sqrt(rho)) drawn once a night and shared by every item and every
re-measurement that night, ``u`` ~ N(0, s sqrt(1 - rho)) fresh for each measurement (each item,
each re-measurement). A night's saved measurement is its first, as the plugin saves it.
``rho`` is the share of a session's offset that the whole session shares:
1 when a night is simply hot or cold for everything in it, 0 when each measurement meets its own
conditions. Total between-session SD: s.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo
from llenergymeasure.results.compare import Threshold
from llenergymeasure.results.regression import CONFIRM_CONFIDENCE, RegressionCheck, check_regression, confirm
from pytest_llem.baselines import status

MACHINE = MachineInfo(gpus=["NVIDIA H100 80GB HBM3"], cpu="simulated", energy_source="nvml_counter")
GATES = [Threshold("joules_per_token", 0.05, True)]
START = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)


@dataclass
class Night:
    """What one night said of each item: ``red`` (the item failed), ``flagged`` (its first
    measurement regressed, before any confirmation), and the final verdict."""

    red: dict[str, bool]
    flagged: dict[str, bool]
    verdict: dict[str, str]


@dataclass
class Suite:
    items: list[str]
    rng: random.Random
    cv: float = 0.03
    s: float = 0.02
    rho: float = 0.5
    k: int = 10
    confirm: int = 1
    repeats: int = 5
    files: list[Baseline] = field(default_factory=list)
    configs: dict[str, dict[str, object]] = field(default_factory=dict)

    def measure(self, item: str, level: float, common: float) -> BaselineEntry:
        offset = math.exp(common + self.rng.gauss(0.0, self.s * math.sqrt(1 - self.rho)))
        values = [level * offset * self.rng.gauss(1.0, self.cv) for _ in range(self.repeats)]
        config = self.configs.get(item, {"model": "m", "n": 8})
        return BaselineEntry.model_construct(experiment=item, config_hash="0" * 16, config=config, estimated=False,
                                             energy_suspect=False, status="passed",
                                             repeats=[{"joules_per_token": v} for v in values])

    def night(self, levels: dict[str, float], accept: frozenset[str] = frozenset()) -> Night:
        """Measure, judge, confirm and save one night; ``levels`` the items' true J/token tonight."""
        common = self.rng.gauss(0.0, self.s * math.sqrt(self.rho))
        entries, night = {}, Night({}, {}, {})
        for item in self.items:
            first = self.measure(item, levels[item], common)
            check = self.judge(item, first)
            accepted = item in accept
            check.accepted = accepted
            night.flagged[item] = bool(check.regressed)
            for _ in range(self.confirm):
                if not check.needs_confirmation:
                    break
                check = confirm(check, self.judge(item, self.measure(item, levels[item], common), CONFIRM_CONFIDENCE))
            night.red[item], night.verdict[item] = check.failed, check.verdict
            record = {"outcome": "failed" if check.failed else "passed", "accepted": accepted,
                      "regression": {"verdict": check.verdict}, "energy_suspect": False}
            entries[item] = first.model_copy(update={"status": status(record)})  # the first, as the plugin saves
        self.files.append(Baseline.model_construct(schema_version=2, kind="llem-baseline", machine=MACHINE,
                                                   commit=None, entries=entries,
                                                   created_at=START + timedelta(days=len(self.files))))
        return night

    def judge(self, item: str, entry: BaselineEntry, confidence: float = 0.95) -> RegressionCheck:
        if not self.files:
            return RegressionCheck(unverified="no baseline saved yet")
        return check_regression(self.files, item, entry, MACHINE, GATES, k=self.k, confidence=confidence)


def wilson(hits: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion."""
    if trials == 0:
        return math.nan, math.nan
    p = hits / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(hits: int, trials: int) -> str:
    """``12.3% (11.0-13.8%)``: the share and its Wilson 95% interval."""
    low, high = wilson(hits, trials)
    return f"{hits / trials:.1%} ({low:.1%}-{high:.1%})"
