"""The CPU estimate: a model of energy, not a measurement, for machines with no readable counter.

    energy = CPU seconds of this process (all threads) x TDP / logical CPUs

(or of the processes that do the work, such as a server's process tree: ``cpu_seconds``).

The TDP comes from codecarbon's table of CPU models (read as a file; codecarbon is not
imported). An unknown CPU gets codecarbon's own fallback of 4 W per thread. Every reading is
flagged ``estimated`` and every summary prints "(estimated)".
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from llenergymeasure.energy.base import DeviceEnergy, EnergyReading

WATTS_PER_THREAD_FALLBACK = 4.0


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

    def __init__(self, cpu_name: str | None, cpu_seconds: Callable[[], float] = time.process_time) -> None:
        self.cpu_seconds = cpu_seconds
        self.tdp_w, self.matched = cpu_tdp(cpu_name)
        self.watts_per_cpu_second = self.tdp_w / (os.cpu_count() or 1)
        basis = (f"TDP {self.tdp_w:g} W of {self.matched}" if self.matched else
                 f"CPU {cpu_name or 'unknown'} not in codecarbon's table: {WATTS_PER_THREAD_FALLBACK:g} W per thread")
        whose = "this process's" if cpu_seconds is time.process_time else "the measured processes'"
        self.note = (f"energy estimated from {whose} CPU time x {self.watts_per_cpu_second:.3g} W per CPU "
                     f"({basis}); not a measurement")
        self.cpu_name = cpu_name or "CPU"
        self._cpu_start = 0.0

    def start(self) -> None:
        self._cpu_start = self.cpu_seconds()

    def stop(self) -> EnergyReading:
        joules = (self.cpu_seconds() - self._cpu_start) * self.watts_per_cpu_second
        return EnergyReading(source=self.source, energy_j=joules, cpu_energy_j=joules, estimated=True,
                             devices=[DeviceEnergy("cpu", self.cpu_name, joules, self.source)],
                             warnings=[("energy_estimated", self.note)])

    def close(self) -> None:
        pass
