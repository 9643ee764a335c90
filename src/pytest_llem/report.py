"""What the plugin tells the user and keeps: a header line, the results table, a JSON file of
results, a markdown report for CI pages, and saved baselines.

Baselines are saved by ``baselines.save_session`` (every item that measured energy, with its
status; the summary says how many of each, and what was left out and why). An output that was asked for (``--llem-json``, ``--llem-markdown``,
``--llem-save-baseline``, ``$GITHUB_STEP_SUMMARY``) and could not be written fails the session:
its exit status becomes 1 (pytest.ExitCode.TESTS_FAILED, what a failed item gives: CI fails the
job either way, and 3, "internal error", would send the user looking for a bug in pytest) unless
it is already non-zero.

An output replaces only a file of its own kind that llem wrote, or an empty file
(``check_replaced_outputs``, at start-up, is a usage error; the same check at the end fails the
session). Ctrl-C or SIGTERM while the outputs are written stops them as ``llem run`` stops its
save: each file is whole or absent, no temp file is left, no traceback, and pytest exits 130
(SIGINT) or 143 (SIGTERM).

Baseline files of this machine's history that could not be read (corrupt, too large, not a
regular file) are named in a warning, in each judged item's record and in the summary.

One truth on every surface: an item's verdict, the reason its baseline could not judge it (or
failed it) and the notes to read it with are worded once, by ``explain``, from its record; the
terminal summary, the JUnit properties (ci_formats.junit_properties), the markdown report and the
--llem-json file (each item's ``said``, which the HTML report reads) all say that. Every path
they show is relative to the repository (``shown_paths``, as ``llem report`` shows paths).

Every llem item's report carries a ``llem`` record (a plain dict, so pytest-xdist ships it from
worker to controller with the report). The reporter keeps the records it sees in
``pytest_runtest_logreport`` and reports them at the end, so a serial run and ``-n 2`` print
the same table: both are built from the same records, in collection order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llenergymeasure.results.tables import fmt, load_point_text, text_table
from pytest_llem.settings import Settings

if TYPE_CHECKING:
    from llenergymeasure.results.display_paths import Paths


# Record keys written as recorded: measured data (results and baselines hold the same), and the
# identifiers and file a script or a later comparison matches (a sweep id may hold a model's path).
MEASURED_DATA = ("result", "baseline_entry", "machine", "nodeid", "baseline_key", "experiment", "file", "result_path")


class LlemReporter:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.records: dict[str, dict[str, Any]] = {}
        self.is_worker = hasattr(config, "workerinput")
        self.written: list[str] = []  # "what: path" lines for the summary
        self.failed_outputs: list[str] = []  # outputs asked for and not written

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """Said only when the run reaches benchmark files (other test suites are left alone), or
        when --llem-disable changes what llem_energy tests do."""
        from llenergymeasure import __version__

        disabled = []
        if self.settings.disable:
            ignored = f" ({', '.join(self.settings.ignored)} ignored)" if self.settings.ignored else ""
            disabled = [f"llem: --llem-disable: benchmark items and llem_energy tests run once, unmeasured: no "
                        f"energy, gates or baselines{ignored}"]
        if not self.settings.reaches_benchmarks:
            return disabled
        machine = self.settings.machine
        lines = [f"llem: {__version__}, {machine.describe()}", *disabled]
        if self.settings.dry_run:
            lines.append("llem: dry run (--llem-dry-run): configs are checked, nothing is loaded or measured")
        workers = config.getoption("numprocesses", None)
        if isinstance(workers, int) and workers > 1 and not machine.gpus:
            lines.append(f"llem: {workers} xdist workers on a CPU-only machine: measurements take turns "
                         "(one at a time), other tests run in parallel")
        return lines

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "llem", None)
        if record is not None:
            self.records[report.nodeid] = record

    def ordered(self) -> list[dict[str, Any]]:
        return sorted(self.records.values(), key=lambda r: (r["file"], r["index"]))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not (self.records or self.written):
            return
        title = "llem dry run" if self.settings.dry_run else "llem results"
        terminalreporter.write_sep("=", title)
        for line in text_table(self.rows()):
            terminalreporter.write_line(line)
        if any(r.get("estimated") for r in self.records.values()):
            terminalreporter.write_line(ESTIMATED_NOTE)
        for line in verdict_lines(self.ordered(), self.settings.save_baseline == "auto"):
            terminalreporter.write_line(line)
        undecided = [r for r in self.ordered() if r.get("regression", {}).get("why")]
        if undecided:
            terminalreporter.write_line(f"llem: {len(undecided)} item(s) could not be judged against their baseline "
                                        f"(--llem-inconclusive={self.settings.inconclusive}):")
            for record in undecided:
                said = explain(record)
                terminalreporter.write_line(f"  {record['nodeid']}: {said.reason}")
                for note in said.notes:
                    terminalreporter.write_line(f"    note: {note}")
        unreadable = unreadable_baselines(self.ordered())
        if unreadable:
            terminalreporter.write_line(f"llem: {len(unreadable)} baseline file(s) of this machine's history could not "
                                        "be read and were left out:")
            for line in unreadable:
                terminalreporter.write_line(f"  {line}")
        for line in self.written:
            terminalreporter.write_line(f"llem: {line}")

    def rows(self, records: list[dict[str, Any]] | None = None) -> list[dict[str, str]]:
        records = self.ordered() if records is None else records
        if self.settings.dry_run:
            return [dry_run_row(r) for r in records]
        compared = any("regression" in record for record in self.records.values())  # a baseline or an A/B
        return [result_row(r, compared=compared) for r in records]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write what was asked for. One failed write (a full disk, a typo in a path) does not stop
        the others (the measurements are in the results either way), but it fails the session.
        ``--co`` runs nothing, so it writes nothing."""
        if self.is_worker or self.config.option.collectonly:
            return
        writes = []
        if self.settings.json_path:
            writes.append((f"--llem-json {self.settings.json_path}", self._write_json))
        if self.settings.benchmark_json:
            writes.append((f"--llem-benchmark-json {self.settings.benchmark_json}", self._write_benchmark_json))
        if self.settings.html:
            writes.append((f"--llem-html {self.settings.html}", self._write_html))
        if self.settings.save_baseline:
            writes.append(("--llem-save-baseline", self._save_baselines))
        if self.records and self.settings.markdown:
            writes.append((f"--llem-markdown {self.settings.markdown}", self._write_markdown))
        if self.records and os.environ.get("GITHUB_STEP_SUMMARY"):
            writes.append(("$GITHUB_STEP_SUMMARY", self._append_step_summary))
        if not writes:
            return
        from llenergymeasure.signals import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, sigterm_raises
        from llenergymeasure.exceptions import LLEMError
        from pytest_llem.baselines import NotWritten

        what = ""
        try:
            with sigterm_raises():  # SIGTERM raises, as Ctrl-C does: the file being written is removed
                for what, write in writes:
                    try:
                        write()
                    except (OSError, LLEMError, NotWritten) as exc:
                        self.failed_outputs.append(what)
                        self.written.append(f"could not write {what}: {exc}")
        except KeyboardInterrupt as exc:
            name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            self.written.append(f"{name} while writing {what}: it and the outputs after it were not written "
                                "(no partial or temp file is left)")
            session.exitstatus = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
            return
        if self.failed_outputs and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.written.append(f"the session fails (exit {int(pytest.ExitCode.TESTS_FAILED)}): "
                                f"{', '.join(self.failed_outputs)} asked for and not written")

    def session_document(self) -> dict[str, Any]:
        """The session as --llem-json writes it (and the HTML report reads it): each item's record,
        with ``said`` (its verdict, reason and notes as every summary says them: ``explain``), and
        every path in what it says as the reports show paths (relative to the repository:
        ``shown_paths``). What was measured (``MEASURED_DATA``) is kept as it was recorded: a
        model's path is part of its config, which a later comparison matches."""
        from llenergymeasure import __version__

        machine = self.settings.machine
        text = shown_paths(self.config).text
        return {
            "llem_version": __version__,
            "written_at": datetime.now(timezone.utc).isoformat(),
            "dry_run": self.settings.dry_run,
            "machine": shown_data({"gpus": [vars(g) for g in machine.gpus], "driver": machine.driver,
                                   "nvml": vars(machine.nvml), "rapl": vars(machine.rapl)}, text),
            "items": [{key: value if key in MEASURED_DATA else shown_data(value, text)
                       for key, value in {**record, "said": vars(explain(record))}.items()}
                      for record in self.ordered()],
        }

    def _write_json(self) -> None:
        import json

        from llenergymeasure.results.io import write_output
        from pytest_llem.ci_formats import SESSION_JSON

        write_output(self.settings.json_path, json.dumps(self.session_document(), indent=2) + "\n", SESSION_JSON,
                     session_inputs(self.settings))
        self.written.append(f"results written to {self.settings.json_path}")

    def _write_benchmark_json(self) -> None:
        import json

        from llenergymeasure.results.io import write_output
        from pytest_llem.ci_formats import BENCHMARK_JSON, benchmark_entries

        entries = benchmark_entries(self.ordered())
        write_output(self.settings.benchmark_json, json.dumps(entries, indent=2) + "\n", BENCHMARK_JSON,
                     session_inputs(self.settings))
        self.written.append(f"{len(entries)} benchmark value(s) written to {self.settings.benchmark_json} "
                            "(github-action-benchmark, customSmallerIsBetter)")

    def _write_html(self) -> None:
        from llenergymeasure.report import write_report_from_session

        path = write_report_from_session(self.session_document(), Path(self.settings.html))
        self.written.append(f"HTML report written to {path}")

    def _save_baselines(self) -> None:
        from pytest_llem.baselines import save_session

        save_session(self.settings, self.ordered(), self.written, shown_paths(self.config).shown)

    def markdown(self) -> str:
        """The report for CI pages: the table (what needs attention first), the estimate note, and
        the comparison in full of each item that regressed, failed or could not be judged (the
        table's last column has every other item's); under GitHub's size limit (ci_formats)."""
        from llenergymeasure.results.tables import markdown_table
        from pytest_llem.ci_formats import attention, attention_first, fit_markdown

        records = attention_first(self.ordered())
        table = markdown_table(self.rows(records))
        head = ["## llem " + ("dry run" if self.settings.dry_run else "results"), "", *table[:2]]
        tail = []
        if any(r.get("estimated") for r in self.records.values()):
            tail += ["", ESTIMATED_NOTE]
        unreadable = unreadable_baselines(records)
        if unreadable:
            note = f"{len(unreadable)} baseline file(s) of this machine's history could not be read and were left out:"
            tail += ["", note, "", *(f"- `{line}`" for line in unreadable)]
        details = [(r["nodeid"], explain(r)) for r in records if r.get("regression") and attention(r) < 2]
        if details:
            tail += ["", "### Against the baseline", ""]
            for nodeid, said in details:
                tail.append(f"- `{nodeid}`" + (f": {said.reason}" if said.reason else ""))
                tail += [f"  - note: {note}" for note in said.notes]
        text = fit_markdown(head, table[2:], tail, keep=sum(attention(r) < 2 for r in records))
        return shown_paths(self.config).text(text)

    def _write_markdown(self) -> None:
        from llenergymeasure.results.io import write_output
        from pytest_llem.ci_formats import MARKDOWN

        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary and Path(self.settings.markdown).resolve() == Path(step_summary).resolve():
            return  # the step summary gets it appended
        write_output(self.settings.markdown, self.markdown(), MARKDOWN, session_inputs(self.settings))
        self.written.append(f"markdown report written to {self.settings.markdown}")

    def _append_step_summary(self) -> None:
        step_summary = os.environ["GITHUB_STEP_SUMMARY"]
        with open(step_summary, "a", encoding="utf-8") as fh:  # the step summary is shared by all steps: append
            fh.write(self.markdown())
        self.written.append(f"markdown report appended to $GITHUB_STEP_SUMMARY ({step_summary})")


