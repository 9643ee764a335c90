"""What energy sources this machine has, and why the others are missing (for ``llem config``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from llenergymeasure.energy import hardware


@dataclass(frozen=True)
class SourceStatus:
    name: str
    available: bool
    detail: str


def nvml_status() -> tuple[SourceStatus, list[str], str | None]:
    """NVML's status, the GPU names it sees, and the driver version."""
    try:
        nvml = hardware.pynvml()
        nvml.nvmlInit()
    except ImportError:
        return SourceStatus("nvml", False, "nvidia-ml-py is not installed"), [], None
    except Exception as exc:
        return SourceStatus("nvml", False, f"NVML did not initialise ({exc}); no NVIDIA driver?"), [], None
    try:
        count = nvml.nvmlDeviceGetCount()
        names = [_text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
        driver = _text(nvml.nvmlSystemGetDriverVersion())
    finally:
        nvml.nvmlShutdown()
    if not names:
        return SourceStatus("nvml", False, "the NVIDIA driver sees no GPU"), [], driver
    return SourceStatus("nvml", True, f"{len(names)} GPU(s), driver {driver}"), names, driver


def rapl_status() -> SourceStatus:
    root = hardware.powercap_root()
    zones = sorted(root.glob("intel-rapl:*")) if root.is_dir() else []
    if not zones:
        return SourceStatus("rapl", False, f"no RAPL domains under {root} (not an Intel/AMD host, or a VM)")
    unreadable = [z.name for z in zones if not os.access(z / "energy_uj", os.R_OK)]
    if unreadable:
        return SourceStatus("rapl", False, f"{root}/{unreadable[0]}/energy_uj is not readable (root only since CVE-2020-8694); "
                                           "run as root or: sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj")
    return SourceStatus("rapl", True, f"{len(zones)} domain(s) under {root}")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


