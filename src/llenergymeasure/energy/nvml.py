"""NVML: GPU energy from the driver's total-energy counter, or from integrated power samples.

On Volta and newer, ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the driver
loaded) is read at both ends of the window: exact at the counter's resolution. Older GPUs
have no counter; their energy is the trapezoid integral of the sampler's power readings.

The GPUs measured are the ones this process can see: CUDA_VISIBLE_DEVICES entries are
matched to NVML devices by UUID (``GPU-...``) or by index in PCI bus order (NVML's order, and
CUDA's when CUDA_DEVICE_ORDER=PCI_BUS_ID).

Every NVML call that could block goes through ``hardware.bounded`` (a time limit), and every
counter difference through ``sanity.counter_delta`` (wraps, resets); a GPU with a counter is
also cross-checked against its integrated power samples (``sanity.counter_disagreement``), and
its counter, read again at every sampler tick, must not stand still for part of the window
(``sanity.counter_stall``).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from llenergymeasure.energy import hardware
from llenergymeasure.energy.base import DeviceEnergy, EnergyReading
from llenergymeasure.energy.hardware import DriverTimeout, bounded
from llenergymeasure.energy.sampler import Sampler, trapezoid_energy_j
from llenergymeasure.energy.sanity import (
    COUNTER_STEP_J,
    MAX_MEAN_POWER_W,
    POWER_LIMIT_HEADROOM,
    counter_delta,
    counter_disagreement,
    counter_stall,
)
from llenergymeasure.exceptions import ExperimentError, PreFlightError

# The energy counter and the power reading are refreshed about every 100 ms; a window must
# span several updates for the difference of two reads to mean anything.
SENSOR_PERIOD_S = 0.1
MIN_SAMPLES = 10
COUNTER_WRAP_MJ = 2**64  # nvmlDeviceGetTotalEnergyConsumption is an unsigned 64-bit count of mJ
TEMPERATURE_DRIFT_C = 10
_THROTTLE_NAMES = {
    0x0000000000000004: "SW power cap",
    0x0000000000000008: "HW slowdown",
    0x0000000000000020: "SW thermal slowdown",
    0x0000000000000040: "HW thermal slowdown",
    0x0000000000000080: "HW power brake",
}


@dataclass
class NvmlDevice:
    index: int
    handle: Any
    name: str
    uuid: str
    has_counter: bool
    power_limit_w: float | None = None

    @property
    def label(self) -> str:
        return f"GPU {self.index} ({self.name})"


def decoded(value: str | bytes) -> str:
    """NVML strings are bytes in older nvidia-ml-py releases, str in newer ones."""
    return value.decode() if isinstance(value, bytes) else value


def visible_devices(nvml: ModuleType, cuda_visible_devices: str | None = None) -> list[NvmlDevice]:
    """NVML devices for this process's CUDA_VISIBLE_DEVICES, in CUDA's order. NVML must be initialised."""
    count = nvml.nvmlDeviceGetCount()
    devices = []
    for index in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            has_counter = True
        except nvml.NVMLError:
            has_counter = False
        devices.append(NvmlDevice(index, handle, decoded(nvml.nvmlDeviceGetName(handle)),
                                  decoded(nvml.nvmlDeviceGetUUID(handle)), has_counter, power_limit_w(nvml, handle)))

    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if cuda_visible_devices is None else cuda_visible_devices
    if visible is None or visible.strip() == "":
        return devices if visible is None else []
    chosen = []
    for entry in (e.strip() for e in visible.split(",")):
        if entry.isdigit():
            match = next((d for d in devices if d.index == int(entry)), None)
        else:
            match = next((d for d in devices if d.uuid.startswith(entry) or d.uuid == f"GPU-{entry}"), None)
        if match is None:
            break  # CUDA ignores every entry after the first invalid one
        chosen.append(match)
    return chosen


class NvmlUnavailable(Exception):
    """NVML cannot be used here; the message says why and what to do."""


def init_nvml() -> tuple[ModuleType, list[NvmlDevice]]:
    """Initialise NVML and list the visible GPUs (shut it down again with ``shutdown``).

    Whatever NVML does (an error at init, a GPU lost while listing, a call that never returns),
    the answer is the GPUs or an NvmlUnavailable saying why, within the driver time limit."""
    try:
        nvml = hardware.pynvml()
    except ImportError:
        raise NvmlUnavailable("nvml needs nvidia-ml-py: pip install nvidia-ml-py") from None
    try:
        bounded(nvml.nvmlInit, "nvmlInit")
    except DriverTimeout as exc:
        raise NvmlUnavailable(f"NVML did not answer ({exc})") from None
    except Exception as exc:
        raise NvmlUnavailable(f"NVML did not initialise ({exc}); is the NVIDIA driver installed?") from None
    try:
        devices = bounded(lambda: visible_devices(nvml), "listing the GPUs")
    except Exception as exc:  # NVMLError (a GPU fell off the bus, Xid 79) or DriverTimeout
        shutdown(nvml)
        raise NvmlUnavailable(f"NVML could not list the GPUs ({exc})") from None
    if not devices:
        shutdown(nvml)
        raise NvmlUnavailable("NVML sees no GPU visible to this process (check CUDA_VISIBLE_DEVICES)")
    return nvml, devices


def shutdown(nvml: ModuleType) -> None:
    """``nvmlShutdown``, bounded; a failure to shut down changes nothing already measured."""
    try:
        bounded(nvml.nvmlShutdown, "nvmlShutdown")
    except Exception:
        pass


def power_limit_w(nvml: Any, handle: Any) -> float | None:
    """The enforced power limit in W; None where the GPU does not report one (NVMLError_NotSupported)."""
    try:
        return nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
    except Exception:
        return None


def open_nvml() -> tuple[ModuleType, list[NvmlDevice]]:
    """``init_nvml`` for a run: PreFlightError saying why when NVML cannot be used."""
    try:
        return init_nvml()
    except NvmlUnavailable as exc:
        raise PreFlightError(f"energy.source: {exc}") from None


class NvmlMeter:
    """Energy of every visible GPU over a window, summed, with per-device figures and a timeline."""

    update_period_s = SENSOR_PERIOD_S

    def __init__(self, nvml: ModuleType, devices: list[NvmlDevice], interval_s: float) -> None:
        self.nvml = nvml
        self.devices = devices
        self.interval_s = interval_s
        self.source = "nvml_counter" if all(d.has_counter for d in devices) else "nvml_power"
        try:
            self._environment_warnings = bounded(lambda: environment_warnings(nvml, devices), "checking the GPUs")
        except DriverTimeout as exc:
            raise PreFlightError(f"energy.source: NVML stopped answering ({exc})") from None
        self._sampler: Sampler | None = None
        self._start_mj: list[int | None] = []
        self._t0 = 0.0

    def probes(self) -> dict[str, Any]:
        """A telemetry probe per GPU ("gpu0": power, temperature, clocks, memory, utilisation,
        throttle reasons); called on a sampler's thread."""
        return {f"gpu{d.index}": self._probe(d) for d in self.devices}

    def start(self) -> None:
        self._sampler = Sampler(self.probes(), self.interval_s)
        self._sampler.start()
        self._start_mj = self._counters()
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        try:
            end_mj = self._counters()
        finally:
            t1 = time.perf_counter()
            sampler, self._sampler = self._sampler, None
            samples = sampler.stop() if sampler else {}
        duration = t1 - self._t0
        sampler_error = sampler.error if sampler else None
        warnings = self._warnings(samples, duration, sampler_error)

        per_device = []
        for device, before, after in zip(self.devices, self._start_mj, end_mj):
            trace = samples.get(f"gpu{device.index}", [])
            if before is not None and after is not None:
                joules = self._counter_joules(device, before, after, duration, trace, sampler_error, warnings)
                source = "nvml_counter"
            elif sampler_error is not None:
                raise ExperimentError(
                    f"{device.label}: power sampling failed after {len(trace)} sample(s) ({sampler_error}); this GPU "
                    "has no energy counter, so the window's energy cannot be integrated")
            else:
                joules, source = trapezoid_energy_j(trace, self._t0, t1), "nvml_power"
            step = COUNTER_STEP_J if source == "nvml_counter" else 0.0
            per_device.append(DeviceEnergy(device=f"gpu{device.index}", name=device.name, energy_j=joules,
                                           source=source, samples=len(trace), max_power_w=device.power_limit_w,
                                           resolution_j=step, resolution="1 mJ of the energy counter" if step else ""))

        if duration < SENSOR_PERIOD_S:
            return EnergyReading(
                source=self.source, warnings=warnings, devices=per_device, timeline=samples,
                unavailable_reason=(f"window too short to measure: {duration * 1000:.0f} ms is less than the "
                                    f"{SENSOR_PERIOD_S * 1000:.0f} ms the GPU energy sensor needs; add prompts or tokens"),
            )
        total = sum(d.energy_j for d in per_device)
        suspect = any(code == "energy_disagrees" for code, _ in warnings)
        return EnergyReading(source=self.source, energy_j=total, gpu_energy_j=total, devices=per_device,
                             warnings=warnings, timeline=samples, suspect=suspect)

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None
        shutdown(self.nvml)

    def _counter_joules(self, device: NvmlDevice, before: int, after: int, duration: float,
                        trace: list[dict[str, Any]], sampler_error: BaseException | None,
                        warnings: list[tuple[str, str]]) -> float:
        """The counter's difference in J, checked for a reset and against the integrated power."""
        ceiling = device.power_limit_w * POWER_LIMIT_HEADROOM if device.power_limit_w else MAX_MEAN_POWER_W["gpu"]
        delta, wrapped = counter_delta(before, after, wrap_at=COUNTER_WRAP_MJ, joules_per_unit=1e-3,
                                       duration_s=duration, max_power_w=ceiling, what=device.label)
        joules = delta / 1000.0
        if wrapped:
            warnings.append(("counter_wrapped", f"{device.label}: the energy counter wrapped around during the "
                                                "window; the difference allows for it"))
        powers = [s["power_w"] for s in trace if s.get("power_w") is not None]
        if sampler_error is None and len(powers) >= 3 and duration >= SENSOR_PERIOD_S:
            t1 = self._t0 + duration
            integrated = trapezoid_energy_j(trace, self._t0, t1)
            problems = [counter_disagreement(device.label, joules, integrated, max(powers)),
                        counter_stall(device.label, counter_reads(trace, (self._t0, before), (t1, after)), trace,
                                      duration)]
            warnings.extend(("energy_disagrees", problem) for problem in problems if problem)
        return joules

    def _counters(self) -> list[int | None]:
        def read() -> list[int | None]:
            return [self.nvml.nvmlDeviceGetTotalEnergyConsumption(d.handle) if d.has_counter else None
                    for d in self.devices]

        try:
            return bounded(read, "reading the GPU energy counters")
        except (self.nvml.NVMLError, DriverTimeout) as exc:
            if self._sampler is not None:
                self._sampler.stop()
                self._sampler = None
            labels = ", ".join(d.label for d in self.devices)
            raise ExperimentError(f"NVML failed while reading the GPU energy counter of {labels}: {exc}") from exc

    def _probe(self, device: NvmlDevice) -> Any:
        nvml, handle = self.nvml, device.handle

        def probe() -> dict[str, Any]:
            sample = {
                "power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
                "temperature_c": nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
                "sm_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
                "memory_used_mb": nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20,
                "utilization_pct": nvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                "throttle_reasons": nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle),
            }
            if device.has_counter:
                # Only the stall check reads the counter between the window's edges: a read that
                # fails here leaves it a gap, and the edges' own reads report a failing counter.
                with contextlib.suppress(nvml.NVMLError):
                    sample["energy_mj"] = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            return sample

        return probe

    def _warnings(
        self, samples: dict[str, list[dict[str, Any]]], duration: float, sampler_error: BaseException | None
    ) -> list[tuple[str, str]]:
        warnings = list(self._environment_warnings)
        if sampler_error is not None:
            warnings.append(("sampler_failed", f"the telemetry sampler stopped early: {sampler_error}"))
        if SENSOR_PERIOD_S <= duration < 10 * SENSOR_PERIOD_S:
            warnings.append(("short_window", f"window of {duration:.2f} s spans few sensor updates "
                                             f"(~{SENSOR_PERIOD_S * 1000:.0f} ms each); energy is coarse"))
        for device in self.devices:
            trace = samples.get(f"gpu{device.index}", [])
            label = device.label
            if not device.has_counter and len(trace) < MIN_SAMPLES:
                warnings.append(("few_samples", f"{label}: only {len(trace)} power samples in the window; "
                                                "energy from so few samples is imprecise"))
            reasons = 0
            for sample in trace:
                reasons |= int(sample.get("throttle_reasons") or 0)
            named = [name for bit, name in _THROTTLE_NAMES.items() if reasons & bit]
            if named:
                warnings.append(("throttled", f"{label} was throttled during the window: {', '.join(named)}"))
            temps = [s["temperature_c"] for s in trace if s.get("temperature_c") is not None]
            if temps and max(temps) - min(temps) >= TEMPERATURE_DRIFT_C:
                warnings.append(("temperature_drift", f"{label} temperature moved {min(temps)}-{max(temps)} C "
                                                      "during the window; power depends on temperature"))
        return warnings


