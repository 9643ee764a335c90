"""The regression gate: one experiment's repeats against its baseline, metric by metric.

Used by the pytest plugin per item and by ``llem compare`` per experiment. The outcome is
``regressed`` (fail), ``improved`` or ``unchanged`` (pass), ``inconclusive`` (pass, reported),
or ``unverified``: there was nothing comparable (no entry for the experiment, another
machine, another energy source, a baseline whose energy was suspect), or ``suspect``: this
run's energy failed the meter's sanity checks, which fails the gate. Unverified passes with a
warning unless the caller requires a baseline; it is never a usage error.

Against a machine's history (a list of baseline files, or ``MachineHistory``) the reference is
chosen by results/segments.py and judged by results/history.py: the level of the current segment,
its pin, and the between-session variation. Against one file the user named (``llem compare A B``,
``--llem-baseline PATH``) it is the two-session Welch verdict of results/compare.py, whose text
says what that CI does not hold.

A session-level step the plugin takes around this: ``confirm``, after an experiment that regressed
was measured again in the same session (``--llem-confirm``); and accepting a change
(``--llem-accept``), which ``RegressionCheck.accepted`` records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineHistory, MachineInfo, Session, sessions_in
from llenergymeasure.results.compare import HIGHER_IS_BETTER, Comparison, Threshold, compare_values, sensitivity
from llenergymeasure.results.history import Reference, history_sensitivity, judge_history
from llenergymeasure.results.model import ExperimentResult
from llenergymeasure.results.segments import Selection, select
from llenergymeasure.results.tables import change_text

DEFAULT_THRESHOLDS = ("joules_per_token:5%",)
DEFAULT_LEVEL = 10  # sessions of the current segment whose mean is the reference level (--llem-history)
# A confirmation holds the re-measurement to a one-sided 0.75% level: with a session's offset partly
# shared by every measurement in it, that keeps a 20-item suite under 5% false alarms at a 4%
# session offset, whatever share it is (docs/compare.md, "A suite of experiments").
CONFIRM_CONFIDENCE = 0.985
ONE_SESSION_NOTE = ("one baseline session: its CI holds the repeats' noise, not how sessions differ (false alarms "
                    "7-18% at 2-4% session offsets); judge against a history (--llem-baseline auto) or an A/B")


@dataclass
class RegressionCheck:
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # config or software changed since the baseline
    unverified: str | None = None  # why nothing was compared
    lost: list[str] = field(default_factory=list)  # gated metrics the baseline measured and this run did not
    suspect: bool = False  # this run's energy failed the sanity checks: nothing it measured is compared
    # what would resolve each inconclusive comparison, worked out only when read (an MDE is a search)
    pending_hints: list[Callable[[], str]] = field(default_factory=list)
    first: RegressionCheck | None = None  # a re-measurement's check: the regressed one it confirms (or not)
    accepted: bool = False  # --llem-accept: this run's level is the new reference, whatever it is
    selection: Selection | None = None  # the saved sessions judged against (a history)

    @property
    def regressed(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "regressed"]

    @property
    def failed(self) -> bool:
        """A regression (not accepted), or a gated metric that stopped being measured: a gate never
        passes on nothing."""
        return bool((self.regressed and not self.accepted) or self.lost or self.suspect)

    @property
    def hints(self) -> list[str]:
        return [hint() for hint in self.pending_hints]

    @property
    def needs_confirmation(self) -> bool:
        """Whether a regression is all that fails it: then the session measures it again (``confirm``)."""
        return bool(self.regressed) and not (self.accepted or self.lost or self.suspect)

    @property
    def confirmation(self) -> str | None:
        """For a re-measurement: "confirmed" (it regressed too) or "not confirmed (noise)"."""
        if self.first is None:
            return None
        return "confirmed" if self.regressed else "not confirmed (noise)"

    @property
    def verdict(self) -> str:
        if self.unverified:
            return "unverified"
        if self.suspect:
            return "suspect"
        if self.lost and not self.regressed:
            return "not measured"
        if self.accepted:
            return "accepted"
        if self.first is not None and not self.regressed:
            return "not confirmed"
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
        texts = [c.text for c in self.comparisons]
        if self.accepted:
            texts = [f"accepted: new level {change_text(c.change, c.threshold.relative)} ({c.text})"
                     for c in self.comparisons]
        elif self.first is not None:
            again = "confirmed on re-measurement" if self.regressed else "not confirmed (noise): re-measured"
            texts = [c.text for c in self.first.regressed] + [f"{again}: {text}" for text in texts]
        return texts + lost + self.notes


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


def check_regression(baseline: Baseline | list[Baseline] | MachineHistory, key: str, candidate: BaselineEntry,
                     machine: MachineInfo, gates: list[Threshold], *, across_machines: bool = False,
                     k: int = DEFAULT_LEVEL, confidence: float = 0.95) -> RegressionCheck:
    """Compare ``candidate`` (measured on ``machine``) with the entry ``key`` of ``baseline``: one
    baseline file the user named (the two-session verdict, with a note on what it cannot hold),
    or a machine's history of them (a list, oldest first, or a ``MachineHistory``), judged against
    the reference ``results.segments`` chooses with a level of ``k`` sessions.

    Results from another machine or energy source are not compared (``unverified``), unless
    ``across_machines``: then they are, with a note saying so (``llem compare`` of two files the
    user chose). Entries with suspect energy, or red ones, are never a reference. ``confidence``:
    the CI's level (``CONFIRM_CONFIDENCE`` for a confirmation).
    """
    if isinstance(baseline, Baseline):
        return _against_one(baseline, key, candidate, machine, gates, across_machines, confidence)
    stream = _Stream(baseline.sessions(key, candidate.experiment) if isinstance(baseline, MachineHistory)
                     else sessions_in(baseline, key, candidate.experiment), machine, across_machines)
    if candidate.energy_suspect:
        found = next(iter(stream), None) is not None or stream.seen
        return RegressionCheck(suspect=True) if found else RegressionCheck(unverified=_no_entry(key))
    selection = select(stream, candidate, k)
    if selection is None:
        return RegressionCheck(unverified=stream.why_none(key))
    latest = selection.segment[-1]
    check = RegressionCheck(selection=selection)
    _notes(check, candidate, latest.entry, machine, latest.machine)
    if selection.config_changed:
        check.notes.append("judged against the level of the previous config (a new config has no history yet)")
    check.comparisons, check.lost, unmeasured, check.pending_hints = _judge_selection(selection, candidate, gates,
                                                                                       confidence)
    check.notes.extend(f"{metric}: not measured in the baseline, so not compared" for metric in unmeasured)
    return check


class _Stream:
    """The sessions of an experiment, newest first, less those from another machine (unless
    ``across``); counts what it saw, to say why nothing was a reference."""

    def __init__(self, sessions: Iterable[Session], machine: MachineInfo, across: bool) -> None:
        self.sessions, self.machine, self.across = sessions, machine, across
        self.seen = 0
        self.mismatch: str | None = None
        self.red = 0

    def __iter__(self) -> Iterator[Session]:
        for session in self.sessions:
            self.seen += 1
            mismatch = self.machine.mismatch(session.machine)
            if mismatch and not self.across:
                self.mismatch = self.mismatch or mismatch
                continue
            self.red += not session.entry.is_reference
            yield session

    def why_none(self, key: str) -> str:
        if not self.seen:
            return _no_entry(key)
        if self.mismatch and not self.red:
            return self.mismatch
        return (f"no saved session of {key} is a reference: {self.red} red or suspect session(s), none passed; "
                "accept the current level with --llem-accept")


def _no_entry(key: str) -> str:
    return f"the baseline has no entry for {key}; save a new one with --llem-save-baseline"


def _against_one(baseline: Baseline, key: str, candidate: BaselineEntry, machine: MachineInfo,
                 gates: list[Threshold], across_machines: bool, confidence: float) -> RegressionCheck:
    """The two-session verdict against one file the user named."""
    name = baseline.find(key, candidate.experiment)
    if name is None:
        return RegressionCheck(unverified=_no_entry(key))
    if candidate.energy_suspect:
        return RegressionCheck(suspect=True)
    mismatch = machine.mismatch(baseline.machine)
    if mismatch and not across_machines:
        return RegressionCheck(unverified=mismatch)
    before = baseline.entries[name]
    if before.energy_suspect:
        return RegressionCheck(unverified=f"the baseline's entry for {key} has suspect energy; save a new baseline")
    check = RegressionCheck()
    _notes(check, candidate, before, machine, baseline.machine)
    for gate in gates:
        old, new = before.values(gate.metric), candidate.values(gate.metric)
        if old and new:
            comparison = compare_values(old, new, gate, higher_is_better=gate.metric in HIGHER_IS_BETTER)
            check.comparisons.append(comparison)
            if comparison.verdict == "inconclusive":
                check.pending_hints.append(_hinted(gate, [old], new))
        elif old:
            check.lost.append(gate.metric)
        else:
            check.notes.append(f"{gate.metric}: not measured in the baseline, so not compared")
    if check.comparisons:
        check.notes.append(ONE_SESSION_NOTE)
    return check


def _notes(check: RegressionCheck, candidate: BaselineEntry, before: BaselineEntry, machine: MachineInfo,
           measured_on: MachineInfo) -> None:
    """What differs between the candidate and the reference it is judged against."""
    mismatch = machine.mismatch(measured_on)
    if mismatch:
        check.notes.append(f"different machines: {mismatch}")
    changes = candidate.config_changes(before)
    if changes:
        check.notes.append(f"config changed since the baseline: {', '.join(changes)}")
    workload = candidate.workload_change(before)
    if workload:
        check.notes.append(workload)
    software = machine.software_changes(measured_on)
    if software:
        check.notes.append(f"software changed since the baseline: {', '.join(software)}")


def confirm(first: RegressionCheck, again: RegressionCheck) -> RegressionCheck:
    """The session's verdict on an experiment whose check ``first`` regressed, once it was measured
    again in the same session with fresh windows and judged (``again``) at ``CONFIRM_CONFIDENCE``:
    the item fails only when that regressed too ("confirmed"); otherwise it passes, "not confirmed
    (noise)". Either way the first measurement stays the session's: the re-measurement is a check."""
    again.first = first
    return again


