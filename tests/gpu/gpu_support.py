"""Helpers shared by the GPU tests and ``benchmarks/gpu_measurements.py``.

Everything here talks to the real hardware through the package's own code (``open_nvml``,
``trapezoid_energy_j``); importing this module imports neither torch nor a GPU library, so the
skip decision and the script's fail-fast check cost milliseconds on a machine without a GPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

from llenergymeasure.energy.base import EnergyMeter, EnergyReading
from llenergymeasure.energy.nvml import NvmlDevice, open_nvml
from llenergymeasure.energy.sampler import trapezoid_energy_j
from llenergymeasure.exceptions import PreFlightError

SAMPLER_THREAD = "llem-sampler"  # the name Sampler.start gives its thread


def gpu_unavailable_reason() -> str | None:
    """Why this process cannot measure an NVIDIA GPU, or None when it can.

    NVML is asked first (cheap, no torch import), then torch's CUDA runtime.
    """
    try:
        nvml, _ = open_nvml()
    except PreFlightError as exc:
        return exc.problems[0].removeprefix("energy.source: ")
    except Exception as exc:  # an NVML call after nvmlInit failed: still no usable GPU
        return f"NVML failed: {exc}"
    nvml.nvmlShutdown()
    if find_spec("torch") is None:
        return "torch is not installed (pip install 'pytest-llem[pytorch]')"
    import torch

    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA GPU (CUDA build: {torch.version.cuda})"
    return None


def integrated_energy_j(trace: list[dict[str, Any]]) -> float:
    """Trapezoid integral of one device's power samples over the span they cover.

    The meter's first sample is taken just before it reads the energy counters and its last
    just after, so this span is the counter's window to within the NVML calls' latency.
    """
    if len(trace) < 2:
        return 0.0
    return trapezoid_energy_j(trace, trace[0]["t"], trace[-1]["t"])


def timed_window(meter: EnergyMeter, work: Callable[[], object]) -> tuple[EnergyReading, float]:
    """Run ``work`` inside one meter window; the reading and the window's wall time."""
    start = time.perf_counter()
    meter.start()
    work()
    reading = meter.stop()
    return reading, time.perf_counter() - start


def busy_gpu(seconds: float, *, size: int = 8192) -> int:
    """Keep cuda:0 near full power with fp16 matmuls for ``seconds``; returns the matmuls run.

    Synchronizes every few matmuls, so the GPU is done when this returns and never idles for
    more than a kernel launch in between: power is steady across the whole call.
    """
    import torch

    a = torch.randn(size, size, device="cuda:0", dtype=torch.float16)
    b = torch.randn(size, size, device="cuda:0", dtype=torch.float16)
    out = torch.empty_like(a)
    torch.cuda.synchronize()
    deadline = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < deadline:
        for _ in range(8):
            torch.matmul(a, b, out=out)
        torch.cuda.synchronize()
        done += 8
    return done


def power_limit_w(nvml: Any, device: NvmlDevice) -> float:
    """The power limit the driver enforces on ``device``, in watts."""
    return nvml.nvmlDeviceGetEnforcedPowerLimit(device.handle) / 1000.0


def as_nvml_uuid(torch_uuid: object) -> str:
    """torch's device UUID (``58b9c1f5-...``) in NVML's spelling (``GPU-58b9c1f5-...``)."""
    text = str(torch_uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def sampler_threads() -> list[threading.Thread]:
    """Telemetry sampler threads still alive in this process (none should outlive a window)."""
    return [thread for thread in threading.enumerate() if thread.name == SAMPLER_THREAD]
