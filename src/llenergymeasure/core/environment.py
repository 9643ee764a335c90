"""The environment snapshot stored with every result: versions, host, CPU, devices, GPU driver and power limits."""

from __future__ import annotations

import platform
import socket
import sys
from typing import Any

from llenergymeasure import __version__
from llenergymeasure.energy.hardware import cpu_model, cuda_index
from llenergymeasure.energy.sources import nvml_status
from llenergymeasure.results.model import EnvironmentSnapshot


def snapshot(backend_info: dict[str, Any]) -> EnvironmentSnapshot:
    gpu_info: dict[str, Any] = {}
    index = cuda_index(str(backend_info.get("device", "")))
    if index is not None:
        _, gpus, driver = nvml_status()
        gpu_info = {"gpu_driver": driver,
                    "gpu_power_limits_w": [g.power_limit_w for g in gpus[index:index + 1] if g.power_limit_w]}
    return EnvironmentSnapshot(
        llem_version=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        host=socket.gethostname(),
        cpu=cpu_model(),
        **gpu_info,
        **backend_info,
    )
