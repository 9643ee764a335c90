"""Sanity checks on every energy reading, before anyone sees it.

A meter's number goes into CI gates, baselines and papers, so none leaves the meter unchecked.
``create_meter`` wraps every meter in ``CheckedMeter``, which applies, whatever the source:

    negative or non-finite energy          ExperimentError naming the device and source
    zero while work ran                    energy unavailable (not 0 J), suspect
        (any GPU: it draws power even idle; the CPU's zones all at 0 while this process worked)
    under the meter's resolution           energy unavailable (not 0 J), with the resolution
        (the CPU's devices read less than one step of their meters: ``DeviceEnergy.resolution_j``,
        a tick of CPU time x W per CPU for the CPU estimate, 1 uJ for RAPL; alongside a GPU only
        ``cpu_energy_j`` is unavailable, with ``cpu_energy_unresolved``)
    mean power no device can draw          kept, with ``energy_implausible``, suspect
        (above 1.5 x the GPU's enforced power limit, else above MAX_MEAN_POWER_W)

and the meters use the helpers below where their counters need it:

    counter_delta         a counter that went down wrapped once (NVML's 64-bit mJ counter, RAPL's
                          ``max_energy_range_uj``) if the wrapped difference is a plausible energy;
                          otherwise it was reset mid-window: ExperimentError
    counter_disagreement  NVML's energy counter against the integral of the sampler's power
                          readings (``energy_disagrees``, suspect)
    counter_stall         NVML's energy counter, read at every sampler tick, standing still for
                          part of the window while power was drawn (``energy_disagrees``, suspect)

The tolerance of the cross-check: the two come from the same sensor, but the power reading is
a moving average over about one second on current GPUs (so it lags a load step by up to a
second at each edge of the window) and is itself read only at our sampling interval, and on
A100/H100-class GPUs the sensor averages only part of each period. We therefore flag only a
disagreement larger than 25% of the larger figure plus one second at the window's peak power:
a window of a few seconds at steady load agrees far better than that, and a counter reset, a
stuck counter or a jump of orders of magnitude cannot hide inside it.

A counter stuck for only part of a window can hide inside that tolerance (frozen for 70% of a
2 s window, it still agrees to within 25% + 1 s), so the sampler also reads the counter at every
tick, and the stall check needs no power figure: a GPU always draws power, so its counter must
move at its own update interval (about every 100 ms on H100/H200, a few tens of ms late at
worst). A window is flagged when its counter holds one value, between two reads, for longer than
COUNTER_STALL_MIN_S or COUNTER_STALL_UPDATES x the median time between its changes in the window
(its update interval, for a GPU whose counter updates slowly), whichever is longer, while the
power readings say energy was drawn. The hold is measured between reads that saw the same value,
so it never exceeds the true stall: a late or starved sampler can hide a stall, never make one.
A counter that changed fewer than MIN_COUNTER_UPDATES times has no known update interval, and
its window is left to the check above (with two changes the median is their mean, and a slow
counter's first change may come just after the window opens, never both).

A suspect reading fails every energy gate (``expect:`` and regression) with its reason and
never enters a baseline.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from llenergymeasure.energy.base import DeviceEnergy, EnergyMeter, EnergyReading, probes_of, update_period_s
from llenergymeasure.energy.sampler import trapezoid_energy_j
from llenergymeasure.exceptions import ExperimentError

# Mean power over a window that no single device of its kind draws today (an H200 is 700 W,
# a B200 1 kW; a CPU socket with its DRAM a few hundred W).
MAX_MEAN_POWER_W = {"gpu": 2000.0, "cpu": 1500.0}
POWER_LIMIT_HEADROOM = 1.5  # a window's mean power above 1.5x the enforced limit is not a GPU's
CROSS_CHECK_RELATIVE = 0.25
CROSS_CHECK_LAG_S = 1.0  # the power reading's averaging window, at each edge of ours
COUNTER_STALL_MIN_S = 0.3  # three updates of an H100/H200 energy counter
COUNTER_STALL_UPDATES = 3  # ... or three of the update intervals the counter showed, if longer
MIN_COUNTER_UPDATES = 2  # intervals between a counter's changes that tell its update interval
COUNTER_STEP_J = 1e-3  # NVML counts whole mJ
MIN_CPU_SECONDS = 0.01  # CPU time that proves this process worked during the window

# Warning codes that make a reading suspect: gates fail on them and baselines refuse them.
SUSPECT_CODES = frozenset({"energy_zero", "energy_implausible", "energy_disagrees"})


def counter_delta(before: int, after: int, *, wrap_at: int, joules_per_unit: float, duration_s: float,
                  max_power_w: float, what: str) -> tuple[int, bool]:
    """(after - before in counter units, whether it wrapped) for ``what``'s counter, which wraps at
    ``wrap_at``. A counter that went down either wrapped once or was reset (a driver reload, a
    device reset); only a wrap gives an energy the device could draw in ``duration_s``."""
    if after >= before:
        return after - before, False
    wrapped = after + wrap_at - before
    if wrapped * joules_per_unit <= max_power_w * max(duration_s, 1.0):
        return wrapped, True
    raise ExperimentError(
        f"{what}: the energy counter went backwards during the window ({before} -> {after}): it was reset "
        "(a driver reload or a device reset), so this window's energy is unknown; run it again"
    )


def counter_disagreement(label: str, counter_j: float, integrated_j: float, peak_w: float) -> str | None:
    """Why a GPU's counter and its integrated power cannot both be right, or None."""
    allowed = CROSS_CHECK_RELATIVE * max(counter_j, integrated_j) + CROSS_CHECK_LAG_S * peak_w
    if abs(counter_j - integrated_j) <= allowed:
        return None
    return (f"{label}: the energy counter says {counter_j:.4g} J but the integrated power readings "
            f"{integrated_j:.4g} J (peak {peak_w:.4g} W); more than the sensor's averaging can explain")


