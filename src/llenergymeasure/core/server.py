"""What can be known about an OpenAI-compatible server before it is measured (``backend: openai``).

    check_server(config)   GET {base_url}/models: does it answer, does it serve ``model``?
    server_meter(config)   the meter of the devices the server runs on (pre-flight)
    server_gpus(config)    those GPUs as NVML here names them (the result's environment)

Where the energy comes from:
    openai.gpus set                the named GPUs (NVML), plus RAPL when readable; a GPU counter
                                   can only be read on the machine the GPU is in
    a server on this machine       every visible GPU, plus RAPL; without GPUs RAPL, else the CPU
                                   estimate of the server's process tree (energy/processes.py)
    a server elsewhere             nothing: its devices cannot be read from here (said in the result)

httpx and psutil are imported inside: ``llem --help`` and a pytorch experiment need neither.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.energy.base import EnergyMeter, NoEnergyMeter

CHECK_TIMEOUT_S = 10.0  # a server that takes longer to list its models is not ready to be measured
INSTALL_HINT = "install it with: pip install 'pytest-llem[openai]'"


@dataclass(frozen=True)
class ServerCheck:
    """``reachable``: something answered at base_url; ``problem``: why the run cannot use it, or None."""

    reachable: bool
    problem: str | None = None
    models: tuple[str, ...] = ()


def check_server(config: ExperimentConfig) -> ServerCheck:
    """Whether the server at ``openai.base_url`` answers, within a short timeout, and serves ``model``."""
    import httpx

    from llenergymeasure.backends.openai import describe_error, error_text, request_headers

    server = config.openai
    url = f"{server.base_url}/models"
    timeout = min(server.timeout_s, CHECK_TIMEOUT_S)
    try:
        response = httpx.get(url, headers=request_headers(config), timeout=timeout)
    except httpx.TimeoutException:
        return ServerCheck(False, f"openai.base_url: {url} did not answer within {timeout:g} s; "
                                  "is the server still starting, or is the host or port wrong?")
    except httpx.HTTPError as exc:
        return ServerCheck(False, f"openai.base_url: no server answers at {server.base_url} ({describe_error(exc)}); "
                                  "start it (vllm serve MODEL, transformers serve MODEL) or correct openai.base_url")
    if response.status_code in (401, 403):
        key = "is not set" if not request_headers(config) else "is set, but the server refused it"
        return ServerCheck(True, f"openai.base_url: GET {url} was refused (HTTP {response.status_code}: "
                                 f"{error_text(response.content)}); the server wants an API key: the environment "
                                 f"variable {server.api_key_env} (openai.api_key_env) {key}")
    if response.status_code >= 400:
        return ServerCheck(True, f"openai.base_url: GET {url} answered HTTP {response.status_code}: "
                                 f"{error_text(response.content)}; is this the API root of an OpenAI-compatible "
                                 "server (it usually ends in /v1)?")
    models = _model_ids(response)
    if models is None:
        return ServerCheck(True, f"openai.base_url: GET {url} did not answer with a model list "
                                 f"({error_text(response.content)}); is this an OpenAI-compatible server?")
    if config.model not in models:
        served = ", ".join(repr(m) for m in models[:20]) + (" ..." if len(models) > 20 else "") or "no model"
        return ServerCheck(True, f"model: {config.model!r} is not served at {server.base_url}; it serves {served} "
                                 f"(model: must be an id that {url} lists)", models)
    return ServerCheck(True, None, models)


def _model_ids(response: Any) -> tuple[str, ...] | None:
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return None
    if not isinstance(data, list):
        return None
    return tuple(str(entry["id"]) for entry in data if isinstance(entry, dict) and "id" in entry)


def server_port(config: ExperimentConfig) -> int:
    parts = urlsplit(config.openai.base_url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def on_this_machine(config: ExperimentConfig) -> bool:
    """Whether the server's host is this machine (or ``openai.server_pid`` says its process is here)."""
    return config.openai.server_pid is not None or _is_local(urlsplit(config.openai.base_url).hostname or "")


@functools.lru_cache(maxsize=64)
def _is_local(host: str) -> bool:
    from llenergymeasure.energy.processes import is_this_machine

    return is_this_machine(host)


def not_here_reason(config: ExperimentConfig) -> str:
    return (f"the server at {config.openai.base_url} is not on this machine; energy of its devices cannot be read "
            "here (if its GPUs are visible here, as for a container on this machine, name them in openai.gpus)")


def server_meter(config: ExperimentConfig, problems: list[str]) -> EnergyMeter:
    """The checked meter of the server's devices (see the module text); what stops it goes in ``problems``."""
    from llenergymeasure.energy.meters import create_meter
    from llenergymeasure.energy.processes import ServerNotFound, find_server
    from llenergymeasure.energy.sanity import CheckedMeter
    from llenergymeasure.exceptions import PreFlightError

    server, energy = config.openai, config.energy
    if energy.source == "none":
        return create_meter(energy)
    local = on_this_machine(config)
    if not local and server.gpus is None:
        if energy.source != "auto":
            problems.append(f"energy.source: {energy.source} would measure this machine, but {not_here_reason(config)}")
        return CheckedMeter(NoEnergyMeter(not_here_reason(config)))

    tree, why_not = None, ""
    if local:
        try:
            tree = find_server(server.server_pid, None if server.server_pid else server_port(config))
        except ServerNotFound as exc:
            why_not = str(exc)
            if server.server_pid is not None:
                problems.append(why_not)
    try:
        meter = create_meter(energy, gpus=server.gpus, all_gpus=server.gpus is None,
                             cpu_seconds=tree.cpu_seconds if tree else None)
    except PreFlightError as exc:
        problems.extend(exc.problems)
        return NoEnergyMeter("pre-flight failed")
    if meter.source == "cpu_estimate" and tree is None and server.server_pid is None:
        problems.append(f"energy: the CPU estimate counts the server's CPU time, but its process was not found: "
                        f"{why_not}")
    return meter


def server_gpus(config: ExperimentConfig) -> list[Any]:
    """The GPUs the server runs on (``openai.gpus``, else every visible one for a server on this
    machine), as ``energy.sources.Gpu``; empty where none can be seen from here."""
    from llenergymeasure.energy.meters import select_gpus
    from llenergymeasure.energy.sources import nvml_status
    from llenergymeasure.exceptions import PreFlightError

    server = config.openai
    if server.gpus is None and not on_this_machine(config):
        return []
    _, gpus, _ = nvml_status()
    if server.gpus is None:
        return gpus
    try:
        return select_gpus(gpus, server.gpus)
    except PreFlightError:
        return []


def decoder_warnings(config: ExperimentConfig) -> list[tuple[str, str]]:
    """Decoder settings the OpenAI completions API cannot carry, so the server's own defaults apply."""
    decoder, unsent = config.decoder, []
    if decoder.do_sample and decoder.top_k:
        unsent.append(f"decoder.top_k={decoder.top_k}")
    if decoder.repetition_penalty != 1.0:
        unsent.append(f"decoder.repetition_penalty={decoder.repetition_penalty:g}")
    if not unsent:
        return []
    return [("decoder_not_sent", f"{' and '.join(unsent)} not sent: the OpenAI completions API has no such field, "
                                 "so the server's own setting applies")]
