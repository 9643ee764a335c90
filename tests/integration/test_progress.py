"""``llem run`` with stderr on a pipe (a CI log): a line for each long phase and plain progress
lines, no carriage return or escape sequence; ``-q`` says none of it; stdout is the summary alone.

The interval between progress lines is set to 0 (LLEM_PROGRESS_INTERVAL_S), so every batch gives
one whatever the machine's speed; the tests check which lines exist, never how many.
"""

from __future__ import annotations

import os

import pytest
from llem_helpers import llem_process

pytestmark = pytest.mark.slow

PHASES = ["loading {model} on cpu ...", "warmup ...", "window 1/2 ...", "window 2/2 ...", "prefill window 1/2 ..."]


def run_tiny(model, tmp_path, *flags: str):
    config = tmp_path / "e.yaml"
    config.write_text(f"model: {model}\nn: 4\ndataset: builtin\nprecision: fp32\nmax_output_tokens: 4\n"
                      "repeats: 2\npytorch: {batch_size: 2}\nenergy: {source: cpu_estimate}\n")
    env = {**os.environ, "LLEM_PROGRESS_INTERVAL_S": "0"}
    return llem_process("run", str(config), *flags, cwd=tmp_path, env=env)


def test_a_pipe_gets_a_line_per_phase_and_plain_progress(tiny_model, tmp_path):
    proc = run_tiny(tiny_model, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    for phase in PHASES:
        assert phase.format(model=tiny_model) in lines, proc.stderr
    assert any(line.startswith(f"loading {tiny_model} on cpu: done in ") for line in lines), proc.stderr
    assert any(line.startswith("window 1/2: 1/2 batches, ") and line.endswith(" s") for line in lines), proc.stderr
    assert any(line.startswith("window 2/2: done, 2/2 batches in ") for line in lines), proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr and "batch/s" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "joules per token" in proc.stdout and "window 1/2" not in proc.stdout and "done in" not in proc.stdout


def test_quiet_says_no_progress_and_keeps_the_summary(tiny_model, tmp_path):
    proc = run_tiny(tiny_model, tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "..." not in proc.stderr and "batches" not in proc.stderr and "done in" not in proc.stderr
    assert "joules per token" in proc.stdout
