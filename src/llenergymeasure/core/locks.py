"""Device locks: one measurement per device at a time, across processes, sessions and tools.

A measurement holds an exclusive lock on each device it measures (a file lock per GPU UUID, or
one for the CPU) for the length of its run, so pytest-xdist workers, concurrent pytest sessions,
``llem run`` and Ray tasks sharing a host never measure the same device at once.

The lock files live in a directory only this user can enter: ``$XDG_RUNTIME_DIR/llem-locks``
when that is set, else ``<temp dir>/llem-locks-<uid>``. It must be a real directory (not a
symlink), owned by this user, mode 0700; anything else (another user created it first, to
watch or block our runs) is refused with a LockError that says what to do. Lock files are
opened with O_NOFOLLOW relative to that directory. The holder writes its pid and name into its
lock file; a wait longer than ``WAIT_NOTICE_S`` is said once with who holds the device, and a
timeout gives up naming the device and its holder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

WAIT_NOTICE_S = 3.0  # a wait longer than this is said once, with the holder
POLL_S = 0.1


class LockError(Exception):
    """A device lock could not be taken: an unsafe lock directory, or a timeout (the text says which)."""


def lock_directory() -> Path:
    """Where device locks live: ``$XDG_RUNTIME_DIR/llem-locks``, else ``<temp dir>/llem-locks-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "llem-locks"
    return Path(tempfile.gettempdir()) / f"llem-locks-{os.getuid()}"


def open_lock_directory(directory: Path) -> int:
    """Create ``directory`` (0700) if needed and open it; LockError unless it is a real directory,
    owned by this user and private. The checks are made on the opened descriptor, so the
    directory cannot be swapped between the check and the use."""
    if directory.is_symlink():
        raise LockError(f"device lock directory {directory} is a symbolic link; {_unsafe_hint(directory)}")
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)  # a symlink swapped in now: ELOOP
    except OSError as exc:
        raise LockError(f"device lock directory {directory}: {exc.strerror or exc} ({_unsafe_hint(directory)})") from None
    problem = _unsafe(os.fstat(fd), os.getuid())
    if problem:
        os.close(fd)
        raise LockError(f"device lock directory {directory} {problem}; {_unsafe_hint(directory)}")
    return fd


def _unsafe(info: os.stat_result, uid: int) -> str | None:
    """Why a lock directory with ``info`` cannot be trusted by user ``uid``, or None."""
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != uid:
        return f"is owned by uid {info.st_uid}, not by you (uid {uid}): another user may have created it"
    if info.st_mode & 0o077:
        return f"has mode {stat.S_IMODE(info.st_mode):04o}: other users can use it; it must be 0700"
    return None


def _unsafe_hint(directory: Path) -> str:
    return (f"remove it if it is yours (rm -r {directory}), or set XDG_RUNTIME_DIR to a directory only you can "
            "enter; device locks must be private so that no other user can block or fake them")


def _lock_name(device: str) -> str:
    """A file name for ``device`` (a GPU UUID or "cpu")."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", device) + ".lock"


@contextlib.contextmanager
def measurement_lock(devices: list[str], holder: str = "", timeout: float | None = None,
                     notify: Callable[[str], None] | None = None, timeout_hint: str = "") -> Iterator[None]:
    """Hold an exclusive lock on each of ``devices`` (GPU UUIDs, or "cpu"), in sorted order.

    ``holder`` (the item's node id) is written into each lock file with this pid once it is held.
    A wait longer than WAIT_NOTICE_S calls ``notify`` once with who holds the device; after
    ``timeout`` seconds (None: wait as long as it takes) LockError names the device and holder
    (and ``timeout_hint``, where the timeout was set, e.g. " (--llem-lock-timeout)").
    """
    try:
        import fcntl  # noqa: F401
    except ImportError:  # Windows: no flock; parallel measurements there are the user's choice
        yield
        return
    directory = lock_directory()
    dir_fd = open_lock_directory(directory)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with contextlib.ExitStack() as stack:
            for device in sorted(set(devices)):
                fd = _open_lock_file(directory, dir_fd, device)
                stack.callback(os.close, fd)  # closing releases the lock (so does the process dying)
                _acquire(fd, device, deadline, timeout, notify, timeout_hint)
                _write_holder(fd, holder)
            yield
    finally:
        os.close(dir_fd)


def _open_lock_file(directory: Path, dir_fd: int, device: str) -> int:
    """The lock file of ``device`` in the opened lock directory, never through a symlink."""
    name = _lock_name(device)
    try:
        return os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        why = "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be opened: {exc.strerror or exc}"
        raise LockError(f"device lock file {directory / name} for {device} {why}; {_unsafe_hint(directory)}") from None


def _acquire(fd: int, device: str, deadline: float | None, timeout: float | None,
             notify: Callable[[str], None] | None, timeout_hint: str) -> None:
    """Take the flock on ``fd``, polling; say once who holds it after WAIT_NOTICE_S, give up at ``deadline``."""
    import fcntl

    started, noticed = time.monotonic(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if not noticed and now - started >= WAIT_NOTICE_S and notify is not None:
            notify(f"waiting for {device} held by {read_holder(fd)}")
            noticed = True
        if deadline is not None and now >= deadline:
            raise LockError(f"gave up waiting for {device} after {timeout:g} s{timeout_hint}: "
                            f"it is held by {read_holder(fd)}")
        time.sleep(POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - now)))


def _write_holder(fd: int, holder: str) -> None:
    """``<pid> <holder>`` into the lock file, for whoever waits for it."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {holder}\n".encode(), 0)


def read_holder(fd: int) -> str:
    """``pid N (item X)`` from a lock file, or what is known of it."""
    text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    pid, _, item = text.partition(" ")
    if not pid.isdigit():
        return "another process (it has not said which)"
    return f"pid {pid}" + (f" (item {item})" if item else "")
