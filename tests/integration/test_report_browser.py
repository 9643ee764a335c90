"""The report of real results (``llem run`` on the tiny model, a pytest session that regressed, and
an ``llem ab`` session; see report_data), opened in headless Chromium: no console error, every
chart drawn (its box in the screenshot holds drawn pixels), a hostile experiment name shown as
text, not run; the evidence a verdict rests on is on the page (each window's J/token beside the
median, the windows numbered on the timelines, the +-threshold band of each gate, the A/B
session as one comparison with its paired verdict and one timeline); table cells never break
inside a word; and no absolute path of the machine that wrote it. A load ramp's results (report_data's
``ramp_results``) give its Pareto chart: a marker per load point, the SLO point and the saturated
point marked and labelled, a row per point, and the steady window labelled on each power timeline.

Two pages: everything (``rendered``), and the report of the A/B session, the regressed session and
its baseline (``docs``): the page of docs/report.png. With ``LLEM_DOCS_SCREENSHOT=docs/report.png``
the test writes that screenshot there (how docs/report.png is made).

Chromium is started for real, once for the module, and driven through the DevTools protocol
(browser.py). Without a Chromium or Chrome binary the tests skip, saying so; ``.ci/run`` installs
one where it can.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import Chromium, Page, find_chromium
from llem_helpers import llem_process, result_files
from report_data import (
    HOSTILE,
    RAMP_POINTS,
    REPO,
    ReportInputs,
    ramp_results,
    report_inputs,
)

pytestmark = pytest.mark.slow

KINDS = {"joules_per_token", "sweep", "comparison", "timeline", "ab"}


@dataclass
class Rendered:
    page: Page
    html: str
    screenshot: bytes
    boxes: list[dict[str, Any]]
    inputs: ReportInputs | None  # None: a page of other inputs (the ramp's)
    basetemp: Path


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium or Chrome on PATH (chromium, google-chrome; or set LLEM_CHROMIUM): "
                    "the report is not checked in a browser")
    browser = Chromium.start(binary)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> ReportInputs:
    return report_inputs(tmp_path_factory.getbasetemp() / "report-inputs", tiny_model)


def render(tmp_path_factory: pytest.TempPathFactory, chromium: Chromium, inputs: ReportInputs | None, name: str,
           *paths: Path) -> Rendered:
    out = tmp_path_factory.mktemp(name) / "report.html"
    done = llem_process("report", *map(str, paths), "-o", str(out), timeout=300)
    assert done.returncode == 0, done.stderr
    page = chromium.open_page(out.as_uri())
    screenshot = page.screenshot()
    (out.parent / "report.png").write_bytes(screenshot)  # to look at when a test fails
    return Rendered(page, out.read_text(encoding="utf-8"), screenshot, page.chart_boxes(), inputs,
                    tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, chromium, inputs) -> Rendered:
    return render(tmp_path_factory, chromium, inputs, "report", inputs.results, inputs.session, inputs.baseline,
                  inputs.ab)


@pytest.fixture(scope="module")
def docs(tmp_path_factory, chromium, inputs) -> Rendered:
    shown = render(tmp_path_factory, chromium, inputs, "docs-report", inputs.ab, inputs.session, inputs.baseline)
    target = os.environ.get("LLEM_DOCS_SCREENSHOT")
    if target:
        (REPO / target).write_bytes(shown.screenshot)
    return shown


@pytest.fixture(scope="module")
def ramp(tmp_path_factory, chromium) -> Rendered:
    """The report of a load ramp's three results, as ``llem report DIR`` writes it."""
    results = tmp_path_factory.mktemp("ramp-results") / "results"
    assert len(ramp_results(results)) == len(RAMP_POINTS)
    return render(tmp_path_factory, chromium, None, "ramp-report", results)


def assert_drawn(screenshot: bytes, box: dict[str, Any]) -> None:
    """The chart's box lies on the page and holds ink (axes, lines, labels) on its white."""
    from PIL import Image

    image = Image.open(io.BytesIO(screenshot)).convert("L")
    assert box["width"] > 300 and box["height"] > 150, box
    left, top = round(box["x"]), round(box["y"])
    right, bottom = round(box["x"] + box["width"]), round(box["y"] + box["height"])
    assert right <= image.width and bottom <= image.height, (box, image.size)
    histogram = image.crop((left, top, right, bottom)).histogram()  # pixels per grey level
    drawn = sum(histogram[:200])  # ink: axes, lines, labels (the background is white)
    assert drawn > 0.01 * sum(histogram), (box, drawn, sum(histogram))


def svg_ids(page: Page, chart: str, pattern: str) -> list[dict[str, Any]]:
    """The elements of chart ``chart`` (its figure's id) whose id matches ``pattern`` (a CSS
    attribute selector), with their marker count (``use`` elements) and box."""
    return json.loads(page.evaluate(f"""JSON.stringify([...document.querySelectorAll('{chart} [id{pattern}]')]
        .map(e => {{ const r = e.getBoundingClientRect();
                    return {{id: e.id, markers: e.querySelectorAll("use").length, x: r.x, width: r.width}}; }}))"""))


