"""``llem report``, run as a user runs it, on real results (see report_data): what the HTML holds,
the PNGs, the exit codes (0 written; 2 an input or output path that cannot be used, named), no
remote URL, every string escaped, an ``llem ab`` session shown as one comparison, paths shown
relative to the repository (never this machine's absolute paths), and no matplotlib import where
the CLI must stay light.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from llem_helpers import imported_modules, llem_process, result_files
from report_data import HOSTILE, report_inputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return report_inputs(tmp_path_factory.getbasetemp() / "report-inputs", tiny_model)


def report(tmp_path: Path, *paths: Path, png: bool = False, cwd: Path | None = None):
    """Run ``llem report PATHS -o report.html [--png pngs]``; (process, html text or None)."""
    out = tmp_path / "report.html"
    done = llem_process("report", *map(str, paths), "-o", str(out), *(["--png", str(tmp_path / "pngs")] if png else []),
                        cwd=cwd, timeout=300)
    return done, out.read_text(encoding="utf-8") if out.exists() else None


def charts(page: str) -> list[str]:
    """The kind of every chart, in page order."""
    return re.findall(r'<figure class="chart" id="[^"]+" data-kind="([^"]+)"', page)


def test_results_directory_gives_estimated_energy_sweep_and_every_warning(tmp_path, inputs):
    done, page = report(tmp_path, inputs.results)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(tmp_path / "report.html")]
    assert charts(page).count("sweep") == 1 and charts(page).count("joules_per_token") == 1
    assert "J/token against pytorch.batch_size" in page
    assert "(estimated)" in page
    for path in inputs.result_files:  # every warning of every result, code and message
        result = json.loads(path.read_text())
        assert result["measurement_warnings"], "a CPU estimate always warns"
        for warning in result["measurement_warnings"]:
            assert html.escape(warning["code"]) in page
            assert html.escape(warning["message"]) in page
        low, high = result["stats"]["joules_per_token"]["ci95_low"], result["stats"]["joules_per_token"]["ci95_high"]
        assert f"{low:.4g}..{high:.4g}" in page  # J/token's 95% CI


def test_one_result_has_no_sweep(tmp_path, inputs):
    done, page = report(tmp_path, inputs.result_files[0])
    assert done.returncode == 0, done.stderr
    assert "sweep" not in charts(page)


def test_session_file_gives_the_verdict_table_and_the_power_timeline(tmp_path, inputs):
    done, page = report(tmp_path, inputs.session)
    assert done.returncode == 0, done.stderr
    assert charts(page) == ["joules_per_token", "comparison", "timeline"]
    rows = re.findall(r"<tr><td>(llem_metered\.yaml::metered)</td><td>joules_per_token</td>(.*?)</tr>", page)
    assert len(rows) == 1
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0][1])
    assert cells[2:5] == ["+100.0%", "+100.0%..+100.0%", "regressed"]  # change, 95% CI, verdict (2 J vs 1 J)
    assert "gpu0" in page and "phases shaded" in page


def test_baseline_file_with_a_result_is_compared_here(tmp_path, inputs):
    session = json.loads(inputs.session.read_text())
    result = tmp_path / "result.json"  # the session's result as a result file: no session record with it
    result.write_text(json.dumps(session["items"][0]["result"]))
    done, page = report(tmp_path, inputs.baseline, result)
    assert done.returncode == 0, done.stderr
    assert "comparison" in charts(page)
    row = re.search(r"<tr><td>metered</td><td>joules_per_token</td>(.*?)</tr>", page)
    assert row, page
    assert re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))[2:5] == ["+100.0%", "+100.0%..+100.0%", "regressed"]
    assert "…/session/baseline.json" in page  # against: outside the repository, its last two parts
    assert str(inputs.baseline) not in page and str(tmp_path) not in page


def test_an_ab_session_is_one_comparison_with_its_paired_verdict_and_one_timeline(tmp_path, inputs):
    done, page = report(tmp_path, inputs.ab)
    assert done.returncode == 0, done.stderr
    assert charts(page) == ["joules_per_token", "comparison", "ab", "timeline"]  # one trace, not one per side
    row = inputs.ab_row()
    verdict = re.findall(r'<p class="verdict ab-verdict[^"]*">(.*?)</p>', page)
    assert verdict == [(f"Paired verdict: {row['verdict']}: joules_per_token {row['change']} (95% CI {row['ci']}): "
                        f"{row['verdict']}")]
    assert "A/B: tiny[batch_size=4] (B) vs tiny[batch_size=1] (A)" in page
    assert "Gate: joules_per_token:5%." in page  # the gate llem ab judged by, which its results record
    for line in inputs.ab_stdout.splitlines():  # every line of the verdict llem ab printed, word for word
        if line.startswith("  ") and not line.startswith("  to resolve"):
            assert html.escape(line.strip()) in page, line
    experiments = re.search(r'<section id="experiments">.*?</section>', page, re.DOTALL).group(0)
    assert ">A of an A/B<" in experiments and f">{row['verdict']}<" in experiments


def test_paths_are_shown_relative_to_the_repository(tmp_path, inputs):
    """Results inside a git work tree, the report asked for from a directory below its top: the
    page names them from the top; nothing of the machine's absolute paths is on it."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    shutil.copytree(inputs.ab, repo / "results" / "ab")
    shutil.copy(inputs.session, repo / "session.json")
    done, page = report(tmp_path, repo / "results" / "ab", repo / "session.json", cwd=repo / "sub")
    assert done.returncode == 0, done.stderr
    names = [f"results/ab/{path.name}" for path in result_files(repo / "results" / "ab")]
    assert re.findall(r'<ol class="sources"><li>(.*?)</li><li>(.*?)</li><li>(.*?)</li></ol>', page) == [
        (*names, "session.json")]
    assert str(tmp_path) not in page and str(tmp_path.resolve()) not in page
    text = re.sub(r"<svg.*?</svg>", "", page, flags=re.DOTALL)
    assert not re.search(r"(?<![\w.~/:<>…-])/(tmp|home|root|Users|work|var)/", text)


