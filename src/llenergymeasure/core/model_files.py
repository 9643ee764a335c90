"""Finding a model's files without loading it: a local directory, or the Hugging Face cache.

Used by pre-flight (does the model exist?) and by the VRAM estimate (what is its config?),
neither of which may import torch or transformers.
"""

from __future__ import annotations

import os
from pathlib import Path


def looks_like_path(model: str) -> bool:
    """True for what can only be a filesystem path (a hub id is ``name`` or ``org/name``)."""
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def local_model_dir(model: str) -> Path | None:
    path = Path(model).expanduser()
    return path if path.is_dir() else None


def cached_model_file(model: str, filename: str, revision: str | None = None) -> Path | None:
    """``filename`` of ``model`` from a local directory or the HF cache; never the network."""
    local = local_model_dir(model)
    if local is not None:
        candidate = local / filename
        return candidate if candidate.is_file() else None
    if looks_like_path(model):
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, filename, revision=revision)
    return Path(found) if isinstance(found, str) else None


def model_problem(model: str, revision: str | None = None) -> str | None:
    """Why ``model`` cannot be loaded, or None when it can (or may, once downloaded)."""
    local = local_model_dir(model)
    if local is not None:
        if not (local / "config.json").is_file():
            return f"model: {local} is a directory but has no config.json; point --model at a saved transformers model"
        return None
    if looks_like_path(model) or Path(model).expanduser().exists():
        return f"model: path {model!r} does not exist"
    if cached_model_file(model, "config.json", revision) is not None:
        return None
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
