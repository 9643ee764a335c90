"""The experiment config: one pydantic model per section, unknown keys forbidden.

Field names follow the llenergymeasure lineage (model, backend, n, dataset, precision,
decoder.*, warmup.*, baseline.*, energy.*, pytorch.*) so existing configs keep working.
Defaults here are the bottom layer of the precedence CLI > YAML > user config > defaults.
Only the section of the backend in use (``pytorch`` or ``openai``) is part of a config's dump
and hash: a knob of the other backend changes nothing that is measured.

Every number is finite (no NaN or infinity) and within a range that can mean something on
real hardware, and no text holds control characters: such a value is a typo or an attack,
and refusing it here keeps it from reaching torch, the filesystem or a gate as a crash.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from llenergymeasure.config.yaml_source import CONTROL_CHARACTERS

MAX_SAMPLE_INTERVAL_MS = 10_000  # a power sample less often than every 10 s sees nothing of a run
MAX_BASELINE_SECONDS = 600.0  # ten minutes of idle power is plenty for a stable mean
MAX_CACHE_TTL_SECONDS = 7 * 24 * 3600.0  # idle power drifts with firmware, drivers and seasons
MAX_NAME_LENGTH = 255  # of one file or directory name, on every common filesystem
MAX_REQUEST_TIMEOUT_S = 3600.0  # one request to a server; past an hour it is hung, not slow
MAX_CONCURRENCY = 4096  # requests in flight at once; far above what one server batches

def _plain(text: str) -> str:
    found = CONTROL_CHARACTERS.search(text)
    if found:
        raise ValueError(f"control character U+{ord(found.group()):04X} is not allowed; remove it")
    return text


def _path_like(text: str) -> str:
    longest = max((len(part) for part in re.split(r"[/\\]", text)), default=0)
    if longest > MAX_NAME_LENGTH:
        raise ValueError(
            f"a part of this path is {longest} characters long; no filesystem allows more than {MAX_NAME_LENGTH}"
        )
    return text


# Text without control characters: a NUL in a path or a name is never meant.
Text = Annotated[str, AfterValidator(_plain)]


def _one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError("a name is one line: remove the line break")
    return text


# An experiment's name: also one line (it heads a line of every summary and table).
Name = Annotated[str, AfterValidator(_plain), AfterValidator(_one_line)]
# A path or hub id, each part short enough for a filesystem to hold (so checking it cannot crash).
PathText = Annotated[str, AfterValidator(_plain), AfterValidator(_path_like), Field(max_length=4095)]

Precision = Literal["auto", "fp32", "fp16", "bf16"]
EnergySource = Literal["auto", "nvml", "rapl", "cpu_estimate", "none"]

# Sampling values each decoder preset stands for; explicit keys win over the preset.
DECODER_PRESETS: dict[str, dict[str, Any]] = {
    "deterministic": {"do_sample": False},
    "standard": {"do_sample": True, "temperature": 1.0, "top_k": 50, "top_p": 1.0},
    "creative": {"do_sample": True, "temperature": 1.2, "top_k": 0, "top_p": 0.95},
    "factual": {"do_sample": True, "temperature": 0.3, "top_k": 10, "top_p": 0.9},
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DecoderConfig(_Section):
    """How tokens are chosen. Greedy by default: repeatable output lengths, repeatable energy."""

    preset: Literal["deterministic", "standard", "creative", "factual"] | None = None
    do_sample: bool = False
    temperature: float = Field(1.0, ge=0.0)
    top_k: int = Field(50, ge=0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    ignore_eos: bool = False

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in DECODER_PRESETS:
            return {**DECODER_PRESETS[data["preset"]], **data}
        return data


class WarmupConfig(_Section):
    """Generate calls run before measuring, excluded from every metric."""

    enabled: bool = True
    n_warmup: int = Field(2, ge=0, le=10_000, description="warmup batches")


class BaselineConfig(_Section):
    """Idle power measured before the model loads, subtracted for the net_* metrics."""

    enabled: bool = True
    duration_seconds: float = Field(5.0, gt=0, le=MAX_BASELINE_SECONDS)
    cache_ttl_seconds: float = Field(3600.0, ge=0, le=MAX_CACHE_TTL_SECONDS)


class EnergyConfig(_Section):
    """Where energy comes from. ``auto`` picks the best source the machine has."""

    source: EnergySource = "auto"
    sample_interval_ms: int = Field(100, ge=10, le=MAX_SAMPLE_INTERVAL_MS)
    carbon_intensity_g_per_kwh: float | None = Field(None, ge=0)
    carbon_country: str | None = Field(None, pattern=r"^[A-Za-z]{3}$", description="ISO 3166 alpha-3, e.g. FRA")


def _gpu_selector(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        ok = False
    elif isinstance(value, int):
        ok = 0 <= value <= 1023
    else:
        ok = re.fullmatch(r"\d{1,4}|cuda(:\d{1,4})?|(GPU|MIG)-[0-9A-Za-z-]{4,80}", value) is not None
    if not ok:
        raise ValueError("a GPU is a visible index (0), 'cuda:N', or a UUID ('GPU-...', at least its first 8 characters)")
    return value


# A GPU as this process sees it (energy/meters.py select_gpus reads it).
Gpu = Annotated[int | str, BeforeValidator(_gpu_selector)]


# How transformers/accelerate spreads a model over devices (``from_pretrained(device_map=...)``).
DEVICE_MAP_NAMES = ("auto", "balanced", "balanced_low_0", "sequential")


def _device_map(value: Any) -> Any:
    """A named map, or {module: GPU index (as transformers takes it) | "cpu" | "disk"}: one clear
    message for anything else."""
    if isinstance(value, str):
        if value not in DEVICE_MAP_NAMES:
            raise ValueError(f"{value!r} is not a device map; use one of {', '.join(DEVICE_MAP_NAMES)}, or an explicit "
                             "{module: GPU index | cpu | disk} map")
        return value
    if not isinstance(value, dict):
        raise ValueError("a device map is auto, balanced, balanced_low_0, sequential, or a {module: GPU index | cpu | "
                         "disk} map")
    for module, target in value.items():
        if not isinstance(module, str) or len(module) > 1024 or CONTROL_CHARACTERS.search(module):
            raise ValueError(f"{module!r} is not a module name")
        ok = target in ("cpu", "disk") or (isinstance(target, int) and not isinstance(target, bool) and 0 <= target <= 1023)
        if not ok:
            raise ValueError(f"{module}: {target!r} is not a place for a module; use a GPU index (0), cpu or disk")
    return value


DeviceMap = Annotated[str | dict[str, int | str], BeforeValidator(_device_map)]


class PyTorchConfig(_Section):
    """Knobs of the transformers backend."""

    batch_size: int = Field(1, ge=1, le=65_536)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    device_map: DeviceMap | None = Field(
        None, description="spread the model over GPUs: auto, balanced, balanced_low_0, sequential, or an explicit "
                          "{module: GPU index | cpu | disk} map")
    gpus: list[Gpu] | None = Field(None, min_length=1, max_length=1024,
                                   description="the GPUs the model is placed on (visible index, cuda:N, UUID); null: "
                                               "pytorch.device's GPU, or every visible GPU with a device_map")
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None
    use_cache: bool = True
    torch_compile: bool = False
    trust_remote_code: bool = False
    revision: Text | None = None

    @model_serializer(mode="wrap")
    def _placement_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The dump without unset placement keys, so a one-device config's hash is what it was
        before models could be spread over GPUs."""
        data = handler(self)
        for key in ("device_map", "gpus"):
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _one_placement(self) -> PyTorchConfig:
        if (self.device_map is not None or self.gpus) and self.device not in ("auto", "cuda"):
            what = "pytorch.device_map" if self.device_map is not None else "pytorch.gpus"
            raise ValueError(f"{what} chooses the GPUs itself; leave pytorch.device at auto (it is {self.device!r})")
        if isinstance(self.device_map, dict):
            if not self.device_map:
                raise ValueError("pytorch.device_map is an empty map; name where each module goes, or use auto")
            if self.gpus:
                raise ValueError("give either an explicit pytorch.device_map (its GPU indices are the GPUs used) or "
                                 "pytorch.gpus, not both")
        if self.gpus and len(self.gpus) > 1 and self.device_map is None:
            raise ValueError(f"pytorch.gpus lists {len(self.gpus)} GPUs but a model without pytorch.device_map runs "
                             "on one; set pytorch.device_map: auto to spread it over them")
        return self


