"""A VRAM estimate that loads nothing: weights + KV cache + overhead, from files on disk.

Parameters are counted exactly from safetensors headers when the weights are local or cached
(8-byte length, then a JSON table of tensor shapes), else derived from config.json. Neither
imports torch, so ``llem run --dry-run`` stays fast and works on machines without a GPU.

An estimate that cannot be made (a config.json or safetensors file that is not what it says,
a dimension that is not a whole number in a sane range) is None, never an exception:
``estimate_vram_explained`` says why. Whether the model itself can load is pre-flight's
question (``model_files.model_problem``), which names the broken file.

``context_problem`` reads the same config.json for the model's context length: a sequence of
``max_input_tokens + max_output_tokens`` past it is refused when the model loads, so pre-flight
and the dry run refuse it first, in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.model_files import (
    ModelFileError,
    cached_model_file,
    read_json_object,
    safetensors_files,
    safetensors_params,
)

BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2, "auto": 2}  # auto: bf16 or fp16 on a GPU, where VRAM counts
CUDA_CONTEXT_GB = 0.4  # driver + CUDA context + allocator slack, outside torch's own accounting
ACTIVATION_SHARE = 0.15  # activations and temporary buffers, as a share of weights + KV cache
MAX_DIMENSION = 1 << 24  # no layer count, width or vocabulary of a real model comes near 16.7 million


@dataclass(frozen=True)
class VramEstimate:
    params: int
    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float
    basis: str  # "safetensors" (exact parameter count) or "config.json" (derived)

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.kv_cache_gb + self.overhead_gb


class _NoEstimate(Exception):
    """Why the estimate cannot be made from the files on this machine."""


def estimate_vram(config: ExperimentConfig) -> VramEstimate | None:
    """None when the model's config.json is not on this machine, or its files give no estimate."""
    return estimate_vram_explained(config)[0]


def estimate_vram_explained(config: ExperimentConfig) -> tuple[VramEstimate | None, str | None]:
    """(estimate, None), or (None, why there is none: a sentence naming the file, or None when
    the model's files are simply not on this machine)."""
    try:
        return _estimate(config), None
    except ModelFileError as exc:
        return None, f"no VRAM estimate: {exc}"
    except _NoEstimate as exc:
        return None, f"no VRAM estimate: {exc}" if str(exc) else None


def _estimate(config: ExperimentConfig) -> VramEstimate:
    revision = config.pytorch.revision
    config_file = cached_model_file(config.model, "config.json", revision)
    if config_file is None:
        raise _NoEstimate()
    model_config = _text_config(read_json_object(config_file))
    _check_dimensions(model_config, config_file)
    params = _params_from_safetensors(config.model, revision)
    basis = "safetensors"
    if params is None:
        params, basis = _params_from_config(model_config), "config.json"
    if not params:
        raise _NoEstimate(f"{config_file} gives no layer sizes to count parameters from")

    width = BYTES_PER_PARAM[config.precision]
    weights = params * width / 1e9
    kv = _kv_cache_bytes(model_config, config) * width / 1e9
    overhead = ACTIVATION_SHARE * (weights + kv) + CUDA_CONTEXT_GB
    return VramEstimate(params, weights, kv, overhead, basis)


def vram_problem(estimate: VramEstimate | None, gpu_gb: float, gpu: str = "the GPU") -> str | None:
    """The problem to report when the estimate is above the memory of ``gpu``, else None."""
    if estimate is None or estimate.total_gb <= gpu_gb:
        return None
    return (f"VRAM: the estimate is {estimate.total_gb:.1f} GB but {gpu} has {gpu_gb:.1f} GB; "
            "lower pytorch.batch_size, max_input_tokens or max_output_tokens, or use a smaller precision")


def context_problem(config: ExperimentConfig) -> str | None:
    """Why ``max_input_tokens + max_output_tokens`` does not fit the model's context, or None
    (it fits, or the model's config.json is not on this machine or gives no fixed context)."""
    found = model_context(config.model, config.pytorch.revision)
    wanted = config.max_input_tokens + config.max_output_tokens
    if found is None or wanted <= found[0]:
        return None
    context, where = found
    return (f"max_input_tokens + max_output_tokens = {wanted} exceeds the context of {config.model!r} "
            f"({context} tokens, {where}); lower max_input_tokens or max_output_tokens")


