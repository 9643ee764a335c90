"""Device locks: private to their user, never through a symlink, and a wait that says who holds
the device and, with ``--llem-lock-timeout``, gives up naming it.

The lock directory is pointed into the test's own temporary directory (XDG_RUNTIME_DIR), so these
tests neither wait for nor block another test run's measurements.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from llenergymeasure.core import locks
from llenergymeasure.core.locks import LockError, lock_directory, measurement_lock
from tests.plugin.test_plugin_run import TINY as RUN_TINY

TINY = RUN_TINY + "pytorch: {device: cpu}\n"


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_RUNTIME_DIR for this test and the sessions it starts; locks go in ``llem-locks`` there."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


def test_locks_live_in_the_runtime_dir_else_a_per_user_temp_dir(runtime_dir, monkeypatch):
    assert lock_directory() == runtime_dir / "llem-locks"
    with measurement_lock(["cpu"], holder="llem_x.yaml::x"):
        lock = runtime_dir / "llem-locks" / "cpu.lock"
        assert lock.read_text() == f"{os.getpid()} llem_x.yaml::x\n"
    assert (runtime_dir / "llem-locks").stat().st_mode & 0o777 == 0o700
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert lock_directory().name == f"llem-locks-{os.getuid()}"


def test_a_lock_directory_others_can_enter_is_refused(runtime_dir):
    (runtime_dir / "llem-locks").mkdir(mode=0o755)
    os.chmod(runtime_dir / "llem-locks", 0o755)  # whatever the umask
    with pytest.raises(LockError, match=r"llem-locks has mode 0755: other users can use it; it must be 0700; "
                                        r"remove it if it is yours"), measurement_lock(["cpu"]):
        pass


def test_a_lock_directory_of_another_user_is_refused(runtime_dir, monkeypatch):
    (runtime_dir / "llem-locks").mkdir(mode=0o700)
    monkeypatch.setattr(locks.os, "getuid", lambda: os.stat(runtime_dir).st_uid + 1)
    with pytest.raises(LockError, match=r"is owned by uid \d+, not by you \(uid \d+\): another user may have created it"), \
            measurement_lock(["cpu"]):
        pass


def test_symlinks_are_never_followed(runtime_dir, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (runtime_dir / "llem-locks").symlink_to(target)
    with pytest.raises(LockError, match="llem-locks is a symbolic link"), measurement_lock(["cpu"]):
        pass

    (runtime_dir / "llem-locks").unlink()
    (runtime_dir / "llem-locks").mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (runtime_dir / "llem-locks" / "cpu.lock").symlink_to(victim)
    with pytest.raises(LockError, match=r"cpu.lock for cpu is a symbolic link"), measurement_lock(["cpu"]):
        pass
    assert victim.read_text() == "precious\n"


def test_a_waiter_says_who_holds_the_device(runtime_dir, monkeypatch):
    monkeypatch.setattr(locks, "WAIT_NOTICE_S", 0.2)
    said: list[str] = []
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with measurement_lock(["cpu"], holder="llem_a.yaml::a"):
            held.set()
            release.wait(30)  # until the waiter has said who it waits for

    def notify(text: str) -> None:
        said.append(text)
        release.set()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    with measurement_lock(["cpu"], holder="llem_b.yaml::b", notify=notify):
        assert (lock_directory() / "cpu.lock").read_text() == f"{os.getpid()} llem_b.yaml::b\n"
    holder.join()
    assert said == [f"waiting for cpu held by pid {os.getpid()} (item llem_a.yaml::a)"]


def test_an_item_gives_up_after_the_lock_timeout_naming_device_and_holder(pytester, write_llem, runtime_dir):
    write_llem("llem_x.yaml", TINY)
    with measurement_lock(["cpu"], holder="test-holder::item"):  # this process holds the CPU
        result = pytester.runpytest_subprocess("--llem-lock-timeout", "4")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    pid = os.getpid()
    # said once, after WAIT_NOTICE_S (3 s), while the item waited
    result.stderr.fnmatch_lines([f"llem: llem_x.yaml::x: waiting for cpu held by pid {pid} (item test-holder::item)"])
    assert len(re.findall("waiting for cpu", result.stderr.str())) == 1
    result.stdout.fnmatch_lines([f"gave up waiting for cpu after 4 s (--llem-lock-timeout): it is held by pid {pid} "
                                 "(item test-holder::item)"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_malformed_lock_timeout_is_a_usage_error(pytester, write_llem, value):
    write_llem("llem_x.yaml", TINY)
    result = pytester.runpytest("--co", f"--llem-lock-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --llem-lock-timeout {value!r}: expected a number of seconds >= 0*"])


def test_the_lock_timeout_has_an_ini_key(pytester, write_llem):
    write_llem("llem_x.yaml", TINY)
    pytester.makeini("[pytest]\nllem_lock_timeout = soon\n")
    result = pytester.runpytest("--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini llem_lock_timeout = 'soon': expected a number of seconds >= 0*"])
