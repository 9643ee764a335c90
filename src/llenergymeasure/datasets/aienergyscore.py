"""The AI Energy Score text-generation prompts (1,000 prompts, column ``text``).

Downloaded once through huggingface_hub into the HF cache, then read from the cache; with
``HF_HUB_OFFLINE=1`` only the cache is used. The repo's data file is read whatever its format:
JSON lines, JSON, CSV, or Parquet (Parquet needs pyarrow). A damaged file in the cache is a
pre-flight problem that names it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from llenergymeasure.datasets.jsonl import prompts_from_rows, read_prompts
from llenergymeasure.exceptions import PreFlightError

REPO_ID = "AIEnergyScore/text_generation"
_DATA_PATTERNS = ["*.jsonl", "*.json", "*.csv", "*.parquet", "**/*.jsonl", "**/*.csv", "**/*.parquet"]


def load_aienergyscore(revision: str | None = None) -> list[str]:
    folder = _download(revision)
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


def _read_data_file(path: Path) -> list[str]:
    if path.suffix == ".json":
        return prompts_from_rows(json.loads(path.read_text("utf-8")), str(path))
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return prompts_from_rows(list(csv.DictReader(fh)), str(path))
    return _read_parquet(path)


def _download(revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

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


def _read_parquet(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise PreFlightError(f"dataset: {path} is Parquet; install pyarrow to read it: pip install pyarrow") from None
    return prompts_from_rows(pq.read_table(path).to_pylist(), str(path))
