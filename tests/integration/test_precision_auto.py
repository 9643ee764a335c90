"""``precision: auto`` (the default): bf16 on a GPU that has it, fp16 on an older GPU, fp32 on a
CPU, where half precision is emulated and its energy not representative. The result's config
records what ran (so a saved baseline compares like with like), its environment that ``auto``
chose it, and the summary says both. The tests assume a machine without a GPU (tests/gpu has the
GPU side)."""

from __future__ import annotations

import json

import pytest

from llem_helpers import llem_process, result_files

from llenergymeasure.energy.sources import nvml_status

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(nvml_status()[1]), reason="a GPU here: tests/gpu checks auto")]


def test_a_cpu_run_without_a_precision_runs_fp32_and_says_so(tiny_model, tmp_path):
    proc = llem_process("run", "--model", str(tiny_model), "-d", "builtin", "-n", "2", "--batch-size", "2",
                    "--max-output-tokens", "4", "-o", str(tmp_path / "out"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "on cpu, fp32 (precision auto)," in proc.stdout, proc.stdout
    [path] = result_files(tmp_path / "out")
    result = json.loads(path.read_text())
    assert result["config"]["precision"] == "fp32"  # what ran: a baseline of fp32 judges it
    assert result["environment"]["auto_precision"] == "fp32"
    assert "fp16_on_cpu" not in path.read_text()


def test_an_explicit_precision_is_what_runs(tiny_model, tmp_path):
    proc = llem_process("run", "--model", str(tiny_model), "-d", "builtin", "-n", "2", "--max-output-tokens", "2",
                    "-p", "bf16", "-o", str(tmp_path / "out"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "on cpu, bf16," in proc.stdout, proc.stdout
    [path] = result_files(tmp_path / "out")
    result = json.loads(path.read_text())
    assert (result["config"]["precision"], result["environment"]["auto_precision"]) == ("bf16", None)
