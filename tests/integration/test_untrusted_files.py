"""``llem report`` and ``llem compare`` on files that anyone could have put there (issue 19): no
result is ever replaced, no reader is unbounded.

- The report (and each PNG chart) never replaces a file that was read, given or found in a
  given directory, through a symlink or a hard link too; nor an existing file that is not a
  report (a chart) llem wrote: a result, a baseline, a hand-written page, a FIFO. Each is exit 2
  naming the path, and the file is left byte for byte. An earlier report, or an empty file, is
  replaced.
- A FIFO, or a ``.json`` symlink to /dev/zero, in a results directory is refused (exit 2, named)
  without blocking or growing: the commands run under an address-space cap, so a reader that
  would grow to gigabytes fails fast instead of taking the machine.

The results are real ``ExperimentResult`` files (tests/unit/result_builders), saved by llem's own
save; nothing is measured, so every test takes seconds.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from llem_helpers import LLEM, llem_process
from llenergymeasure.results.baselines import Baseline
from tests.unit.result_builders import make_repeat, make_result

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, /dev/zero and rlimits are POSIX")

MEMORY_CAP = 2 * 2**30  # bytes of address space: llem report and compare need a fraction of it
NEVER_REPLACED = "exists and is not an HTML report written by llem, so it is not replaced"


def results_dir(tmp_path: Path) -> tuple[Path, Path]:
    """(a directory holding one saved result, that result)."""
    result = make_result([make_repeat(i, energy_j=10.0 + i) for i in range(3)]).save(tmp_path / "results")
    return result.parent, result


def refused(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Config error:"), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_report_never_replaces_a_result_found_in_an_input_directory(tmp_path):
    results, result = results_dir(tmp_path)
    before = result.read_bytes()
    done = llem_process("report", str(results), "-o", str(result))
    refused(done, f"-o {result}: is one of the inputs ({result}); write the output to another file")
    assert result.read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_a_report_never_replaces_an_input_through_a_link(tmp_path, link):
    results, result = results_dir(tmp_path)
    before = result.read_bytes()
    output = tmp_path / "report.html"
    if link == "symlink":
        output.symlink_to(result)
    else:
        os.link(result, output)
    done = llem_process("report", str(results), "-o", str(output))
    refused(done, f"-o {output}: is one of the inputs ({result})")
    assert result.read_bytes() == before
    assert output.read_bytes() == before  # the link is still there, untouched


@pytest.mark.parametrize("existing", ["a result", "a baseline", "a page of someone else", "a FIFO"])
def test_a_report_never_replaces_a_file_it_did_not_write(tmp_path, existing):
    results, _ = results_dir(tmp_path)
    output = tmp_path / "out.html"
    if existing == "a result":  # another run's result, not an input of this report
        output = make_result([make_repeat(i, energy_j=20.0) for i in range(3)], name="other").save(tmp_path / "other")
    elif existing == "a baseline":
        output = Baseline.from_results([make_result([make_repeat(i, energy_j=1.0) for i in range(3)])]).save(
            tmp_path / "baseline.json")
    elif existing == "a page of someone else":
        output.write_text("<!DOCTYPE html>\n<html><body>my notes</body></html>\n")
    else:
        os.mkfifo(output)
    before = None if existing == "a FIFO" else output.read_bytes()
    done = llem_process("report", str(results), "-o", str(output))
    refused(done, f"-o {output}: {NEVER_REPLACED}", "give a new file name, or move this file away first")
    if before is not None:
        assert output.read_bytes() == before
    else:
        assert output.is_fifo()


def test_a_report_replaces_its_own_report_and_charts(tmp_path):
    results, _ = results_dir(tmp_path)
    output, pngs = tmp_path / "report.html", tmp_path / "pngs"
    first = llem_process("report", str(results), "-o", str(output), "--png", str(pngs))
    assert first.returncode == 0, first.stderr
    again = llem_process("report", str(results), "-o", str(output), "--png", str(pngs))
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout  # the same files, written again
    assert len(first.stdout.splitlines()) >= 2  # the page and at least one chart


def test_a_report_replaces_an_empty_file(tmp_path):
    results, _ = results_dir(tmp_path)
    output = tmp_path / "made-by-mktemp.html"
    output.write_bytes(b"")  # nothing to lose
    done = llem_process("report", str(results), "-o", str(output))
    assert done.returncode == 0, done.stderr
    assert output.read_text().startswith("<!DOCTYPE html>")


def test_a_chart_never_replaces_a_file_it_did_not_write(tmp_path):
    results, _ = results_dir(tmp_path)
    output, pngs = tmp_path / "report.html", tmp_path / "pngs"
    first = llem_process("report", str(results), "-o", str(output), "--png", str(pngs))
    assert first.returncode == 0, first.stderr
    chart = Path(first.stdout.splitlines()[1])
    chart.write_text("my own notes, named like a chart\n")
    output.unlink()
    done = llem_process("report", str(results), "-o", str(output), "--png", str(pngs))
    refused(done, f"--png {pngs}: {chart.name} exists and is not a PNG chart written by llem")
    assert chart.read_text() == "my own notes, named like a chart\n"
    assert not output.exists()  # every output is checked before any is written


def capped_llem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``llem ARGS`` under MEMORY_CAP, failing (not blocking) if it hangs."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run([*LLEM, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          stdin=subprocess.DEVNULL, preexec_fn=cap, check=False)


@pytest.mark.parametrize("special", ["a FIFO", "a symlink to /dev/zero"])
def test_a_fifo_or_dev_zero_among_results_is_refused_by_report_and_compare(tmp_path, special):
    if special == "a symlink to /dev/zero" and not Path("/dev/zero").is_char_device():
        pytest.skip("no /dev/zero here")
    results, result = results_dir(tmp_path)
    planted = results / "planted.json"
    if special == "a FIFO":
        os.mkfifo(planted)
        why = f"{planted}: is a FIFO (named pipe), not a"
    else:
        planted.symlink_to("/dev/zero")
        why = f"{planted}: is a character device (a link to /dev/zero), not a"
    report = capped_llem("report", str(results), "-o", str(tmp_path / "report.html"), cwd=tmp_path)
    refused(report, why, "only a regular file is read")
    assert not (tmp_path / "report.html").exists()
    for args in ([str(planted), str(result)], [str(results), str(result)]):
        compare = capped_llem("compare", *args, cwd=tmp_path)
        refused(compare, why, "only a regular file is read")
