"""RAPL: CPU package (and DRAM) energy from the powercap sysfs tree, with counter wraparound.

Each zone's ``energy_uj`` is a microjoule counter that wraps at ``max_energy_range_uj``; a
reading lower than the previous one means it wrapped once (windows here are far shorter than
the minutes a wrap takes at full power), unless the wrapped difference is more energy than a
CPU can draw in the window: then the counter was reset, and the window is an ExperimentError
(``sanity.counter_delta``).

The window's energy is the counters' difference at its edges. Beside it a sampler probe per
zone (``power_probe``) reads the same counter at the sampling interval for the timeline: each
sample is the zone's mean power since the previous one, the wrap allowed for the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llenergymeasure.energy import hardware
from llenergymeasure.energy.base import DeviceEnergy, EnergyReading
from llenergymeasure.energy.sampler import Probe, Sampler, rate_probe
from llenergymeasure.energy.sanity import MAX_MEAN_POWER_W, counter_delta
from llenergymeasure.exceptions import ExperimentError

UPDATE_PERIOD_S = 0.001  # the RAPL counters' refresh (about 1 ms on Intel and AMD)


@dataclass(frozen=True)
class RaplZone:
    path: Path
    name: str  # "package-0", "dram", ...
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text())

    @property
    def key(self) -> str:
        """The zone's name in a timeline: "package-0", and "dram-0" for package 0's DRAM."""
        package = self.path.name.split(":")[1] if self.path.name.count(":") else "0"
        return self.name if self.name.rpartition("-")[2].isdigit() else f"{self.name}-{package}"


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


def power_probe(zone: RaplZone, clock: Callable[[], float] = time.perf_counter) -> Probe:
    """A sampler probe: ``{"power_w", "energy_uj"}``, the zone's mean power since the previous
    sample (None at the first call). An interval in which the counter was reset has no power
    and is left out; a reset is the window's business (``RaplMeter.stop``), not the timeline's."""
    what = f"RAPL {zone.name} ({zone.path})"

    def sample(before: float, after: float, seconds: float) -> dict[str, Any] | None:
        try:
            delta, _ = counter_delta(int(before), int(after), wrap_at=zone.max_range_uj, joules_per_unit=1e-6,
                                     duration_s=seconds, max_power_w=MAX_MEAN_POWER_W["cpu"], what=what)
        except ExperimentError:
            return None
        return {"power_w": delta / 1e6 / seconds, "energy_uj": int(after)}

    return rate_probe(zone.read_uj, sample, clock)


class RaplMeter:
    source = "rapl"
    update_period_s = UPDATE_PERIOD_S

    def __init__(self, zones: list[RaplZone], interval_s: float = 0.1) -> None:
        if not zones:
            raise ValueError("RaplMeter needs at least one zone")
        self.zones = zones
        self.keys: list[str] = []  # each zone's name in timelines, unique
        for zone in zones:
            self.keys.append(zone.key if zone.key not in self.keys else zone.path.name)
        self.interval_s = interval_s
        self._start: list[int] = []
        self._t0 = 0.0
        self._sampler: Sampler | None = None

    def probes(self) -> dict[str, Probe]:
        """A fresh power probe per zone, keyed as in timelines ("package-0", "dram-0")."""
        return {key: power_probe(zone) for key, zone in zip(self.keys, self.zones)}

    def start(self) -> None:
        self._sampler = Sampler(self.probes(), self.interval_s)
        self._sampler.start()
        try:
            self._start = self._read()
        except BaseException:
            self._stop_sampler()
            raise
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        try:
            end = self._read()
        finally:
            duration = time.perf_counter() - self._t0
            sampler = self._sampler
            samples = self._stop_sampler()
        devices, warnings = [], []
        if sampler is not None and sampler.error is not None:
            warnings.append(("sampler_failed", f"the RAPL power sampler stopped early: {sampler.error}"))
        for zone, key, before, after in zip(self.zones, self.keys, self._start, end):
            what = f"RAPL {zone.name} ({zone.path})"
            delta, wrapped = counter_delta(before, after, wrap_at=zone.max_range_uj, joules_per_unit=1e-6,
                                           duration_s=duration, max_power_w=MAX_MEAN_POWER_W["cpu"], what=what)
            if wrapped:
                warnings.append(("counter_wrapped", f"{what}: the energy counter wrapped around during the window; "
                                                    "the difference allows for it"))
            devices.append(DeviceEnergy(device=zone.path.name, name=zone.name, energy_j=delta / 1e6, source=self.source,
                                        samples=len(samples.get(key, [])), resolution_j=1e-6,
                                        resolution="1 uJ, the unit of energy_uj"))
        joules = sum(d.energy_j for d in devices)
        return EnergyReading(source=self.source, energy_j=joules, cpu_energy_j=joules, devices=devices,
                             warnings=warnings, timeline=samples)

    def _read(self) -> list[int]:
        try:
            return [zone.read_uj() for zone in self.zones]
        except (OSError, ValueError) as exc:
            raise ExperimentError(f"RAPL counter became unreadable: {exc}") from exc

    def _stop_sampler(self) -> dict[str, list[dict[str, Any]]]:
        sampler, self._sampler = self._sampler, None
        return sampler.stop() if sampler is not None else {}

    def close(self) -> None:
        self._stop_sampler()