def session_inputs(settings: Settings) -> list[str]:
    """Files the session reads that an output could name: the ``--llem-baseline`` file."""
    return [settings.baseline] if settings.baseline not in (None, "auto") else []


def check_replaced_outputs(settings: Settings) -> None:
    """UsageError, before anything runs, for an output that names a file llem must not replace:
    an input of the session, or an existing file that is not that output as llem writes it. (A
    baseline is never replaced: it is created, or numbered on; the step summary is appended to.)"""
    if not (settings.json_path or settings.benchmark_json or settings.html or settings.markdown):
        return  # nothing to check: nothing more to import
    from llenergymeasure.report.document import REPORT
    from llenergymeasure.results.io import output_problem
    from pytest_llem.ci_formats import BENCHMARK_JSON, MARKDOWN, SESSION_JSON

    markdown, step_summary = settings.markdown, os.environ.get("GITHUB_STEP_SUMMARY")
    if markdown and step_summary and Path(markdown).resolve() == Path(step_summary).resolve():
        markdown = None
    outputs = [("--llem-json", settings.json_path, SESSION_JSON),
               ("--llem-benchmark-json", settings.benchmark_json, BENCHMARK_JSON),
               ("--llem-html", settings.html, REPORT), ("--llem-markdown", markdown, MARKDOWN)]
    for option, path, kind in outputs:
        problem = path and output_problem(path, kind, session_inputs(settings))
        if problem:
            raise pytest.UsageError(f"{option} {path}: {problem}")


