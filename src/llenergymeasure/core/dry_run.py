"""A dry run: what can be known about an experiment without loading or measuring anything.

Shared by ``llem run --dry-run`` and ``pytest --llem-dry-run``. It reads only local files (the
model's config.json and safetensors headers, a local dataset file) and NVML, never the network
and never torch, so it runs on a push-CI machine without a GPU in about a second.

Problems are things that would certainly stop the real run: a local model path that does not
exist, a sequence (max_input_tokens + max_output_tokens) past the model's context, a dataset
name that is not one (with a did-you-mean), a .jsonl file that is missing or has no prompt
column, fewer prompts than ``n``, a VRAM estimate above the GPU's memory, an output_dir that
cannot take the result files. Each is found by the function pre-flight uses, so both say it in
the same words. Notes are what could not be checked here (a hub model that is not in the local
cache: its files, size and context are checked where it runs).

What depends only on the model (its files, headers, context; the packages installed) is worked
out once per process, not once per experiment: files are cached by version (core/file_cache.py).

``backend: openai`` is the one exception to "never the network": its dry run asks the server
(GET {base_url}/models, a few seconds at most, once per URL and process) whether it serves the
model. A server that answers without the model is a problem; no server answering is a note, as
an ``openai.gpus`` GPU is on a machine with no GPU: the server may run only where the experiment
will. On a machine with GPUs, one that ``openai.gpus`` names and NVML does not see is a problem,
as in pre-flight: the run would last its whole length and end with no energy. The dry
run sends no API key (it runs on pull requests, whose files choose the URL): a server that wants
one is reachable, and whether it serves the model is left to pre-flight.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.model_files import answered_here, model_problem, repo_id_problem
from llenergymeasure.backends.credentials import key_problem
from llenergymeasure.core.server import ServerCheck, arrival_problem, arrival_warnings, check_server, unseen_gpus
from llenergymeasure.core.vram import VramEstimate, context_problem, estimate_vram_explained, vram_problem
from llenergymeasure.datasets import check_dataset
from llenergymeasure.results import io
from llenergymeasure.results.model import longest_file_name, make_experiment_id


@dataclass
class DryRunReport:
    vram: VramEstimate | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def dry_run(config: ExperimentConfig, gpu_memory_gb: float | None) -> DryRunReport:
    """Check ``config`` against local files and a GPU of ``gpu_memory_gb`` (None: no GPU here)."""
    if config.backend == "openai":
        return _dry_run_server(config)
    vram, why_not = estimate_vram_explained(config)
    report = DryRunReport(vram)
    if why_not:
        report.notes.append(why_not)

    _check_model(config, report)
    _check_dataset(config, report)

    problem = output_dir_problem(config)
    if problem:
        report.problems.append(problem)

    if config.pytorch.device_map is not None or config.pytorch.gpus:
        _check_spread(config, report)
    elif config.pytorch.device != "cpu" and gpu_memory_gb is not None:
        problem = vram_problem(report.vram, gpu_memory_gb)
        if problem:
            report.problems.append(problem)
    if config.pytorch.device.startswith("cuda") and gpu_memory_gb is None:
        report.notes.append(f"pytorch.device is {config.pytorch.device!r} but no GPU is visible here")
    missing = [package for package in ("torch", "transformers") if not installed(package)]
    if missing:
        report.notes.append(f"{' and '.join(missing)} not installed here: pip install 'pytest-llem[pytorch]' to run it")
    return report


def clear_caches() -> None:
    """Forget everything worked out per model, file, package and server in this process."""
    from llenergymeasure.core import hub, model_files
    from llenergymeasure.datasets import aienergyscore, jsonl

    for cached in (model_files.read_json_object, model_files.read_safetensors_header, model_files.safetensors_params,
                   model_files.local_weight_files, jsonl.read_prompts, jsonl.builtin_prompts, installed):
        cached.cache_clear()  # type: ignore[attr-defined]
    aienergyscore.forget()
    hub.forget()
    _SERVER_CHECKS.clear()


@functools.cache
def installed(package: str) -> bool:
    """Whether ``package`` can be imported here (asked once per process: a study asks per experiment)."""
    return find_spec(package) is not None


def _check_model(config: ExperimentConfig, report: DryRunReport) -> None:
    """The model's files and its context, from this machine; a hub model not here is a note."""
    model, revision = config.model, config.pytorch.revision
    if not answered_here(model, revision):
        problem = repo_id_problem(model)
        if problem:
            report.problems.append(problem)
        else:
            report.notes.append(f"model: {model!r} is not a directory in {Path.cwd()} nor in the Hugging Face cache "
                                "here: its files and context length are checked where it runs")
        return
    problem = model_problem(model, revision) or context_problem(config)
    if problem:
        report.problems.append(problem)


