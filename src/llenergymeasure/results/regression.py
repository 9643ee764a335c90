"""The regression gate: one experiment's repeats against its baseline, metric by metric.

Used by the pytest plugin per item and by ``llem compare`` per experiment. The outcome is
``regressed`` (fail), ``improved`` or ``unchanged`` (pass), ``inconclusive`` (pass, reported),
or ``unverified``: there was nothing comparable (no entry for the experiment, another
machine, another energy source, a baseline whose energy was suspect), or ``suspect``: this
run's energy failed the meter's sanity checks, which fails the gate. Unverified passes with a warning unless the caller requires
a baseline; it is never a usage error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo
from llenergymeasure.results.compare import HIGHER_IS_BETTER, Comparison, Threshold
from llenergymeasure.results.history import compare_history, history_sensitivity
from llenergymeasure.results.model import ExperimentResult

DEFAULT_THRESHOLDS = ("joules_per_token:5%",)


@dataclass
class RegressionCheck:
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # config or software changed since the baseline
    unverified: str | None = None  # why nothing was compared
    lost: list[str] = field(default_factory=list)  # gated metrics the baseline measured and this run did not
    suspect: bool = False  # this run's energy failed the sanity checks: nothing it measured is compared
    hints: list[str] = field(default_factory=list)  # what would resolve an inconclusive comparison

    @property
    def regressed(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "regressed"]

    @property
    def failed(self) -> bool:
        """A regression, or a gated metric that stopped being measured: a gate never passes on nothing."""
        return bool(self.regressed or self.lost or self.suspect)

    @property
    def verdict(self) -> str:
        if self.unverified:
            return "unverified"
        if self.suspect:
            return "suspect"
        if self.lost and not self.regressed:
            return "not measured"
        verdicts = {c.verdict for c in self.comparisons}
        for verdict in ("regressed", "improved", "inconclusive", "unchanged"):
            if verdict in verdicts:
                return verdict
        return "unverified"

    def lines(self) -> list[str]:
        if self.unverified:
            return [f"not compared with the baseline: {self.unverified}", *self.notes]
        if self.suspect:
            return ["not compared with the baseline: this run's energy is suspect (see its measurement warnings)",
                    *self.notes]
        lost = [f"{metric} was measured in the baseline but not in this run" for metric in self.lost]
        return [c.text for c in self.comparisons] + lost + self.notes


def thresholds(file_regression: dict[str, str | float], fail_on: list[str]) -> list[Threshold]:
    """The gates of one experiment: its file's ``regression:`` section (``joules_per_token:5%``
    when the file has none), plus ``--fail-on`` / ``--llem-fail-on``, which win per metric.
    Raises ValueError on a malformed threshold."""
    base = file_regression or dict(text.split(":", 1) for text in DEFAULT_THRESHOLDS)
    chosen = {metric: Threshold.parse(f"{metric}:{value}") for metric, value in base.items()}
    for text in fail_on:
        threshold = Threshold.parse(text)
        chosen[threshold.metric] = threshold
    return list(chosen.values())


def check_regression(baseline: Baseline | list[Baseline], key: str, candidate: BaselineEntry, machine: MachineInfo,
                     gates: list[Threshold], *, across_machines: bool = False) -> RegressionCheck:
    """Compare ``candidate`` (measured on ``machine``) with the entry ``key`` of ``baseline``: one
    baseline file, or a machine's history of them, oldest first.

    The reference is every session of the history that measured the same config (a config
    change starts a new history); failing that, the latest entry, with a note on what changed.
    Results from another machine or energy source are not compared (``unverified``), unless
    ``across_machines``: then they are, with a note saying so (``llem compare`` of two files the
    user chose). Entries with suspect energy are never a reference.
    """
    history = baseline if isinstance(baseline, list) else [baseline]
    found = [(b, b.entries[name]) for b in history if (name := b.find(key, candidate.experiment)) is not None]
    if not found:
        return RegressionCheck(unverified=f"the baseline has no entry for {key}; save a new one with "
                                          "--llem-save-baseline")
    if candidate.energy_suspect:
        return RegressionCheck(suspect=True)
    latest_machine = found[-1][0].machine
    found = [(b, e) for b, e in found if across_machines or not machine.mismatch(b.machine)]
    if not found:
        return RegressionCheck(unverified=machine.mismatch(latest_machine))
    found = [(b, e) for b, e in found if not e.energy_suspect]
    if not found:
        return RegressionCheck(unverified=f"the baseline's entry for {key} has suspect energy; save a new baseline")
    same = _distinct([(b, e) for b, e in found if not candidate.config_changes(e)])
    reference = same or found[-1:]
    latest, before = reference[-1]
    check = RegressionCheck()
    mismatch = machine.mismatch(latest.machine)
    if mismatch:
        check.notes.append(f"different machines: {mismatch}")
    changes = candidate.config_changes(before)
    if changes:
        check.notes.append(f"config changed since the baseline: {', '.join(changes)}")
    workload = candidate.workload_change(before)
    if workload:
        check.notes.append(workload)
    software = machine.software_changes(latest.machine)
    if software:
        check.notes.append(f"software changed since the baseline: {', '.join(software)}")
    check.comparisons, check.lost, unmeasured, check.hints = _compare_entries([e for _, e in reference], candidate, gates)
    check.notes.extend(f"{metric}: not measured in the baseline, so not compared" for metric in unmeasured)
    return check


def _distinct(sessions: list[tuple[Baseline, BaselineEntry]]) -> list[tuple[Baseline, BaselineEntry]]:
    """Each measured session once: a saved baseline carries over the entries a session did not
    measure (a ``-k`` run, a failed item), and counting such a copy as another session would make
    sessions look alike and the verdict overconfident."""
    kept: list[tuple[Baseline, BaselineEntry]] = []
    for baseline, entry in sessions:
        if not any(entry.repeats == other.repeats for _, other in kept):
            kept.append((baseline, entry))
    return kept


def _compare_entries(history: list[BaselineEntry], after: BaselineEntry, gates: list[Threshold]
                     ) -> tuple[list[Comparison], list[str], list[str], list[str]]:
    """(a comparison per gate, metrics only the baseline measured, metrics the baseline did not
    measure, hints for the inconclusive ones), against the sessions of ``history`` (oldest first)
    that measured each metric."""
    comparisons, lost, unmeasured, hints = [], [], [], []
    for gate in gates:
        sessions = [values for entry in history if (values := entry.values(gate.metric))]
        new = after.values(gate.metric)
        if sessions and new:
            comparison = compare_history(sessions, new, gate, higher_is_better=gate.metric in HIGHER_IS_BETTER)
            comparisons.append(comparison)
            if comparison.verdict == "inconclusive":
                hints.append(f"{gate.metric}: {_hint(sessions, new, gate)}")
        elif sessions:
            lost.append(gate.metric)
        else:
            unmeasured.append(gate.metric)
    return comparisons, lost, unmeasured, hints


def _hint(sessions: list[list[float]], new: list[float], gate: Threshold) -> str:
    """What the data can resolve and what would resolve the threshold, in words."""
    if min(len(values) for values in [*sessions, new]) < 2:
        return "measure 3 or more repeats on both sides (--llem-repeats 5) for a verdict"
    try:
        return history_sensitivity(sessions, new, gate).text
    except ValueError:
        return "the data cannot resolve this threshold"


def compare(baseline: BaselineEntry | ExperimentResult | list[BaselineEntry | ExperimentResult],
            candidate: BaselineEntry | ExperimentResult, fail_on: list[str] | None = None) -> list[Comparison]:
    """The public API: the verdict on each gated metric (``["joules_per_token:5%"]`` by default)
    of a measurement against an earlier one of the same experiment, from their per-repeat values.
    ``baseline`` may be a history (a list, oldest first): the verdict then allows for how much
    whole sessions differ (docs/compare.md, "Against a history of sessions")."""
    history = baseline if isinstance(baseline, list) else [baseline]
    before = [_entry(x) for x in history]
    if not before:
        raise ValueError("compare() needs at least one baseline")
    return _compare_entries(before, _entry(candidate), thresholds({}, fail_on or []))[0]


def _entry(measurement: BaselineEntry | ExperimentResult) -> BaselineEntry:
    return BaselineEntry.from_result(measurement) if isinstance(measurement, ExperimentResult) else measurement
