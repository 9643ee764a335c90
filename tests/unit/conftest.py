"""Fixtures of the unit tests: a hand-made Hugging Face hub cache, read offline.

Plain builders of result objects live in ``result_builders``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HF hub cache directory that huggingface_hub reads from, offline."""
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def hf_snapshot(hf_cache: Path) -> Callable[[str, str], Path]:
    """``hf_snapshot("models", "acme/tiny")``: the (empty) snapshot folder of that repo in ``hf_cache``,
    with ``refs/main`` pointing at it, as ``huggingface_hub`` leaves a download; put the files in it."""

    def make(repo_type: str, repo_id: str) -> Path:
        repo = hf_cache / f"{repo_type}--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / SNAPSHOT
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(SNAPSHOT)
        return snapshot

    return make
