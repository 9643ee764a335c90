"""Parallel benchmark runs with pytest-xdist: one worker per GPU, one measurement per device.

- ``-n auto`` on a run of benchmark files only starts one worker per visible GPU, or a single
  worker on a CPU-only machine (parallel CPU measurements would share one package).
- Worker N sees only GPU N mod G: the controller puts CUDA_VISIBLE_DEVICES into each worker's
  environment as xdist starts it, before any CUDA use, so torch and the NVML device mapping there
  follow it. When an experiment of the run is spread over K GPUs (``pytorch.device_map``,
  ``pytorch.gpus``), every worker gets a group of K GPUs instead (worker N: GPUs NK .. NK+K-1,
  mod G), and ``-n auto`` starts G // K workers.
- Whatever the number of workers, an item holds an exclusive lock on each device it measures
  (a file lock per GPU UUID, or one for the CPU) for the length of its run: two items never
  measure the same device at once, across workers and across concurrent pytest sessions.
  More workers than GPUs is then slower, never wrong.

``-n auto`` is changed only when every argument is a benchmark file or a folder holding some,
and pinning only when the run reaches benchmark files or test modules that measure with the
``llem_energy`` fixture (their text names it), so installing the plugin does not change how
``-n`` treats a project's ordinary tests.

The locks are ``llenergymeasure.core.locks`` (shared with ``llem run --ray``); with a timeout
(``--llem-lock-timeout``) an item fails naming the device and its holder.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llenergymeasure.core.locks import LockError, lock_directory, measurement_lock, read_holder  # noqa: F401 (re-exported)

LOCK_TIMEOUT_HINT = " (--llem-lock-timeout)"  # where an item's lock timeout is set, for its message
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", "site-packages"}


def auto_num_workers(config: pytest.Config) -> int | None:
    """The GPU count, when every argument of the run is a benchmark file or a folder of them."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or not targets_benchmarks(config, config.args, every=True):
        return None  # leave it to xdist
    from llenergymeasure.energy.sources import nvml_status

    _, gpus, _ = nvml_status()
    return max(1, len(gpus) // gpus_per_worker(config))


def pin_worker_gpus(config: pytest.Config, reaches_benchmarks: bool) -> None:
    """On the xdist controller, give worker N the environment ``CUDA_VISIBLE_DEVICES=<GPU N mod G>``.

    Set in the worker's execnet spec (``popen//env:...``), so it is in the worker's environment
    before any import there: no conftest or plugin can start CUDA before it applies.
    """
    specs = config.getoption("tx", None) or []
    if hasattr(config, "workerinput") or not specs:
        return
    if not reaches_benchmarks and not _measures_in_tests(config, config.args):
        return
    from llenergymeasure.energy.sources import nvml_status

    _, gpus, _ = nvml_status()
    if gpus:
        group = min(gpus_per_worker(config), len(gpus))
        config.option.tx = [
            spec if not spec.startswith("popen") or "CUDA_VISIBLE_DEVICES" in spec
            else f"{spec}//env:CUDA_VISIBLE_DEVICES="
                 + ",".join(gpus[(number * group + k) % len(gpus)].uuid for k in range(group))
            for number, spec in enumerate(specs)
        ]


def gpus_per_worker(config: pytest.Config) -> int:
    """The most GPUs one experiment of the run's benchmark files is spread over (1 at least).
    A file that does not load counts as one GPU: its item reports the error itself."""
    from llenergymeasure.config.benchmark_file import load_benchmark_file
    from llenergymeasure.core.placement import gpus_needed
    from llenergymeasure.exceptions import LLEMError

    patterns, most = config.getini("llem_files"), 1
    for file in _files(config, config.args, lambda f: is_benchmark_file(f.name, patterns)):
        try:
            study = load_benchmark_file(file)
        except (LLEMError, OSError, ValueError):
            continue
        most = max([most, *(gpus_needed(e.config) or 1 for e in study.experiments)])
    return most


def targets_benchmarks(config: pytest.Config, args: list[str], *, every: bool = False) -> bool:
    """Whether any (or, with ``every``, each) of ``args`` names or contains a ``llem_files`` file."""
    hits = [_holds_benchmarks(Path(config.invocation_params.dir, str(arg).split("::")[0]), config.getini("llem_files"))
            for arg in args]
    return bool(hits) and (all(hits) if every else any(hits))


def _holds_benchmarks(path: Path, patterns: list[str]) -> bool:
    return _any_file(path, lambda file: is_benchmark_file(file.name, patterns))


def _measures_in_tests(config: pytest.Config, args: list[str]) -> bool:
    """Whether a test module under ``args`` uses the ``llem_energy`` fixture or the ``llem`` mark,
    by its text (nothing is imported)."""
    patterns = config.getini("python_files")

    def measures(file: Path) -> bool:
        if not is_benchmark_file(file.name, patterns) or file.suffix != ".py":
            return False
        try:
            text = file.read_bytes()
        except OSError:
            return False
        return b"llem_energy" in text or b"mark.llem" in text

    return any(_any_file(Path(config.invocation_params.dir, str(arg).split("::")[0]), measures) for arg in args or ["."])


def _any_file(path: Path, accept: Callable[[Path], bool]) -> bool:
    """Whether ``path``, or a file in the folder ``path`` (hidden and tool folders left out), is accepted."""
    return next(_accepted(path, accept), None) is not None


def _files(config: pytest.Config, args: list[str], accept: Callable[[Path], bool]) -> Iterator[Path]:
    """The accepted files named by, or under, the run's ``args``."""
    for arg in args or ["."]:
        yield from _accepted(Path(config.invocation_params.dir, str(arg).split("::")[0]), accept)


def _accepted(path: Path, accept: Callable[[Path], bool]) -> Iterator[Path]:
    """``path`` if it is an accepted file, or the accepted files in the folder ``path`` (hidden and
    tool folders left out)."""
    if path.is_file():
        if accept(path):
            yield path
        return
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        yield from (Path(folder, name) for name in sorted(files) if accept(Path(folder, name)))


def is_benchmark_file(name: str, patterns: list[str]) -> bool:
    """Whether a file ``name`` matches one of the ``llem_files`` glob patterns."""
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
