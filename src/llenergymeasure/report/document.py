"""The report itself: what it shows, in which order, and writing it (the HTML file, and each chart
as a PNG on request).

Sections: the experiments (J/token with its 95% CI, marked estimated or suspect), J/token per
experiment (each measured window beside the median and its CI), candidate against baseline with
the verdicts (the +-threshold band of each gate drawn), each interleaved A/B session as one
comparison (its windows, its pairs, its paired verdict, its one power timeline), sweeps, each load
ramp (its Pareto chart: J/token and goodput against the throughput served, the SLO point and the
saturated points marked; a table of its points), the power timeline of every other result (per
device, phases shaded, windows numbered, a load point's steady window labelled), each experiment's
history of saved sessions (segments, their pinned levels, accepted steps, red sessions; each
session once), the baseline files, and every measurement warning.

Paths are shown relative to the project (results/display_paths.py): no absolute path of the machine that
wrote the report reaches the page, its charts or its PNGs.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llenergymeasure.exceptions import ConfigError, PreFlightError
from llenergymeasure.report import html
from llenergymeasure.report.ab import AbSession, ab_sessions
from llenergymeasure.report.histories import History, carried_over, histories
from llenergymeasure.report.html import Cell
from llenergymeasure.report.inputs import (
    Inputs,
    Measured,
    input_files,
    inputs_from_session,
    load_inputs,
)
from llenergymeasure.report.ramps import Ramp, find_ramps
from llenergymeasure.report.sweeps import find_sweeps
from llenergymeasure.report.timeline import ab_timeline, timeline_of
from llenergymeasure.report.verdicts import (
    ExperimentVerdict,
    baseline_verdicts,
    session_verdicts,
)
from llenergymeasure.results.display_paths import Paths
from llenergymeasure.results.io import Output, output_problem, write_output
from llenergymeasure.results.tables import change_text, ci_text, fmt

if TYPE_CHECKING:
    from llenergymeasure.report.charts import Chart
    from llenergymeasure.results.baselines import Baseline

MAX_TIMELINES = 40  # charts; a larger study lists the rest by name
MAX_HISTORIES = 40
INSTALL_HINT = "pip install 'pytest-llem[report]'"
# What may be replaced: a report or a chart llem wrote (how each begins), never any other file.
REPORT = Output("an HTML report", (html.PAGE_START.encode(),))
PNG = Output("a PNG chart", (b"\x89PNG\r\n\x1a\n",))


def write_report(paths: list[Path], output: Path, png_dir: Path | None = None, *,
                 root: str | Path | None = None) -> list[Path]:
    """The report of ``paths`` (result JSONs, directories of them, baseline files, ``--llem-json``
    session files) written to ``output``, and each chart as a PNG in ``png_dir`` when given.
    Paths on the page are shown relative to ``root`` (default: the top of the git work tree
    holding the current directory, else the current directory).
    Returns the files written, the HTML first. ConfigError (exit 2) for an input or output path
    that is unusable, naming it: an output may not be a file that was read (given, or found in a
    given directory), nor replace a file that is not a report (a chart) llem wrote; PreFlightError
    when matplotlib is missing; OSError when a write fails after all."""
    output, png_dir = Path(output), Path(png_dir) if png_dir is not None else None
    files = input_files([Path(p) for p in paths])
    check_outputs(output, png_dir, files)
    return _write(load_inputs(files), output, png_dir, Paths(root))


def write_report_from_session(document: dict[str, Any], path: str | Path, *, root: str | Path | None = None) -> Path:
    """The report of a pytest session, from its in-memory ``--llem-json`` document (its items'
    ``"result"`` dumps included), written to ``path``; returns ``path``. Paths are shown relative
    to ``root`` (as ``write_report``). OSError when the write fails; ConfigError when ``path`` is a
    file llem must not replace (``results.io.output_problem``); PreFlightError when matplotlib is
    missing."""
    return _write(inputs_from_session(document), Path(path), None, Paths(root))[0]


def check_outputs(output: Path, png_dir: Path | None, inputs: Sequence[Path] = ()) -> None:
    """Before anything is drawn: can ``output`` (a file) and ``png_dir`` (a directory) be written, and
    is ``output`` neither one of ``inputs`` nor a file llem would not replace?"""
    if output.is_dir():
        raise ConfigError(f"-o {output}: is a directory; give the report's file name (-o report.html)")
    problem = _unwritable(output.parent) or output_problem(output, REPORT, inputs)
    if problem:
        raise ConfigError(f"-o {output}: {problem}")
    if png_dir is not None:
        if png_dir.exists() and not png_dir.is_dir():
            raise ConfigError(f"--png {png_dir}: is a file, not a directory")
        problem = _unwritable(png_dir)
        if problem:
            raise ConfigError(f"--png {png_dir}: {problem}")


def _unwritable(directory: Path) -> str | None:
    nearest = directory.absolute()
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        return f"cannot be created: {nearest} is a file, not a directory"
    try:
        with tempfile.TemporaryFile(dir=nearest):  # a read-only mount fails here even for root
            pass
    except OSError as exc:
        return f"cannot write in {nearest} ({exc.strerror or exc})"
    return None


def _write(inputs: Inputs, output: Path, png_dir: Path | None, paths: Paths) -> list[Path]:
    text, charts = build(inputs, png=png_dir is not None, paths=paths)
    pngs = [(png_dir / f"{number:02d}-{chart.slug}.png", chart.png or b"")
            for number, chart in enumerate(charts, 1)] if png_dir is not None else []
    for path, _ in pngs:  # all checked before anything is written
        problem = output_problem(path, PNG, inputs.sources)
        if problem:
            raise ConfigError(f"--png {png_dir}: {path.name} {problem}")
    written = [write_output(output, text, REPORT, inputs.sources)]
    for path, data in pngs:
        written.append(write_output(path, data, PNG, inputs.sources))
    return written


def build(inputs: Inputs, png: bool = False, paths: Paths | None = None) -> tuple[str, list[Chart]]:
    """The page's HTML and its charts (with their PNG when ``png``); paths shown by ``paths``
    (relative to the project by default)."""
    paths = paths or Paths()
    try:
        from llenergymeasure.report import charts as draw
    except ImportError as exc:
        if not (exc.name or "").startswith("matplotlib"):
            raise
        raise PreFlightError(f"the HTML report draws its charts with matplotlib, which is not installed: "
                             f"{INSTALL_HINT}") from None
    charts: list[Chart] = []

    def chart(figure: Any, slug: str, kind: str, title: str) -> str:
        if figure is None:
            return ""
        made = draw.render(figure, slug, kind, title, png)
        charts.append(made)
        return html.figure(made)

    measured = inputs.measured
    for item in measured:  # labels hold config values (model=/abs/path): drawn in charts too
        item.label = paths.text(item.label)
    baselines = [(paths.shown(origin), baseline) for origin, baseline in inputs.baselines]
    with_energy = [m for m in measured if m.joules_per_token is not None]
    sessions, lone = ab_sessions(measured)
    in_ab = {id(item) for session in sessions for item in (session.a, session.b)}
    compared, missing = baseline_verdicts(measured, baselines)
    missing = [label for label in missing if label not in {m.label for m in measured if id(m) in in_ab}]
    verdicts = session_verdicts(measured) + [session.verdict for session in sessions] + compared
    body = [_header(inputs, paths)]

    if measured:
        body.append(html.section("Experiments", _summary(inputs, verdicts, sessions), anchor="experiments"))
    if with_energy:
        body.append(html.section(
            "Energy per token",
            chart(draw.joules_per_token_chart(with_energy), "joules-per-token", "joules_per_token",
                  "J/token per experiment: the median (dot), the 95% CI over repeats (bar) and each measured "
                  "window (ticks); hollow: estimated, red: suspect (the meter's sanity checks doubted it)"),
            anchor="joules-per-token"))
    if verdicts:
        body.append(html.section("Candidate against baseline",
                                 chart(draw.comparison_chart(verdicts), "comparison", "comparison",
                                       "Change against the baseline per experiment and metric, with its 95% CI; "
                                       "shaded: ±the gate's threshold around the baseline"),
                                 _verdicts(verdicts, {id(session.verdict) for session in sessions}),
                                 anchor="baseline"))
    if sessions or lone:
        body.append(html.section("A/B sessions", *_ab_sessions(sessions, lone, chart), anchor="ab"))
    sweeps = find_sweeps([m for m in measured if id(m) not in in_ab])
    for sweep in sweeps:
        for series in sweep.series:
            series.label = paths.text(series.label)
            if not sweep.numeric:
                series.points = [(paths.text(str(value)), item) for value, item in series.points]
    if sweeps:
        body.append(html.section("Sweeps", *(
            chart(draw.sweep_chart(sweep), f"sweep-{number}-{_slug(sweep.key)}", "sweep",
                  f"J/token against {sweep.key}")
            for number, sweep in enumerate(sweeps, 1)), anchor="sweeps"))
    ramps = find_ramps([m for m in measured if id(m) not in in_ab])
    for ramp in ramps:
        ramp.name = paths.text(ramp.name)
    if ramps:
        body.append(html.section("Load ramps", *_ramps(ramps, chart), anchor="ramps"))
    results = [m for m in measured if m.result is not None and id(m) not in in_ab]
    if results:
        body.append(html.section("Power timelines", *_timelines(results, chart), anchor="timelines"))
    drawn = histories(inputs.baselines, measured)
    for history in drawn:
        history.label = paths.text(history.label)
    if drawn:
        body.append(html.section("History", *_histories(drawn, chart), anchor="history"))
    if baselines:
        unmatched = html.paragraph("Not in the baseline files, so not compared: " + "; ".join(missing)) \
            if missing else ""
        body.append(html.section("Baseline files", _baselines(baselines), unmatched, anchor="baselines"))
    if measured:
        body.append(html.section("Measurement warnings", _warnings(measured), anchor="warnings"))
    unmeasured = [m for m in measured if m.result is None]
    if unmeasured:
        body.append(html.section("Items without a result", _unmeasured(inputs, unmeasured), anchor="unmeasured"))
    return paths.page(html.page("llem report", body)), charts


def _header(inputs: Inputs, paths: Paths) -> str:
    from llenergymeasure import __version__

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sources = [paths.shown(source) for source in _sources(inputs)]
    parts = ["<header><h1>llem report</h1>",
             html.paragraph(f"Written {now} by llenergymeasure {__version__} from {len(sources)} file(s).", "meta")]
    if sources:
        parts.append(html.numbered_list(sources, "sources"))
    for origin, document in inputs.sessions:
        if document.get("dry_run"):
            parts.append(html.paragraph(f"{origin}: a dry run (--llem-dry-run): nothing was measured."))
    if any(m.estimated for m in inputs.measured):
        parts.append(html.paragraph("(estimated) = energy estimated from CPU time, not measured.", "note estimated"))
    parts.append("</header>")
    return "".join(parts)


def _sources(inputs: Inputs) -> list[str]:
    """Every file read (as given), else the sessions' origins: the header's numbered list."""
    return inputs.sources or list(dict.fromkeys(origin for origin, _ in inputs.sessions))


def _source_number(inputs: Inputs, item: Measured) -> str:
    """Where ``item`` came from: its number in the header's list of files."""
    sources = _sources(inputs)
    return f"#{sources.index(item.origin) + 1}" if item.origin in sources else "-"


def _summary(inputs: Inputs, verdicts: list[ExperimentVerdict], sessions: list[AbSession]) -> str:
    measured = inputs.measured
    by_label = {v.experiment: v.verdict for v in verdicts}
    by_label.update({session.a.label: "A of an A/B" for session in sessions})
    decode = any(m.result is not None and m.result.metrics.decode_joules_per_token is not None for m in measured)
    sessions = any(m.record is not None for m in measured)
    headers = ["experiment", "J/token (median)", "95% CI", "energy source", "tokens/s"]
    headers += ["decode J/token"] if decode else []
    headers += ["outcome"] if sessions else []
    headers += ["vs baseline"] if verdicts else []
    headers += ["warnings", "file"]
    rows = []
    notes = []
    for item in measured:
        energy = fmt(item.joules_per_token) + (" (estimated)" if item.estimated else "") + (
            " suspect" if item.suspect else "")
        css = "suspect" if item.suspect else "estimated" if item.estimated else ""
        ci = item.ci
        repeats = len(item.result.repeats) if item.result is not None else None
        ci_cell = f"{fmt(ci[0])}..{fmt(ci[1])}" if ci else ("single repeat" if repeats == 1 else "-")
        tokens = item.result.metrics.tokens_per_second if item.result is not None else (item.record or {}).get(
            "tokens_per_second")
        row: list[str | Cell] = [item.label, Cell(energy, css, numeric=True), Cell(ci_cell, numeric=True),
                                 Cell(item.energy_source, "word"), Cell(fmt(tokens), numeric=True)]
        if decode:
            row.append(Cell(fmt(item.result.metrics.decode_joules_per_token if item.result else None), numeric=True))
        if sessions:
            row.append(_outcome(item.record or {}))
        if verdicts:
            verdict = by_label.get(item.label, "-")
            row.append(Cell(verdict, _css(verdict)))
        row += [", ".join(code for code, _ in item.warnings) or "-", Cell(_source_number(inputs, item), numeric=True)]
        rows.append(row)
        if item.result is not None and item.result.energy_unavailable_reason:
            notes.append(f"{item.label}: energy unavailable: {item.result.energy_unavailable_reason}")
    return html.table(headers, rows) + html.bullet_list(notes)


def _verdicts(verdicts: list[ExperimentVerdict], lines_elsewhere: set[int]) -> str:
    """The verdict table, then each verdict's lines (but those an A/B session's section shows)."""
    rows = []
    for v in verdicts:
        if not v.metrics:
            rows.append([v.experiment, "-", "-", "-", "-", "-", Cell(v.verdict, _css(v.verdict)), v.against])
        for m in v.metrics:
            rows.append([v.experiment, m.metric, Cell(fmt(m.baseline), numeric=True),
                         Cell(fmt(m.candidate), numeric=True),
                         Cell(change_text(m.change, m.relative), numeric=True),
                         Cell(ci_text(m.ci_low, m.ci_high, m.relative), numeric=True),
                         Cell(m.verdict, _css(m.verdict)), v.against])
    parts = [html.table(["experiment", "metric", "baseline", "candidate", "change", "95% CI", "verdict", "against"],
                        rows)]
    for v in verdicts:
        if v.lines and id(v) not in lines_elsewhere:
            parts += [html.heading(f"{v.experiment}: {v.verdict}"), html.bullet_list(v.lines)]
    return "".join(parts)


def _baselines(baselines: list[tuple[str, Baseline]]) -> str:
    copies = carried_over(baselines)
    rows = []
    for index, (origin, baseline) in enumerate(baselines):
        commit = baseline.commit.sha[:10] + (" (dirty)" if baseline.commit.dirty else "") if baseline.commit else "-"
        for key, entry in baseline.entries.items():
            values = entry.values("joules_per_token")
            row: list[str | Cell] = [origin, f"{baseline.created_at:%Y-%m-%d %H:%M}", baseline.machine.describe(),
                                     commit, key, Cell(fmt(statistics.median(values)) if values else "n/a",
                                                       numeric=True), Cell(str(len(entry.repeats)), numeric=True)]
            if copies:
                earlier = copies.get((index, key))
                row.append(f"carried over from {earlier}: not a session of its own" if earlier else "-")
            rows.append(row)
    headers = ["file", "saved", "machine", "commit", "experiment", "J/token (median)", "repeats"]
    return html.table(headers + (["note"] if copies else []), rows)