def unreadable_baselines(records: list[dict[str, Any]]) -> list[str]:
    """Every baseline file of a history that could not be read, as its items recorded it, once each."""
    return list(dict.fromkeys(line for record in records for line in record.get("unreadable_baselines", [])))


def verdict_lines(records: list[dict[str, Any]], saving: bool) -> list[str]:
    """What the session's verdicts add up to: confirmations of regressed items, accepted and
    improved items."""
    def having(verdict: str) -> list[dict[str, Any]]:
        return [r for r in records if r.get("regression", {}).get("verdict") == verdict]

    lines = []
    confirmations = [r["regression"]["confirmation"] for r in records if r.get("regression", {}).get("confirmation")]
    if confirmations:
        noise = confirmations.count("not confirmed (noise)")
        lines.append(f"llem: {len(confirmations)} regressed item(s) measured again (--llem-confirm): "
                     f"{len(confirmations) - noise} confirmed, {noise} not confirmed (noise)")
    accepted = having("accepted")
    if accepted:
        lines.append(f"llem: {len(accepted)} item(s) accepted (--llem-accept): this session's measurement is "
                     "the new level of their history")
    improved = having("improved")
    if improved:
        how = "accept it (--llem-accept)" if saving else "save it with --llem-save-baseline --llem-accept"
        lines.append(f"llem: {len(improved)} item(s) improved on the baseline; to hold them to the new level, {how}")
    return lines


