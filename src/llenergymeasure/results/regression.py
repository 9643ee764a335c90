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
from llenergymeasure.results.compare import Comparison, Threshold, compare_metric
from llenergymeasure.results.model import ExperimentResult

DEFAULT_THRESHOLDS = ("joules_per_token:5%",)


@dataclass
class RegressionCheck:
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # config or software changed since the baseline
    unverified: str | None = None  # why nothing was compared
    lost: list[str] = field(default_factory=list)  # gated metrics the baseline measured and this run did not
    suspect: bool = False  # this run's energy failed the sanity checks: nothing it measured is compared

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


def check_regression(baseline: Baseline, key: str, candidate: BaselineEntry, machine: MachineInfo,
                     gates: list[Threshold], *, across_machines: bool = False) -> RegressionCheck:
    """Compare ``candidate`` (measured on ``machine``) with the entry ``key`` of ``baseline``.

    Results from another machine or energy source are not compared (``unverified``), unless
    ``across_machines``: then they are, with a note saying so (``llem compare`` of two files
    the user chose).
    """
    found = baseline.find(key, candidate.experiment)
    if found is None:
        return RegressionCheck(unverified=f"the baseline has no entry for {key}; save a new one with "
                                          "--llem-save-baseline")
    before = baseline.entries[found]
    if candidate.energy_suspect:
        return RegressionCheck(suspect=True)
    if before.energy_suspect:
        return RegressionCheck(unverified=f"the baseline's entry for {key} has suspect energy; save a new baseline")
    check = RegressionCheck()
    mismatch = machine.mismatch(baseline.machine)
    if mismatch and not across_machines:
        return RegressionCheck(unverified=mismatch)
    if mismatch:
        check.notes.append(f"different machines: {mismatch}")
    changes = candidate.config_changes(before)
    if changes:
        check.notes.append(f"config changed since the baseline: {', '.join(changes)}")
    software = machine.software_changes(baseline.machine)
    if software:
        check.notes.append(f"software changed since the baseline: {', '.join(software)}")
    check.comparisons, check.lost, unmeasured = _compare_entries(before, candidate, gates)
    check.notes.extend(f"{metric}: not measured in the baseline, so not compared" for metric in unmeasured)
    return check


def _compare_entries(before: BaselineEntry, after: BaselineEntry,
                     gates: list[Threshold]) -> tuple[list[Comparison], list[str], list[str]]:
    """(a comparison per gate, metrics only the baseline measured, metrics the baseline did not measure)."""
    comparisons, lost, unmeasured = [], [], []
    for gate in gates:
        old, new = before.values(gate.metric), after.values(gate.metric)
        if old and new:
            comparisons.append(compare_metric(gate.metric, old, new, gate))
        elif old:
            lost.append(gate.metric)
        else:
            unmeasured.append(gate.metric)
    return comparisons, lost, unmeasured


def compare(baseline: BaselineEntry | ExperimentResult, candidate: BaselineEntry | ExperimentResult,
            fail_on: list[str] | None = None) -> list[Comparison]:
    """The public API: the verdict on each gated metric (``["joules_per_token:5%"]`` by default)
    of two measurements of one experiment, from their per-repeat values."""
    before, after = (BaselineEntry.from_result(x) if isinstance(x, ExperimentResult) else x for x in (baseline, candidate))
    return _compare_entries(before, after, thresholds({}, fail_on or []))[0]