def _ab_sessions(sessions: list[AbSession], lone: list[Measured], chart: Any) -> list[str]:
    """Each A/B session: its paired verdict, its windows and pairs, its one power timeline."""
    from llenergymeasure.report import charts as draw

    parts = []
    for number, session in enumerate(sessions, 1):
        verdict = session.verdict
        slug = f"ab-{number}-{_slug(session.b.label)}"
        headline = "; ".join(f"{m.metric} {change_text(m.change, m.relative)} "
                             f"(95% CI {ci_text(m.ci_low, m.ci_high, m.relative)}): {m.verdict}"
                             for m in verdict.metrics) or "nothing compared"
        parts.append(f'<article class="ab" id="{slug}">')
        parts.append(html.heading(f"A/B: {session.label}"))
        parts.append(html.paragraph(f"Paired verdict: {verdict.verdict}: {headline}",
                                    f"verdict ab-verdict {_css(verdict.verdict)}"))
        parts.append(html.paragraph(f"Gate: {session.gates}. Windows {' '.join(session.order)}, after an "
                                    f"unmeasured settling pair {' '.join(session.settled)} (order seed {session.seed}): "
                                    "each A/B pair is a block of two windows, so what the session shares cancels."))
        parts.append(chart(draw.ab_chart(session), slug, "ab",
                           f"A/B {session.label}: J/token of every window in the order they ran, and B against A "
                           "per pair with the paired estimate, its 95% CI and ±the gate's threshold"))
        parts.append(html.bullet_list(verdict.lines))
        assert session.a.result is not None and session.b.result is not None
        timeline = ab_timeline(session.a.result, session.b.result)
        if timeline is not None:
            devices = ", ".join(f"{t.device} (estimated)" if t.estimated else t.device for t in timeline.traces)
            parts.append(chart(draw.timeline_chart(session.b, timeline, title=f"A/B session {session.label}"),
                               f"{slug}-timeline", "timeline",
                               f"Power over time of the A/B session ({devices}): one session, both sides' windows "
                               "numbered in the order they ran (A1, B1, ...)"))
        else:
            for item in (session.a, session.b):
                own = timeline_of(item.result) if item.result is not None else None
                if own is not None:
                    parts.append(chart(draw.timeline_chart(item, own), f"{slug}-timeline-{_slug(item.label)}",
                                       "timeline", f"Power over time of {item.label}"))
        parts.append("</article>")
    for item in lone:
        side = (item.result.ab or {}).get("side") if item.result is not None else "?"
        parts.append(html.paragraph(f"{item.label}: side {side} of an A/B session that could not be paired (its other "
                                    "side is not among the inputs, or the two do not agree); give both result files "
                                    "of llem ab for the paired verdict."))
    return parts


