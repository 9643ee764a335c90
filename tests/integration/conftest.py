"""Fixtures of the integration tests: ``llem`` run the way a user runs it, as a real process.

``run_llem`` starts ``python -m llenergymeasure.cli`` in a subprocess that inherits the isolated
environment of the top-level ``isolated_env`` fixture. Plain helpers live in ``llem_helpers``.
``tiny_server`` is a real OpenAI-compatible server (``transformers serve``) on the tiny model,
one per test module (see ``serving``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llem_helpers import llem_process


@pytest.fixture
def run_llem():
    """``run_llem(*args, cwd=None, env=None, timeout=240)`` -> CompletedProcess (text, captured)."""
    return llem_process


@pytest.fixture(scope="module")
def tiny_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``transformers serve`` on the tiny model (CPU, a free port of 127.0.0.1), for this module."""
    from serving import start_server

    server = start_server(tiny_model, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield server
    finally:
        server.stop()
