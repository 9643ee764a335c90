"""The EnergyMeter protocol: what the runner calls around each measurement window.

    meter.start()            just after the device is synchronized, before the first prompt
    reading = meter.stop()   just after the device is synchronized again, after the last token
    meter.close()            always, even on error or Ctrl-C: stops threads, releases handles

A meter reports how it got its number (``source``) and whether the number is a model rather
than a measurement (``estimated``); when it has no number it says why (``unavailable_reason``).
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
