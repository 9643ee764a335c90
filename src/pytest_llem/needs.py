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
    """Where ``pytorch.device`` will put the model; "auto" picks a GPU when one is visible. A
    server (``backend: openai``) runs on ``openai.gpus``, else on every visible GPU."""
    if config.backend == "openai":
        return bool(config.openai.gpus) or bool(machine.gpus)
    if config.pytorch.device_map is not None or config.pytorch.gpus:
        return True
    device = config.pytorch.device
    return device.startswith("cuda") or (device == "auto" and bool(machine.gpus))


def missing(config: ExperimentConfig, machine: Machine) -> str | None:
    """Why this machine cannot run ``config`` at all, or None."""
    if config.backend == "openai":
        return _server_missing(config, machine) or _source_missing(config, machine)
    spread = _spread_missing(config, machine)
    if spread:
        return spread
    device, index = config.pytorch.device, cuda_index(config.pytorch.device)
    if index is not None and not machine.gpus:
        return f"needs a GPU (pytorch.device: {device}) but none is visible: {machine.nvml.detail}"
    if index is not None and index >= len(machine.gpus):
        return (f"pytorch.device is {device} but this process sees {len(machine.gpus)} GPU(s) (under xdist each "
                "worker sees one); use pytorch.device: cuda")
    return _source_missing(config, machine)


def _spread_missing(config: ExperimentConfig, machine: Machine) -> str | None:
    """A model spread over (or put on) GPUs by ``pytorch.device_map`` / ``pytorch.gpus`` that this
    process cannot give it."""
    from llenergymeasure.core.placement import gpus_needed

    pytorch = config.pytorch
    if pytorch.device_map is None and not pytorch.gpus:
        return None
    key = "pytorch.gpus" if pytorch.gpus else "pytorch.device_map"
    if not machine.gpus:
        return f"needs GPUs ({key}) but none is visible: {machine.nvml.detail}"
    wanted = gpus_needed(config) or 1
    if wanted > len(machine.gpus):
        return (f"is spread over {wanted} GPUs ({key}) but this process sees {len(machine.gpus)} (under xdist "
                "each worker sees as many as the largest experiment of the run asks for)")
    return None


def gpus_to_lock(config: ExperimentConfig, machine: Machine) -> list[str]:
    """The UUIDs of the GPUs an item measures (all this process sees, unless its config names
    some), or ["cpu"] for one on the CPU."""
    if not runs_on_gpu(config, machine):
        return ["cpu"]
    every = [gpu.uuid for gpu in machine.gpus]
    if config.backend != "pytorch" or not (config.pytorch.gpus or isinstance(config.pytorch.device_map, dict)):
        return every
    from llenergymeasure.core.placement import chosen_gpus
    from llenergymeasure.exceptions import PreFlightError

    try:
        return [gpu.uuid for gpu in chosen_gpus(config, machine.gpus)]  # type: ignore[arg-type]
    except PreFlightError:  # its pre-flight says which GPU is missing; hold them all meanwhile
        return every


def _source_missing(config: ExperimentConfig, machine: Machine) -> str | None:
    source = config.energy.source
    if source == "nvml" and not machine.nvml.available:
        return f"energy.source is nvml but NVML is unavailable: {machine.nvml.detail}"
    if source == "rapl" and not machine.rapl.available:
        return f"energy.source is rapl but RAPL is unavailable: {machine.rapl.detail}"
    return None


def _server_missing(config: ExperimentConfig, machine: Machine) -> str | None:
    """A server said to run on GPUs (``openai.gpus``) that this machine does not see."""
    gpus = config.openai.gpus
    if not gpus:
        return None
    if not machine.gpus:
        return f"the server runs on GPUs (openai.gpus: {gpus}) but none is visible here: {machine.nvml.detail}"
    from llenergymeasure.energy.meters import select_gpus
    from llenergymeasure.exceptions import PreFlightError

    try:
        select_gpus(machine.gpus, gpus)  # type: ignore[arg-type]  # Gpu has the uuid select_gpus matches
    except PreFlightError as exc:
        return exc.problems[0].replace("devices: GPU", "openai.gpus: GPU", 1)
    return None


def unmeasured(config: ExperimentConfig, machine: Machine) -> str | None:
    """Why the energy of ``config`` would not be measured by a hardware counter here, or None."""
    source = config.energy.source
    if source in ("none", "cpu_estimate"):
        return f"energy.source is {source}: energy would not be measured"
    if config.backend == "openai" and source == "auto" and not config.openai.gpus \
            and not _server_here(config):
        return f"energy would not be measured: the server at {config.openai.base_url} is not on this machine"
    if source == "auto" and not runs_on_gpu(config, machine) and not machine.rapl.available:
        what = "the server's CPU time" if config.backend == "openai" else "CPU time"
        return f"energy would only be estimated from {what} (no visible GPU; {machine.rapl.detail})"
    return None


def _server_here(config: ExperimentConfig) -> bool:
    from llenergymeasure.core.server import on_this_machine

    return on_this_machine(config)