def result_row(record: dict[str, Any], compared: bool = False) -> dict[str, str]:
    jpt = record.get("joules_per_token")
    energy = fmt(jpt) + (" (est.)" if record.get("estimated") else "") + (" (suspect)" if record.get("energy_suspect") else "")
    load = {"load": load_point_text(record["load_point"])} if record.get("load_point") else {}
    row = {
        "item": record["nodeid"],
        **load,
        "J/token": "-" if jpt is None and "energy_source" not in record else energy,
        "tokens/s": fmt(record["tokens_per_second"]) if "tokens_per_second" in record else "-",
        "energy source": record.get("energy_source", "-"),
        "verdict": verdict(record),
    }
    if compared:
        row["vs baseline"] = baseline_cell(record.get("regression"))
    return row


def baseline_cell(regression: dict[str, Any] | None) -> str:
    """``joules_per_token +3.1% unchanged``, per gated metric; or why nothing was compared. A change
    that is undefined (null or NaN: a baseline median of 0) shows no amount."""
    if regression is None:
        return "-"
    if not regression.get("changes"):
        return str(regression.get("verdict", "-"))
    accepted = regression.get("verdict") == "accepted"
    cells = "; ".join(_cell(change, "accepted" if accepted else None) for change in regression["changes"])
    confirmation = regression.get("confirmation")
    if not confirmation:
        return cells
    again = "; ".join(_cell(change) for change in regression.get("again", []))
    return f"{cells}, re-measured: {again} ({confirmation})"


def _cell(change: dict[str, Any], verdict: str | None = None) -> str:
    """``joules_per_token +3.1% unchanged``; no amount when the change is undefined (null or NaN)."""
    value = change.get("change")
    amount = ""
    if isinstance(value, (int, float)) and math.isfinite(value):
        amount = f"{value:+.1%}" if change.get("relative") else f"{value:+.4g}"
    return " ".join(part for part in (str(change.get("metric", "?")), amount, verdict or change.get("verdict", ""))
                    if part)


def dry_run_row(record: dict[str, Any]) -> dict[str, str]:
    vram = record.get("vram_estimate_gb")
    return {
        "item": record["nodeid"],
        "VRAM estimate": f"{vram:.2f} GB" if isinstance(vram, (int, float)) and math.isfinite(vram) else "unavailable",
        "verdict": verdict(record),
    }


