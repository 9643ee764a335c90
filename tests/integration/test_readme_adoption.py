"""README's "Use it in your repository", followed as written in a fresh directory outside the clone.

Every code block of that section whose first line is ``# <path>`` is written to that path; then
the push check the section shows runs there, with warnings as errors: a mark the example uses
but does not register, or any other warning, fails it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from llem_helpers import isolated_env_vars, push_check_args, write_path_blocks

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block."""
    return re.findall(r"```(\w*)\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.slow
def test_the_use_it_in_your_repository_steps_give_a_passing_dry_run_with_no_warning(tmp_path):
    steps = blocks(section("Use it in your repository"))
    files = write_path_blocks(steps, tmp_path)
    assert len(files) >= 3, "the section lost its benchmark file, its pytest config or its CI job"
    check = push_check_args(steps)

    env = isolated_env_vars(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pytest", *check, "-W", "error", "-p", "no:cacheprovider"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b2 passed\b", done.stdout) and "warning" not in done.stdout.lower(), done.stdout
