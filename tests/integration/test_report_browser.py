"""The report of real results (``llem run`` on the tiny model, and a pytest session that regressed;
see report_data), opened in headless Chromium: no console error, every chart drawn (its box in
the screenshot holds drawn pixels), and a hostile experiment name shown as text, not run.

Chromium is started for real, once for the module, and driven through the DevTools protocol
(browser.py). Without a Chromium or Chrome binary the tests skip, saying so; ``.ci/run`` installs
one where it can.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from browser import Chromium, Page, find_chromium
from llem_helpers import llem_process
from report_data import HOSTILE, report_inputs

pytestmark = pytest.mark.slow

KINDS = {"joules_per_token", "sweep", "comparison", "timeline"}


@dataclass
class Rendered:
    page: Page
    screenshot: bytes
    boxes: list[dict[str, Any]]


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
def rendered(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, chromium: Chromium) -> Rendered:
    inputs = report_inputs(tmp_path_factory.getbasetemp() / "report-inputs", tiny_model)
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = llem_process("report", str(inputs.results), str(inputs.session), str(inputs.baseline), "-o", str(out),
                        timeout=300)
    assert done.returncode == 0, done.stderr
    page = chromium.open_page(out.as_uri())
    screenshot = page.screenshot()
    (out.parent / "report.png").write_bytes(screenshot)  # to look at when a test fails
    return Rendered(page, screenshot, page.chart_boxes())


def test_the_page_loads_without_console_errors(rendered):
    assert rendered.page.console_errors() == []
    assert rendered.page.evaluate("document.title") == "llem report"


def test_every_chart_is_drawn(rendered):
    from PIL import Image

    assert {box["kind"] for box in rendered.boxes} == KINDS
    image = Image.open(io.BytesIO(rendered.screenshot)).convert("L")
    for box in rendered.boxes:
        assert box["width"] > 300 and box["height"] > 150, box
        left, top = round(box["x"]), round(box["y"])
        right, bottom = round(box["x"] + box["width"]), round(box["y"] + box["height"])
        assert right <= image.width and bottom <= image.height, (box, image.size)
        histogram = image.crop((left, top, right, bottom)).histogram()  # pixels per grey level
        drawn = sum(histogram[:200])  # ink: axes, lines, labels (the background is white)
        assert drawn > 0.01 * sum(histogram), (box, drawn, sum(histogram))


def test_a_hostile_name_is_shown_as_text_and_never_runs(rendered):
    page = rendered.page
    assert page.evaluate("document.scripts.length") == 0
    assert page.evaluate("document.images.length") == 0
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert f"{HOSTILE}[batch_size=1]" in page.evaluate("document.body.innerText")
