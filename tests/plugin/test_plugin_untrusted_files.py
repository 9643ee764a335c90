"""The plugin and files it did not write (issue 19): no result is lost, no reader is unbounded.

- ``--llem-json``, ``--llem-markdown``, ``--llem-benchmark-json`` and ``--llem-html`` replace only
  a file of their own kind that llem wrote: naming a result, a baseline, the ``--llem-baseline``
  file or anyone else's file is a usage error before anything runs (the file left byte for
  byte); a file that appears there during the session is not replaced either (the session fails).
- Baseline files of this machine's history that cannot be read (corrupt, over the size cap, a
  FIFO, a symlink to /dev/zero; a CI cache is anyone's) are left out, each named in a warning and
  in the summary, and the session goes on. It runs under an address-space cap (``-p memcap``),
  so a reader that would grow to gigabytes fails fast instead of taking the machine.
- Ctrl-C or SIGTERM while the baseline is saved: no file and no temp file is left, no traceback,
  and pytest exits 130 or 143. The session holds (``-p holdsave``) right after the baseline's temp
  file is written and tells the test so with a marker file; the test signals it then.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from llenergymeasure.results.baselines import Baseline
from tests.plugin.test_plugin_fixture import METERED
from tests.unit.result_builders import make_repeat, make_result

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, signals and rlimits are POSIX")

TINY = "model: MODEL\ndataset: builtin\nn: 2\nprecision: fp32\n"
NOT_REPLACED = "exists and is not {what} written by llem, so it is not replaced (llem never overwrites a result, " \
               "a baseline or anyone else's file): give a new file name, or move this file away first"

# A plugin for the sessions below (``-p memcap``): at most 2 GiB of address space, far more than a
# session of these tests needs; a reader of /dev/zero hits it in a second instead of growing for ever.
MEMCAP_PLUGIN = """
import resource

resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
"""

# ``-p holdsave``: when the session's outputs are written, the first fsync (the baseline's temp
# file, the only output asked for) writes the marker file ``saving`` and then waits for a signal.
HOLDSAVE_PLUGIN = """
import os
import time
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    fsync = os.fsync

    def held(fd):
        fsync(fd)
        os.fsync = fsync
        Path("saving").write_text("")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)

    os.fsync = held
