"""``llem run --model DIR ...``: one experiment from flags, end to end on the tiny model.

One real run is shared by the first tests of this module (it is the expensive part); each test
asserts one thing a user sees: the exit code, the summary on stdout, the result file.
The user config (``$LLEM_CONFIG``) keeps the run tiny (8 new tokens) and switches energy off, so
the summary must say energy is unavailable and why; the labelled CPU estimate is covered by the
progress tests below, which leave energy on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from llem_helpers import LLEM, isolated_env_vars, leftovers, result_files
from llenergymeasure.results.model import ExperimentResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def single_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("single-run")
    env = isolated_env_vars(root)
    Path(env["LLEM_CONFIG"]).write_text("defaults:\n  max_output_tokens: 8\n  energy: {source: none}\n")
    out = root / "results"
    proc = subprocess.run(
        [*LLEM, "run", "--model", str(tiny_model), "-n", "8", "--batch-size", "4", "-o", str(out), "-d", "builtin",
         "-p", "fp32"],
        capture_output=True, text=True, env=env, cwd=root, timeout=240, stdin=subprocess.DEVNULL,
    )
    return proc, out


def summary_rows(stdout: str) -> dict[str, str]:
    """``  label<spaces>text`` lines of the summary, keyed by label."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^  (\S.{0,18}?)\s{2,}(\S.*)$", line)
        if match:
            rows[match.group(1).strip()] = match.group(2)
    return rows


def test_exits_0_and_prints_the_summary_on_stdout(single_run):
    proc, _ = single_run
    assert proc.returncode == 0, proc.stderr
    rows = summary_rows(proc.stdout)
    assert re.fullmatch(r"\d+ generated from \d+ input tokens", rows["tokens"]), rows
    assert re.fullmatch(r"[\d.e+-]+ tokens/s", rows["throughput"]), rows
    assert re.fullmatch(r"[\d.e+-]+ s / [\d.e+-]+ s per batch", rows["latency p50/p95"]), rows
    assert rows["energy"] == "unavailable: energy.source is 'none'"
    assert rows["joules per token"] == "unavailable"
    assert "8 prompts in 2 batches of 4" in proc.stdout.splitlines()[0]


def test_writes_exactly_one_result_that_loads_back(single_run):
    proc, out = single_run
    assert proc.returncode == 0, proc.stderr
    files = result_files(out)
    assert len(files) == 1, sorted(p.name for p in out.iterdir())
    assert leftovers(out) == []
    result = ExperimentResult.load(files[0])
    assert result.n_prompts == 8
    assert 0 < result.output_tokens <= 8 * 8  # max_output_tokens 8 from the user config, per prompt
    assert len(result.repeats) == 1
    assert len(result.repeats[0].latencies_s) == 2  # 8 prompts in batches of 4
    assert result.config["pytorch"]["batch_size"] == 4 and result.config["precision"] == "fp32"
    assert result.energy_source == "none" and result.metrics.energy_j is None
    assert "'none'" in (result.energy_unavailable_reason or "")
    assert json.loads(files[0].read_text())["schema_version"] == 1


def test_summary_agrees_with_the_saved_result(single_run):
    proc, out = single_run
    assert proc.returncode == 0, proc.stderr
    rows = summary_rows(proc.stdout)
    [saved] = result_files(out)
    result = ExperimentResult.load(saved)
    assert Path(rows["result"]).resolve() == saved.resolve()
    assert rows["tokens"].startswith(f"{result.output_tokens} generated from {result.input_tokens} ")


def test_plain_progress_and_no_traceback_on_stderr_when_it_is_not_a_terminal(single_run):
    proc, _ = single_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "window 1/1 ..." in proc.stderr.splitlines()  # a phase line (tests/integration/test_progress.py)
    assert "batch/s" not in proc.stderr and "\r" not in proc.stderr  # not tqdm's bar


def test_result_file_permissions_follow_the_umask(single_run):
    proc, out = single_run
    assert proc.returncode == 0, proc.stderr
    [saved] = result_files(out)
    umask = os.umask(0)
    os.umask(umask)
    assert saved.stat().st_mode & 0o777 == 0o666 & ~umask


def run_on_a_terminal(args: list[str], timeout: float = 240) -> tuple[int, str, str]:
    """Run llem with stderr on a pseudo-terminal (80x24), stdout on a pipe: (rc, stdout, terminal text)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # tqdm draws nothing at 0 columns
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the child has closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    try:
        proc = subprocess.Popen([*LLEM, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                                text=True)
    finally:
        os.close(slave)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"llem {' '.join(args)} did not finish within {timeout} s")
    finally:
        reader.join(10)
        os.close(master)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
@pytest.mark.parametrize("quiet", [False, True], ids=["terminal", "terminal-quiet"])
def test_progress_goes_to_a_terminal_stderr_unless_quiet(tiny_model, tmp_path, quiet):
    config = tmp_path / "e.yaml"
    config.write_text(f"model: {tiny_model}\nn: 4\ndataset: builtin\nprecision: fp32\nmax_output_tokens: 8\n"
                      "pytorch: {batch_size: 2}\nenergy: {source: cpu_estimate}\n")
    rc, stdout, terminal = run_on_a_terminal(["run", str(config), *(["-q"] if quiet else [])])
    assert rc == 0, terminal
    # The summary is on stdout whatever stderr is, and the estimate says it is one.
    assert "joules per token" in stdout and "J/token (estimated)" in stdout
    assert "from cpu_estimate (estimated)" in stdout
    assert "batch/s" not in stdout
    if quiet:
        assert "batch/s" not in terminal and "window 1/1" not in terminal
    else:
        assert "window 1/1" in terminal and "batch/s" in terminal
    assert "Traceback" not in terminal
