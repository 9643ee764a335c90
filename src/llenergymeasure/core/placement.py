"""Where an experiment's model goes: the GPUs it asks for, and the ones it ended up on.

A model sits on one device (``pytorch.device``) or is spread by transformers/accelerate over
several GPUs (``pytorch.device_map``, restricted to ``pytorch.gpus`` when given). The GPUs are
named as this process sees them: a visible index (CUDA's order), ``cuda:N``, or a UUID.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.vram import VramEstimate, vram_problem
from llenergymeasure.energy.hardware import cuda_index
from llenergymeasure.energy.meters import select_gpus
from llenergymeasure.energy.sources import Gpu
from llenergymeasure.exceptions import PreFlightError


def gpus_needed(config: ExperimentConfig) -> int | None:
    """How many GPUs ``config`` runs on, for a scheduler (Ray's ``num_gpus``).

    0 on the CPU, and for a server (``backend: openai``: the client runs anywhere; the server's
    GPUs are the server's). None when ``pytorch.device`` is auto with no GPU list: one GPU
    where the machine has any, else the CPU.
    """
    if config.backend != "pytorch":
        return 0
    pytorch = config.pytorch
    if isinstance(pytorch.device_map, dict):
        return len(map_gpus(pytorch.device_map))
    if pytorch.gpus:
        return len(pytorch.gpus)
    if pytorch.device == "cpu":
        return 0
    if cuda_index(pytorch.device) is not None:
        return 1
    return None


def map_gpus(device_map: dict[str, int | str]) -> list[int]:
    """The GPU indices an explicit device map places modules on, in order."""
    return sorted({target for target in device_map.values() if isinstance(target, int)})


@dataclass
class Placement:
    """Pre-flight's plan for a model spread over GPUs: the explicit device map it is loaded with,
    and the GPUs that map uses (the ones measured, locked and baselined), in CUDA's order."""

    device_map: dict[str, int | str]
    gpus: list[Gpu]
    positions: list[int]  # each GPU's index as this process's CUDA sees it

    @property
    def device(self) -> str:
        """Where the inputs go: the first GPU the map uses."""
        return f"cuda:{self.positions[0]}"


def plan_placement(config: ExperimentConfig, problems: list[str]) -> Placement | None:
    """The placement of a config with ``pytorch.device_map`` or ``pytorch.gpus``, from the GPUs
    NVML lists: the chosen GPUs' memory together must hold the VRAM estimate, and a named map
    (auto, balanced, ...) is computed here by accelerate, as transformers would at load, so that
    what is measured is exactly where the model goes. None, with ``problems`` said, when it cannot."""
    from llenergymeasure.core.vram import estimate_vram
    from llenergymeasure.energy.sources import nvml_status

    pytorch = config.pytorch
    key = placement_key(config)
    status, visible, _ = nvml_status()
    if not visible:
        problems.append(f"{key}: the model is to be placed on GPUs but none is visible ({status.detail})")
        return None
    try:
        chosen = chosen_gpus(config, visible)
    except PreFlightError as exc:
        problems.extend(exc.problems)
        return None
    positions = [visible.index(gpu) for gpu in chosen]
    names = " + ".join(f"GPU {position}" for position in positions)
    problem = spread_vram_problem(estimate_vram(config), chosen, positions)
    if problem:
        problems.append(problem)
        return None
    explicit = pytorch.device_map if isinstance(pytorch.device_map, dict) else None
    if explicit is not None:
        device_map: dict[str, int | str] = dict(explicit)
    elif pytorch.device_map is None:  # one GPU, named in pytorch.gpus: the whole model goes there
        device_map = {"": positions[0]}
    else:
        try:
            device_map = plan_device_map(config, {p: int(g.memory_gb * 1e9) for p, g in zip(positions, chosen)})
        except Exception as exc:  # the model's config cannot be read or built: say why, as loading would
            problems.append(f"{key}: cannot plan where {config.model!r} goes: {str(exc).strip().splitlines()[0]}")
            return None
    offloaded = sorted({str(t) for t in device_map.values() if not isinstance(t, int)})
    if offloaded and explicit is None:
        problems.append(f"{key}: {config.model!r} does not fit on {names}; accelerate would put part of it on "
                        f"{' and '.join(offloaded)}; add GPUs or use a smaller precision")
        return None
    used = map_gpus(device_map)
    if not used:
        problems.append(f"{key}: the device map puts nothing on a GPU; use pytorch.device: cpu for a model on the CPU")
        return None
    return Placement(device_map, [visible[p] for p in used], used)


def placement_key(config: ExperimentConfig) -> str:
    """The config key a placement problem is about."""
    return "pytorch.gpus" if config.pytorch.gpus else "pytorch.device_map"


def chosen_gpus(config: ExperimentConfig, visible: list[Gpu]) -> list[Gpu]:
    """The GPUs of ``visible`` a spread config may use: ``pytorch.gpus``, the GPUs of an explicit
    map, or all of them; PreFlightError naming the key for one that is not visible."""
    pytorch = config.pytorch
    explicit = pytorch.device_map if isinstance(pytorch.device_map, dict) else None
    wanted = pytorch.gpus or (map_gpus(explicit) if explicit else list(range(len(visible))))
    try:
        return select_gpus(visible, wanted)  # type: ignore[arg-type]  # a Gpu has the uuid it matches
    except PreFlightError as exc:
        raise PreFlightError([p.replace("devices:", f"{placement_key(config)}:", 1) for p in exc.problems]) from None


def spread_vram_problem(estimate: VramEstimate | None, chosen: list[Gpu], positions: list[int]) -> str | None:
    """The VRAM problem of a model spread over ``chosen`` (at CUDA ``positions``): their memory
    together against the estimate, with a CUDA context on each."""
    if estimate is not None:
        estimate = replace(estimate, overhead_gb=estimate.overhead_gb * len(chosen))
    names = " + ".join(f"GPU {position}" for position in positions)
    where = f"{names} ({len(chosen)} GPUs together)" if len(chosen) > 1 else names
    return vram_problem(estimate, sum(gpu.memory_gb for gpu in chosen), where)


def plan_device_map(config: ExperimentConfig, memory: dict[int, int]) -> dict[str, int | str]:
    """The explicit map a named ``pytorch.device_map`` gives on GPUs with ``memory`` bytes each
    (keyed by CUDA index), computed on an empty (meta) model the way transformers does it at
    load: balanced over the GPUs for auto/balanced/balanced_low_0, filled in order for sequential."""
    import torch
    from accelerate import init_empty_weights, infer_auto_device_map
    from accelerate.utils import get_balanced_memory
    from transformers import AutoConfig, AutoModelForCausalLM

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.precision]
    options = {"revision": config.pytorch.revision, "trust_remote_code": config.pytorch.trust_remote_code}
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config.model, **options), dtype=dtype,
                                                 trust_remote_code=config.pytorch.trust_remote_code)
    model.tie_weights()  # as loading does: tied weights are placed together
    no_split = model._no_split_modules or []
    max_memory: dict[int | str, int] = dict(memory)
    if config.pytorch.device_map != "sequential":
        max_memory = get_balanced_memory(model, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype,
                                         low_zero=config.pytorch.device_map == "balanced_low_0")
    return infer_auto_device_map(model, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype)
