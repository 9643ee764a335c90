"""``llem run --dry-run`` and ``llem --help``: validate and explain, import neither torch nor transformers.

The import check uses ``python -X importtime``, which lists every module a process imports on
stderr (``import time: self | cumulative | name``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from llem_helpers import imported_modules

HEAVY = {"torch", "transformers"}

SWEEP = """\
name: tiny-sweep
model: {model}
dataset: builtin
n: 4
max_output_tokens: 8
sweep:
  precision: [fp32, bf16]
  pytorch.batch_size: [1, 2]
"""

SWEEP_IDS = [
    "tiny-sweep[precision=fp32,batch_size=1]",
    "tiny-sweep[precision=fp32,batch_size=2]",
    "tiny-sweep[precision=bf16,batch_size=1]",
    "tiny-sweep[precision=bf16,batch_size=2]",
]


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of the dry-run table whose first cell is an experiment id of the sweep."""
    return [line.split() for line in stdout.splitlines() if line.startswith("tiny-sweep[")]


def test_dry_run_of_a_2x2_sweep_lists_4_experiments(run_llem, tiny_model, tmp_path):
    config = tmp_path / "llem_sweep.yaml"
    config.write_text(SWEEP.format(model=tiny_model))
    out = tmp_path / "out"
    proc = run_llem("run", "--dry-run", str(config), "-o", str(out), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "4 experiments" in proc.stdout
    rows = table_rows(proc.stdout)
    assert [row[0] for row in rows] == SWEEP_IDS
    # Each row shows the values its id names.
    assert [(row[2], row[3]) for row in rows] == [("fp32", "1"), ("fp32", "2"), ("bf16", "1"), ("bf16", "2")]
    assert proc.stdout.count(" GB") >= 4  # a VRAM estimate per experiment
    assert "Dry run: config is valid." in proc.stdout
    assert not out.exists()  # nothing measured, nothing written


@pytest.mark.parametrize("args", [
    pytest.param(["run", "--dry-run", "{sweep}"], id="dry-run-sweep"),
    pytest.param(["run", "--dry-run", "--verbose", "{single}"], id="dry-run-single-verbose"),
    pytest.param(["--help"], id="help"),
    pytest.param(["run", "--help"], id="run-help"),
    pytest.param(["--version"], id="version"),
])
def test_never_imports_torch_or_transformers(run_llem, tiny_model, tmp_path, args):
    sweep = tmp_path / "llem_sweep.yaml"
    sweep.write_text(SWEEP.format(model=tiny_model))
    single = tmp_path / "single.yaml"
    single.write_text(f"model: {tiny_model}\nn: 4\n")
    args = [a.format(sweep=sweep, single=single) for a in args]
    proc = run_llem(*args, python_flags=("-X", "importtime"), timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = imported_modules(proc.stderr)
    assert "typer" in modules and "llenergymeasure" in modules  # the check does see imports
    assert not HEAVY & modules, sorted(m for m in modules if m.split(".")[0] in HEAVY)
    heavy_lines = [line for line in proc.stderr.splitlines()
                   if re.search(r"\|\s+(torch|transformers)$", line)]
    assert heavy_lines == []


def test_dry_run_verbose_shows_the_source_of_every_value(run_llem, tiny_model, tmp_path):
    config = tmp_path / "e.yaml"
    config.write_text(f"model: {tiny_model}\nn: 4\n")
    proc = run_llem("run", "--dry-run", "--verbose", str(config), "--batch-size", "2", timeout=60)
    assert proc.returncode == 0, proc.stderr
    sources = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^  (\S+)\s+(.*?)\s+# (.+)$", line)
        if match:
            sources[match.group(1)] = (match.group(2), match.group(3))
    assert sources["pytorch.batch_size"] == ("2", "CLI --batch-size")
    assert sources["n"] == ("4", f"{config}:2")
    assert sources["model"][1] == f"{config}:1"
    for key in ("precision", "backend", "max_output_tokens", "random_seed", "energy.source"):
        assert sources[key][1] == "default", (key, sources[key])
    assert "VRAM estimate:" in proc.stdout


def test_precedence_cli_over_yaml_over_user_config_over_defaults(run_llem, tiny_model, tmp_path):
    user_config = Path(os.environ["LLEM_CONFIG"])  # set by the isolated_env fixture
    user_config.write_text("defaults:\n  n: 3\n  precision: bf16\n  max_output_tokens: 16\n  repeats: 2\n")
    config = tmp_path / "e.yaml"
    config.write_text(f"model: {tiny_model}\nn: 6\nmax_output_tokens: 8\n")
    proc = run_llem("run", "--dry-run", "-v", str(config), "-n", "5", timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}

    def value_and_source(key: str) -> tuple[str, str]:
        value = lines[key].split()[1]
        return value, lines[key].split("# ", 1)[1]

    assert value_and_source("n") == ("5", "CLI -n")                                    # CLI beats YAML and user
    assert value_and_source("max_output_tokens") == ("8", f"{config}:3")               # YAML beats user config
    assert value_and_source("precision") == ("bf16", f"user config {user_config}:3")  # user config beats default
    assert value_and_source("repeats") == ("2", f"user config {user_config}:5")
    assert value_and_source("random_seed") == ("42", "default")


def test_a_flag_overriding_a_swept_key_is_refused(run_llem, tiny_model, tmp_path):
    # Running every point with the flag's value would give ids (batch_size=1, 2) that contradict the configs.
    config = tmp_path / "llem_sweep.yaml"
    config.write_text(SWEEP.format(model=tiny_model))
    proc = run_llem("run", "--dry-run", str(config), "--batch-size", "2", timeout=60)
    assert proc.returncode == 2, proc.stdout
    assert f"{config}:8: sweep.pytorch.batch_size is overridden by CLI --batch-size" in proc.stderr
    assert "remove the flag or the sweep key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dry_run_reports_what_would_stop_the_run_with_exit_1(run_llem, tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text("model: ./no-such-model\ndataset: ./prompts.jsonl\n")
    proc = run_llem("run", "--dry-run", str(config), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"model: path '{tmp_path / 'no-such-model'}' does not exist" in proc.stderr
    assert f"dataset: file '{tmp_path / 'prompts.jsonl'}' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
