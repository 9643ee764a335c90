"""The hardware seam: the one place pynvml and the powercap sysfs root are obtained.

Tests hand in a fake pynvml module or a fake powercap tree through ``LLEM_POWERCAP_ROOT`` and
``set_pynvml``; nothing else in the package imports pynvml or reads /sys directly.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from types import ModuleType

_pynvml: ModuleType | None = None


def set_pynvml(module: ModuleType | None) -> None:
    """Use ``module`` in place of the real pynvml (None restores the real one)."""
    global _pynvml
    _pynvml = module


def pynvml() -> ModuleType:
    """The pynvml module (nvidia-ml-py), or the fake a test installed. Raises ImportError."""
    if _pynvml is not None:
        return _pynvml
    import pynvml as real

    return real


def cpu_model() -> str | None:
    """The CPU's marketing name ("AMD EPYC 7763 64-Core Processor"), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def cuda_index(device: str) -> int | None:
    """N of a "cuda:N" device ("cuda" alone is 0); None for any other device."""
    if not device.startswith("cuda"):
        return None
    return int(device.partition(":")[2] or 0)


def powercap_root() -> Path:
    return Path(os.environ.get("LLEM_POWERCAP_ROOT", "/sys/class/powercap"))