def test_no_remote_url_no_script_and_a_hostile_name_stays_text(tmp_path, inputs):
    done, page = report(tmp_path, inputs.results, inputs.session, inputs.baseline)
    assert done.returncode == 0, done.stderr
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\b(src|href)=\"(?!#)", page)  # only in-page references (SVG glyphs)
    assert "<script" not in page.lower() and "<img" not in page.lower() and "<iframe" not in page.lower()
    assert "Content-Security-Policy" in page
    assert html.escape(f"{HOSTILE}[batch_size=1]") in page


def test_png_charts_are_written_and_listed(tmp_path, inputs):
    from PIL import Image

    done, page = report(tmp_path, inputs.results, inputs.session, png=True)
    assert done.returncode == 0, done.stderr
    listed = [Path(line) for line in done.stdout.splitlines()]
    assert listed[0] == tmp_path / "report.html"
    pngs = listed[1:]
    assert len(pngs) == len(charts(page)) >= 4
    assert sorted(pngs) == sorted((tmp_path / "pngs").iterdir())
    for png in pngs:
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 400 and image.height > 100
            assert len(image.convert("L").getcolors(maxcolors=1 << 16) or [0, 0]) > 2  # drawn, not blank


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("missing.json", None, "no such file"),
    ("notes.txt", "not json at all", "not JSON"),
    ("other.json", '{"hello": "world"}', "not an llem file"),
    ("list.json", "[1, 2]", "not an llem file"),
    ("x.timeline.json", '{"experiment_id": "x", "repeats": []}', "sidecar"),
    ("old.json", '{"experiment_id": "x", "schema_version": 99}', "schema_version"),
    ("broken.json", '{"kind": "llem-baseline", "schema_version": 1}', "not a valid baseline"),
    ("session.json", '{"llem_version": "0", "items": [{"no": "nodeid"}]}', "not a session record"),
])
def test_a_bad_input_exits_2_naming_it(tmp_path, inputs, name, content, fragment):
    bad = tmp_path / name
    if content is not None:
        bad.write_text(content)
    done, page = report(tmp_path, inputs.results, bad)
    assert done.returncode == 2, done.stderr
    assert str(bad) in done.stderr and fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert page is None


def test_an_empty_directory_and_unusable_outputs_exit_2(tmp_path, inputs):
    empty = tmp_path / "empty"
    empty.mkdir()
    done, _ = report(tmp_path, empty)
    assert done.returncode == 2 and str(empty) in done.stderr and "no result" in done.stderr

    done = llem_process("report", str(inputs.results), "-o", str(tmp_path), timeout=120)
    assert done.returncode == 2 and "is a directory" in done.stderr

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = llem_process("report", str(inputs.results), "-o", str(blocker / "report.html"), timeout=120)
    assert done.returncode == 2 and str(blocker) in done.stderr and "not a directory" in done.stderr
    done = llem_process("report", str(inputs.results), "-o", str(tmp_path / "r.html"), "--png", str(blocker),
                        timeout=120)
    assert done.returncode == 2 and "--png" in done.stderr and not (tmp_path / "r.html").exists()

    done = llem_process("report", "-o", str(tmp_path / "r.html"), timeout=120)
    assert done.returncode == 2  # no input: typer's usage error


@pytest.mark.parametrize("args", [("--help",), ("report", "--help"), ("run", "--dry-run", "-d", "builtin", "-n", "4")])
def test_cli_does_not_import_matplotlib(args, tiny_model):
    args = (*args, "--model", str(tiny_model)) if "--dry-run" in args else args
    done = llem_process(*args, python_flags=("-X", "importtime"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert not {m for m in imported_modules(done.stderr) if m.split(".")[0] in ("matplotlib", "PIL")}


def test_the_plugin_and_the_report_package_do_not_import_matplotlib():
    import subprocess
    import sys

    code = ("import sys, pytest_llem.plugin, llenergymeasure.report, llenergymeasure.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'PIL')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
