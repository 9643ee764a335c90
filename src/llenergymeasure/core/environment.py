"""The environment snapshot stored with every result: versions, CPU, devices."""

from __future__ import annotations

import platform
import sys
from typing import Any

from llenergymeasure import __version__
from llenergymeasure.energy.hardware import cpu_model
from llenergymeasure.results.model import EnvironmentSnapshot


def snapshot(backend_info: dict[str, Any]) -> EnvironmentSnapshot:
    return EnvironmentSnapshot(
        llem_version=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        cpu=cpu_model(),
        **backend_info,
    )
