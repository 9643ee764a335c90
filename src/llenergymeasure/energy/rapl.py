"""RAPL: CPU package (and DRAM) energy from the powercap sysfs tree, with counter wraparound.

Each zone's ``energy_uj`` is a microjoule counter that wraps at ``max_energy_range_uj``; a
reading lower than the previous one means it wrapped once (windows here are far shorter than
the minutes a wrap takes at full power).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llenergymeasure.energy import hardware
from llenergymeasure.energy.base import EnergyReading
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


def delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Counter difference allowing for one wrap at ``max_range_uj``."""
    return after - before if after >= before else after + max_range_uj - before


class RaplMeter:
    source = "rapl"

    def __init__(self, zones: list[RaplZone]) -> None:
        if not zones:
            raise ValueError("RaplMeter needs at least one zone")
        self.zones = zones
        self._start: list[int] = []

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> EnergyReading:
        end = self._read()
        joules = sum(delta_uj(a, b, z.max_range_uj) for a, b, z in zip(self._start, end, self.zones)) / 1e6
        return EnergyReading(source=self.source, energy_j=joules, cpu_energy_j=joules)

    def _read(self) -> list[int]:
        try:
            return [zone.read_uj() for zone in self.zones]
        except OSError as exc:
            raise ExperimentError(f"RAPL counter became unreadable: {exc}") from exc

    def close(self) -> None:
        pass
