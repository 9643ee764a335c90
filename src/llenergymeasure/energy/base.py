"""The EnergyMeter protocol: what the runner calls around each measurement window.

    meter.start()            just after the device is synchronized, before the first prompt
    reading = meter.stop()   just after the device is synchronized again, after the last token
    meter.close()            always, even on error or Ctrl-C: stops threads, releases handles

A meter reports how it got its number (``source``) and whether the number is a model rather
than a measurement (``estimated``); when it has no number it says why (``unavailable_reason``).

Two optional parts, read through ``probes_of`` and ``update_period_s`` (a meter without them
has no timeline and resolves any window):

    meter.probes()           fresh sampler probes of its devices' telemetry ({"gpu0": probe, ...}),
                             for a timeline beside the windows (energy/timeline.py)
    meter.update_period_s    how often its counters update: a window must span several
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class DeviceEnergy:
    """One device's share of a window's energy."""

    device: str  # "gpu0", "cpu"
    name: str
    energy_j: float
    source: str
    samples: int = 0
    max_power_w: float | None = None  # the enforced power limit, where the device has one
    # One step of its meter (its resolution): a reading under it cannot be told from none
    # (sanity.py), and ``resolution`` says what the step is ("1 mJ of the energy counter").
    resolution_j: float = 0.0
    resolution: str = ""


@dataclass
class EnergyReading:
    """Energy of one window. ``warnings`` are (code, sentence) pairs for the result;
    ``timeline`` holds the sampler's samples per device, when a sampler ran; ``suspect`` says
    the sanity checks (sanity.py) doubt the number."""

    source: str
    energy_j: float | None = None
    gpu_energy_j: float | None = None
    cpu_energy_j: float | None = None
    estimated: bool = False
    suspect: bool = False
    unavailable_reason: str | None = None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    devices: list[DeviceEnergy] = field(default_factory=list)
    timeline: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class EnergyMeter(Protocol):
    source: str

    def start(self) -> None: ...

    def stop(self) -> EnergyReading: ...

    def close(self) -> None: ...


class NoEnergyMeter:
    """The meter for when nothing can be measured: energy fields stay empty, with the reason."""

    source = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def start(self) -> None:
        pass

    def stop(self) -> EnergyReading:
        return EnergyReading(source=self.source, unavailable_reason=self.reason)

    def close(self) -> None:
        pass


def probes_of(meter: Any) -> dict[str, Any]:
    """``meter.probes()``, or none for a meter without telemetry."""
    probes = getattr(meter, "probes", None)
    return probes() if probes is not None else {}


def update_period_s(meter: Any) -> float:
    """How often ``meter``'s counters update, in seconds (0: continuously, as a CPU clock)."""
    return float(getattr(meter, "update_period_s", 0.0))