def counter_reads(trace: list[dict[str, Any]], start: tuple[float, int], end: tuple[float, int]
                  ) -> list[tuple[float, int]]:
    """(time, counter in mJ) of a window: its ``start`` and ``end`` reads and the sampler's between them."""
    inside = [(s["t"], s["energy_mj"]) for s in trace if "energy_mj" in s and start[0] <= s["t"] <= end[0]]
    return [start, *inside, end]


def environment_warnings(nvml: ModuleType, devices: list[NvmlDevice]) -> list[tuple[str, str]]:
    """Conditions before a run that make GPU energy less trustworthy."""
    warnings = []
    own = os.getpid()
    for device in devices:
        label = device.label
        try:
            if nvml.nvmlDeviceGetPersistenceMode(device.handle) == 0:
                warnings.append(("persistence_off", f"{label}: persistence mode is off; the driver may re-initialise "
                                                    "between runs (sudo nvidia-smi -pm 1)"))
        except nvml.NVMLError:
            pass
        try:
            others = [p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(device.handle) if p.pid != own]
        except nvml.NVMLError:
            others = []
        if others:
            warnings.append(("other_processes", f"{label}: {len(others)} other process(es) use this GPU "
                                                f"(pids {', '.join(map(str, others[:5]))}); their energy is counted too"))
    return warnings
