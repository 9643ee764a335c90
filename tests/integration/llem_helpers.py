"""Plain helpers for the integration tests: run ``llem``, read importtime output, list result files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

LLEM = [sys.executable, "-m", "llenergymeasure.cli"]


def llem_process(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 240,
                 python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run ``llem ARGS`` to completion; a hang fails the test instead of blocking the suite."""
    command = [sys.executable, *python_flags, *LLEM[1:], *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def interruptible() -> None:
    """``Popen(preexec_fn=interruptible)``: the child takes SIGINT as from a terminal's Ctrl-C even
    when this suite runs as a background job of a script, whose shell starts it with SIGINT ignored
    (and Python then installs no KeyboardInterrupt handler: a child that inherits that ignores Ctrl-C,
    as a background job should)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def isolated_env_vars(root: Path) -> dict[str, str]:
    """What the top-level ``isolated_env`` fixture sets, rooted at ``root``, as a full environment."""
    env = dict(os.environ)
    env.update({
        "HF_HUB_OFFLINE": "1",
        "LLEM_CONFIG": str(root / "no-user-config.yaml"),
        "HF_HUB_CACHE": str(root / "hf-cache"),
        "LLEM_POWERCAP_ROOT": str(root / "no-powercap"),
    })
    return env


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output (``import time: 123 | 456 |   pkg.mod``)."""
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def result_files(directory: Path) -> list[Path]:
    """Result JSON files in ``directory`` (not the ``.timeline.json`` sidecars, not temp files)."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.suffix == ".json" and not p.name.endswith(".timeline.json") and not p.name.startswith("."))


def leftovers(directory: Path) -> list[Path]:
    """Temp files an interrupted atomic write could leave behind."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def write_path_blocks(steps: list[tuple[str, str]], root: Path) -> list[Path]:
    """Write each code block whose first line is ``# <path>`` to ``root/<path>`` (that line dropped),
    as a reader following a README section would; return the paths written."""
    written = []
    for _, body in steps:
        first, _, rest = body.partition("\n")
        path = re.fullmatch(r"# ([\w./-]+)", first.strip())
        if path:
            target = root / path.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rest, encoding="utf-8")
            written.append(target)
    return written


def push_check_args(steps: list[tuple[str, str]]) -> list[str]:
    """The arguments of the one ``pytest benchmarks/ ...`` command line among ``steps`` (after ``pytest``)."""
    [check] = [line for _, body in steps for line in body.splitlines() if line.startswith("pytest benchmarks/")]
    return check.split()[1:]
