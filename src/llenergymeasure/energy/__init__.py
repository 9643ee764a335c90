"""Energy meters. ``create_meter`` picks the meter for an experiment's ``energy.source``.

This version measures nothing yet: every source gives a NoEnergyMeter that says so, and a
named source (nvml, rapl, cpu_estimate) is refused at pre-flight. The NVML, RAPL and
CPU-estimate meters plug in here behind the same EnergyMeter protocol.
"""

from __future__ import annotations

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy.base import EnergyMeter, EnergyReading, NoEnergyMeter

__all__ = ["EnergyMeter", "EnergyReading", "NoEnergyMeter", "create_meter", "unavailable_sources"]


def unavailable_sources(config: EnergyConfig) -> list[str]:
    """Problems for pre-flight: a named source this machine (or this build) cannot read."""
    if config.source in ("auto", "none"):
        return []
    return [f"energy.source: '{config.source}' is not available: this build has no {config.source} meter; "
            "use 'auto' or 'none'"]


def create_meter(config: EnergyConfig, device: str) -> EnergyMeter:
    if config.source == "none":
        return NoEnergyMeter("energy.source is 'none'")
    return NoEnergyMeter("no energy source: this build of llenergymeasure has no energy meters yet")
