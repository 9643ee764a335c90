"""A fake ``pynvml`` for the hardware seam: scripted GPUs with energy counters and power traces.

Installed with ``llenergymeasure.energy.hardware.set_pynvml(FakeNvml([...]))``. Only NVML is
faked; everything above it (meters, sampler, runner) runs for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace


class NVMLError(Exception):
    def __init__(self, value: int = 999, text: str = "Unknown Error") -> None:
        self.value = value
        super().__init__(text)


NOT_SUPPORTED = 3


@dataclass
class FakeGpu:
    """``counter_mj``: successive values of the energy counter (the last repeats), None for a
    pre-Volta GPU without one. ``power_w``: power as a function of seconds since creation."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    counter_mj: list[int] | None = None
    power_w: Callable[[float], float] = lambda t: 100.0
    temperature_c: Callable[[float], int] = lambda t: 45
    throttle_reasons: int = 0
    persistence: int = 1
    other_pids: list[int] = field(default_factory=list)
    memory_gb: float = 80.0
    fail_counter_after: int | None = None  # raise NVMLError from this read on
    created: float = field(default_factory=time.perf_counter)
    reads: int = 0

    def counter(self) -> int:
        if self.counter_mj is None:
            raise NVMLError(NOT_SUPPORTED, "Not Supported")
        if self.fail_counter_after is not None and self.reads >= self.fail_counter_after:
            raise NVMLError(15, "GPU is lost")
        value = self.counter_mj[min(self.reads, len(self.counter_mj) - 1)]
        self.reads += 1
        return value

    def elapsed(self) -> float:
        return time.perf_counter() - self.created


class FakeNvml:
    """Module-shaped: the functions and constants llenergymeasure calls on pynvml."""

    NVMLError = NVMLError
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    def __init__(self, gpus: list[FakeGpu], *, init_error: str | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.initialised = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise NVMLError(9, self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlSystemGetDriverVersion(self) -> str:
        return "999.99"

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        return gpu.counter()

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        return round(gpu.power_w(gpu.elapsed()) * 1000)

    def nvmlDeviceGetTemperature(self, gpu: FakeGpu, sensor: int) -> int:
        return gpu.temperature_c(gpu.elapsed())

    def nvmlDeviceGetClockInfo(self, gpu: FakeGpu, clock: int) -> int:
        return 1980

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:
        total = round(gpu.memory_gb * 10**9)
        return SimpleNamespace(total=total, used=total // 8, free=total - total // 8)

    def nvmlDeviceGetEnforcedPowerLimit(self, gpu: FakeGpu) -> int:
        return 700_000

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=97, memory=40)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, gpu: FakeGpu) -> int:
        return gpu.throttle_reasons

    def nvmlDeviceGetPersistenceMode(self, gpu: FakeGpu) -> int:
        return gpu.persistence

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: FakeGpu) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=0) for pid in gpu.other_pids]