def counter_stall(label: str, reads: list[tuple[float, int]], power: list[dict[str, Any]],
                  window_s: float) -> str | None:
    """Why a GPU's energy counter stood still for part of the window, or None. ``reads``: (time,
    counter in mJ) at the window's edges and the sampler's ticks; ``power``: the sampler's samples."""
    runs = _runs(sorted(reads))
    starts = [first for first, _, _ in runs]
    intervals = [later - earlier for earlier, later in zip(starts, starts[1:])]
    if len(intervals) < MIN_COUNTER_UPDATES:
        return None
    every = statistics.median(intervals)
    allowed = max(COUNTER_STALL_MIN_S, COUNTER_STALL_UPDATES * every)
    first, last, value = max(runs, key=lambda run: run[1] - run[0])
    drawn = trapezoid_energy_j(power, first, last)
    if last - first <= allowed or drawn < COUNTER_STEP_J:
        return None
    return (f"{label}: the energy counter stood still at {value} mJ for {last - first:.2f} s of the {window_s:.2f} s "
            f"window while the power readings say {drawn:.4g} J were drawn (elsewhere in the window it moved every "
            f"{every * 1000:.0f} ms; {allowed:.2f} s is allowed); a counter stuck for part of a window under-reads it")


def _runs(reads: list[tuple[float, int]]) -> list[tuple[float, float, int]]:
    """(first time, last time, value) of each stretch of successive reads with the same value."""
    runs: list[tuple[float, float, int]] = []
    for t, value in reads:
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], t, value)
        else:
            runs.append((t, t, value))
    return runs


def check_reading(reading: EnergyReading, duration_s: float, cpu_seconds: float) -> EnergyReading:
    """``reading`` after the checks above: raises on an impossible number, marks a doubtful one.
    A reading is suspect whenever it carries a suspect warning, whichever meter (or meters
    combined) added it: the warning codes are the one source of truth."""
    reading.suspect = reading.suspect or bool(suspect_reasons(reading.warnings))
    if reading.energy_j is None:
        return reading
    devices = reading.devices or [DeviceEnergy("cpu" if reading.cpu_energy_j is not None else "gpu",
                                               reading.source, reading.energy_j, reading.source)]
    for label, value in _figures(reading, devices):
        if not math.isfinite(value) or value < 0:
            what = "not a number" if math.isnan(value) else "infinite" if math.isinf(value) else "negative"
            raise ExperimentError(f"{label}: the {reading.source} energy reading is {what} ({value} J); "
                                  "this is a meter or driver fault, not a measurement")

    idle = _idle(devices, cpu_seconds)
    if idle:
        names = ", ".join(_label(d) for d in idle)
        reason = (f"{names} read 0 J over {duration_s:.2f} s while work ran (a stuck or frozen energy counter); "
                  "the window's energy is unknown")
        reading.warnings.append(("energy_zero", reason))
        reading.energy_j = reading.gpu_energy_j = reading.cpu_energy_j = None
        reading.unavailable_reason = reason
        reading.suspect = True
        return reading

    unresolved = _unresolved(devices)
    if unresolved:
        reason = _unresolved_reason(unresolved, duration_s)
        reading.cpu_energy_j = None
        if len(unresolved) == len(devices):
            reading.energy_j = reading.gpu_energy_j = None
            reading.unavailable_reason = reason
            return reading
        reading.warnings.append(("cpu_energy_unresolved", f"CPU energy not measured: {reason}; the total is the "
                                                          "GPUs' energy alone"))

    for device in devices:
        watts = device.energy_j / duration_s if duration_s > 0 else 0.0
        ceiling = device.max_power_w * POWER_LIMIT_HEADROOM if device.max_power_w else _ceiling_w(device.device)
        if watts > ceiling:
            reading.warnings.append(("energy_implausible",
                                     f"{_label(device)}: {device.energy_j:.4g} J in {duration_s:.2f} s is a mean of "
                                     f"{watts:.4g} W, more than the device can draw ({ceiling:.4g} W)"))
            reading.suspect = True
    return reading


