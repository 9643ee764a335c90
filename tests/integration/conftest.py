"""Fixtures of the integration tests: ``llem`` run the way a user runs it, as a real process.

``run_llem`` starts ``python -m llenergymeasure.cli`` in a subprocess that inherits the isolated
environment of the top-level ``isolated_env`` fixture. Plain helpers live in ``llem_helpers``.
"""

from __future__ import annotations

import pytest

from llem_helpers import llem_process


@pytest.fixture
def run_llem():
    """``run_llem(*args, cwd=None, env=None, timeout=240)`` -> CompletedProcess (text, captured)."""
    return llem_process
