"""Finding a model's files without loading it: a local directory, or the Hugging Face cache.

Used by pre-flight (does the model exist?) and by the VRAM estimate and the context check
(what is its config?), none of which may import torch or transformers. A hub model that is not
here is asked of the hub only by ``model_problem``, behind a fast probe (core/hub.py); the dry
run never calls it for one. Files are read once per version in a process (core/file_cache.py),
so a study of 10,000 experiments on one model reads its headers once.

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

from llenergymeasure.core import hub
from llenergymeasure.core.file_cache import cached_by_file
from llenergymeasure.paths import path_kind

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
    """Why ``model`` cannot be loaded, or None when it can (or may, once downloaded).

    A hub model not on this machine is asked of the hub (its config.json is downloaded, which
    the VRAM estimate and the context check then read), after one bounded probe (core/hub.py)
    so that no network fails in seconds, saying so."""
    local = local_model_dir(model)
    if local is not None:
        if not _is_file(local / "config.json"):
            return f"model: {local} is a directory but has no config.json; point --model at a saved transformers model"
        weights = local_weight_files(local)
        problem = _files_problem(local / "config.json", weights)
        return pickled_weights_problem(local) if problem is None and not weights else problem
    if looks_like_path(model) or _exists(_expand(model)):
        return missing_path_problem(model)
    invalid = repo_id_problem(model)
    if invalid:
        return invalid
    cached = cached_model_file(model, "config.json", revision)
    if cached is not None:
        try:
            weights = cached_safetensors(model, revision) or []
        except ModelFileError as exc:
            return f"model: {exc}"
        return _files_problem(cached, weights)
    return _hub_problem(model, revision)


def answered_here(model: str, revision: str | None = None) -> bool:
    """True when ``model_problem`` can answer from this machine's files alone: a directory, a
    path (there or not), or a hub model whose config.json is in the HF cache."""
    return (local_model_dir(model) is not None or looks_like_path(model) or _exists(_expand(model))
            or cached_model_file(model, "config.json", revision) is not None)


PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def pickled_weights_problem(directory: Path) -> str | None:
    """A model directory whose weights are pickles and not safetensors: llem never unpickles them."""
    pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in directory.glob(pattern))
    if not pickles:
        return None
    return (f"model: {directory} has no .safetensors weights; it holds {', '.join(pickles[:3])}: pickle files, "
            "which can run code when loaded, so llem does not load them; save the model with safetensors "
            "(model.save_pretrained(dir, safe_serialization=True))")


def missing_path_problem(model: str) -> str:
    """A model path that is not a model directory: what is there instead, or that nothing is (a
    relative path names the directory it was looked for in)."""
    kind = path_kind(_expand(model))
    if kind is not None:
        return (f"model: {model!r} is {kind}, not a model directory (a directory holding config.json and the "
                "weights), nor a hub id")
    if _expand(model).is_absolute():
        return f"model: path {model!r} does not exist"
    return (f"model: path {model!r} does not exist (looked for in {Path.cwd()}; run from the directory it is "
            "relative to, or give an absolute path)")


def _hub_problem(model: str, revision: str | None) -> str | None:
    """Whether hub model ``model`` (not on this machine) can be had: its config.json, downloaded."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if hub.offline():
        return hub.not_available("model", model)
    reason = hub.unreachable(model)
    if reason:
        return hub.not_available("model", model, reason=reason)
    try:
        hf_hub_download(model, "config.json", revision=revision, etag_timeout=hub.timeout_s())
    except GatedRepoError:
        return (f"model: {model!r} is gated on the Hugging Face hub: accept its terms at {hub.endpoint()}/{model} "
                "and log in (hf auth login) or set HF_TOKEN")
    except RepositoryNotFoundError:
        return (f"model: {model!r} is not a directory in {Path.cwd()} and not a model on the Hugging Face hub at "
                f"{hub.endpoint()} (a private one needs hf auth login or HF_TOKEN); check the spelling or the path")
    except RevisionNotFoundError:
        return f"pytorch.revision: {revision!r} is not a branch, tag or commit of {model!r} on the Hugging Face hub"
    except LocalEntryNotFoundError as exc:  # the download failed on the network after all
        return hub.not_available("model", model, reason=_cause(exc))
    except EntryNotFoundError:
        return f"model: {model!r} on the Hugging Face hub has no config.json; is it a transformers model?"
    except HfHubHTTPError as exc:
        return f"model: the Hugging Face hub did not give {model!r} ({_cause(exc)}); try again later"
    except Exception as exc:  # noqa: BLE001 - the network, whatever the HTTP library calls it
        return hub.not_available("model", model, reason=_cause(exc))
    return None


def _cause(exc: BaseException) -> str:
    """``Type: first line`` of the error at the root of ``exc``: the network's own words, not
    those of the huggingface_hub error wrapped around them."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def safetensors_files(model: str, revision: str | None = None) -> list[Path] | None:
    """The weight files of ``model`` on this machine, or None when they are not all here."""
    local = local_model_dir(model)
    if local is not None:
        return local_weight_files(local) or None
    return cached_safetensors(model, revision)


@cached_by_file()
def local_weight_files(directory: Path) -> list[Path]:
    """The safetensors files in a model directory (listed again when the directory changes)."""
    return sorted(directory.glob("*.safetensors"))


@cached_by_file(ModelFileError)
def safetensors_params(path: Path) -> int:
    """The number of parameters stored in a safetensors file, from its header."""
    return sum(math.prod(tensor["shape"]) for tensor in read_safetensors_header(path).values())


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


@cached_by_file(ModelFileError)
def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (config.json, an index); ModelFileError otherwise.
    Read once per version of the file in a process (a study asks for every experiment)."""
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


@cached_by_file(ModelFileError)
def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a safetensors file ({name: {dtype, shape, data_offsets}}), checked
    against the file's size; ``__metadata__`` is dropped. ModelFileError for anything else.
    Read once per version of the file in a process."""
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


def repo_id_problem(model: str) -> str | None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        return (
            f"model: {model!r} is neither a directory in {Path.cwd()} nor a valid Hugging Face repo id "
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
