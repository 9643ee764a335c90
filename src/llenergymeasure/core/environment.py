"""The environment snapshot stored with every result: versions, CPU, devices."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

from llenergymeasure import __version__
from llenergymeasure.results.model import EnvironmentSnapshot


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def snapshot(backend_info: dict[str, Any]) -> EnvironmentSnapshot:
    return EnvironmentSnapshot(
        llem_version=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        cpu=cpu_model(),
        **backend_info,
    )
