"""Pre-flight: everything that would stop a valid config from running here, found at once.

Runs before anything is loaded or measured, so a typo in a model path costs a second, not a
model download and a baseline measurement. All problems come back in one PreFlightError, each
worded as the dry run words it (the same functions find them: core/dry_run.py).

A model that cannot be had (a missing path, no network, offline and not cached) stops the
checks that import torch (device, placement, energy meter): they depend on where a model that
exists will go, and torch takes seconds to import, so such a run fails within seconds.

A model spread over GPUs (``pytorch.device_map``, ``pytorch.gpus``) gets its placement planned
here (core/placement.py): its meter measures exactly the GPUs the plan uses.

For ``backend: openai`` the model is the server's: instead of torch, the model's files and VRAM,
it checks that the server answers and serves the model, and finds the meter of its devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.util import find_spec

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.dry_run import output_dir_problem
from llenergymeasure.core.model_files import model_problem
from llenergymeasure.core.placement import Placement, plan_placement
from llenergymeasure.backends.credentials import key_problem
from llenergymeasure.core.server import INSTALL_HINT, arrival_problem, arrival_warnings, check_server, decoder_warnings, server_meter
from llenergymeasure.core.vram import context_problem, estimate_vram, vram_problem
from llenergymeasure.datasets import load_prompts
from llenergymeasure.energy import EnergyMeter, NoEnergyMeter
from llenergymeasure.energy.hardware import cuda_index
from llenergymeasure.energy.meters import create_meter
from llenergymeasure.exceptions import PreFlightError


@dataclass
class Plan:
    """What pre-flight established: the prompts, the device, and the energy meter to use."""

    prompts: list[str]
    device: str
    meter: EnergyMeter
    precision: str | None = None  # what the model runs in (``auto`` resolved for the device); None for a server
    warnings: list[tuple[str, str]] = field(default_factory=list)
    device_map: dict[str, int | str] | None = None  # a model spread over GPUs: where each module goes
    gpus: list[str] = field(default_factory=list)  # and the UUIDs of the GPUs it is on

    @property
    def where(self) -> str:
        """The devices measured, as one name: the device, or the spread model's GPUs."""
        return "+".join(self.gpus) if self.gpus else self.device


def preflight(config: ExperimentConfig) -> Plan:
    if config.backend == "openai":
        return _preflight_server(config)
    problems: list[str] = []
    warnings: list[tuple[str, str]] = []

    missing = [package for package in ("torch", "transformers") if find_spec(package) is None]
    if missing:
        problems.append(
            f"backend: 'pytorch' needs {' and '.join(missing)}; install it with: pip install 'pytest-llem[pytorch]' "
            "(on a machine without a GPU, pip install torch --index-url https://download.pytorch.org/whl/cpu first, "
            "or pip pulls the CUDA build of torch)"
        )

    model = model_problem(config.model, config.pytorch.revision)
    problem = model or context_problem(config)
    if problem:
        problems.append(problem)

    prompts = _output_and_prompts(config, problems)

    device, placement = "cpu", None
    if not missing and not model and (config.pytorch.device_map is not None or config.pytorch.gpus):
        placement = _check_placement(config, problems)
        device = placement.device if placement else device
    elif not missing and not model:
        device = _check_device(config, problems, warnings)
    gpus = [gpu.uuid for gpu in placement.gpus] if placement else []
    precision = config.precision if missing or model else run_precision(config, device)

    meter: EnergyMeter = NoEnergyMeter("pre-flight failed")
    if not model:
        try:
            meter = create_meter(config.energy, device, gpus=gpus or None)
        except PreFlightError as exc:
            problems.extend(exc.problems)

    if problems:
        meter.close()
        raise PreFlightError(problems)
    return Plan(prompts=prompts, device=device, meter=meter, precision=precision, warnings=warnings,
                device_map=placement.device_map if placement else None, gpus=gpus)


def run_precision(config: ExperimentConfig, device: str) -> str:
    """The precision the model runs in on ``device``: ``precision`` as given, or for ``auto`` bf16
    on a GPU that has it, fp16 on an older GPU, fp32 on the CPU (where half precision is emulated)."""
    if config.precision != "auto":
        return config.precision
    index = cuda_index(device)
    return "fp32" if index is None else "bf16" if native_bf16(index) else "fp16"


