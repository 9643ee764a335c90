"""Readers of result, baseline and session files are bounded: such files may come from anywhere
(a CI cache, a shared folder), so each is read only if it is a regular file of at most
MAX_DOCUMENT_BYTES. A FIFO is refused without being opened (opening one blocks until a writer
comes), and so is a socket, a directory or a file too large; each is a ConfigError naming the
file and why. A machine's history leaves such files out and names every one of them.

A reader that blocks would hang the suite: each read runs in a thread that the test gives up on
(and unblocks) after HANG_S, however slow the machine, rather than waiting forever.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.exceptions import ConfigError
from llenergymeasure.report.inputs import load_inputs
from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo, load_comparable, machine_dir
from llenergymeasure.results.model import ExperimentResult
from tests.unit.result_builders import make_repeat, make_result

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and sockets are POSIX")

HANG_S = 60  # far beyond any read of a small file: past it the reader is blocked, not slow
CAP = "larger than 64 MiB"
LOADERS: dict[str, Callable[[Path], Any]] = {
    "result": ExperimentResult.load,
    "baseline": Baseline.load,
    "compare": load_comparable,
    "report": lambda path: load_inputs([path]),
}


def error_of(load: Callable[[Path], Any], path: Path, unblock: Path | None = None) -> str:
    """The ConfigError ``load(path)`` raises; fails if it raises nothing else or blocks (a FIFO:
    then ``unblock`` is opened for writing, so the thread ends)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            load(path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_S)
    if thread.is_alive():
        if unblock is not None:
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))  # the blocked open() returns; it reads EOF
            thread.join(HANG_S)
        pytest.fail(f"reading {path} blocked")
    [error] = outcome
    assert isinstance(error, ConfigError), f"{path}: expected a ConfigError, got {error!r}"
    return str(error)


@pytest.mark.parametrize("reader", LOADERS)
def test_a_fifo_is_refused_without_blocking(tmp_path, reader):
    fifo = tmp_path / "session.json"
    os.mkfifo(fifo)
    message = error_of(LOADERS[reader], fifo, unblock=fifo)
    assert message.startswith(f"{fifo}: is a FIFO (named pipe), not a")
    assert "only a regular file is read" in message


@pytest.mark.parametrize("reader", LOADERS)
def test_a_file_over_the_cap_is_refused_naming_the_cap(tmp_path, reader):
    big = tmp_path / "big.json"
    with big.open("wb") as fh:  # sparse: no disk and no time, whatever its size says
        fh.truncate(64 * 2**20 + 1)
    message = error_of(LOADERS[reader], big)
    assert message.startswith(f"{big}: is {CAP}, the most a")
    assert "is it the right file?" in message


def test_a_file_of_exactly_the_cap_is_read_as_far_as_its_content_allows(tmp_path):
    edge = tmp_path / "edge.json"
    with edge.open("wb") as fh:
        fh.truncate(64 * 2**20)
    message = error_of(ExperimentResult.load, edge)
    assert CAP not in message and "not a readable result file" in message  # read, then not JSON


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.json"
    with socket.socket(socket.AF_UNIX) as server:
        try:
            server.bind(str(path))
        except OSError as exc:  # a path too long for AF_UNIX on this machine's temp dir
            pytest.skip(f"cannot bind a unix socket here: {exc}")
        assert error_of(Baseline.load, path) == f"{path}: is a socket, not a baseline file; only a regular file is read"


def test_a_symlink_is_read_as_what_it_points_to(tmp_path):
    saved = make_result([make_repeat(i, energy_j=10.0) for i in range(3)]).save(tmp_path / "results")
    link = tmp_path / "link.json"
    link.symlink_to(saved)
    assert ExperimentResult.load(link).name == "tiny"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link_to_fifo = tmp_path / "to-fifo.json"
    link_to_fifo.symlink_to(fifo)
    message = error_of(ExperimentResult.load, link_to_fifo, unblock=fifo)
    assert message.startswith(f"{link_to_fifo}: is a FIFO (named pipe) (a link to {fifo.resolve()}), not a result file")


def test_a_directory_named_like_a_result_is_refused(tmp_path):
    folder = tmp_path / "folder.json"
    folder.mkdir()
    assert error_of(ExperimentResult.load, folder) == f"{folder}: is a directory, not a result file"


def test_a_results_directory_holding_a_fifo_is_refused_naming_it(tmp_path):
    results = tmp_path / "results"
    make_result([make_repeat(i, energy_j=10.0) for i in range(3)]).save(results)
    fifo = results / "zz.json"
    os.mkfifo(fifo)
    for load in (load_comparable, lambda path: load_inputs([path])):
        assert error_of(load, results, unblock=fifo).startswith(f"{fifo}: is a FIFO (named pipe)")


def test_a_history_names_every_unreadable_file_and_reads_the_others(tmp_path):
    from llenergymeasure.results.baselines import MachineHistory

    machine = MachineInfo(cpu="Some CPU", energy_source="rapl")
    entry = BaselineEntry(experiment="x", config_hash="0" * 16, config={"model": "tiny"},
                          repeats=[{"joules_per_token": 0.1}] * 3)
    good = Baseline.from_entries({"x": entry}, machine, None).save(
        machine_dir(tmp_path, machine.key) / "20260101T000000Z.json")
    directory = good.parent
    corrupt = directory / "20260102T000000Z.json"
    corrupt.write_text('{"kind": "llem-baseline", ')
    big = directory / "20260103T000000Z.json"
    with big.open("wb") as fh:
        fh.truncate(64 * 2**20 + 1)
    fifo = directory / "20260104T000000Z.json"
    os.mkfifo(fifo)

    history = MachineHistory(tmp_path, machine.key)
    sessions = error_free(lambda: list(history.sessions("x", "x")), unblock=fifo)
    assert [s.origin for s in sessions] == [good.name]
    assert len(history.unreadable) == 3
    fifo_line, big_line, corrupt_line = history.unreadable  # newest first
    assert fifo_line.startswith(f"{fifo}: is a FIFO (named pipe), not a baseline file")
    assert big_line.startswith(f"{big}: is {CAP}")
    assert corrupt_line.startswith(f"{corrupt}: not a readable baseline file (")


def error_free(call: Callable[[], Any], unblock: Path) -> Any:
    """``call()``'s value; fails if it blocks (then ``unblock`` is opened for writing) or raises."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(HANG_S)
    if thread.is_alive():
        os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(HANG_S)
        pytest.fail("reading the history blocked")
    assert outcome, "it raised (see the thread's traceback above)"
    return outcome[0]


def test_a_file_of_more_values_than_the_cap_is_refused_before_validation(tmp_path):
    """A validator builds an error per bad value: 2M of them took 2.5 GB before the cap."""
    from llenergymeasure.results.io import MAX_VALUES

    path = tmp_path / "bomb.json"
    path.write_text('{"schema_version": 1, "latencies_s": [' + ",".join(["{}"] * (MAX_VALUES + 1)) + "]}")
    with pytest.raises(ConfigError, match=rf"bomb.json: not a valid result file \(it holds more than "
                                          rf"{MAX_VALUES:,} values, the cap for one file\)"):
        ExperimentResult.load(path)