def test_the_page_loads_without_console_errors(rendered):
    assert rendered.page.console_errors() == []
    assert rendered.page.evaluate("document.title") == "llem report"


def test_every_chart_is_drawn(rendered):
    assert {box["kind"] for box in rendered.boxes} == KINDS
    for box in rendered.boxes:
        assert_drawn(rendered.screenshot, box)


def test_a_hostile_name_is_shown_as_text_and_never_runs(rendered):
    page = rendered.page
    assert page.evaluate("document.scripts.length") == 0
    assert page.evaluate("document.images.length") == 0
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert f"{HOSTILE}[batch_size=1]" in page.evaluate("document.body.innerText")


def test_each_window_is_drawn_beside_the_median_and_its_ci(docs):
    """A tick per measured window in each row of the J/token chart: A's and B's windows of the A/B
    session, then the session item's repeats (the order of the inputs)."""
    sides = [json.loads(path.read_text()) for path in result_files(docs.inputs.ab)]
    item = json.loads(docs.inputs.session.read_text())["items"][0]["result"]
    expected = [len(result["repeats"]) for result in (*sides, item)]
    rows = svg_ids(docs.page, "#chart-joules-per-token", '^="joules-per-token-repeats-"')
    assert [row["id"] for row in rows] == [f"joules-per-token-repeats-{n}" for n in range(3)]
    assert [row["markers"] for row in rows] == expected == [5, 5, 3]


def test_the_comparison_chart_draws_each_gates_threshold_band(docs):
    """Row 0: the session item against its baseline (its file's 10% gate); row 1: the A/B session
    (llem ab's 5% gate, recorded in its results). On one axis, the 10% band is twice as wide as the 5% one."""
    bands = svg_ids(docs.page, "#chart-comparison", '^="comparison-threshold-band-"')
    assert [band["id"] for band in bands] == ["comparison-threshold-band-0", "comparison-threshold-band-1"]
    ratio = bands[0]["width"] / bands[1]["width"]
    assert 1.9 < ratio < 2.1, bands
    assert abs((bands[0]["x"] + bands[0]["width"] / 2) - (bands[1]["x"] + bands[1]["width"] / 2)) < 1.5  # both at 0
    assert docs.page.evaluate("document.querySelectorAll('figure[data-kind=ab] [id$=\"-threshold-band-ab\"]').length") == 1


def test_an_ab_session_is_one_comparison_with_the_paired_verdict_llem_ab_printed(docs):
    page, row = docs.page, docs.inputs.ab_row()
    verdicts = page.evaluate("[...document.querySelectorAll('p.ab-verdict')].map(p => p.innerText)")
    assert verdicts == [(f"Paired verdict: {row['verdict']}: joules_per_token {row['change']} "
                         f"(95% CI {row['ci']}): {row['verdict']}")]
    article = "document.querySelector('article.ab')"
    assert page.evaluate(f"{article}.querySelectorAll('figure[data-kind=timeline]').length") == 1
    # one session trace on the page for the A/B session, one for the pytest session's item
    assert page.evaluate("document.querySelectorAll('figure[data-kind=timeline]').length") == 2
    labels = page.evaluate(f"""[...{article}.querySelectorAll('figure[data-kind=timeline] [id*="-window-label-"]')]
                               .map(e => e.id.split('-window-label-')[1])""")
    assert sorted(labels) == sorted([f"{side}{n}" for side in "AB" for n in range(1, 6)])
    table = page.evaluate("document.querySelector('#baseline table').innerText")
    assert f"{row['change']}\t{row['ci']}\t{row['verdict']}" in table  # in the verdict table too


def test_the_windows_are_numbered_on_the_power_timeline(docs):
    labels = docs.page.evaluate("""[...document.querySelectorAll('#timelines [id*="-window-label-"]')]
                                   .map(e => e.id.split('-window-label-')[1])""")
    assert labels == ["1", "2", "3"]  # the session item's three windows, in order


def test_table_cells_wrap_only_between_words(docs, rendered, ramp):
    """Every word (a run without spaces) of every cell lies on one line, and no table is wider than
    its box on the page (a wide one scrolls inside it)."""
    for shown in (docs, rendered, ramp):
        broken = shown.page.evaluate("""(() => {
            const broken = [];
            for (const cell of document.querySelectorAll("td, th")) {
                const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    for (const m of node.data.matchAll(/\\S+/g)) {
                        const range = document.createRange();
                        range.setStart(node, m.index);
                        range.setEnd(node, m.index + m[0].length);
                        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                        if (tops.size > 1) broken.push(m[0]);
                    }
                }
            }
            return broken;
        })()""")
        assert broken == []
        assert shown.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_no_absolute_path_of_this_machine_is_on_the_page(docs, rendered):
    for shown in (docs, rendered):
        for absolute in {str(shown.basetemp), str(shown.basetemp.resolve()), str(REPO)}:
            assert absolute not in shown.html
        text = shown.page.evaluate("document.body.innerText")
        assert "…/session/session.json" in text and "…/session/baseline.json" in text


