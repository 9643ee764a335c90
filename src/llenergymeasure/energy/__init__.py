"""Energy meters behind one protocol (base.py); ``create_meter`` (meters.py) picks one.

Sources: NVML (GPU counter or integrated power), RAPL (CPU package and DRAM), and a CPU
estimate that is always labelled as one. The hardware itself is reached only through
hardware.py, the seam tests replace.
"""

from llenergymeasure.energy.base import DeviceEnergy, EnergyMeter, EnergyReading, NoEnergyMeter

__all__ = ["DeviceEnergy", "EnergyMeter", "EnergyReading", "NoEnergyMeter"]
