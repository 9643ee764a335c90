"""Small things a user trips over: big numbers in exponent notation, a confidence interval of a
positive quantity below zero, the tiny-model builder taking ``--help`` for a folder, and the
plain progress lines a CI log gets."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from llenergymeasure.cli.display import print_result, summary_row
from llenergymeasure.core.progress import INTERVAL_ENV, LineBar, Progress, interval_s
from llenergymeasure.results.tables import change_text, fmt
from llenergymeasure.testing.tiny_model import main as tiny_model_main
from tests.unit.result_builders import make_repeat, make_result

# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (10520.3, "10520"), (9999.6, "10000"), (123456789.0, "123456789"), (-12345.6, "-12346"),
    (1234.5678, "1235"), (0.0001234, "0.0001234"), (1.234e-05, "1.234e-05"), (0.08049, "0.08049"),
])
def test_large_numbers_are_printed_whole_and_small_ones_keep_their_figures(value, text):
    assert fmt(value) == text


def test_an_absolute_change_is_printed_whole_with_its_sign():
    assert change_text(12345.6, relative=False) == "+12346"
    assert change_text(-12345.6, relative=False) == "-12346"
    assert change_text(0.0123, relative=False) == "+0.0123"


def fast_result():
    """Two repeats of 21040 tokens in 2 s each: 10520 tokens/s."""
    return make_result([make_repeat(i, energy_j=50.0 + i, output_tokens=21040) for i in range(2)])


def test_tokens_per_second_in_the_summary_and_the_table_are_plain(capsys):
    result = fast_result()
    assert result.metrics.tokens_per_second == pytest.approx(10520)
    print_result(result, [], None)
    out = capsys.readouterr().out
    assert "10520 tokens/s" in out and "e+" not in out
    assert summary_row("x", result, [], None)["tokens/s"] == "10520"


def test_the_ci_of_a_positive_metric_in_a_result_stays_at_or_above_zero():
    result = make_result([make_repeat(0, energy_j=1.0), make_repeat(1, energy_j=30.0)])
    stats = result.stats["joules_per_token"]
    assert stats.ci95_low == 0.0 < stats.median < stats.ci95_high


# --- the tiny-model builder's command line ----------------------------------------------------


def tiny_model_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llenergymeasure.testing.tiny_model", *args], check=False, cwd=cwd,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_tiny_model_help_prints_usage_and_builds_nothing(tmp_path):
    proc = tiny_model_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "--layers" in proc.stdout and "directory" in proc.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--", "-x"], ["--", "--help"], [], ["--layers", "0", "m"], ["--width", "w", "m"]])
def test_tiny_model_refuses_a_dash_directory_and_bad_sizes(tmp_path, args):
    proc = tiny_model_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_tiny_model_builds_the_size_asked_for(tmp_path, capsys):
    tiny_model_main([str(tmp_path / "m"), "--layers", "1", "--width", "32"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (config["n_layer"], config["n_embd"]) == (1, 32)


# --- plain progress lines ---------------------------------------------------------------------


def test_phases_off_a_terminal_are_plain_lines(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "0")
    stream = io.StringIO()  # not a terminal
    say = Progress(True, stream)
    with say.phase("loading m on cpu"):
        pass
    with say.phase("window 1/2", 3, batches=True) as bar:
        for _ in range(3):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "loading m on cpu ..."
    assert lines[1].startswith("loading m on cpu: done in ") and lines[1].endswith(" s")
    assert lines[2] == "window 1/2 ..."
    assert any(line.startswith("window 1/2: 2/3 batches, ") for line in lines)
    assert lines[-1].startswith("window 1/2: done, 3/3 batches in ")
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_a_line_bar_waits_for_its_interval():
    stream = io.StringIO()
    bar = LineBar("warmup", None, stream, interval=3600)
    for _ in range(5):
        bar.update(1)
    assert stream.getvalue() == "" and bar.n == 5


def test_a_disabled_progress_says_nothing():
    stream = io.StringIO()
    say = Progress(False, stream)
    with say.phase("loading", 2, batches=True) as bar:
        bar.update(1)
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("2.5", 2.5), ("", 15.0), ("soon", 15.0),
                                                ("-1", 15.0), ("nan", 15.0)])
def test_the_interval_comes_from_the_environment(monkeypatch, value, seconds):
    monkeypatch.setenv(INTERVAL_ENV, value)
    assert interval_s() == seconds


def test_gate_verdicts_print_large_numbers_whole():
    from llenergymeasure.config.benchmark_file import Bound
    from llenergymeasure.results.gates import check_expect

    result = fast_result()
    [within] = check_expect(result, {"tokens_per_second": Bound(min=50)})
    assert within.passed and within.text == "tokens_per_second 10520 within min 50"
    [below] = check_expect(result, {"tokens_per_second": Bound(min=20000)})
    assert not below.passed and below.text.startswith("tokens_per_second 10520 < min 20000")
