"""A fake ``pynvml`` for the hardware seam: scripted GPUs with energy counters and power traces.

Installed with ``llenergymeasure.energy.hardware.set_pynvml(FakeNvml([...]))``. Only NVML is
faked; everything above it (meters, sampler, runner) runs for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace


class NVMLError(Exception):
    def __init__(self, value: int = 999, text: str = "Unknown Error") -> None:
        self.value = value
        super().__init__(text)


NOT_SUPPORTED = 3
GPU_IS_LOST = 15

# A call told to hang waits on this; tests set it at teardown so no thread outlives them (in a
# subprocess the hung daemon thread simply ends with the process).
RELEASE = threading.Event()


def hang() -> None:
    RELEASE.wait()


# The telemetry sampler's thread (energy/sampler.py). It reads the energy counter at every tick
# for the stall check, apart from the window's edge reads that ``reads`` counts.
SAMPLER_THREAD = "llem-sampler"


@dataclass
class FakeGpu:
    """``counter_mj``: successive values of the energy counter (the last repeats), or the counter
    as a function of seconds since creation, or None for a pre-Volta GPU without one.
    ``power_w``: power as a function of seconds since creation.

    The sampler's reads of the counter (``sampled_counter``) are not among ``reads``: a list
    scripts the reads outside the sampler (the listing's probe, each window's edges); a function
    of time is read by the sampler too, so a test can freeze it for part of a window."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    counter_mj: list[int] | Callable[[float], int] | None = None
    power_w: Callable[[float], float] = lambda t: 100.0
    temperature_c: Callable[[float], int] = lambda t: 45
    throttle_reasons: int = 0
    persistence: int = 1
    other_pids: list[int] = field(default_factory=list)
    memory_gb: float = 80.0
    fail_counter_after: int | None = None  # raise NVMLError from this read on
    hang_counter_after: int | None = None  # block from this read on (until RELEASE)
    fail_power_after: int | None = None  # the GPU falls off the bus at this power reading
    hang_power_after: int | None = None
    created: float = field(default_factory=time.perf_counter)
    reads: int = 0
    power_reads: int = 0
    sampler_reads: int = 0

    def counter(self) -> int:
        if self.counter_mj is None:
            raise NVMLError(NOT_SUPPORTED, "Not Supported")
        if self.hang_counter_after is not None and self.reads >= self.hang_counter_after:
            hang()
        if self.fail_counter_after is not None and self.reads >= self.fail_counter_after:
            raise NVMLError(GPU_IS_LOST, "GPU is lost")
        if callable(self.counter_mj):
            value = int(self.counter_mj(self.elapsed()))
        else:
            value = self.counter_mj[min(self.reads, len(self.counter_mj) - 1)]
        self.reads += 1
        return value

    def sampled_counter(self) -> int:
        """The counter as the sampler reads it between a window's edges: a list scripts none of
        those reads, so there it is not supported (the meter then has no stall check to make)."""
        if not callable(self.counter_mj):
            raise NVMLError(NOT_SUPPORTED, "Not Supported")
        self.sampler_reads += 1
        return int(self.counter_mj(self.elapsed()))

    def power_mw(self) -> int:
        self.power_reads += 1
        if self.hang_power_after is not None and self.power_reads > self.hang_power_after:
            hang()
        if self.fail_power_after is not None and self.power_reads > self.fail_power_after:
            raise NVMLError(GPU_IS_LOST, "GPU is lost")
        return round(self.power_w(self.elapsed()) * 1000)

    def elapsed(self) -> float:
        return time.perf_counter() - self.created


class FakeNvml:
    """Module-shaped: the functions and constants llenergymeasure calls on pynvml.

    ``module_source`` gives a ``pynvml.py`` that puts such a fake first on a subprocess's
    ``sys.path``: ``llem`` and pytest sessions started by a test then see the fake GPUs through
    the same seam (``import pynvml``) as they would the real driver."""

    NVMLError = NVMLError
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    def __init__(self, gpus: list[FakeGpu], *, init_error: str | None = None, init_hangs: bool = False,
                 lost_at_listing: bool = False) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.init_hangs = init_hangs
        self.lost_at_listing = lost_at_listing
        self.initialised = 0

    def nvmlInit(self) -> None:
        if self.init_hangs:
            hang()
        if self.init_error:
            raise NVMLError(9, self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if self.lost_at_listing:
            raise NVMLError(GPU_IS_LOST, "GPU is lost")
        return self.gpus[index]

    def nvmlSystemGetDriverVersion(self) -> str:
        return "999.99"

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        if threading.current_thread().name == SAMPLER_THREAD:
            return gpu.sampled_counter()
        return gpu.counter()

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        return gpu.power_mw()

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


def module_source(repo: str, setup: str) -> str:
    """The text of a ``pynvml.py`` whose functions are those of the FakeNvml that ``setup`` (Python
    source, with FakeGpu and FakeNvml in scope) assigns to ``fake``."""
    return (
        "import sys\n"
        f"sys.path.insert(0, {repo!r})\n"
        "from tests.fakes.pynvml import FakeGpu, FakeNvml, NVMLError\n"
        f"{setup}\n"
        "for _name in dir(fake):\n"
        "    if _name.startswith(('nvml', 'NVML')):\n"
        "        globals()[_name] = getattr(fake, _name)\n"
    )
