"""Choosing the meter for an experiment from ``energy.source`` and the device it runs on.

    none          nothing measured; energy fields empty, with the reason
    nvml          the GPU the model runs on (every visible GPU for CPU work; PreFlightError
                  when NVML is unusable)
    rapl          CPU package + DRAM counters (PreFlightError when unreadable)
    cpu_estimate  a model of CPU energy, flagged as an estimate
    auto          GPU work: NVML, plus RAPL for the CPU when readable.
                  CPU work: RAPL when readable, else the CPU estimate.

Every meter comes wrapped in ``sanity.CheckedMeter``: no reading leaves it unchecked.
"""

from __future__ import annotations

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy.base import EnergyMeter, NoEnergyMeter
from llenergymeasure.energy.combined import CombinedMeter
from llenergymeasure.energy.cpu_estimate import CpuEstimateMeter
from llenergymeasure.energy.hardware import cpu_model, cuda_index
from llenergymeasure.energy.nvml import NvmlMeter, open_nvml
from llenergymeasure.energy.rapl import RaplMeter, rapl_zones
from llenergymeasure.energy.sanity import CheckedMeter
from llenergymeasure.energy.sources import rapl_status
from llenergymeasure.exceptions import PreFlightError


def create_meter(config: EnergyConfig, device: str) -> EnergyMeter:
    return CheckedMeter(_create(config, device))


def _create(config: EnergyConfig, device: str) -> EnergyMeter:
    interval_s = config.sample_interval_ms / 1000
    if config.source == "none":
        return NoEnergyMeter("energy.source is 'none'")
    if config.source == "nvml":
        return _nvml_meter(device, interval_s)
    if config.source == "rapl":
        return _rapl(required=True)
    if config.source == "cpu_estimate":
        return CpuEstimateMeter(cpu_model())

    rapl = _rapl(required=False)
    if device.startswith("cuda"):
        try:
            gpu = _nvml_meter(device, interval_s)
        except PreFlightError as exc:
            return NoEnergyMeter(f"the model runs on {device} but GPU energy cannot be read: {exc.problems[0]}")
        return CombinedMeter(gpu, rapl) if rapl else gpu
    return rapl or CpuEstimateMeter(cpu_model())


def _nvml_meter(device: str, interval_s: float) -> NvmlMeter:
    """NVML over the GPU of ``cuda:N`` (the Nth visible one), so the idle GPUs beside it on a
    multi-GPU machine add nothing to its joules per token."""
    nvml, devices = open_nvml()
    index = cuda_index(device)
    if index is not None and index < len(devices):
        devices = [devices[index]]
    return NvmlMeter(nvml, devices, interval_s)


def _rapl(*, required: bool) -> RaplMeter | None:
    status = rapl_status()
    if status.available:
        return RaplMeter(rapl_zones())
    if required:
        raise PreFlightError(f"energy.source: rapl is unavailable: {status.detail}")
    return None
