"""Judging one measured result as a pytest item: its ``expect`` gates, its regression against a
baseline (or the machine's history, or an A/B reference), and the record the reports read.

Shared by the items of benchmark files (collect.py) and by tests that measure their own code
with the ``llem_energy`` fixture (fixture.py): both fail with the same one-line diffs, carry the
same JUnit properties and enter the same table, JSON file and baselines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.progress import say_line
from pytest_llem.settings import Settings

MEASURED_PROPERTIES = ("joules_per_token", "net_joules_per_token", "energy_j", "tokens_per_second",
                       "wh_per_1000_queries", "latency_s_p50", "ttft_s_p50", "peak_memory_mb")


class LlemBaselineWarning(pytest.PytestWarning):
    """An item could not be judged against its baseline: nothing comparable (none saved, another
    machine, an unreadable file), or data too noisy or too few to decide (inconclusive)."""


class LlemFailure(Exception):
    """An item failed for a reason that is fully said in its lines (a gate, a dry-run problem)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))


Remeasure = Callable[[], tuple[Any, Any, "str | None"]]  # () -> (result, A/B check or None, where saved)


class Judge:
    """The verdict on one item's result. ``record`` is the item's report record (see report.py):
    it must hold ``nodeid``, ``root`` and ``baseline_key``."""

    def __init__(self, item: pytest.Item, record: dict[str, Any], settings: Settings,
                 regression: dict[str, str | float]) -> None:
        self.item, self.record, self.settings, self.regression = item, record, settings, regression

    def failures(self, result: Any, expect: dict[str, Any], *, saved: str | None = None,
                 ab_check: Any = None, reference: str | None = None, remeasure: Remeasure | None = None) -> list[str]:
        """Record ``result`` and return why the item fails (empty: it passes): the ``expect``
        gates, then the A/B check against ``reference`` when one was measured, else the baseline.

        An item accepted by ``--llem-accept`` passes its regression gates: its measurement is the new
        level. One that regressed (and failed nothing else) is measured again with ``remeasure``
        (``--llem-confirm`` times, judged at the stricter confirmation level) and fails only if
        every re-measurement regressed too. The first measurement stays the session's (recorded,
        and saved as its baseline entry): a re-measurement only confirms it or not, and saving it
        instead would bias the history low (docs/compare.md, "A suite of experiments")."""
        from llenergymeasure.results.gates import check_expect
        from llenergymeasure.results.regression import CONFIRM_CONFIDENCE, confirm

        verdicts = check_expect(result, expect)
        check, where = self._check(result, ab_check, reference)
        if check is not None and is_accepted(self.item, self.settings.accept):
            check.accepted = True
            self.record["accepted"] = True
        tries = self.settings.confirm if remeasure is not None else 0
        while tries and _to_confirm(check, verdicts):
            tries -= 1
            say_line(self.item, "regressed: measuring it again to confirm (--llem-confirm)")
            again, ab_again, _ = remeasure()  # saved where results go; the first stays the session's
            check = confirm(check, self._check(again, ab_again, reference, CONFIRM_CONFIDENCE)[0])
        self.record_result(result, verdicts, saved)
        failures = [v.text for v in verdicts if not v.passed] + self._required_energy(result)
        if failures:
            failures.append(f"energy: {result.energy_source}" + (" (estimated, not measured)" if result.estimated else ""))
        if check is not None:
            failures.extend(self.judge(check, where))
        from pytest_llem.ci_formats import junit_properties

        self.item.user_properties.extend(junit_properties(self.record))
        return failures

    def _required_energy(self, result: Any) -> list[str]:
        """Under ``--llem-require-energy``, why ``result`` fails for energy that came out empty (its
        meter ran but measured nothing, in one window or all): a missing source fails at setup."""
        why = result.energy_unavailable_reason
        if not self.settings.require_energy or (result.metrics.energy_j is not None and not why):
            return []
        where = "" if result.metrics.energy_j is None else " in every window"
        return [f"energy not measured{where}: {why or 'its meter measured nothing'} (--llem-require-energy)"]

    def _check(self, result: Any, ab_check: Any, reference: str | None, confidence: float = 0.95
               ) -> tuple[Any, str]:
        """(the regression check of ``result``, what it was judged against): ``ab_check`` when an A/B
        measured it beside ``reference``, else the baseline or history when one is asked for;
        (None, "") when none is."""
        if ab_check is not None:
            return ab_check, f"measured beside {reference} (A/B)"
        if not self.settings.baseline:
            return None, ""
        from llenergymeasure.results.baselines import BaselineEntry, MachineInfo
        from llenergymeasure.results.regression import RegressionCheck, check_regression, thresholds

        entry, machine = BaselineEntry.from_result(result), MachineInfo.from_result(result)
        history, where = self.settings.load_reference(Path(self.record["root"]), machine.key)
        if history is None:
            return RegressionCheck(unverified=where), where
        gates = thresholds(self.regression, self.settings.fail_on)
        check = check_regression(history, self.record["baseline_key"], entry, machine, gates,
                                 k=self.settings.history, confidence=confidence)
        unreadable = getattr(history, "unreadable", [])
        if unreadable:
            check.notes.append(f"{len(unreadable)} baseline file(s) of this machine could not be read and were "
                               f"left out: {'; '.join(unreadable)}")
        return check, where

    def record_result(self, result: Any, verdicts: list[Any], saved: str | None) -> None:
        """What the summary, the JSON report, JUnit properties and a saved baseline need of ``result``."""
        from llenergymeasure.results.baselines import BaselineEntry, MachineInfo

        metrics = result.metrics
        self.record.update(
            {name: getattr(metrics, name) for name in MEASURED_PROPERTIES},
            energy_source=result.energy_source,
            estimated=result.estimated,
            energy_suspect=result.energy_suspect,
            verdicts=[{"metric": v.metric, "passed": v.passed, "text": v.text} for v in verdicts],
            warnings=[w.code for w in result.measurement_warnings],
            result_path=saved,
            baseline_entry=BaselineEntry.from_result(result).model_dump(mode="json"),
            machine=MachineInfo.from_result(result).model_dump(mode="json"),
        )
        ci95 = {name: [result.stats[name].ci95_low, result.stats[name].ci95_high]
                for name in ("joules_per_token", "wh_per_1000_queries") if name in result.stats}
        if ci95:
            self.record["ci95"] = ci95
        if result.load_point:  # a ramp's load point: where on the load curve the numbers were taken
            self.record["load_point"] = result.load_point
        if self.settings.keeps_results:
            self.record["result"] = result.model_dump(mode="json")
        self.item.user_properties.extend(
            (name, getattr(metrics, name)) for name in MEASURED_PROPERTIES if getattr(metrics, name) is not None
        )
        self.item.user_properties.extend([("energy_source", result.energy_source), ("estimated", result.estimated)])

    def judge(self, check: Any, where: str) -> list[str]:
        """Record ``check`` and decide: the failure lines when a metric regressed (or stopped being
        measured, or the energy is suspect); for a check that could not decide (inconclusive,
        unverified) the reason and what to do, in the summary and JUnit, and by
        ``--llem-inconclusive`` (``--llem-require-baseline`` for unverified) a warning or a failure.

        Every text is recorded once, as every surface shows it (report.explain): paths relative to
        the repository, and no hint to pass ``--llem-save-baseline`` to a session that did."""
        from pytest_llem.baselines import reworded
        from pytest_llem.report import shown_paths

        paths = shown_paths(self.item.config)

        def said(text: str) -> str:
            return paths.text(reworded(text, self.settings))

        first = check.first or check  # the session's measurement: a re-measurement only confirms it
        lines, where = [said(line) for line in check.lines()], said(where)
        self.record["regression"] = {
            "verdict": check.verdict,
            "lines": lines,
            "notes": [said(note) for note in check.notes],
            "against": where,
            "changes": changes(first.comparisons),
        }
        if check.first is not None:
            self.record["regression"].update(confirmation=check.confirmation, again=changes(check.comparisons))
        selection = first.selection
        if selection is not None:
            self.record["regression"]["history"] = history_record(selection.seen())
        self.item.user_properties.append(("baseline_verdict", check.verdict))
        if check.failed:
            return [*lines, f"baseline: {where}"]
        undecided = check.unverified or [c for c in check.comparisons if c.verdict == "inconclusive"]
        if not undecided or check.accepted or check.first is not None:
            return []
        hints = [said(hint) for hint in check.hints]
        reason = "; ".join(lines[:1] + hints) if check.unverified else "; ".join(
            [said(c.text) for c in check.comparisons if c.verdict == "inconclusive"] + hints)
        self.record["regression"]["why"] = reason
        # JUnit: always the properties (ci_formats.junit_properties); in <system-out> too under
        # junit_logging = system-out (or all)
        notes = self.record["regression"]["notes"]
        self.item.add_report_section("call", "stdout", "\n".join(
            [f"llem: {check.verdict}: {reason}", *(f"llem: note: {note}" for note in notes)]))
        if check.unverified and self.settings.require_baseline:
            return [*lines, "(--llem-require-baseline)"]
        if self.settings.inconclusive == "fail":
            return [reason, "(--llem-inconclusive=fail)"]
        if self.settings.inconclusive == "warn":
            self.item.warn(LlemBaselineWarning(reason))  # located at the item (a YAML item: its line)
        return []


