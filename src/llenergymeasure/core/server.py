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
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llenergymeasure.backends.credentials import KEY_FIELD, named_by_file, request_headers, server_text
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.energy.base import EnergyMeter, NoEnergyMeter

CHECK_TIMEOUT_S = 10.0  # a server that takes longer to list its models is not ready to be measured
MAX_ANSWER_BYTES = 8 * 2**20  # a model list longer than this is not an OpenAI-compatible server's
INSTALL_HINT = "install it with: pip install 'pytest-llem[openai]'"


@dataclass(frozen=True)
class ServerCheck:
    """``reachable``: something answered at base_url; ``problem``: why the run cannot use it, or None;
    ``note``: what a dry run could not check (a server that wants a key it was not sent)."""

    reachable: bool
    problem: str | None = None
    models: tuple[str, ...] = ()
    note: str | None = None


def check_server(config: ExperimentConfig, *, with_key: bool = True) -> ServerCheck:
    """Whether the server at ``openai.base_url`` answers, within a short timeout, and serves ``model``.

    ``with_key=False`` (the dry run) sends no API key: a server that wants one is reachable, and
    whether it serves ``model`` is left to pre-flight. Every text from the server is made
    printable, with the key, should the server echo it, as ``***``."""
    check = _check_server(config, with_key)
    if check.problem is None:
        return check
    return ServerCheck(check.reachable, server_text(check.problem, config), check.models, check.note)


def _check_server(config: ExperimentConfig, with_key: bool) -> ServerCheck:
    import httpx

    from llenergymeasure.backends.openai import describe_error, error_text, redirect_text

    server = config.openai
    url = f"{server.base_url}/models"
    timeout = min(server.timeout_s, CHECK_TIMEOUT_S)
    headers = request_headers(config) if with_key else {}
    try:
        status, body, response = _get(url, headers, timeout)
    except httpx.TimeoutException:
        return ServerCheck(False, f"openai.base_url: {url} did not answer within {timeout:g} s; "
                                  "is the server still starting, or is the host or port wrong?")
    except httpx.HTTPError as exc:
        return ServerCheck(False, f"openai.base_url: no server answers at {server.base_url} ({describe_error(exc)}); "
                                  "start it (vllm serve MODEL, transformers serve MODEL) or correct openai.base_url")
    except _TooLong:
        return ServerCheck(True, f"openai.base_url: GET {url} answered more than {MAX_ANSWER_BYTES // 2**20} MiB, "
                                 f"or for longer than {timeout:g} s; is this an OpenAI-compatible server?")
    if 300 <= status < 400:
        return ServerCheck(True, f"openai.base_url: GET {url}: {redirect_text(response)}")
    if status in (401, 403) and not with_key:
        return ServerCheck(True, None, note=f"{url} answers, and wants an API key (HTTP {status}); a dry run sends "
                                            "none, so whether it serves the model is checked at pre-flight")
    if status in (401, 403):
        key = "is not set" if not headers else "is set, but the server refused it"
        chooser = named_by_file(config)
        if chooser and os.environ.get(server.api_key_env):
            key = f"was named by {chooser}, so it is not sent (see {KEY_FIELD})"
        return ServerCheck(True, f"openai.base_url: GET {url} was refused (HTTP {status}: "
                                 f"{error_text(body)}); the server wants an API key: the environment "
                                 f"variable {server.api_key_env} ({KEY_FIELD}) {key}")
    if status >= 400:
        return ServerCheck(True, f"openai.base_url: GET {url} answered HTTP {status}: "
                                 f"{error_text(body)}; is this the API root of an OpenAI-compatible "
                                 "server (it usually ends in /v1)?")
    models = _model_ids(body)
    if models is None:
        return ServerCheck(True, f"openai.base_url: GET {url} did not answer with a model list "
                                 f"({error_text(body)}); is this an OpenAI-compatible server?")
    if config.model not in models:
        served = ", ".join(repr(m[:200]) for m in models[:20]) + (" ..." if len(models) > 20 else "") or "no model"
        return ServerCheck(True, f"model: {config.model!r} is not served at {server.base_url}; it serves {served} "
                                 f"(model: must be an id that {url} lists)", models)
    return ServerCheck(True, None, models)