def _ramps(ramps: list[Ramp], chart: Any) -> list[str]:
    """Each load ramp: a heading naming it, its Pareto chart, and a row per load point."""
    from llenergymeasure.report import charts as draw

    parts = []
    for number, ramp in enumerate(ramps, 1):
        slug = f"ramp-{number}-{_slug(ramp.name)}"
        slo = ramp.slo_point
        parts.append(f'<article class="ramp" id="{slug}">')
        parts.append(html.heading(f"Load ramp: {ramp.name}"))
        if ramp.has_slo:
            parts.append(html.paragraph(f"SLO point: {slo.item.label} ({fmt(slo.achieved, 3)} requests/s served)"
                                        if slo is not None else "SLO point: none (no load point meets the SLO)",
                                        "verdict slo-point"))
        good, star = (" and goodput", "star: the SLO point, ") if ramp.has_slo else ("", "")
        parts.append(chart(draw.ramp_chart(ramp), slug, "ramp",
                           f"Load ramp {ramp.name}: J/token{good} against the throughput served (requests/s in the "
                           f"steady window), one point per load point in ramp order; {star}hollow red: saturated"))
        parts.append(_ramp_table(ramp))
        parts.append("</article>")
    return parts


def _ramp_table(ramp: Ramp) -> str:
    """A row per load point: where on the load curve, whether it kept up, J/token; with ``slo:``, J/good
    token, goodput and whether it met the SLO (the SLO point said)."""
    slo = ramp.slo_point
    good_tokens = any(p.metrics.joules_per_good_token is not None for p in ramp.points)
    headers = ["load point", "offered (requests/s)", "served (requests/s)", "in flight (mean)", "saturated",
               "J/token"] + (["J/good token"] if good_tokens else []) + (
                   ["goodput (requests/s)", "SLO met"] if ramp.has_slo else [])
    rows = []
    for p in ramp.points:
        concurrency = p.point.get("concurrency")
        closed = f"closed loop of {concurrency}" if concurrency is not None else "closed loop"
        offered = fmt(p.offered, 3) if p.offered is not None else closed
        why = p.point.get("saturation")
        saturated = Cell(f"saturated: {why}" if why else "saturated", "suspect") if p.saturated else Cell("no", "word")
        energy = fmt(p.metrics.joules_per_token) + (" (estimated)" if p.item.estimated else "") + (
            " suspect" if p.item.suspect else "")
        row: list[str | Cell] = [p.item.label, Cell(offered, numeric=True), Cell(fmt(p.achieved, 3), numeric=True),
                                 Cell(fmt(p.in_flight, 3), numeric=True), saturated, Cell(energy, numeric=True)]
        if good_tokens:
            row.append(Cell(fmt(p.metrics.joules_per_good_token), numeric=True))
        if not ramp.has_slo:
            rows.append(row)
            continue
        row.append(Cell(fmt(p.metrics.goodput_requests_per_s, 3), numeric=True))
        if p.slo_met is None:
            row.append(Cell("-", "word"))
        elif p.slo_met:
            row.append(Cell("met (the SLO point)" if p is slo else "met", "passed"))
        else:
            missed = "; ".join(str(m) for m in p.point.get("slo_missed") or [])
            row.append(Cell(f"missed: {missed}" if missed else "missed", "failed"))
        rows.append(row)
    return html.table(headers, rows)