def _judge_selection(selection: Selection, after: BaselineEntry, gates: list[Threshold], confidence: float
                     ) -> tuple[list[Comparison], list[str], list[str], list[str]]:
    """(a comparison per gate, metrics only the baseline measured, metrics the baseline did not
    measure, hints for the inconclusive ones)."""
    comparisons: list[Comparison] = []
    lost: list[str] = []
    unmeasured: list[str] = []
    hints: list[Callable[[], str]] = []
    for gate in gates:
        reference, new = selection.reference(gate.metric), after.values(gate.metric)
        if reference is not None and new:
            comparison = judge_history(reference, new, gate, higher_is_better=gate.metric in HIGHER_IS_BETTER,
                                       confidence=confidence)
            comparisons.append(comparison)
            if comparison.verdict == "inconclusive":
                hints.append(_hinted(gate, reference, new))
        elif reference is not None:
            lost.append(gate.metric)
        else:
            unmeasured.append(gate.metric)
    return comparisons, lost, unmeasured, hints


def _hinted(gate: Threshold, reference: Reference | list[list[float]], new: list[float]) -> Callable[[], str]:
    return lambda: f"{gate.metric}: {_hint(reference, new, gate)}"


def _hint(reference: Reference | list[list[float]], new: list[float], gate: Threshold) -> str:
    """What the data can resolve and what would resolve the threshold, in words."""
    one_session = isinstance(reference, Reference) and not any(len(run) > 1 for run in reference.noise)
    sessions = reference.sessions() if isinstance(reference, Reference) else reference
    if not one_session and min(len(values) for values in [*sessions, new]) < 2:
        return "measure 3 or more repeats on both sides (--llem-repeats 5) for a verdict"
    try:
        if isinstance(reference, Reference):
            return history_sensitivity(reference, new, gate).text
        return sensitivity(reference[0], new, gate).text
    except ValueError:
        return "the data cannot resolve this threshold"