def native_bf16(index: int) -> bool:
    """Whether CUDA GPU ``index`` computes in bf16 natively (compute capability 8.0, Ampere, or later):
    torch.cuda.is_bf16_supported() also says yes where bf16 is only emulated, and slowly (a V100, a T4)."""
    import torch

    return torch.cuda.get_device_capability(index)[0] >= 8


def _preflight_server(config: ExperimentConfig) -> Plan:
    """Pre-flight of an experiment that measures a server: the device is ``server:<base_url>``."""
    problems: list[str] = []
    missing = [package for package in ("httpx", "psutil") if find_spec(package) is None]
    if missing:
        problems.append(f"backend: 'openai' needs {' and '.join(missing)}; {INSTALL_HINT}")

    prompts = _output_and_prompts(config, problems)

    meter: EnergyMeter = NoEnergyMeter("pre-flight failed")
    problems.extend(problem for problem in (key_problem(config), arrival_problem(config)) if problem)
    if not missing:
        check = check_server(config)
        if check.problem:
            problems.append(check.problem)
        if check.reachable:  # else finding its process fails too, for the same reason
            meter = server_meter(config, problems)
    if problems:
        meter.close()
        raise PreFlightError(problems)
    return Plan(prompts=prompts, device=f"server:{config.openai.base_url}", meter=meter,
                warnings=decoder_warnings(config) + arrival_warnings(config))


def _output_and_prompts(config: ExperimentConfig, problems: list[str]) -> list[str]:
    """The checks every backend shares: the output dir must take the result (a result that cannot
    be saved is not worth measuring) and the dataset must give ``n`` prompts; the prompts."""
    problem = output_dir_problem(config)
    if problem:
        problems.append(problem)
    try:
        return load_prompts(config.dataset, config.n, seed=config.random_seed, input_tokens=config.max_input_tokens)
    except PreFlightError as exc:
        problems.extend(exc.problems)
        return []


def _check_placement(config: ExperimentConfig, problems: list[str]) -> Placement | None:
    """A model spread over GPUs (or put on one by UUID): torch must have CUDA, and the plan must hold."""
    import torch

    key = "pytorch.gpus" if config.pytorch.gpus else "pytorch.device_map"
    cuda = torch.cuda.is_available()
    if not cuda:
        problems.append(f"{key}: the model is to be placed on GPUs but torch {torch.__version__} sees no CUDA GPU; "
                        "install a CUDA build of torch")
    elif config.precision == "bf16" and not native_bf16(0):
        problems.append(f"precision: bf16 is not supported by {torch.cuda.get_device_name(0)}; use fp16")
    if config.precision == "auto":  # planned for the dtype the weights load in: 2 bytes on any GPU
        config = config.model_copy(update={"precision": run_precision(config, "cuda:0") if cuda else "fp16"})
    return plan_placement(config, problems)


def _check_device(config: ExperimentConfig, problems: list[str], warnings: list[tuple[str, str]]) -> str:
    import torch

    requested = config.pytorch.device
    cuda = torch.cuda.is_available()
    if requested == "auto":
        device = "cuda:0" if cuda else "cpu"
    else:
        device = "cuda:0" if requested == "cuda" else requested

    index = cuda_index(device)
    if index is not None:
        if not cuda:
            problems.append(
                f"pytorch.device: {requested!r} asked for, but torch {torch.__version__} sees no CUDA GPU; "
                "use 'auto' or 'cpu', or install a CUDA build of torch"
            )
            return "cpu"
        if index >= torch.cuda.device_count():
            problems.append(f"pytorch.device: {requested!r} but only {torch.cuda.device_count()} GPU(s) are visible")
            return "cpu"
        if config.precision == "bf16" and not native_bf16(index):
            problems.append(f"precision: bf16 is not supported by {torch.cuda.get_device_name(index)}; use fp16")
        problem = vram_problem(estimate_vram(config), torch.cuda.get_device_properties(index).total_memory / 1e9, device)
        if problem:
            problems.append(problem)
    elif config.precision == "fp16":
        warnings.append(("fp16_on_cpu", "fp16 on the CPU is emulated and slow; its energy is not representative"))
    return device
