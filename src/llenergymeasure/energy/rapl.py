"""RAPL: CPU package (and DRAM) energy from the powercap sysfs tree, with counter wraparound.

Each zone's ``energy_uj`` is a microjoule counter that wraps at ``max_energy_range_uj``; a
reading lower than the previous one means it wrapped once (windows here are far shorter than
the minutes a wrap takes at full power), unless the wrapped difference is more energy than a
CPU can draw in the window: then the counter was reset, and the window is an ExperimentError
(``sanity.counter_delta``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from llenergymeasure.energy import hardware
from llenergymeasure.energy.base import DeviceEnergy, EnergyReading
from llenergymeasure.energy.sanity import MAX_MEAN_POWER_W, counter_delta
from llenergymeasure.exceptions import ExperimentError


@dataclass(frozen=True)
class RaplZone:
    path: Path
    name: str  # "package-0", "dram", ...
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text())


def rapl_zones(root: Path | None = None) -> list[RaplZone]:
    """Package zones (``intel-rapl:N``) and their DRAM subzones; core/uncore would double count."""
    root = root or hardware.powercap_root()
    zones = []
    for package in sorted(root.glob("intel-rapl:*")):
        if package.name.count(":") != 1:
            continue
        for zone in [package, *sorted(package.glob("intel-rapl:*:*"))]:
            name = (zone / "name").read_text().strip() if (zone / "name").exists() else zone.name
            if zone is package or name == "dram":
                zones.append(RaplZone(zone, name, int((zone / "max_energy_range_uj").read_text())))
    return zones


class RaplMeter:
    source = "rapl"

    def __init__(self, zones: list[RaplZone]) -> None:
        if not zones:
            raise ValueError("RaplMeter needs at least one zone")
        self.zones = zones
        self._start: list[int] = []
        self._t0 = 0.0

    def start(self) -> None:
        self._start = self._read()
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        end = self._read()
        duration = time.perf_counter() - self._t0
        devices, warnings = [], []
        for zone, before, after in zip(self.zones, self._start, end):
            what = f"RAPL {zone.name} ({zone.path})"
            delta, wrapped = counter_delta(before, after, wrap_at=zone.max_range_uj, joules_per_unit=1e-6,
                                           duration_s=duration, max_power_w=MAX_MEAN_POWER_W["cpu"], what=what)
            if wrapped:
                warnings.append(("counter_wrapped", f"{what}: the energy counter wrapped around during the window; "
                                                    "the difference allows for it"))
            devices.append(DeviceEnergy(device=zone.path.name, name=zone.name, energy_j=delta / 1e6, source=self.source))
        joules = sum(d.energy_j for d in devices)
        return EnergyReading(source=self.source, energy_j=joules, cpu_energy_j=joules, devices=devices, warnings=warnings)

    def _read(self) -> list[int]:
        try:
            return [zone.read_uj() for zone in self.zones]
        except (OSError, ValueError) as exc:
            raise ExperimentError(f"RAPL counter became unreadable: {exc}") from exc

    def close(self) -> None:
        pass
