"""Ctrl-C (SIGINT) or SIGTERM (CI cancellation, ``docker stop``) during a real run.

SIGINT exits 130 with "Interrupted.", SIGTERM 143 (128 + 15) with "Terminated."; either way no
traceback, no partial or temp result file, no timeline sidecar without its result. An interrupted
study prints the table of what it finished, with where each result was saved, and says where it
stopped.

The runs below are long on purpose (minutes if left alone); each test interrupts them and fails
rather than blocks if ``llem`` does not stop within a minute (a thread left running, a hang).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llem_helpers import LLEM, interruptible, leftovers, result_files
from llenergymeasure.results.model import ExperimentResult

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGINT semantics are POSIX"),
]

STOP_TIMEOUT_S = 60
SIGNALS = [pytest.param(signal.SIGINT, 130, "Interrupted.", id="SIGINT"),
           pytest.param(signal.SIGTERM, 143, "Terminated.", id="SIGTERM")]


@contextmanager
def running(args: list[str], cwd: Path) -> Iterator[subprocess.Popen]:
    """``llem ARGS`` started in the background; killed on the way out if a failed check left it running."""
    proc = subprocess.Popen([*LLEM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, cwd=cwd, preexec_fn=interruptible)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_until_the_model_is_loaded(proc: subprocess.Popen, model: Path, extra_s: float = 2.0,
                                   limit_s: float = 90.0) -> None:
    """Wait until the model's weights are mapped into the process (torch and transformers imported,
    the model loaded), then ``extra_s`` more, so the signal lands in warmup or the measurement.
    Without procfs, or if the weights never show up as a mapping, wait at least 8 s from the start."""
    started = time.monotonic()
    maps = Path(f"/proc/{proc.pid}/maps")
    weights = str((model / "model.safetensors").resolve())
    while maps.exists() and proc.poll() is None and time.monotonic() - started < limit_s:
        try:
            if weights in maps.read_text():
                time.sleep(extra_s)
                return
        except OSError:
            break
        time.sleep(0.2)
    time.sleep(max(0.0, 8.0 - (time.monotonic() - started)))


def interrupt(proc: subprocess.Popen, signum: int = signal.SIGINT) -> tuple[str, str]:
    assert proc.poll() is None, f"llem ended (rc {proc.returncode}) before it could be interrupted:\n" + (
        proc.stderr.read() if proc.stderr else "")
    proc.send_signal(signum)
    try:
        return proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"llem did not stop within {STOP_TIMEOUT_S} s of {signal.Signals(signum).name}")


def orphan_sidecars(directory: Path) -> list[Path]:
    """``.timeline.json`` files whose result file is not beside them."""
    if not directory.exists():
        return []
    return [p for p in directory.glob("*.timeline.json")
            if not p.with_name(p.name.removesuffix(".timeline.json") + ".json").exists()]


@pytest.mark.parametrize(("signum", "code", "message"), SIGNALS)
def test_a_signal_during_a_run_exits_with_its_code_and_leaves_no_result(tiny_model, tmp_path, signum, code, message):
    config = tmp_path / "long.yaml"
    config.write_text(f"model: {tiny_model}\nprecision: fp32\nmax_output_tokens: 200\n")
    out = tmp_path / "out"
    with running(["run", str(config), "-n", "120", "-d", "builtin", "--batch-size", "1", "-o", str(out)],
                 tmp_path) as proc:
        wait_until_the_model_is_loaded(proc, tiny_model)
        stdout, stderr = interrupt(proc, signum)
    assert proc.returncode == code, stderr
    assert message in stderr
    assert "Traceback" not in stderr
    assert stdout == ""  # no summary of a run that did not finish
    assert result_files(out) == [] and leftovers(out) == [] and orphan_sidecars(out) == []
    assert not out.exists() or not list(out.iterdir())  # nor anything else


@pytest.mark.parametrize(("signum", "code", "message"), SIGNALS)
def test_a_signal_in_a_study_keeps_results_already_saved_and_lists_them(tiny_model, tmp_path, signum, code, message):
    config = tmp_path / "llem_two.yaml"
    config.write_text(
        f"name: two\nmodel: {tiny_model}\ndataset: builtin\nprecision: fp32\npytorch: {{batch_size: 1}}\n"
        "warmup: {n_warmup: 1}\n"
        "experiments:\n"
        "  - {name: quick, n: 2, max_output_tokens: 4}\n"
        "  - {name: long, n: 120, max_output_tokens: 200}\n"
    )
    out = tmp_path / "out"
    with running(["run", str(config), "-o", str(out)], tmp_path) as proc:
        deadline = time.monotonic() + 120
        while not result_files(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert result_files(out), "the first experiment saved no result"
        time.sleep(1.5)  # into the second experiment
        stdout, stderr = interrupt(proc, signum)
    assert proc.returncode == code, stderr
    assert message in stderr and "Traceback" not in stderr
    [saved] = result_files(out)
    assert ExperimentResult.load(saved).name == "quick"  # whole and readable
    assert leftovers(out) == [] and orphan_sidecars(out) == []
    # What it finished, and where that is; then where it stopped.
    [row] = [line for line in stdout.splitlines() if line.startswith("quick ")]
    assert row.rstrip().endswith(str(saved))
    assert "long" not in stdout
    assert "Stopped at [2/2] long: 1 finished." in stderr
