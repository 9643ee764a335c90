"""The hardware seam: the one place pynvml and the powercap sysfs root are obtained.

Tests hand in a fake pynvml module or a fake powercap tree through ``LLEM_POWERCAP_ROOT`` and
``set_pynvml``; nothing else in the package imports pynvml or reads /sys directly.

``bounded`` runs a driver call with a time limit. NVML calls go into the kernel driver, and a
wedged driver (a GPU fallen off the bus, an Xid storm) can block one forever; a benchmark must
then fail within seconds, not hang a CI job until its own timeout. A call that does not return
in time is abandoned in a daemon thread (nothing can interrupt a thread inside the driver), and
every later bounded call fails at once: a driver that stopped answering once is not asked again.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

T = TypeVar("T")

DEFAULT_CALL_TIMEOUT_S = 5.0

_pynvml: ModuleType | None = None
_stuck: str | None = None  # the call that did not return, once one did not


class DriverTimeout(Exception):
    """A driver call did not return within its time limit (or an earlier one never did)."""


def call_timeout_s() -> float:
    """Seconds a driver call may take: ``LLEM_DRIVER_TIMEOUT_S``, or 5."""
    try:
        value = float(os.environ.get("LLEM_DRIVER_TIMEOUT_S", DEFAULT_CALL_TIMEOUT_S))
    except ValueError:
        return DEFAULT_CALL_TIMEOUT_S
    return value if 0 < value < float("inf") else DEFAULT_CALL_TIMEOUT_S


def bounded(call: Callable[[], T], what: str, timeout_s: float | None = None) -> T:
    """``call()``, or DriverTimeout naming ``what`` when it takes longer than ``timeout_s``."""
    global _stuck
    if _stuck is not None:
        raise DriverTimeout(f"{what}: not attempted, the driver stopped answering earlier ({_stuck})")
    limit = call_timeout_s() if timeout_s is None else timeout_s
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"llem-driver-call: {what}", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        _stuck = f"{what} did not return within {limit:g} s"
        raise DriverTimeout(_stuck)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def reset_driver_state() -> None:
    """Forget an earlier timeout (tests; a long-lived process after the driver recovered)."""
    global _stuck
    _stuck = None


def set_pynvml(module: ModuleType | None) -> None:
    """Use ``module`` in place of the real pynvml (None restores the real one)."""
    global _pynvml
    _pynvml = module
    reset_driver_state()


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