# The keys a config.json gives its context length under, as transformers reads them.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions")


def model_context(model: str, revision: str | None = None) -> tuple[int, str] | None:
    """(the context length in tokens, "KEY in PATH") from the model's config.json on this machine;
    None when it is not here, unreadable, or the context can be stretched (``rope_scaling``),
    as the backend does not refuse such a model either."""
    path = cached_model_file(model, "config.json", revision)
    if path is None:
        return None
    try:
        data = _text_config(read_json_object(path))
    except ModelFileError:  # model_problem names the broken file
        return None
    if data.get("rope_scaling"):
        return None
    key = next((k for k in _CONTEXT_KEYS if data.get(k) is not None), None)
    value = data.get(key) if key else None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_DIMENSION:
        return None
    return value, f"{key} in {path}"


def _text_config(data: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs nest the language model's numbers under ``text_config``."""
    nested = data.get("text_config")
    return {**data, **nested} if isinstance(nested, dict) else data


_DIMENSIONS = ("num_hidden_layers", "n_layer", "num_layers", "hidden_size", "n_embd", "d_model", "vocab_size",
               "num_attention_heads", "n_head", "num_key_value_heads", "head_dim", "intermediate_size", "n_inner",
               "ffn_dim")


def _check_dimensions(mc: dict[str, Any], path: Any) -> None:
    """The numbers the estimate multiplies must be whole and sane (some real configs hold lists)."""
    for key in _DIMENSIONS:
        value = mc.get(key)
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value is not None and not (whole and 0 <= value <= MAX_DIMENSION):
            raise _NoEstimate(f"{path}: {key} is {value!r}, not a whole number from 0 to {MAX_DIMENSION:,}")


def _first(data: dict[str, Any], *keys: str) -> Any:
    return next((data[k] for k in keys if data.get(k) is not None), None)


def _kv_cache_bytes(mc: dict[str, Any], config: ExperimentConfig) -> int:
    """Elements of the KV cache for a full batch at full length (multiply by bytes per element)."""
    layers = _first(mc, "num_hidden_layers", "n_layer", "num_layers") or 0
    hidden = _first(mc, "hidden_size", "n_embd", "d_model") or 0
    heads = _first(mc, "num_attention_heads", "n_head") or 1
    kv_heads = _first(mc, "num_key_value_heads") or heads
    head_dim = _first(mc, "head_dim") or hidden // heads
    sequence = config.max_input_tokens + config.max_output_tokens
    return 2 * layers * kv_heads * head_dim * sequence * config.pytorch.batch_size


def _params_from_config(mc: dict[str, Any]) -> int:
    """Decoder-only transformer: embeddings + per layer attention and MLP (gated for SiLU models)."""
    layers = _first(mc, "num_hidden_layers", "n_layer", "num_layers") or 0
    hidden = _first(mc, "hidden_size", "n_embd", "d_model") or 0
    vocab = _first(mc, "vocab_size") or 0
    heads = _first(mc, "num_attention_heads", "n_head") or 1
    kv_heads = _first(mc, "num_key_value_heads") or heads
    head_dim = _first(mc, "head_dim") or hidden // heads
    ffn = _first(mc, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden
    gated = str(_first(mc, "hidden_act", "activation_function") or "").lower() in {"silu", "swiglu", "geglu"}
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    mlp = (3 if gated else 2) * hidden * ffn
    embeddings = vocab * hidden * (1 if mc.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (attention + mlp)


def _params_from_safetensors(model: str, revision: str | None) -> int | None:
    files = safetensors_files(model, revision)
    if not files:
        return None
    return sum(safetensors_params(path) for path in files)


def gpu_memory_gb() -> float | None:
    """Total memory of the first visible GPU via NVML (no torch), or None without one."""
    from llenergymeasure.energy.sources import nvml_status

    _, gpus, _ = nvml_status()
    return gpus[0].memory_gb if gpus else None