"""


def saved_result(directory):
    return make_result([make_repeat(i, energy_j=10.0) for i in range(3)]).save(directory)


@pytest.mark.parametrize(("option", "existing", "what"), [
    ("--llem-json", "a result", "a session JSON file (--llem-json)"),
    ("--llem-json", "a baseline", "a session JSON file (--llem-json)"),
    ("--llem-markdown", "README.md", "a markdown report of llem"),
    ("--llem-benchmark-json", "package.json", "a github-action-benchmark JSON file"),
    ("--llem-html", "index.html", "an HTML report"),
])
def test_an_output_naming_a_file_llem_did_not_write_is_a_usage_error(pytester, write_llem, option, existing, what):
    write_llem("llem_x.yaml", TINY)
    if existing == "a result":
        path = saved_result(pytester.path / "results")
    elif existing == "a baseline":
        path = Baseline.from_results([make_result([make_repeat(i, energy_j=1.0) for i in range(3)])]).save(
            pytester.path / "base.json")
    else:
        path = pytester.path / existing
        path.write_text("# my project\n" if existing.endswith(".md") else '{"name": "mine"}\n'
                        if existing.endswith(".json") else "<!DOCTYPE html>\n<p>mine</p>\n")
    before = path.read_bytes()
    shown = path.relative_to(pytester.path)
    result = pytester.runpytest("--llem-dry-run", option, str(shown))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option} {shown}: {NOT_REPLACED.format(what=what)}"])
    assert path.read_bytes() == before


def test_an_output_naming_the_baseline_file_it_compares_with_is_a_usage_error(pytester, write_llem):
    write_llem("llem_x.yaml", TINY)
    baseline = Baseline.from_results([make_result([make_repeat(i, energy_j=1.0) for i in range(3)])]).save(
        pytester.path / "base.json")
    before = baseline.read_bytes()
    result = pytester.runpytest("--llem-dry-run", "--llem-baseline", "base.json", "--llem-json", "./base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --llem-json ./base.json: is one of the inputs (base.json); "
                                 "write the output to another file"])
    assert baseline.read_bytes() == before


def test_outputs_replace_their_own_earlier_files(pytester, write_llem):
    write_llem("llem_x.yaml", TINY)
    outputs = ["--llem-json", "session.json", "--llem-markdown", "report.md", "--llem-benchmark-json", "bench.json"]
    for _ in range(2):
        result = pytester.runpytest("--llem-dry-run", *outputs)
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        result.stdout.fnmatch_lines(["llem: results written to session.json",
                                     "llem: 0 benchmark value(s) written to bench.json *",
                                     "llem: markdown report written to report.md"])
    assert json.loads((pytester.path / "session.json").read_text())["items"][0]["nodeid"] == "llem_x.yaml::x"


def test_a_file_that_appears_at_an_output_during_the_session_is_not_replaced(pytester, write_llem):
    write_llem("llem_x.yaml", TINY)
    pytester.makepyfile(test_put="from pathlib import Path\n\n"
                                 "def test_put():\n    Path('session.json').write_text('{\"mine\": 1}')\n")
    result = pytester.runpytest("--llem-dry-run", "--llem-json", "session.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    refusal = NOT_REPLACED.format(what="a session JSON file (--llem-json)")
    result.stdout.fnmatch_lines([
        f"llem: could not write --llem-json session.json: session.json: {refusal}",
        "llem: the session fails (exit 1): --llem-json session.json asked for and not written",
    ])
    assert (pytester.path / "session.json").read_text() == '{"mine": 1}'


def test_unreadable_history_files_are_named_in_a_warning_and_the_summary(pytester, fake_meter, monkeypatch):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_metered=METERED, memcap=MEMCAP_PLUGIN)
    monkeypatch.setenv("TOKENS", "100")
    for _ in range(2):  # the second replaces the first's benchmark JSON, which holds entries
        saved = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline", "--llem-benchmark-json", "b.json")
        assert saved.ret == pytest.ExitCode.OK, saved.stdout.str()
    assert len(json.loads((pytester.path / "b.json").read_text())) == 4  # 2 items x 2 metrics
    [directory] = (pytester.path / ".llem" / "baselines").iterdir()
    corrupt, big, fifo, zero = (directory / f"2099010{day}T000000Z.json" for day in range(1, 5))  # the newest
    corrupt.write_text('{"kind": "llem-baseline", ')
    with big.open("wb") as fh:
        fh.truncate(64 * 2**20 + 1)  # sparse
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")

    result = pytester.runpytest_subprocess("-p", "memcap", "-p", "fakemeter", "--llem-baseline", "auto",
                                           "--llem-markdown", "report.md", timeout=300)

    result.assert_outcomes(passed=2, warnings=4)
    zero, fifo, big, corrupt = (path.relative_to(pytester.path).as_posix() for path in (zero, fifo, big, corrupt))
    lines = [f"{zero}: is a character device (a link to /dev/zero), not a baseline file; only a regular file is read",
             f"{fifo}: is a FIFO (named pipe), not a baseline file; only a regular file is read",
             f"{big}: is larger than 64 MiB, the most a baseline file may hold; not read: is it the right file?",
             f"{corrupt}: not a readable baseline file (*"]  # paths relative to the repository
    result.stdout.fnmatch_lines([f"*LlemBaselineWarning: left out of this machine's baseline history: {line}"
                                 for line in lines], consecutive=False)
    result.stdout.fnmatch_lines(["llem: 4 baseline file(s) of this machine's history could not be read and were left "
                                 "out:", *(f"  {line}" for line in lines)], consecutive=True)
    result.stdout.fnmatch_lines(["test_metered.py::test_window *passed*joules_per_token +0.0% unchanged"])
    markdown = (pytester.path / "report.md").read_text()
    assert "4 baseline file(s) of this machine's history could not be read and were left out:" in markdown
    assert f"- `{fifo}: is a FIFO (named pipe), not a baseline file; only a regular file is read`" in markdown


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_baseline_is_saved_leaves_no_file_and_exits_with_its_code(pytester, fake_meter, monkeypatch,
                                                                                     signum, code):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_metered=METERED, holdsave=HOLDSAVE_PLUGIN)
    monkeypatch.setenv("TOKENS", "100")
    marker = pytester.path / "saving"
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "fakemeter", "-p", "holdsave",
            "--llem-save-baseline"]
    # SIGINT as from a terminal, even when this suite runs as a script's background job (SIGINT ignored)
    proc = pytester.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"the session never began to save its baseline: {proc.communicate(timeout=60)}"
        assert len(list((pytester.path / ".llem").rglob("*.tmp"))) == 1  # the signal comes while it is being written
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    name = signal.Signals(signum).name
    assert proc.returncode == code, stdout + stderr
    assert (f"llem: {name} while writing --llem-save-baseline: it and the outputs after it were not written (no "
            "partial or temp file is left)") in stdout
    assert "Traceback" not in stdout + stderr
    assert [p for p in (pytester.path / ".llem").rglob("*") if p.is_file()] == []  # no baseline, no temp file