def compare(baseline: BaselineEntry | ExperimentResult | list[BaselineEntry | ExperimentResult],
            candidate: BaselineEntry | ExperimentResult, fail_on: list[str] | None = None) -> list[Comparison]:
    """The public API: the verdict on each gated metric (``["joules_per_token:5%"]`` by default)
    of a measurement against an earlier one of the same experiment, from their per-repeat values.
    ``baseline`` may be a history (a list, oldest first, one segment): the verdict then allows for
    how much whole sessions differ (docs/compare.md, "Against a history of sessions")."""
    history = baseline if isinstance(baseline, list) else [baseline]
    before = [_entry(x) for x in history]
    if not before:
        raise ValueError("compare() needs at least one baseline")
    after, gates = _entry(candidate), thresholds({}, fail_on or [])
    if not isinstance(baseline, list):
        one = Baseline.from_entries({"x": before[0]}, MachineInfo(), None)
        return _against_one(one, "x", after, MachineInfo(), gates, True, 0.95).comparisons
    comparisons = []
    for gate in gates:
        sessions, new = [values for entry in before if (values := entry.values(gate.metric))], after.values(gate.metric)
        if sessions and new:
            comparisons.append(judge_history(Reference.of(sessions), new, gate,
                                             higher_is_better=gate.metric in HIGHER_IS_BETTER))
    return comparisons


def _entry(measurement: BaselineEntry | ExperimentResult) -> BaselineEntry:
    return BaselineEntry.from_result(measurement) if isinstance(measurement, ExperimentResult) else measurement
