"""Judging one measured result as a pytest item: its ``expect`` gates, its regression against a
baseline (or the machine's history, or an A/B reference), and the record the reports read.

Shared by the items of benchmark files (collect.py) and by tests that measure their own code
with the ``llem_energy`` fixture (fixture.py): both fail with the same one-line diffs, carry the
same JUnit properties and enter the same table, JSON file and baselines.
"""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import Any

import pytest

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


class Judge:
    """The verdict on one item's result. ``record`` is the item's report record (see report.py):
    it must hold ``nodeid``, ``root`` and ``baseline_key``."""

    def __init__(self, item: pytest.Item, record: dict[str, Any], settings: Settings,
                 regression: dict[str, str | float]) -> None:
        self.item, self.record, self.settings, self.regression = item, record, settings, regression

    def failures(self, result: Any, expect: dict[str, Any], *, saved: str | None = None,
                 ab_check: Any = None, reference: str | None = None) -> list[str]:
        """Record ``result`` and return why the item fails (empty: it passes): the ``expect``
        gates, then the A/B check against ``reference`` when one was measured, else the baseline."""
        from llenergymeasure.results.baselines import BaselineEntry, MachineInfo
        from llenergymeasure.results.gates import check_expect

        verdicts = check_expect(result, expect)
        entry, measured_on = BaselineEntry.from_result(result), MachineInfo.from_result(result)
        self.record_result(result, verdicts, entry, measured_on, saved)
        failures = [v.text for v in verdicts if not v.passed]
        if failures:
            failures.append(f"energy: {result.energy_source}" + (" (estimated, not measured)" if result.estimated else ""))
        if ab_check is not None:
            failures.extend(self.judge(ab_check, f"measured beside {reference} (A/B)"))
        elif self.settings.baseline:
            failures.extend(self.check_regression(entry, measured_on))
        return failures

    def record_result(self, result: Any, verdicts: list[Any], entry: Any, measured_on: Any,
                      saved: str | None) -> None:
        """What the summary, the JSON report, JUnit properties and a saved baseline need of ``result``."""
        metrics = result.metrics
        self.record.update(
            {name: getattr(metrics, name) for name in MEASURED_PROPERTIES},
            energy_source=result.energy_source,
            estimated=result.estimated,
            energy_suspect=result.energy_suspect,
            verdicts=[{"metric": v.metric, "passed": v.passed, "text": v.text} for v in verdicts],
            warnings=[w.code for w in result.measurement_warnings],
            result_path=saved,
            baseline_entry=entry.model_dump(mode="json"),
            machine=measured_on.model_dump(mode="json"),
        )
        ci95 = {name: [result.stats[name].ci95_low, result.stats[name].ci95_high]
                for name in ("joules_per_token", "wh_per_1000_queries") if name in result.stats}
        if ci95:
            self.record["ci95"] = ci95
        if self.settings.keeps_results:
            self.record["result"] = result.model_dump(mode="json")
        self.item.user_properties.extend(
            (name, getattr(metrics, name)) for name in MEASURED_PROPERTIES if getattr(metrics, name) is not None
        )
        self.item.user_properties.extend([("energy_source", result.energy_source), ("estimated", result.estimated)])

    def check_regression(self, entry: Any, machine: Any) -> list[str]:
        """Compare ``entry`` (measured on ``machine``) with the baseline or this machine's history."""
        from llenergymeasure.results.regression import RegressionCheck, check_regression, thresholds

        history, where = self.settings.load_reference(Path(self.record["root"]), machine.key)
        if not history:
            return self.judge(RegressionCheck(unverified=where), where)
        gates = thresholds(self.regression, self.settings.fail_on)
        return self.judge(check_regression(history, self.record["baseline_key"], entry, machine, gates), where)

    def judge(self, check: Any, where: str) -> list[str]:
        """Record ``check`` and decide: the failure lines when a metric regressed (or stopped being
        measured, or the energy is suspect); for a check that could not decide (inconclusive,
        unverified) the reason and what to do, in the summary and JUnit, and by
        ``--llem-inconclusive`` (``--llem-require-baseline`` for unverified) a warning or a failure."""
        self.record["regression"] = {
            "verdict": check.verdict,
            "lines": check.lines(),
            "against": where,
            "changes": [{"metric": c.metric, "change": finite(c.change), "relative": c.threshold.relative,
                         "ci_low": finite(c.ci_low), "ci_high": finite(c.ci_high), "verdict": c.verdict}
                        for c in check.comparisons],
        }
        self.item.user_properties.append(("baseline_verdict", check.verdict))
        if check.failed:
            return [*check.lines(), f"baseline: {where}"]
        undecided = check.unverified or [c for c in check.comparisons if c.verdict == "inconclusive"]
        if not undecided:
            return []
        reason = "; ".join(check.lines()[:1] + check.hints) if check.unverified else "; ".join(
            [c.text for c in check.comparisons if c.verdict == "inconclusive"] + check.hints)
        self.record["regression"]["why"] = reason
        self.item.user_properties.append(("baseline_reason", reason))
        # JUnit: always the property; in <system-out> too under junit_logging = system-out (or all)
        self.item.add_report_section("call", "stdout", f"llem: {check.verdict}: {reason}")
        if check.unverified and self.settings.require_baseline:
            return [*check.lines(), "(--llem-require-baseline)"]
        if self.settings.inconclusive == "fail":
            return [reason, "(--llem-inconclusive=fail)"]
        if self.settings.inconclusive == "warn":
            self.item.warn(LlemBaselineWarning(reason))  # located at the item (a YAML item: its line)
        return []


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


def say_now(item: pytest.Item, text: str) -> None:
    """A line on the terminal now, while ``item`` runs: past output capture, and from an xdist
    worker too (its stderr is the controller's)."""
    capture = item.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        sys.stderr.write(f"\nllem: {item.nodeid}: {text}\n")
        sys.stderr.flush()


def finite(value: float) -> float | None:
    """NaN ("no interval") as null: the records end up in JSON that other tools must parse."""
    return None if math.isnan(value) else value
