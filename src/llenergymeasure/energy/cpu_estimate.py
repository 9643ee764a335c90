"""The CPU estimate: a model of energy, not a measurement, for machines with no readable counter.

    energy = CPU seconds of this process (all threads) x TDP / logical CPUs

(or of the processes that do the work, such as a server's process tree: ``cpu_seconds``).

The TDP comes from codecarbon's table of CPU models (read as a file; codecarbon is not
imported). An unknown CPU gets codecarbon's own fallback of 4 W per thread. Every reading is
flagged ``estimated`` and every summary prints "(estimated)".

Its resolution is one step of the CPU-time clock it reads x W per CPU: a tick (10 ms) for a
process tree, whose CPU time the kernel counts in ticks, so a light window of a server can read
no tick at all; such a window has no energy ("unavailable", with the reason: sanity.py), not 0 J.

Its timeline is the same model over time: a sampler probe reads the CPU seconds at the sampling
interval and turns each interval's CPU seconds per second (1.5 = one and a half CPUs busy) into
watts; every sample says ``"estimated": true``.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from typing import Any

from llenergymeasure.energy.base import DeviceEnergy, EnergyReading
from llenergymeasure.energy.sampler import Probe, Sampler, rate_probe

WATTS_PER_THREAD_FALLBACK = 4.0
KERNEL_TICK_S = 0.01  # the CPU time of other processes is counted in the kernel's ticks (USER_HZ = 100)


def codecarbon_data_dir() -> Path | None:
    spec = find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _clean(name: str) -> str:
    name = re.sub(r"\((R|TM)\)", "", name, flags=re.I)
    name = re.sub(r"\s+CPU\s*@.*$|\s+@\s*[\d.]+\s*GHz.*$|\s+\d+-Core Processor.*$", "", name)
    return re.sub(r"\s+", " ", name.replace(" CPU", "")).strip().lower()


def cpu_tdp(cpu_name: str | None) -> tuple[float, str | None]:
    """(TDP in watts, matched table name); (fallback, None) when the model is not in the table."""
    threads = os.cpu_count() or 1
    data = codecarbon_data_dir()
    table = data / "hardware" / "cpu_power.csv" if data else None
    if cpu_name and table and table.is_file():
        wanted = _clean(cpu_name)
        with table.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if _clean(row["Name"]) == wanted:
                    return float(row["TDP"]), row["Name"]
    return WATTS_PER_THREAD_FALLBACK * threads, None


class CpuEstimateMeter:
    source = "cpu_estimate"

    def __init__(self, cpu_name: str | None, cpu_seconds: Callable[[], float] = time.process_time,
                 interval_s: float = 0.1) -> None:
        self.cpu_seconds = cpu_seconds
        self.interval_s = interval_s
        # This process's CPU time is exact to the nanosecond; a process tree's (psutil) to the tick.
        own = cpu_seconds is time.process_time
        self.update_period_s = 0.0 if own else KERNEL_TICK_S
        self.tick_s = time.get_clock_info("process_time").resolution if own else KERNEL_TICK_S
        self.tdp_w, self.matched = cpu_tdp(cpu_name)
        self.watts_per_cpu_second = self.tdp_w / (os.cpu_count() or 1)
        basis = (f"TDP {self.tdp_w:g} W of {self.matched}" if self.matched else
                 f"CPU {cpu_name or 'unknown'} not in codecarbon's table: {WATTS_PER_THREAD_FALLBACK:g} W per thread")
        whose = "this process's" if cpu_seconds is time.process_time else "the measured processes'"
        self.note = (f"energy estimated from {whose} CPU time x {self.watts_per_cpu_second:.3g} W per CPU "
                     f"({basis}); not a measurement")
        self.cpu_name = cpu_name or "CPU"
        self._cpu_start = 0.0
        self._sampler: Sampler | None = None

    def probes(self, clock: Callable[[], float] = time.perf_counter) -> dict[str, Probe]:
        """A fresh probe, "cpu": ``{"power_w", "cpu_seconds_per_s", "estimated": True}`` over the
        interval since its previous sample (None at the first call)."""

        def sample(before: float, after: float, seconds: float) -> dict[str, Any] | None:
            if after < before:  # CPU time never goes down; a clock that did has no rate to give
                return None
            busy = (after - before) / seconds
            return {"power_w": busy * self.watts_per_cpu_second, "cpu_seconds_per_s": busy, "estimated": True}

        return {"cpu": rate_probe(self.cpu_seconds, sample, clock)}

    def start(self) -> None:
        self._sampler = Sampler(self.probes(), self.interval_s)
        self._sampler.start()
        self._cpu_start = self.cpu_seconds()

    def stop(self) -> EnergyReading:
        joules = (self.cpu_seconds() - self._cpu_start) * self.watts_per_cpu_second
        sampler = self._sampler
        samples = self._stop_sampler()
        warnings = [("energy_estimated", self.note)]
        if sampler is not None and sampler.error is not None:
            warnings.append(("sampler_failed", f"the CPU time sampler stopped early: {sampler.error}"))
        watts = self.watts_per_cpu_second
        device = DeviceEnergy("cpu", self.cpu_name, joules, self.source, samples=len(samples.get("cpu", [])),
                              resolution_j=self.tick_s * watts,
                              resolution=f"{_duration(self.tick_s)} of CPU time x {watts:.3g} W per CPU")
        return EnergyReading(source=self.source, energy_j=joules, cpu_energy_j=joules, estimated=True,
                             devices=[device], warnings=warnings, timeline=samples)

    def _stop_sampler(self) -> dict[str, list[dict[str, Any]]]:
        sampler, self._sampler = self._sampler, None
        return sampler.stop() if sampler is not None else {}

    def close(self) -> None:
        self._stop_sampler()


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:g} ms" if seconds >= 1e-3 else f"{seconds * 1e9:g} ns"