ESTIMATED_NOTE = "(est.) = estimated from CPU time, not measured: no RAPL counter for the CPU here"


@dataclass(frozen=True)
class Explanation:
    """What every surface says of one item (the terminal, JUnit, the markdown report, --llem-json
    and the HTML report read it from the JSON's ``said``), so that they never disagree:

    ``verdict``  the table's verdict (PASS/FAIL/SKIPPED, why, the doubts), in full; None while the
                 item runs (its outcome is not known yet)
    ``reason``   why its baseline verdict is what it is, when it needs attention: why it could not
                 be judged (no baseline, another machine, too noisy), or the comparisons that
                 failed it; None otherwise
    ``notes``    what the verdict should be read with: a config, software or machine change since
                 the baseline, files left out, what a session-level option did to it
    """

    verdict: str | None
    reason: str | None
    notes: list[str]


FAILING_BASELINE = ("regressed", "not measured", "suspect")


def explain(record: dict[str, Any]) -> Explanation:
    """The one wording of ``record``'s verdict, reason and notes (see ``Explanation``)."""
    regression = record.get("regression") or {}
    notes = [str(note) for note in dict.fromkeys([*regression.get("notes", []), *record.get("notes", [])])]
    reason = regression.get("why")
    if reason is None and regression.get("verdict") in FAILING_BASELINE:
        reason = "; ".join(line for line in regression.get("lines", []) if line not in notes) or None
    return Explanation(_verdict(record) if "outcome" in record else None, reason, notes)


def shown_paths(config: pytest.Config) -> Paths:
    """How this session's reports show a path: relative to the repository (the top of the git work
    tree pytest was started in, else the directory it was started in), as ``llem report`` does."""
    from llenergymeasure.results.display_paths import Paths
    from llenergymeasure.results.project import project_root

    here = config.invocation_params.dir
    return Paths(project_root(here) or here)


def shown_data(data: Any, text: Callable[[str], str]) -> Any:
    """JSON-like ``data`` with ``text`` applied to every string in it (values, not keys)."""
    if isinstance(data, str):
        return text(data)
    if isinstance(data, dict):
        return {key: shown_data(value, text) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [shown_data(value, text) for value in data]
    return data


def verdict(record: dict[str, Any], width: int = 160) -> str:
    """PASS/FAIL/SKIPPED and why, on one line of at most ``width`` characters (``_verdict``; the
    doubts, at its end, are never cut off)."""
    from llenergymeasure.results.doubts import doubt_text

    text = _verdict(record)
    if len(text) <= width:
        return text
    flags = _doubts(record)
    tail = f"; {doubt_text(flags)}" if flags else ""
    return _outcome_text(record)[: max(0, width - 3 - len(tail))] + "..." + tail


def _verdict(record: dict[str, Any]) -> str:
    """The verdict, naming at its end the doubts of a measured number (results.doubts):
    ``passed; doubtful: high_variance``."""
    from llenergymeasure.results.doubts import with_doubts

    return with_doubts(_outcome_text(record), _doubts(record))


def _doubts(record: dict[str, Any]) -> list[str]:
    """What puts the item's measured number in doubt (none for what measured nothing)."""
    from llenergymeasure.results.doubts import doubts

    if record["outcome"] == "skipped" or record.get("dry_run"):
        return []
    return doubts(record.get("warnings", []), bool(record.get("energy_suspect")))


def _outcome_text(record: dict[str, Any]) -> str:
    outcome = record["outcome"]
    failed_gates = [v["text"] for v in record.get("verdicts", []) if not v["passed"]]
    if outcome == "skipped":
        return f"SKIPPED: {record.get('error', '')}"
    if failed_gates:
        return "FAIL: " + "; ".join(failed_gates)
    regression = record.get("regression", {}).get("verdict")
    if outcome == "failed" and regression in ("regressed", "not measured"):
        confirmed = " (confirmed)" if record.get("regression", {}).get("confirmation") == "confirmed" else ""
        return f"FAIL: {regression} against the baseline{confirmed}"
    if outcome == "failed":
        return "FAIL: " + " ".join(line.strip() for line in str(record.get("error", "")).splitlines())
    if record.get("verdicts"):
        return "PASS: " + "; ".join(v["text"] for v in record["verdicts"])
    if record.get("dry_run"):
        return "; ".join(["ok", *record.get("notes", [])])
    return "passed"
