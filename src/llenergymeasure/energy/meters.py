"""Choosing the meter for an experiment from ``energy.source`` and the devices the work runs on.

    none          nothing measured; energy fields empty, with the reason
    nvml          the GPUs the work runs on (every visible GPU for CPU work; PreFlightError
                  when NVML is unusable)
    rapl          CPU package + DRAM counters (PreFlightError when unreadable)
    cpu_estimate  a model of CPU energy, flagged as an estimate
    auto          GPU work: NVML, plus RAPL for the CPU when readable.
                  CPU work: RAPL when readable, else the CPU estimate.

The work runs on ``device`` ("cpu" or "cuda:N", as the runner places a model), or on the GPUs
named in ``gpus`` (visible index, ``cuda:N`` or UUID; "cpu" adds the CPU), as a measurement
window over someone else's code or a server names them. ``cpu_seconds`` is the CPU time the
CPU estimate and the zero-energy check count: this process's by default, a server's process
tree for a server.

Every meter comes wrapped in ``sanity.CheckedMeter``: no reading leaves it unchecked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy.base import EnergyMeter, NoEnergyMeter
from llenergymeasure.energy.combined import CombinedMeter
from llenergymeasure.energy.cpu_estimate import CpuEstimateMeter
from llenergymeasure.energy.hardware import cpu_model, cuda_index
from llenergymeasure.energy.nvml import NvmlDevice, NvmlMeter, open_nvml
from llenergymeasure.energy.rapl import RaplMeter, rapl_zones
from llenergymeasure.energy.sanity import CheckedMeter
from llenergymeasure.energy.sources import rapl_status
from llenergymeasure.exceptions import PreFlightError

GpuSelector = int | str  # a visible index (CUDA's order), "cuda:N", or a UUID ("GPU-...", "MIG-...")


def create_meter(config: EnergyConfig, device: str = "cpu", *, gpus: Sequence[GpuSelector] | None = None,
                 all_gpus: bool = False, cpu_seconds: Callable[[], float] | None = None) -> EnergyMeter:
    """The checked meter for work on ``device``, or on ``gpus`` when given, or with ``all_gpus``
    on every visible GPU when NVML sees any and on the CPU otherwise (see the module text)."""
    clock = cpu_seconds or time.process_time
    selected: list[GpuSelector] | None
    if all_gpus:
        selected, cpu = None, True
    elif gpus is None:
        index = cuda_index(device)
        selected, cpu = ([index], False) if index is not None else (None, True)
    else:
        selected = [g for g in gpus if str(g).lower() != "cpu"] or None
        cpu = len(selected or []) < len(gpus)
    return CheckedMeter(_create(config, selected, cpu, clock, all_gpus), cpu_seconds=clock)


def _create(config: EnergyConfig, gpus: list[GpuSelector] | None, cpu: bool,
            cpu_seconds: Callable[[], float], all_gpus: bool) -> EnergyMeter:
    """``gpus``: the GPUs the work runs on (None: none, or with ``all_gpus`` every visible one
    if NVML sees any); ``cpu``: whether the CPU does the work."""
    interval_s = config.sample_interval_ms / 1000
    if config.source == "none":
        return NoEnergyMeter("energy.source is 'none'")
    if config.source == "nvml":
        return _nvml_meter(gpus, interval_s)
    if config.source == "rapl":
        return _rapl(interval_s, required=True)
    if config.source == "cpu_estimate":
        return CpuEstimateMeter(cpu_model(), cpu_seconds, interval_s)

    rapl = _rapl(interval_s, required=False)
    if all_gpus:
        try:
            gpu = _nvml_meter(None, interval_s)
        except PreFlightError:  # no GPU here (or none NVML can read): the work is the CPU's
            return rapl or CpuEstimateMeter(cpu_model(), cpu_seconds, interval_s)
        return CombinedMeter(gpu, rapl) if rapl else gpu
    if gpus:
        try:
            gpu = _nvml_meter(gpus, interval_s)
        except PreFlightError as exc:
            where = ", ".join(f"cuda:{g}" if isinstance(g, int) else str(g) for g in gpus)
            return NoEnergyMeter(f"the work runs on {where} but GPU energy cannot be read: {exc.problems[0]}")
        cpu_meter = rapl or (CpuEstimateMeter(cpu_model(), cpu_seconds, interval_s) if cpu else None)
        return CombinedMeter(gpu, cpu_meter) if cpu_meter else gpu
    return rapl or CpuEstimateMeter(cpu_model(), cpu_seconds, interval_s)


def _nvml_meter(gpus: list[GpuSelector] | None, interval_s: float) -> NvmlMeter:
    """NVML over ``gpus`` (every visible GPU when None), so the idle GPUs beside the work on a
    multi-GPU machine add nothing to its joules per token."""
    nvml, devices = open_nvml()
    if gpus is not None:
        try:
            devices = select_gpus(devices, gpus)
        except PreFlightError:
            from llenergymeasure.energy.nvml import shutdown

            shutdown(nvml)
            raise
    return NvmlMeter(nvml, devices, interval_s)


def select_gpus(visible: list[NvmlDevice], selectors: Sequence[GpuSelector]) -> list[NvmlDevice]:
    """The visible GPUs that ``selectors`` name, in the order named; PreFlightError for one that
    names none of them."""
    chosen: list[NvmlDevice] = []
    for selector in selectors:
        text = str(selector).strip()
        index = int(text) if text.isdigit() else cuda_index(text) if re.fullmatch(r"cuda(:\d+)?", text) else None
        if index is not None:
            match = visible[index] if index < len(visible) else None
        else:
            match = next((d for d in visible if d.uuid == text or (len(text) >= 8 and d.uuid.startswith(text))), None)
        if match is None:
            seen = ", ".join(f"{n} ({d.uuid})" for n, d in enumerate(visible)) or "none"
            raise PreFlightError(f"devices: GPU {selector!r} is not visible to this process (visible: {seen})")
        if match not in chosen:
            chosen.append(match)
    return chosen


def _rapl(interval_s: float, *, required: bool) -> RaplMeter | None:
    status = rapl_status()
    if status.available:
        return RaplMeter(rapl_zones(), interval_s)
    if required:
        raise PreFlightError(f"energy.source: rapl is unavailable: {status.detail}")
    return None