class _TooLong(Exception):
    """The answer went on past MAX_ANSWER_BYTES or the check's time."""


def _get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes, Any]:
    """GET ``url``: (status, at most MAX_ANSWER_BYTES of body, the response), within ``timeout`` in all."""
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        body = bytearray()
        for part in response.iter_bytes():
            body += part
            if len(body) > MAX_ANSWER_BYTES or time.monotonic() > deadline:
                raise _TooLong()
    return response.status_code, bytes(body), response


def _model_ids(body: bytes) -> tuple[str, ...] | None:
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError, RecursionError):
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
    unseen = unseen_gpus(config)
    if unseen:
        problems.append(unseen.problem)
        return NoEnergyMeter("pre-flight failed")
    local = on_this_machine(config)
    if not local and server.gpus is None:
        if energy.source != "auto":
            problems.append(f"energy.source: {energy.source} would measure this machine, but {not_here_reason(config)}")
        return CheckedMeter(NoEnergyMeter(not_here_reason(config)))

    tree, why_not = None, ""
    if local:
        try:
            here = _is_local(urlsplit(server.base_url).hostname or "")
            tree = find_server(server.server_pid, server_port(config) if here else None)
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


@dataclass(frozen=True)
class UnseenGpus:
    """GPUs ``openai.gpus`` names that NVML here does not see: ``what`` says which (and what is
    visible); ``gpus_here``: whether this machine has GPUs at all."""

    what: str
    gpus_here: bool

    @property
    def problem(self) -> str:
        """As pre-flight says it: a run would last its whole length and end with no energy."""
        return (f"{self.what}: their energy cannot be read here. Name GPUs this machine sees, run where the "
                "server's GPUs are visible, or set energy.source: none to measure without energy")


def unseen_gpus(config: ExperimentConfig) -> UnseenGpus | None:
    """The GPUs ``openai.gpus`` names that NVML here does not see, or None (also without energy)."""
    from llenergymeasure.energy.meters import select_gpus
    from llenergymeasure.energy.sources import nvml_status
    from llenergymeasure.exceptions import PreFlightError

    named = [gpu for gpu in config.openai.gpus or [] if str(gpu).lower() != "cpu"]
    if not named or config.energy.source == "none":
        return None
    status, visible, _ = nvml_status()
    try:
        select_gpus(visible, named)
    except PreFlightError as exc:
        nvml = "" if visible else f"; NVML: {status.detail}"
        return UnseenGpus(f"openai.gpus: {exc.problems[0].removeprefix('devices: ')}{nvml}", bool(visible))
    return None


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


ARRIVALS_WARN_S = 600.0  # a window of arrivals longer than this is said at pre-flight and in the dry run
ARRIVALS_MAX_S = 24 * 3600.0  # ... and longer than this is refused: nobody means a day-long window


def arrivals_s(config: ExperimentConfig) -> float | None:
    """The expected time over which one window's requests arrive, at ``openai.request_rate``."""
    rate = config.openai.request_rate
    return None if rate is None or config.backend != "openai" else (config.n - 1) / rate


def arrival_problem(config: ExperimentConfig) -> str | None:
    """Why ``openai.request_rate`` is refused: its requests would take more than a day to arrive."""
    expected = arrivals_s(config)
    if expected is None or expected <= ARRIVALS_MAX_S:
        return None
    return (f"openai.request_rate: {config.openai.request_rate:g} requests/s for n = {config.n} prompts arrive over "
            f"about {_duration(expected)} per window (x{config.repeats} repeats), more than the "
            f"{_duration(ARRIVALS_MAX_S)} llem allows; raise openai.request_rate or lower n")


def arrival_warnings(config: ExperimentConfig) -> list[tuple[str, str]]:
    expected = arrivals_s(config)
    if expected is None or expected <= ARRIVALS_WARN_S:
        return []
    return [("long_arrivals", f"openai.request_rate {config.openai.request_rate:g}/s: the {config.n} requests arrive "
                              f"over about {_duration(expected)} per window, {_duration(expected * config.repeats)} "
                              f"for {config.repeats} repeat(s)")]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
