"""Parallel benchmark runs with pytest-xdist: one worker per GPU, one measurement per device.

- ``-n auto`` on a run of benchmark files only starts one worker per visible GPU, or a single
  worker on a CPU-only machine (parallel CPU measurements would share one package).
- Worker N sees only GPU N mod G: the controller puts CUDA_VISIBLE_DEVICES into each worker's
  environment as xdist starts it, before any CUDA use, so torch and the NVML device mapping there
  follow it.
- Whatever the number of workers, an item holds an exclusive lock on each device it measures
  (a file lock per GPU UUID, or one for the CPU) for the length of its run: two items never
  measure the same device at once, across workers and across concurrent pytest sessions.
  More workers than GPUs is then slower, never wrong.

``-n auto`` is changed only when every argument is a benchmark file or a folder holding some,
and pinning only when the run reaches benchmark files, so installing the plugin does not change
how ``-n`` treats a project's ordinary tests.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", "site-packages"}


def auto_num_workers(config: pytest.Config) -> int | None:
    """The GPU count, when every argument of the run is a benchmark file or a folder of them."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or not targets_benchmarks(config, config.args, every=True):
        return None  # leave it to xdist
    from llenergymeasure.energy.sources import nvml_status

    _, gpus, _ = nvml_status()
    return max(1, len(gpus))


def pin_worker_gpus(config: pytest.Config, reaches_benchmarks: bool) -> None:
    """On the xdist controller, give worker N the environment ``CUDA_VISIBLE_DEVICES=<GPU N mod G>``.

    Set in the worker's execnet spec (``popen//env:...``), so it is in the worker's environment
    before any import there: no conftest or plugin can start CUDA before it applies.
    """
    specs = config.getoption("tx", None) or []
    if hasattr(config, "workerinput") or not specs or not reaches_benchmarks:
        return
    from llenergymeasure.energy.sources import nvml_status

    _, gpus, _ = nvml_status()
    if gpus:
        config.option.tx = [
            spec if not spec.startswith("popen") or "CUDA_VISIBLE_DEVICES" in spec
            else f"{spec}//env:CUDA_VISIBLE_DEVICES={gpus[number % len(gpus)].uuid}"
            for number, spec in enumerate(specs)
        ]


def targets_benchmarks(config: pytest.Config, args: list[str], *, every: bool = False) -> bool:
    """Whether any (or, with ``every``, each) of ``args`` names or contains a ``llem_files`` file."""
    hits = [_holds_benchmarks(Path(config.invocation_params.dir, str(arg).split("::")[0]), config.getini("llem_files"))
            for arg in args]
    return bool(hits) and (all(hits) if every else any(hits))


def _holds_benchmarks(path: Path, patterns: list[str]) -> bool:
    if path.is_file():
        return is_benchmark_file(path.name, patterns)
    for _, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        if any(is_benchmark_file(name, patterns) for name in files):
            return True
    return False


def is_benchmark_file(name: str, patterns: list[str]) -> bool:
    """Whether a file ``name`` matches one of the ``llem_files`` glob patterns."""
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


@contextlib.contextmanager
def measurement_lock(devices: list[str]) -> Iterator[None]:
    """Hold an exclusive lock on each of ``devices`` (GPU UUIDs, or "cpu"), in sorted order."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; parallel measurements there are the user's choice
        yield
        return
    directory = Path(tempfile.gettempdir()) / f"llem-locks-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for device in sorted(set(devices)):
            handle = stack.enter_context(open(directory / f"{device}.lock", "a+b"))
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield
