"""Shared fixtures: a tiny GPT-2 built offline once per session, and an isolated environment.

No test touches the network: HF_HUB_OFFLINE is set for the whole session, the HF cache and the
user config point into temporary directories, so a developer's own files never leak in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

pytest_plugins = ("pytester",)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a 2-layer GPT-2 with random weights and an in-process-trained tokenizer."""
    from llenergymeasure.testing.tiny_model import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("models") / "tiny-gpt2")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config, an empty HF cache, offline hub, for this test and its subprocesses."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LLEM_CONFIG", str(tmp_path / "no-user-config.yaml"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(tmp_path / "no-powercap"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)  # a CI runner's page is not ours to write