def _check_spread(config: ExperimentConfig, report: DryRunReport) -> None:
    """A model spread over GPUs: the GPUs it names must be visible here, and hold it together.
    Where no GPU is visible (a push-CI machine) that is a note: it may run where they are."""
    from llenergymeasure.core.placement import chosen_gpus, placement_key, spread_vram_problem
    from llenergymeasure.energy.sources import nvml_status
    from llenergymeasure.exceptions import PreFlightError

    _, visible, _ = nvml_status()
    if not visible:
        report.notes.append(f"{placement_key(config)}: no GPU visible here; the placement is checked where it runs")
        return
    try:
        chosen = chosen_gpus(config, visible)
    except PreFlightError as exc:
        report.problems.extend(exc.problems)
        return
    problem = spread_vram_problem(report.vram, chosen, [visible.index(gpu) for gpu in chosen])
    if problem:
        report.problems.append(problem)


def _dry_run_server(config: ExperimentConfig) -> DryRunReport:
    """The dry run of an experiment that measures a server: the server holds the model, so no VRAM estimate."""
    report = DryRunReport(None, notes=["no VRAM estimate: the server holds the model"])
    _check_dataset(config, report)
    report.problems.extend(problem for problem in (output_dir_problem(config), key_problem(config),
                                                   arrival_problem(config)) if problem)
    report.notes.extend(text for _, text in arrival_warnings(config))
    unseen = unseen_gpus(config)
    if unseen and unseen.gpus_here:  # a GPU machine without those GPUs: the run would fail here
        report.problems.append(unseen.problem)
    elif unseen:  # no GPU here at all: a CPU runner checking a file that runs elsewhere
        report.notes.append(f"{unseen.what} (no GPU here; checked again where it runs)")
    if not installed("httpx"):
        report.notes.append("httpx not installed here: pip install 'pytest-llem[openai]' to run it")
        return report
    check = _server_check(config)
    if check.problem and check.reachable:
        report.problems.append(check.problem)
    elif check.problem:
        report.notes.append(f"{check.problem.removeprefix('openai.base_url: ')} (not checked further here)")
    if check.note:
        report.notes.append(check.note)
    return report


def _server_check(config: ExperimentConfig) -> ServerCheck:
    """``check_server`` without a key (a dry run sends none), asked once per server and model in this
    process (a study repeats them)."""
    key = (config.openai.base_url, config.model, config.openai.timeout_s)
    if key not in _SERVER_CHECKS:
        _SERVER_CHECKS[key] = check_server(config, with_key=False)
    return _SERVER_CHECKS[key]


_SERVER_CHECKS: dict[tuple[object, ...], ServerCheck] = {}


def _check_dataset(config: ExperimentConfig, report: DryRunReport) -> None:
    problems, notes = check_dataset(config.dataset, config.n, input_tokens=config.max_input_tokens)
    report.problems.extend(problems)
    report.notes.extend(notes)


def output_dir_problem(config: ExperimentConfig) -> str | None:
    """Why ``config``'s result files could not be created in its ``output_dir`` (a file in the way,
    no write permission, a name too long for the filesystem), or None; creates nothing."""
    if not config.output_dir:
        return None
    # The id the runner will give the result, at any time: the time part has a fixed width.
    experiment_id = make_experiment_id(config.name or Path(config.model).name, config.config_hash(),
                                       datetime.now(timezone.utc))
    return io.output_dir_problem(config.output_dir, longest_file_name(experiment_id))
