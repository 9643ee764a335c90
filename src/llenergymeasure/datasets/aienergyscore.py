"""The AI Energy Score text-generation prompts (1,000 prompts, column ``text``).

Downloaded once through huggingface_hub into the HF cache, then read from the cache; with
``HF_HUB_OFFLINE=1`` only the cache is used, and so it is, at once, when the hub cannot be
reached (one bounded probe, core/hub.py, instead of huggingface_hub's retries). The repo's data
file is read whatever its format: JSON lines, JSON, CSV, or Parquet (Parquet needs pyarrow). A
damaged file in the cache is a pre-flight problem that names it.

``cached_aienergyscore`` is the dry run's view: the cached prompts, or None, never the network.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

from llenergymeasure.core import hub
from llenergymeasure.core.file_cache import cached_by_file
from llenergymeasure.datasets.jsonl import prompts_from_rows, read_prompts
from llenergymeasure.exceptions import PreFlightError

REPO_ID = "AIEnergyScore/text_generation"
PUBLISHED_SIZE = 1000  # prompts in the published set; only for a note when it is not cached here
_DATA_PATTERNS = ["*.jsonl", "*.json", "*.csv", "*.parquet", "**/*.jsonl", "**/*.csv", "**/*.parquet"]


def load_aienergyscore(revision: str | None = None) -> list[str]:
    return _read_snapshot(_download(revision))


def cached_aienergyscore(revision: str | None = None) -> list[str] | None:
    """The prompts from the HF cache, or None when they are not cached; never the network.
    Where the snapshot is (or that there is none) is looked up once per process and cache."""
    folder = _cached_folder_once(hub.cache_dir(), revision)
    return None if folder is None else _read_snapshot(folder)


def forget() -> None:
    """Look in the cache again next time, and read its files again."""
    _cached_folder_once.cache_clear()
    _read_data_file.cache_clear()  # type: ignore[attr-defined]


def _read_snapshot(folder: Path) -> list[str]:
    files = sorted(p for p in folder.rglob("*") if p.suffix in {".jsonl", ".json", ".csv", ".parquet"})
    if not files:
        raise PreFlightError(f"dataset: {REPO_ID} snapshot at {folder} holds no data file")
    path = files[0]
    if path.suffix == ".jsonl":
        return read_prompts(path)
    try:
        return _read_data_file(path)
    except (OSError, ValueError, RecursionError, csv.Error) as exc:  # a damaged file in the cache
        raise PreFlightError(
            f"dataset: {path}: cannot read it ({exc.__class__.__name__}: {str(exc)[:200]}); "
            "delete it from the Hugging Face cache to download it again"
        ) from None


@cached_by_file(PreFlightError, OSError, ValueError, RecursionError, csv.Error)
def _read_data_file(path: Path) -> list[str]:
    if path.suffix == ".json":
        return prompts_from_rows(json.loads(path.read_text("utf-8")), str(path))
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return prompts_from_rows(list(csv.DictReader(fh)), str(path))
    return _read_parquet(path)


def _download(revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    offline = hub.offline()
    reason = None if offline else hub.unreachable(REPO_ID, "dataset")
    if offline or reason:  # the cache or nothing: huggingface_hub would retry for half a minute first
        folder = _cached_folder(revision)
        if folder is None:
            raise PreFlightError(hub.not_available("dataset", REPO_ID, repo_type="dataset", reason=reason))
        return folder
    try:
        return Path(
            snapshot_download(REPO_ID, repo_type="dataset", revision=revision, allow_patterns=_DATA_PATTERNS)
        )
    except Exception as exc:  # no network, no cache, gated, ...: all end the same way for the user
        raise PreFlightError(
            f"dataset: cannot get {REPO_ID!r} from the Hugging Face hub or the local cache "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "run once with network access to cache it, or use 'dataset: builtin' or a .jsonl file"
        ) from None


@functools.lru_cache(maxsize=64)
def _cached_folder_once(cache_dir: str, revision: str | None) -> Path | None:
    return _cached_folder(revision)


def _cached_folder(revision: str | None) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(REPO_ID, repo_type="dataset", revision=revision,
                                      allow_patterns=_DATA_PATTERNS, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (the error's class differs across huggingface_hub versions)
        return None


def _read_parquet(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise PreFlightError(f"dataset: {path} is Parquet; install pyarrow to read it: pip install pyarrow") from None
    return prompts_from_rows(pq.read_table(path).to_pylist(), str(path))
