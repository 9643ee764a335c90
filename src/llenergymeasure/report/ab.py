"""Interleaved A/B sessions among the report's results (``llem ab`` writes one result per side):
the two results paired again, and judged the way ``llem ab`` judged them (``core.ab.judge_ab``:
per A/B pair, the session's offset cancelling), so the report shows one comparison with its paired
verdict, not two unrelated experiments.

Two results belong to one session when their ``ab`` records agree on the window order, the settling
windows and the seed, one side A and the other B. The gates are those the results record
(``ab["gates"]``), else ``llem ab``'s default, ``joules_per_token:5%``, which the report then says:
a ``--fail-on`` given to ``llem ab`` is not in results that do not record their gates.
A B side whose A is not among the inputs (a pytest ``--llem-against`` item: its session record holds
the paired verdict) is left to the verdicts the session recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llenergymeasure.report.inputs import Measured
from llenergymeasure.report.verdicts import ExperimentVerdict, from_check


@dataclass
class AbSession:
    a: Measured
    b: Measured
    order: list[str]  # the measured windows, "A"/"B", in the order they ran
    settled: list[str]
    seed: int
    verdict: ExperimentVerdict
    gates: str  # the gates, as the report words them ("joules_per_token:5% (llem ab's default ...)")

    @property
    def label(self) -> str:
        return f"{self.b.label} (B) vs {self.a.label} (A)"

    def windows(self, metric: str = "joules_per_token") -> list[tuple[str, float | None]]:
        """Every measured window's ``metric`` in session order, labelled A1, B1, B2, A2, ..."""
        assert self.a.result is not None and self.b.result is not None
        values = {side: [getattr(r.metrics, metric, None) for r in result.repeats]
                  for side, result in (("A", self.a.result), ("B", self.b.result))}
        seen = {"A": 0, "B": 0}
        shown = []
        for side in self.order:
            seen[side] += 1
            column = values[side]
            value = column[seen[side] - 1] if seen[side] <= len(column) else None
            shown.append((f"{side}{seen[side]}", _finite(value)))
        return shown

    def pair_changes(self, metric: str = "joules_per_token") -> list[float | None]:
        """Per A/B pair (block k: A's k-th window and B's k-th), B against A as a relative change:
        the points the paired verdict rests on (None where a window measured nothing)."""
        assert self.a.result is not None and self.b.result is not None
        a = [_finite(getattr(r.metrics, metric, None)) for r in self.a.result.repeats]
        b = [_finite(getattr(r.metrics, metric, None)) for r in self.b.result.repeats]
        return [y / x - 1 if x is not None and y is not None and x > 0 else None for x, y in zip(a, b)]


def ab_sessions(measured: list[Measured]) -> tuple[list[AbSession], list[Measured]]:
    """The A/B sessions whose two results are both among ``measured`` (in input order), and the A/B
    results whose other side is not."""
    groups: dict[tuple[Any, ...], dict[str, Measured]] = {}
    for item in measured:
        ab = _ab(item)
        if ab is None:
            continue
        key = (tuple(ab.get("order") or ()), tuple(ab.get("settling") or ()), ab.get("seed"))
        groups.setdefault(key, {}).setdefault(ab["side"], item)
    sessions, alone = [], []
    for key, sides in groups.items():
        if set(sides) != {"A", "B"}:
            alone.extend(item for item in sides.values() if item.record is None)
            continue
        session = _judge(sides["A"], sides["B"], list(key[0]), list(key[1]), key[2])
        if session is None:
            alone.extend(sides.values())
        else:
            sessions.append(session)
    return sessions, alone


def _judge(a: Measured, b: Measured, order: list[str], settled: list[str], seed: Any) -> AbSession | None:
    from llenergymeasure.core.ab import AbRun, judge_ab
    from llenergymeasure.results.compare import Threshold
    from llenergymeasure.results.regression import DEFAULT_THRESHOLDS

    assert a.result is not None and b.result is not None
    if order.count("A") != len(a.result.repeats) or order.count("B") != len(b.result.repeats):
        return None  # not the windows the order says: the results were edited
    recorded = (b.result.ab or {}).get("gates")
    given = isinstance(recorded, list) and bool(recorded)
    try:
        gates = [Threshold.parse(str(g)) for g in (recorded if given else DEFAULT_THRESHOLDS)]
    except ValueError:
        return None
    words = ", ".join(str(g) for g in recorded) if given else \
        f"{', '.join(DEFAULT_THRESHOLDS)} (llem ab's default: these results do not record the gate it was given)"
    seed_number = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    run = AbRun(a.result, b.result, order, settled, seed_number)
    try:
        check = judge_ab(run, gates)
    except ValueError:  # an order that is not ABBA blocks: not a session llem ab wrote
        return None
    pairs = len(order) // 2
    against = f"{a.label} (A), measured beside it in one session: paired over {pairs} A/B pairs"
    verdict = from_check(b.label, against, check, paired=True)
    return AbSession(a, b, order, settled, seed_number, verdict, words)


def _ab(item: Measured) -> dict[str, Any] | None:
    ab = item.result.ab if item.result is not None else None
    if not isinstance(ab, dict) or ab.get("side") not in ("A", "B") or not isinstance(ab.get("order"), list):
        return None
    return ab


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