def changes(comparisons: list[Any]) -> list[dict[str, Any]]:
    """Comparisons as a record holds them (and JSON carries them)."""
    return [{"metric": c.metric, "change": finite(c.change), "relative": c.threshold.relative,
             "threshold": c.threshold.value, "ci_low": finite(c.ci_low), "ci_high": finite(c.ci_high),
             "verdict": c.verdict} for c in comparisons]


def history_record(sessions: list[Any]) -> dict[str, Any]:
    """The saved sessions a verdict looked at, as the report's history chart draws them."""
    from llenergymeasure.results.segments import chart_points

    points, pins = chart_points(sessions, "joules_per_token")
    return {"points": [{"saved_at": p.saved_at.isoformat(), "joules_per_token": p.value, "kind": p.kind,
                        "segment": p.segment} for p in points], "pins": pins}


def _to_confirm(check: Any, verdicts: list[Any]) -> bool:
    """Whether a regression is all that would fail the item (no ``expect`` gate failed either):
    then it is measured again first."""
    return check is not None and check.needs_confirmation and all(v.passed for v in verdicts)


def is_accepted(item: pytest.Item, patterns: list[str]) -> bool:
    """Whether ``--llem-accept`` covers ``item``: the bare flag every item; a PATTERN its test id, a
    file or group of it (``benchmarks/llem_gpt2.yaml``, ``...::gpt2``), or a -k expression it matches."""
    for pattern in patterns:
        if pattern == "*" or item.nodeid == pattern or item.nodeid.startswith((pattern + "::", pattern + "[")):
            return True
        if "::" not in pattern and _keyword_match(item, pattern):
            return True
    return False