def _histories(drawn: list[History], chart: Any) -> list[str]:
    from llenergymeasure.report import charts as draw

    parts = [chart(draw.history_chart(history), f"history-{number}-{_slug(history.label)}", "history",
                   f"History of {history.label}: J/token per saved session, the pinned level of each segment, "
                   "accepted steps and red sessions marked")
             for number, history in enumerate(drawn[:MAX_HISTORIES], 1)]
    if len(drawn) > MAX_HISTORIES:
        parts.append(html.paragraph(f"Not drawn (only the first {MAX_HISTORIES} histories are): "
                                    + "; ".join(h.label for h in drawn[MAX_HISTORIES:])))
    return parts


def _timelines(results: list[Measured], chart: Any) -> list[str]:
    from llenergymeasure.report import charts as draw

    parts, without = [], []
    drawn = 0
    for number, item in enumerate(results, 1):
        assert item.result is not None
        timeline = timeline_of(item.result)
        if timeline is None:
            without.append(f"{item.label}: no power samples ({item.result.energy_source})")
            continue
        if drawn == MAX_TIMELINES:
            without.append(f"{item.label}: not drawn (only the first {MAX_TIMELINES} timelines are)")
            continue
        drawn += 1
        what = "phases shaded" if timeline.phases and not timeline.per_repeat else "measurement windows shaded"
        devices = ", ".join(f"{t.device} (estimated)" if t.estimated else t.device for t in timeline.traces)
        parts.append(chart(draw.timeline_chart(item, timeline), f"timeline-{number}-{_slug(item.label)}", "timeline",
                           f"Power over time of {item.label}: {devices}; {what}"))
    if without:
        parts.append(html.paragraph("Results without a drawn timeline:"))
        parts.append(html.bullet_list(without))
    return parts


def _warnings(measured: list[Measured]) -> str:
    rows: list[list[str | Cell]] = [[item.label, Cell(code, "word"), message or "-"]
                                    for item in measured for code, message in item.warnings]
    if not rows:
        return html.paragraph("No measurement warnings.")
    return html.table(["experiment", "code", "message"], rows)


def _unmeasured(inputs: Inputs, items: list[Measured]) -> str:
    rows = []
    for item in items:
        record = item.record or {}
        why = record.get("error") or "; ".join(str(note) for note in record.get("notes") or []) or "-"
        rows.append([item.label, _outcome(record), str(why), Cell(_source_number(inputs, item), numeric=True)])
    return html.table(["item", "outcome", "why", "file"], rows)


def _outcome(record: dict[str, Any]) -> Cell:
    """A pytest item's outcome as its session said it (the ``said`` verdict of --llem-json: the same
    words as the terminal, JUnit and markdown, doubts included), coloured by the outcome; a session
    file written before ``said`` existed gives the bare outcome."""
    outcome = str(record.get("outcome", "-"))
    said = record.get("said") if isinstance(record.get("said"), dict) else {}
    verdict = said.get("verdict")
    if isinstance(verdict, str) and verdict and verdict != outcome:
        return Cell(verdict, outcome if outcome in _KNOWN_CSS else "")  # long: it wraps, in the outcome's colour
    return Cell(outcome, _css(outcome))


_KNOWN_CSS = {"regressed", "improved", "inconclusive", "unverified", "suspect", "failed", "passed", "skipped"}


def _css(word: str) -> str:
    """The class of a verdict or outcome cell: kept on one line, coloured when it is one we know."""
    return f"word {word}" if word in _KNOWN_CSS else "word"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:60] or "x"
