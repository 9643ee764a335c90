"""The repository's own test session (tests/ and benchmarks/): a private device-lock directory.

Device locks are machine-wide by design (core/locks.py): two measurements of one device never
overlap, across sessions and tools. A test suite measures fake meters and a tiny model, so it
must neither wait behind another llem run or test suite of the same user nor block one. Each
session (the controller; xdist workers inherit its environment) points XDG_RUNTIME_DIR at a new
private directory, so its locks are its own; tests about locks set their own directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_PRIVATE = pytest.StashKey[tuple[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller's directory, inherited
        return
    runtime = tempfile.mkdtemp(prefix="llem-test-session-")  # mode 0700
    config.stash[_PRIVATE] = (runtime, os.environ.get("XDG_RUNTIME_DIR"))
    os.environ["XDG_RUNTIME_DIR"] = runtime


def pytest_unconfigure(config: pytest.Config) -> None:
    runtime, before = config.stash.get(_PRIVATE, (None, None))
    if runtime is None:
        return
    if before is None:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    else:
        os.environ["XDG_RUNTIME_DIR"] = before
    shutil.rmtree(runtime, ignore_errors=True)
