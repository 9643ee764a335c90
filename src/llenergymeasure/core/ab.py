"""Interleaved A/B in one session: a reference config (A) and a candidate (B), measured in ABBA
order after both are warmed up, then judged pair by pair (results/ab.py), so that what the session
shares (this machine today, its clocks and temperature) cancels instead of landing in the verdict.

Which config opens the session is drawn at random (a seed per session, recorded in both results'
``ab`` and the verdict's notes), and a settling pair of windows runs first, unmeasured: whatever
the first windows after the warm-ups suffer falls on neither side (benchmarks/compare_ab.py: a
first window 5% high, +10% caught 94.5% of the time at 5 pairs, 87.6% with A always first).

Used by ``llem ab`` and by a benchmark file's ``against:`` / ``pytest --llem-against REF``. The
verdict comes back as a RegressionCheck, the same object a baseline comparison gives, so every
front door words and gates it the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.progress import Progress
from llenergymeasure.core.runner import measure_interleaved
from llenergymeasure.results.ab import ab_sensitivity, compare_ab, session_schedule
from llenergymeasure.results.baselines import BaselineEntry
from llenergymeasure.results.compare import HIGHER_IS_BETTER, Threshold
from llenergymeasure.results.model import ExperimentResult
from llenergymeasure.results.regression import RegressionCheck

DEFAULT_PAIRS = 5


@dataclass
class AbRun:
    """Both sides' results (one repeat per window), the order their windows ran in, the settling
    windows run before them, and the seed that chose which config came first."""

    reference: ExperimentResult
    candidate: ExperimentResult
    order: list[str]
    settled: list[str]
    seed: int

    def describe(self) -> str:
        return (f"windows {' '.join(self.order)} after an unmeasured settling pair {' '.join(self.settled)} "
                f"(order seed {self.seed})")


def run_ab(reference: ExperimentConfig, candidate: ExperimentConfig, pairs: int = DEFAULT_PAIRS, *,
           progress: bool | Progress = False, seed: int | None = None) -> AbRun:
    """Measure ``pairs`` windows of each config as ``session_schedule`` orders them (the first block
    drawn from ``seed``, a fresh one when None; a settling pair first)."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    settled, order = session_schedule(pairs, seed)

    def indices(sides: list[str]) -> list[int]:
        return [0 if side == "A" else 1 for side in sides]

    a, b = measure_interleaved([reference, candidate], indices(order), settle=indices(settled), progress=progress)
    for side, result in (("A", a), ("B", b)):
        result.ab = {"side": side, "order": order, "settling": settled, "seed": seed}
    return AbRun(a, b, order, settled, seed)


def judge_ab(run: AbRun, gates: list[Threshold], *, confidence: float = 0.95) -> RegressionCheck:
    """The paired verdict on each gated metric (its CI at ``confidence``); suspect energy on either
    side, or a gated metric measured on one side only, fails the check as a baseline comparison
    would. A pair with a window that measured nothing (too short for the sensor) is left out, with a note."""
    before, after = BaselineEntry.from_result(run.reference), BaselineEntry.from_result(run.candidate)
    if before.energy_suspect or after.energy_suspect:
        return RegressionCheck(suspect=True)
    check = RegressionCheck()
    changes = after.config_changes(before)
    if changes:
        check.notes.append(f"B differs from A in: {', '.join(changes)}")
    check.notes.append(run.describe())
    for gate in gates:
        windows = _per_window(run.reference, gate.metric), _per_window(run.candidate, gate.metric)
        a, b, order = complete_pairs(*windows, run.order)
        dropped = len(run.order) // 2 - len(a)
        if not a:
            if any(v is not None for side in windows for v in side):
                check.lost.append(gate.metric)
            else:
                check.notes.append(f"{gate.metric}: measured on neither side, so not compared")
            continue
        if dropped:
            check.notes.append(f"{gate.metric}: {dropped} A/B pair(s) with a window that measured nothing left out")
        comparison = compare_ab(a, b, gate, order=order, higher_is_better=gate.metric in HIGHER_IS_BETTER,
                                confidence=confidence)
        check.comparisons.append(comparison)
        if comparison.verdict == "inconclusive":
            check.pending_hints.append(_hinted(gate, a, b))
    return check


def _hinted(gate: Threshold, a: list[float], b: list[float]) -> Callable[[], str]:
    return lambda: f"{gate.metric}: {ab_sensitivity(a, b, gate).text}"


def complete_pairs(a: list[float | None], b: list[float | None], order: list[str]
                    ) -> tuple[list[float], list[float], list[str]]:
    """The pairs (ABBA blocks) in which both windows measured the metric: block k of ``order``
    holds A's k-th and B's k-th window, so dropping a block keeps the design balanced."""
    blocks = [order[i:i + 2] for i in range(0, len(order), 2)]
    keep = [k for k in range(len(blocks)) if a[k] is not None and b[k] is not None]
    return [a[k] for k in keep], [b[k] for k in keep], [side for k in keep for side in blocks[k]]


def _per_window(result: ExperimentResult, metric: str) -> list[float | None]:
    return [getattr(repeat.metrics, metric) for repeat in result.repeats]
