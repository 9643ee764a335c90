"""What energy sources and GPUs this machine has, and why the others are missing.

Read by ``llem config``, the dry-run VRAM check and the pytest plugin's header and skips;
none of them may import torch, so GPUs are found through NVML alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from llenergymeasure.energy import hardware


@dataclass(frozen=True)
class SourceStatus:
    name: str
    available: bool
    detail: str


@dataclass(frozen=True)
class Gpu:
    """A GPU this process can see (after CUDA_VISIBLE_DEVICES), as NVML describes it."""

    index: int  # NVML's index (PCI bus order)
    uuid: str
    name: str
    memory_gb: float
    power_limit_w: float | None = None


def nvml_status() -> tuple[SourceStatus, list[Gpu], str | None]:
    """NVML's status, the GPUs visible to this process, and the driver version."""
    from llenergymeasure.energy.hardware import bounded
    from llenergymeasure.energy.nvml import NvmlUnavailable, decoded, init_nvml, shutdown

    try:
        nvml, devices = init_nvml()
    except NvmlUnavailable as exc:
        return SourceStatus("nvml", False, str(exc)), [], None
    def describe() -> tuple[list[Gpu], str]:
        gpus = [Gpu(d.index, d.uuid, d.name, nvml.nvmlDeviceGetMemoryInfo(d.handle).total / 1e9, d.power_limit_w)
                for d in devices]
        return gpus, decoded(nvml.nvmlSystemGetDriverVersion())

    try:
        gpus, driver = bounded(describe, "describing the GPUs")
    except Exception as exc:  # NVMLError: a GPU fell off the bus (Xid 79), ...; or DriverTimeout
        return SourceStatus("nvml", False, f"NVML could not list the GPUs ({exc})"), [], None
    finally:
        shutdown(nvml)
    return SourceStatus("nvml", True, f"{len(gpus)} GPU(s), driver {driver}"), gpus, driver


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