def _server_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials; put the API key in an environment variable named by "
                         "openai.api_key_env")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query (?...) or fragment (#...); give the API root, e.g. http://host:8000/v1")
    return text.rstrip("/")




MAX_RAMP_POINTS = 64  # load points of one ramp
MAX_POINT_SECONDS = 3600.0  # the steady window of one load point


def _rate(value: Any) -> Any:
    """``inf`` (YAML text, ``.inf`` or float('inf')) is the closed loop: kept as the text "inf"."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", ".inf", "infinity"):
        return "inf"
    if isinstance(value, float) and value == float("inf"):
        return "inf"
    return value


# Offered requests per second of one load point, or "inf": a closed loop at openai.concurrency.
Rate = Annotated[Annotated[float, Field(gt=0, le=1e6)] | Literal["inf"], BeforeValidator(_rate)]


def rate_label(rate: float | str) -> str:
    """A rate as ids and summaries show it: ``4``, ``0.5``, ``inf``."""
    return "inf" if rate == "inf" else f"{float(rate):g}"


class LoadConfig(_Section):
    """A load ramp (``backend: openai``): one load point per rate, in order, against the same server.
    Each point sends requests at its rate (Poisson arrivals from ``random_seed``; ``inf``: a closed
    loop of ``openai.concurrency`` requests) until ``duration_s`` of steady state is measured, ramp-up
    and drain cut (serving/steady_state.py). ``until: saturation`` stops after the first saturated
    point (the server served fewer requests than were offered, or its time to first token grew
    through the window); ``all`` runs every rate."""

    rates: list[Rate] = Field(min_length=1, max_length=MAX_RAMP_POINTS,
                              description="offered requests/s per load point, rising; inf: closed loop at concurrency")
    until: Literal["saturation", "all"] = Field("saturation", description="stop the ramp after the first saturated "
                                                                          "point, or run every rate")
    duration_s: float = Field(60.0, gt=0, le=MAX_POINT_SECONDS, description="steady-state window per load point")

    @model_validator(mode="after")
    def _rising(self) -> LoadConfig:
        values = [float("inf") if rate == "inf" else float(rate) for rate in self.rates]
        for before, after in zip(values, values[1:]):
            if after <= before:
                raise ValueError(f"rates must rise (a ramp, lightest load first): {rate_label(after)} comes after "
                                 f"{rate_label(before)}")
        return self


class SLOConfig(_Section):
    """Latency objectives of a served request (``backend: openai``). A request meets the SLO when its
    time to first token, its whole latency and its own inter-token gaps (at the key's percentile)
    are within every bound given; a load point meets it when each percentile over its steady
    requests is within its bound. Seconds; at least one key."""

    ttft_s_p50: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    ttft_s_p90: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    ttft_s_p99: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    itl_s_p50: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    itl_s_p90: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    itl_s_p99: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    latency_s_p50: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    latency_s_p90: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)
    latency_s_p99: float | None = Field(None, gt=0, le=MAX_REQUEST_TIMEOUT_S)

    @model_serializer(mode="wrap")
    def _set_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}

    @model_validator(mode="after")
    def _some(self) -> SLOConfig:
        if not self.bounds():
            raise ValueError("slo: give at least one bound, e.g. ttft_s_p99: 2.0")
        return self

    def bounds(self) -> list[tuple[str, int, float]]:
        """(quantity, percentile, seconds) of every bound given: ("ttft_s", 99, 2.0), ..."""
        found = []
        for key, value in self.__dict__.items():
            if value is not None:
                quantity, _, percent = key.rpartition("_p")
                found.append((quantity, int(percent), value))
        return found


class OpenAIConfig(_Section):
    """An OpenAI-compatible server (vLLM, TGI, ``transformers serve``, ...) that ``backend: openai``
    measures: the dataset's prompts go to ``{base_url}/completions`` (``endpoint: chat``: as a user
    message to ``{base_url}/chat/completions``), streamed. ``model`` is the id the server lists at
    ``{base_url}/models``. The API key is never read from a file: it comes from the environment
    variable ``api_key_env`` names, when that is set. ``load``: a load ramp instead of one pass over
    the prompts."""

    base_url: Annotated[Text, AfterValidator(_server_url), Field(max_length=2048)] = "http://127.0.0.1:8000/v1"
    concurrency: int = Field(1, ge=1, le=MAX_CONCURRENCY, description="requests in flight at once")
    request_rate: float | None = Field(None, gt=0, le=1e6, description="requests per second (Poisson arrivals); "
                                                                        "null: as fast as concurrency allows")
    timeout_s: float = Field(60.0, gt=0, le=MAX_REQUEST_TIMEOUT_S, description="limit on one whole request")
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
                             description="name of the environment variable holding the API key")
    gpus: list[Gpu] | None = Field(None, min_length=1, max_length=1024,
                                         description="GPUs the server runs on; null: every visible GPU")
    server_pid: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="the server's process, for the CPU estimate; null: found by its port")
    endpoint: Literal["completions", "chat"] = Field("completions", description="completions: /completions with the "
                                                     "prompt; chat: /chat/completions with it as the user's message")
    load: LoadConfig | None = Field(None, description="a load ramp: rates, until, duration_s")

    @model_serializer(mode="wrap")
    def _ramp_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The dump without the endpoint and load at their defaults, so a config's hash is what it
        was before load ramps existed."""
        data = handler(self)
        if data.get("endpoint") == "completions":
            data.pop("endpoint")
        if data.get("load") is None:
            data.pop("load", None)
        return data

    @model_validator(mode="after")
    def _one_pace(self) -> OpenAIConfig:
        if self.load is not None and self.request_rate is not None:
            raise ValueError("openai.load.rates sets the pace of each load point; remove openai.request_rate")
        return self

    def point_rate(self) -> float | str | None:
        """The offered rate of this load point ("inf": closed loop); None without a load, or for a
        ramp not yet expanded into its points."""
        return self.load.rates[0] if self.load is not None and len(self.load.rates) == 1 else None


# Fields whose value is a map with free-form keys (module names hold dots): one leaf when layered.
MAP_FIELDS = frozenset({"pytorch.device_map"})

# Keys that are refused with more than a did-you-mean (layers.py adds the text).
_NO_KEY_IN_FILES = ("an API key is never read from a config file: put it in an environment variable and name that "
                      "variable in openai.api_key_env (default OPENAI_API_KEY)")
REFUSED_KEY_HINTS = {"openai.api_key": _NO_KEY_IN_FILES, "api_key": _NO_KEY_IN_FILES}

BACKEND_SECTIONS = ("pytorch", "openai")


class ExperimentConfig(_Section):
    """One experiment: a model, a workload, and how to measure it."""

    name: Name | None = None
    model: PathText = Field(min_length=1)
    backend: Literal["pytorch", "openai"] = "pytorch"
    n: int = Field(100, ge=1, le=1_000_000, description="number of prompts")
    dataset: PathText = Field("aienergyscore", min_length=1)
    precision: Precision = Field("auto", description="auto: bf16 on a GPU that has it, fp16 on an older GPU, "
                                 "fp32 on a CPU (the result records which)")
    random_seed: int = Field(42, ge=0, le=2**32 - 1)
    max_input_tokens: int = Field(512, ge=1, le=1 << 20)
    max_output_tokens: int = Field(128, ge=1, le=1 << 20)
    repeats: int = Field(1, ge=1, le=1000)
    output_dir: PathText | None = None
    decoder: DecoderConfig = Field(default_factory=DecoderConfig)
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    pytorch: PyTorchConfig = Field(default_factory=PyTorchConfig)
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    slo: SLOConfig | None = Field(None, description="latency objectives of a served request (backend: openai)")

    # Where each resolved value came from ("default", "CLI --batch-size", "llem_x.yaml:12", ...),
    # keyed by dotted path. Filled by the loader; not part of the config's identity.
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    # Fields an experiment or benchmark file set (not the user's flags, user config or Python call).
    _from_files: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_serializer(mode="wrap")
    def _dump_used_backend(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The dump without the other backend's section (so a pytorch config's hash is what it was
        before the openai backend existed)."""
        data = handler(self)
        for section in BACKEND_SECTIONS:
            if section != self.backend:
                data.pop(section, None)
        if data.get("slo") is None:
            data.pop("slo", None)
        return data

    @model_validator(mode="after")
    def _serving_keys(self) -> ExperimentConfig:
        if self.backend != "openai" and self.slo is not None:
            raise ValueError("slo: latency objectives are for a served model; set backend: openai")
        return self

    def sources(self) -> dict[str, str]:
        """Every leaf field as a dotted path, mapped to where its value came from."""
        return {path: self._sources.get(path, "default") for path in leaf_paths(self.model_dump())}

    def set_by_file(self, key: str) -> bool:
        """Whether field ``key`` (dotted) holds a value an experiment or benchmark file chose."""
        return key in self._from_files

    def set_if_default(self, key: str, value: Any, label: str) -> bool:
        """Give field ``key`` ``value`` when no layer (file, flag, user config) set it, labelled
        ``label`` in ``sources()``; True when it did."""
        if self._sources.get(key, "default") != "default":
            return False
        setattr(self, key, value)
        self._sources[key] = label
        return True

    def config_hash(self) -> str:
        """A hash of everything that changes what is measured (not the name or where results go)."""
        identity = self.model_dump(mode="json", exclude={"name", "output_dir"})
        blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as ``{dotted.path: leaf value}``, in order (an empty dict, and the map of a
    MAP_FIELDS field, are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and f"{prefix}{key}" not in MAP_FIELDS:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def leaf_paths(data: dict[str, Any]) -> list[str]:
    """Dotted paths of the leaves of a nested dict, in order."""
    return list(flatten(data))
