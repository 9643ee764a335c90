"""What an experiment needs from the machine, checked when its item is set up.

An item that cannot run here (it asks for a GPU, or names an energy source, that this machine
lacks) is skipped at setup with the reason. Never at collection: a run where everything was
skipped at collection exits 5, which CI reads as "no tests", not as "no GPU".

With ``--llem-require-energy`` those skips fail instead, and so does an item whose energy
would only be estimated (or not measured at all): on a GPU runner whose driver broke, a gate
must not quietly pass on a CPU estimate.
"""

from __future__ import annotations

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.energy.hardware import cuda_index
from pytest_llem.settings import Machine


def runs_on_gpu(config: ExperimentConfig, machine: Machine) -> bool:
    """Where ``pytorch.device`` will put the model; "auto" picks a GPU when one is visible."""
    device = config.pytorch.device
    return device.startswith("cuda") or (device == "auto" and bool(machine.gpus))


def missing(config: ExperimentConfig, machine: Machine) -> str | None:
    """Why this machine cannot run ``config`` at all, or None."""
    device, index = config.pytorch.device, cuda_index(config.pytorch.device)
    if index is not None and not machine.gpus:
        return f"needs a GPU (pytorch.device: {device}) but none is visible: {machine.nvml.detail}"
    if index is not None and index >= len(machine.gpus):
        return (f"pytorch.device is {device} but this process sees {len(machine.gpus)} GPU(s) (under xdist each "
                "worker sees one); use pytorch.device: cuda")
    source = config.energy.source
    if source == "nvml" and not machine.nvml.available:
        return f"energy.source is nvml but NVML is unavailable: {machine.nvml.detail}"
    if source == "rapl" and not machine.rapl.available:
        return f"energy.source is rapl but RAPL is unavailable: {machine.rapl.detail}"
    return None


def unmeasured(config: ExperimentConfig, machine: Machine) -> str | None:
    """Why the energy of ``config`` would not be measured by a hardware counter here, or None."""
    source = config.energy.source
    if source in ("none", "cpu_estimate"):
        return f"energy.source is {source}: energy would not be measured"
    if source == "auto" and not runs_on_gpu(config, machine) and not machine.rapl.available:
        return f"energy would only be estimated from CPU time (no visible GPU; {machine.rapl.detail})"
    return None
