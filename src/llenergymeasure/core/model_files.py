"""Finding a model's files without loading it: a local directory, or the Hugging Face cache.

Used by pre-flight (does the model exist?) and by the VRAM estimate (what is its config?),
neither of which may import torch or transformers.

A model's files come from a download, a copy or a pull request, so they are read as untrusted:
``read_config_json`` and ``read_safetensors_header`` raise ModelFileError, naming the file,
for anything that is not what its name says (not JSON, truncated, a header length larger than
the file). ``model_problem`` turns that into a pre-flight problem; the estimate gives up.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

MAX_CONFIG_JSON_BYTES = 16 << 20  # a config.json is a few kB; some carry large label maps
MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors format's own limit on its JSON header

# Bytes per element of the safetensors dtypes whose size is a whole number of bytes.
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}
_REDOWNLOAD = "re-download or re-save the model"


class ModelFileError(Exception):
    """A model file that is not what its name says; the message starts with its path."""


def looks_like_path(model: str) -> bool:
    """True for what can only be a filesystem path (a hub id is ``name`` or ``org/name``)."""
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def local_model_dir(model: str) -> Path | None:
    path = _expand(model)
    return path if _is_dir(path) else None


def cached_model_file(model: str, filename: str, revision: str | None = None) -> Path | None:
    """``filename`` of ``model`` from a local directory or the HF cache; never the network."""
    local = local_model_dir(model)
    if local is not None:
        candidate = local / filename
        return candidate if _is_file(candidate) else None
    if looks_like_path(model):
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model, filename, revision=revision)
    except ValueError:  # not a valid repo id or revision: so certainly not cached
        return None
    return Path(found) if isinstance(found, str) else None


def model_problem(model: str, revision: str | None = None) -> str | None:
    """Why ``model`` cannot be loaded, or None when it can (or may, once downloaded)."""
    local = local_model_dir(model)
    if local is not None:
        if not _is_file(local / "config.json"):
            return f"model: {local} is a directory but has no config.json; point --model at a saved transformers model"
        return _files_problem(local / "config.json", sorted(local.glob("*.safetensors")))
    if looks_like_path(model) or _exists(_expand(model)):
        return f"model: path {model!r} does not exist"
    invalid = _repo_id_problem(model)
    if invalid:
        return invalid
    cached = cached_model_file(model, "config.json", revision)
    if cached is not None:
        try:
            weights = cached_safetensors(model, revision) or []
        except ModelFileError as exc:
            return f"model: {exc}"
        return _files_problem(cached, weights)
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return (
            f"model: {model!r} is not a local directory and is not in the Hugging Face cache, "
            "and HF_HUB_OFFLINE=1 forbids downloading it; unset HF_HUB_OFFLINE or pass a local path"
        )
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(model, "config.json", revision=revision)
    except Exception as exc:
        return f"model: cannot find {model!r} locally or on the Hugging Face hub ({exc.__class__.__name__})"
    return None


def safetensors_files(model: str, revision: str | None = None) -> list[Path] | None:
    """The weight files of ``model`` on this machine, or None when they are not all here."""
    local = local_model_dir(model)
    if local is not None:
        return sorted(local.glob("*.safetensors")) or None
    return cached_safetensors(model, revision)


def cached_safetensors(model: str, revision: str | None) -> list[Path] | None:
    """The cached weight files of hub model ``model`` (all shards of its index), or None."""
    index = cached_model_file(model, "model.safetensors.index.json", revision)
    names = ["model.safetensors"]
    if index is not None:
        weight_map = read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ModelFileError(f"{index}: 'weight_map' must map tensor names to file names; {_REDOWNLOAD}")
        names = sorted(set(weight_map.values()))
    files = [cached_model_file(model, name, revision) for name in names]
    return None if any(f is None for f in files) else files  # type: ignore[return-value]


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (config.json, an index); ModelFileError otherwise."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_JSON_BYTES + 1)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_JSON_BYTES:
        raise ModelFileError(f"{path}: larger than {MAX_CONFIG_JSON_BYTES >> 20} MiB, too large for a JSON config")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, or nested beyond reason
        raise ModelFileError(f"{path}: not valid JSON ({_reason(exc)}); {_REDOWNLOAD}") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a JSON object, found {type(data).__name__}; {_REDOWNLOAD}")
    return data


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a safetensors file ({name: {dtype, shape, data_offsets}}), checked
    against the file's size; ``__metadata__`` is dropped. ModelFileError for anything else."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelFileError(f"{path}: truncated ({size} bytes, less than a safetensors header); {_REDOWNLOAD}")
            (length,) = struct.unpack("<Q", head)
            if length > min(MAX_SAFETENSORS_HEADER, size - 8):
                raise ModelFileError(
                    f"{path}: not a safetensors file, or truncated: its header claims {length:,} bytes "
                    f"but the file holds {size:,}; {_REDOWNLOAD}"
                )
            raw = fh.read(length)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        problem = f"the safetensors header is not valid JSON ({_reason(exc)})"
        raise ModelFileError(f"{path}: {problem}; {_REDOWNLOAD}") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the safetensors header is not a JSON object; {_REDOWNLOAD}")
    tensors = {name: info for name, info in header.items() if name != "__metadata__"}
    data_bytes = size - 8 - length
    for name, info in tensors.items():
        problem = _tensor_problem(info, data_bytes)
        if problem:
            raise ModelFileError(f"{path}: tensor {name!r} {problem}; {_REDOWNLOAD}")
    return tensors


def _tensor_problem(info: Any, data_bytes: int) -> str | None:
    if not isinstance(info, dict):
        return "is not described by a JSON object"
    shape, offsets, dtype = info.get("shape"), info.get("data_offsets"), info.get("dtype")
    if not _whole_numbers(shape):
        return f"has no valid shape (got {shape!r})"
    if not _whole_numbers(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        return f"has no valid data_offsets (got {offsets!r})"
    if offsets[1] > data_bytes:
        return f"ends at byte {offsets[1]:,} of the data but the file holds {data_bytes:,}: truncated"
    elements, stored = math.prod(shape), offsets[1] - offsets[0]
    width = _DTYPE_BYTES.get(dtype) if isinstance(dtype, str) else None
    # A dtype of unknown width (a 4-bit float, ...) packs at most 8 elements in a byte.
    fits = elements * width == stored if width else elements <= 8 * stored
    if not fits:
        return f"of shape {shape} and dtype {dtype} does not match its {stored:,} bytes of data"
    return None


def _whole_numbers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _files_problem(config_json: Path, weights: list[Path]) -> str | None:
    """The first model file that cannot be read, as a pre-flight problem."""
    try:
        read_json_object(config_json)
        for path in weights:
            read_safetensors_header(path)
    except ModelFileError as exc:
        return f"model: {exc}"
    return None


def _repo_id_problem(model: str) -> str | None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        return (
            f"model: {model!r} is neither an existing directory nor a valid Hugging Face repo id "
            "(org/name, letters, digits, '-', '_' and '.'); check the spelling or the path"
        )
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    return getattr(exc, "msg", None) or str(exc)


def _expand(model: str) -> Path:
    try:
        return Path(model).expanduser()
    except RuntimeError:  # "~nosuchuser/x": no home directory to expand to
        return Path(model)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False
