"""The Hugging Face hub, asked fast: one bounded request first, and messages that name the cause.

Left to itself huggingface_hub retries a refused or timed-out connection for about 25 s and then
reports only that the file is not in the cache. Before anything downloads, ``unreachable()``
asks the hub once (a HEAD request, ``timeout_s()`` seconds at most, no retries) and remembers
the answer per endpoint for the rest of the process, so a run without network fails at once,
saying so, and a study asks only once.

``not_available`` words what every front door says when a model or dataset is neither here nor
obtainable (offline, or no network): the cause and what to do about it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TIMEOUT_S = 3.0  # the hub answers a HEAD well within a second; past this it is as good as down

_REACHABILITY: dict[str, str | None] = {}  # endpoint -> why it cannot be reached, or None


def timeout_s() -> float:
    """The probe's timeout: HF_HUB_ETAG_TIMEOUT when the user set it, else DEFAULT_TIMEOUT_S."""
    try:
        return max(0.1, float(os.environ["HF_HUB_ETAG_TIMEOUT"]))
    except (KeyError, ValueError):
        return DEFAULT_TIMEOUT_S


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def offline_variable() -> str:
    """The variable that put huggingface_hub offline (it also honours TRANSFORMERS_OFFLINE)."""
    from huggingface_hub import constants

    hub_offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES
    return "HF_HUB_OFFLINE" if hub_offline or "TRANSFORMERS_OFFLINE" not in os.environ else "TRANSFORMERS_OFFLINE"


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def unreachable(repo_id: str, repo_type: str = "model") -> str | None:
    """Why the hub cannot be reached (``ConnectError: ...``, ``no answer within 3 s``), or None
    when it answers at all (any HTTP status: whether ``repo_id`` is there is the caller's question).
    Asked once per endpoint in this process."""
    url = endpoint()
    if url not in _REACHABILITY:
        _REACHABILITY[url] = _probe(f"{url}/api/{repo_type}s/{repo_id}")
    return _REACHABILITY[url]


def forget() -> None:
    """Ask the hub again next time (tests, a long-lived process whose network came back)."""
    _REACHABILITY.clear()


def _probe(url: str) -> str | None:
    from huggingface_hub.utils import get_session

    limit = timeout_s()
    try:
        get_session().head(url, timeout=limit)
    except Exception as exc:  # noqa: BLE001 - requests or httpx, any version: every failure means "not reachable"
        if "timeout" in type(exc).__name__.lower() or isinstance(exc, TimeoutError):
            return f"no answer within {limit:g} s; raise HF_HUB_ETAG_TIMEOUT on a slow network"
        return _first_line(exc)
    return None


def not_available(key: str, name: str, *, repo_type: str = "model", reason: str | None = None) -> str:
    """``key: name`` is not on this machine and cannot be fetched: offline (``reason`` None) or the
    hub unreachable for ``reason``. Names the cache looked in and the ways out."""
    kind = "dataset" if repo_type == "dataset" else "model"
    download = f"hf download {name}" + (" --repo-type dataset" if repo_type == "dataset" else "")
    local = "give a local directory" if kind == "model" else "use 'dataset: builtin' or a .jsonl file"
    where = f"not in the Hugging Face cache ({cache_dir()})"
    if kind == "model":
        where = f"not a directory in {Path.cwd()} and {where}"
    if reason is None:
        variable = offline_variable()
        return (f"{key}: {name!r} is {where}, and {variable}=1 forbids downloading it; download it once "
                f"where there is network ({download}, into the same HF_HUB_CACHE), unset {variable} to "
                f"download it now, or {local}")
    return (f"{key}: {name!r} is {where}, and the Hugging Face hub at {endpoint()} cannot be reached "
            f"({reason}); check the network (or HF_ENDPOINT, HTTPS_PROXY), download it once where there is "
            f"network ({download}, into the same HF_HUB_CACHE) and set HF_HUB_OFFLINE=1, or {local}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
