"""energy/processes.py against real processes: a server's tree and its CPU time, found by pid or port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from llenergymeasure.energy.processes import ServerNotFound, find_server, is_this_machine

BUSY_CHILD = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'while True: pass']).wait(); " \
             "time.sleep(600)"
LISTENER = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); " \
           "print(s.getsockname()[1], flush=True); time.sleep(600)"


@pytest.fixture
def spawn():
    started: list[subprocess.Popen] = []

    def _spawn(code: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(process)
        return process

    yield _spawn
    import psutil

    for process in started:
        try:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
        except psutil.NoSuchProcess:
            pass
        process.kill()
        process.wait()


def wait_for(condition, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_cpu_time_of_a_tree_includes_its_descendants_and_keeps_what_ended(spawn):
    import psutil

    parent = spawn(BUSY_CHILD)  # waits for its child, which burns a CPU, then sleeps
    tree = find_server(pid=parent.pid)
    wait_for(lambda: psutil.Process(parent.pid).children())
    first = tree.cpu_seconds()
    wait_for(lambda: tree.cpu_seconds() > first + 0.3)  # only the grandchild works: it is counted

    [child] = psutil.Process(parent.pid).children()
    child.kill()
    wait_for(lambda: not child.is_running())  # reaped by its parent: gone from the tree
    after_exit = tree.cpu_seconds()
    time.sleep(0.2)
    assert tree.cpu_seconds() >= after_exit  # the ended child keeps its time: the total never drops
    assert not psutil.Process(parent.pid).children()
    assert after_exit > first + 0.3


def test_the_server_is_found_by_the_port_it_listens_on(spawn):
    listener = spawn(LISTENER)
    port = int(listener.stdout.readline())
    assert find_server(port=port).pids == [listener.pid]


def test_a_port_nobody_listens_on_or_a_missing_pid_is_said_plainly():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerNotFound, match=f"no process of this machine listens on port {port}"):
        find_server(port=port)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(ended.stdout)
    with pytest.raises(ServerNotFound, match=f"openai.server_pid: there is no process {pid} on this machine"):
        find_server(pid=pid)


@pytest.mark.parametrize(("host", "here"), [
    ("localhost", True), ("127.0.0.1", True), ("127.0.1.1", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", True), (socket.gethostname(), True),
    ("192.0.2.10", False), ("2001:db8::1", False), ("no-such-host.invalid", False),
])
def test_is_this_machine(host, here):
    assert is_this_machine(host) is here