def suspect_reasons(warnings: list[Any]) -> list[str]:
    """The messages of the warnings that made a reading suspect (``(code, message)`` pairs or
    objects with ``code`` and ``message``)."""
    pairs = [(w.code, w.message) if hasattr(w, "code") else tuple(w) for w in warnings]
    return [message for code, message in pairs if code in SUSPECT_CODES]


class CheckedMeter:
    """Any meter, with ``check_reading`` applied to what its ``stop`` returns. ``cpu_seconds``
    is the CPU time of the processes doing the work (this one's by default)."""

    def __init__(self, meter: EnergyMeter, cpu_seconds: Callable[[], float] = time.process_time) -> None:
        self.meter = meter
        self.cpu_seconds = cpu_seconds
        self.source = meter.source
        self.update_period_s = update_period_s(meter)
        self._t0 = self._cpu0 = 0.0

    def probes(self) -> dict[str, Any]:
        return probes_of(self.meter)

    def start(self) -> None:
        self._t0, self._cpu0 = time.perf_counter(), self.cpu_seconds()
        self.meter.start()

    def stop(self) -> EnergyReading:
        reading = self.meter.stop()
        duration, cpu = time.perf_counter() - self._t0, self.cpu_seconds() - self._cpu0
        return check_reading(reading, duration, cpu)

    def close(self) -> None:
        self.meter.close()


def _figures(reading: EnergyReading, devices: list[DeviceEnergy]) -> list[tuple[str, float]]:
    totals = [("total", reading.energy_j), ("GPU total", reading.gpu_energy_j), ("CPU total", reading.cpu_energy_j)]
    return [(label, v) for label, v in totals if v is not None] + [(_label(d), d.energy_j) for d in devices]


def _idle(devices: list[DeviceEnergy], cpu_seconds: float) -> list[DeviceEnergy]:
    """The devices that read 0 J although they must have drawn power. A GPU always does: it
    draws tens of watts idle, and the NVML meter reports no energy at all for a window shorter
    than its sensor can resolve. The CPU's zones are judged together (a DRAM zone that some
    platforms expose but never update reads 0 on its own), and only when this process worked."""
    gpus = [d for d in devices if d.device.startswith("gpu") and d.energy_j == 0]
    cpus = [d for d in devices if not d.device.startswith("gpu")]
    frozen = cpus and all(d.energy_j == 0 for d in cpus) and cpu_seconds >= MIN_CPU_SECONDS
    return gpus + (cpus if frozen else [])


def _unresolved(devices: list[DeviceEnergy]) -> list[DeviceEnergy]:
    """The CPU's devices when each read less than one step of its meter (half a step: a counter
    read in whole steps read none, whatever a difference of floats makes of it). A GPU never gets
    here with a reading under its meter's step: it always draws power, so its 0 J is a frozen counter."""
    cpus = [d for d in devices if not d.device.startswith("gpu")]
    if cpus and all(d.energy_j < d.resolution_j / 2 for d in cpus):
        return cpus
    return []


def _unresolved_reason(devices: list[DeviceEnergy], duration_s: float) -> str:
    names = ", ".join(_label(d) for d in devices)
    steps = "; ".join(dict.fromkeys(f"{d.resolution} = {d.resolution_j:.3g} J" for d in devices))
    read = sum(d.energy_j for d in devices)
    return (f"{names}: the meter's resolution is {steps}, and this window read less ({read:.3g} J over "
            f"{duration_s:.2f} s); put more work in the window (more prompts, requests or tokens)")


def _ceiling_w(device: str) -> float:
    return MAX_MEAN_POWER_W["gpu" if device.startswith("gpu") else "cpu"]


def _label(device: DeviceEnergy) -> str:
    if device.device.startswith("gpu"):
        return f"GPU {device.device[3:]} ({device.name})"
    return f"{device.name} ({device.source})" if device.name != device.source else device.source