def boxes(page: Page, selector: str) -> list[dict[str, float]]:
    """The box (page pixels) of every element ``selector`` finds."""
    found = f"document.querySelectorAll({json.dumps(selector)})"
    return json.loads(page.evaluate(f"""JSON.stringify([...{found}].map(e => {{
        const r = e.getBoundingClientRect(); return {{x: r.x, y: r.y, width: r.width, height: r.height,
                                                    cx: r.x + r.width / 2, cy: r.y + r.height / 2}}; }}))"""))


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (inner["width"] > 0 and inner["height"] > 0 and outer["x"] <= inner["x"]
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] and outer["y"] <= inner["y"]
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"])


def test_a_load_ramp_is_drawn_as_its_pareto_chart_with_the_slo_point_and_saturation_marked(ramp):
    """One ramp chart: J/token, J/good token and goodput against the rate served, a marker per load
    point in ramp order; the star of the SLO point on the middle point and the hollow red mark on
    the saturated last one, each labelled inside the chart; the table a row per point."""
    page = ramp.page
    assert page.console_errors() == []
    assert page.evaluate("document.querySelectorAll('#ramps h3')[0].innerText") == "Load ramp: myramp"
    [box] = [box for box in ramp.boxes if box["kind"] == "ramp"]
    assert_drawn(ramp.screenshot, box)
    chart = f"#{box['id']}"
    [svg] = boxes(page, f"{chart} svg")
    for line in ("jpt", "jgt", "goodput"):  # each line: a marker per load point
        markers = boxes(page, f"{chart} [id$='-{line}-points'] use")
        assert len(markers) == len(RAMP_POINTS), line
        assert [m["cx"] for m in markers] == sorted(m["cx"] for m in markers)  # ramp order: more served each time
        for mark, number in (("slo-point", 1), ("saturated", 2)):
            [over] = boxes(page, f"{chart} [id$='-{line}-{mark}'] use")
            assert abs(over["cx"] - markers[number]["cx"]) < 1 and abs(over["cy"] - markers[number]["cy"]) < 1
    for line in ("jpt", "goodput"):  # labelled where a reader looks: visible, inside the chart
        for label in (f"{line}-slo-label", f"{line}-saturated-label-2"):
            [shown] = boxes(page, f"{chart} [id$='-{label}']")
            assert inside(shown, svg), (label, shown, svg)
    assert page.evaluate("document.querySelector('p.slo-point').innerText") == \
        f"SLO point: {RAMP_POINTS[1].id} ({RAMP_POINTS[1].achieved:g} requests/s served)"

    rows = page.evaluate("""[...document.querySelectorAll('#ramps tbody tr')]
                            .map(tr => [...tr.cells].map(td => td.innerText))""")
    headers = page.evaluate("[...document.querySelectorAll('#ramps thead th')].map(th => th.innerText)")
    table = [dict(zip(headers, row)) for row in rows]
    assert [row["load point"] for row in table] == [point.id for point in RAMP_POINTS]
    assert [row["offered (requests/s)"] for row in table] == ["1", "4", "closed loop of 16"]
    assert [row["served (requests/s)"] for row in table] == [f"{point.achieved:g}" for point in RAMP_POINTS]
    assert [row["saturated"] for row in table] == ["no", "no", f"saturated: {RAMP_POINTS[2].saturation}"]
    assert [row["SLO met"] for row in table] == ["met", "met (the SLO point)", f"missed: {RAMP_POINTS[2].missed[0]}"]
    assert all(row["J/token"] != "n/a" and row["goodput (requests/s)"] != "n/a" for row in table)
    assert str(ramp.basetemp) not in ramp.html and str(ramp.basetemp.resolve()) not in ramp.html


def test_a_load_points_steady_window_is_labelled_on_its_power_timeline(ramp):
    page = ramp.page
    for number in range(1, len(RAMP_POINTS) + 1):
        timeline = f"#timelines figure:nth-of-type({number})"
        [svg] = boxes(page, f"{timeline} svg")
        [window] = boxes(page, f"{timeline} [id$='-window-1']")
        [steady] = boxes(page, f"{timeline} [id$='-steady-1']")
        [label] = boxes(page, f"{timeline} [id$='-steady-label-1']")
        assert window["x"] < steady["x"] and steady["x"] + steady["width"] < window["x"] + window["width"]
        assert inside(label, steady) and inside(label, svg)
    assert page.evaluate("document.querySelectorAll('#ramps figure, #timelines figure').length") == \
        1 + len(RAMP_POINTS)