def _keyword_match(item: pytest.Item, expression: str) -> bool:
    """pytest's own -k matching (its expression language and keywords; checked at configure)."""
    from _pytest.mark import KeywordMatcher
    from _pytest.mark.expression import Expression

    return Expression.compile(expression).evaluate(KeywordMatcher.from_item(item))


def save_result(result: Any, directory: str | None, failures: list[str]) -> str | None:
    """Save ``result`` into ``directory`` (nothing without one); where it went (None: nowhere), and
    why not in ``failures``: kept elsewhere (or nowhere), the item fails saying where."""
    from llenergymeasure.results.io import NotSaved

    if not directory:
        return None
    try:
        return str(result.save(directory))
    except NotSaved as exc:
        failures.append(str(exc))
        return str(exc.kept_at) if exc.kept_at else None


def attach(record: dict[str, Any], report: pytest.TestReport) -> bool:
    """Put ``record`` on ``report`` when that report decides the item's outcome (the call, or a
    setup that did not pass), completed with the outcome and, for a failure or skip not worded by
    us, pytest's one-line reason. It travels with the report under xdist. True when attached."""
    if not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return False
    if report.failed and "error" not in record:
        crash = getattr(report.longrepr, "reprcrash", None)
        record["error"] = crash.message if crash else (report.longreprtext.strip().splitlines() or ["failed"])[-1]
    if report.skipped and isinstance(report.longrepr, tuple):
        record.setdefault("error", report.longrepr[2].removeprefix("Skipped: "))  # a skip mark's reason
    report.llem = {**record, "outcome": report.outcome}  # type: ignore[attr-defined]
    return True


def finite(value: float) -> float | None:
    """NaN ("no interval") as null: the records end up in JSON that other tools must parse."""
    return None if math.isnan(value) else value
