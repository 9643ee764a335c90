"""`llem` as a user runs it: real subprocesses, real tiny model, exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llenergymeasure.results.model import ExperimentResult

LLEM = [sys.executable, "-m", "llenergymeasure.cli"]


def llem(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LLEM, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.slow
def test_run_tiny_model_writes_a_result_that_loads_back(tiny_model, tmp_path):
    out = tmp_path / "out"
    proc = llem("run", "--model", str(tiny_model), "-n", "8", "--batch-size", "4", "-d", "builtin",
                "-p", "fp32", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "tokens/s" in proc.stdout and "latency p50/p95" in proc.stdout
    # No GPU and no RAPL here: the CPU estimate, and it says so.
    assert "J/token (estimated)" in proc.stdout
    files = [p for p in out.iterdir() if not p.name.endswith(".timeline.json")]
    assert len(files) == 1
    result = ExperimentResult.load(files[0])
    assert result.n_prompts == 8 and result.output_tokens > 0
    assert len(result.repeats[0].latencies_s) == 2
    assert result.energy_source == "cpu_estimate" and result.estimated
    assert result.metrics.joules_per_token == pytest.approx(result.metrics.energy_j / result.output_tokens)


@pytest.mark.slow
def test_energy_source_none_reports_unavailable_with_the_reason(tiny_model, tmp_path):
    config = write(tmp_path / "e.yaml", f"model: {tiny_model}\nn: 4\ndataset: builtin\nprecision: fp32\n"
                                        "max_output_tokens: 8\nenergy: {source: none}\n")
    proc = llem("run", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "energy              unavailable: energy.source is 'none'" in proc.stdout
    assert "joules per token    unavailable" in proc.stdout


@pytest.mark.parametrize(
    ("args", "files", "expected"),
    [
        ((), {}, "no model given: pass --model"),
        (("--model", "gpt2", "--backend", "pytorh"), {}, "did you mean 'pytorch'?"),
        (("bad.yaml",), {"bad.yaml": "model: gpt2\npytorch:\n  batchsize: 4\n"},
         "bad.yaml:3: unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"),
        (("broken.yaml",), {"broken.yaml": "model: [gpt2\nn: 3\n"}, "broken.yaml:2: YAML syntax error"),
        (("missing.yaml",), {}, "missing.yaml: config file not found"),
    ],
    ids=["no-args", "backend-typo", "unknown-key", "malformed-yaml", "missing-file"],
)
def test_config_errors_exit_2_with_one_friendly_message(tmp_path, args, files, expected):
    for name, text in files.items():
        write(tmp_path / name, text)
    proc = llem("run", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verbose_shows_the_traceback(tmp_path):
    write(tmp_path / "bad.yaml", "model: gpt2\nprecison: fp16\n")
    proc = llem("run", "-v", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "did you mean 'precision'?" in proc.stderr


def test_preflight_lists_every_problem_at_once_and_exits_1(tmp_path):
    proc = llem("run", "--model", str(tmp_path / "nope"), "-n", "500", "-d", "builtin")
    assert proc.returncode == 1
    assert "Pre-flight check failed (2 problems)" in proc.stderr
    assert "does not exist" in proc.stderr and "has 120 prompts but n=500" in proc.stderr
    assert "Traceback" not in proc.stderr


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


def test_dry_run_of_a_sweep_lists_every_experiment_without_importing_torch(tiny_model, tmp_path):
    config = write(tmp_path / "llem_sweep.yaml", SWEEP.format(model=tiny_model))
    proc = subprocess.run([sys.executable, "-X", "importtime", *LLEM[1:], "run", "--dry-run", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for exp_id in ("tiny-sweep[precision=fp32,batch_size=1]", "tiny-sweep[precision=fp32,batch_size=2]",
                   "tiny-sweep[precision=bf16,batch_size=1]", "tiny-sweep[precision=bf16,batch_size=2]"):
        assert exp_id in proc.stdout
    assert proc.stdout.count(" GB") >= 4  # a VRAM estimate per experiment
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported  # the check can see imports at all
    assert not {"torch", "transformers"} & imported


def test_help_imports_neither_torch_nor_transformers():
    proc = subprocess.run([sys.executable, "-X", "importtime", *LLEM[1:], "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not {"torch", "transformers", "pydantic"} & imported


def test_dry_run_verbose_shows_where_each_value_came_from(tiny_model, tmp_path):
    config = write(tmp_path / "e.yaml", f"model: {tiny_model}\nn: 4\n")
    proc = llem("run", "--dry-run", "-v", str(config), "--batch-size", "2")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert lines["pytorch.batch_size"].endswith("# CLI --batch-size")
    assert lines["n"].endswith(f"# {config}:2")
    assert lines["precision"].endswith("# default")
    assert "VRAM estimate:" in proc.stdout


STUDY = """\
name: pair
model: {model}
dataset: builtin
n: 4
precision: fp32
max_output_tokens: 8
warmup: {{n_warmup: 1}}
experiments:
  - {{pytorch.batch_size: 1}}
  - {{pytorch.batch_size: 2}}
expect:
  tokens_per_second: {{min: {floor}}}
"""


@pytest.mark.slow
@pytest.mark.parametrize(("floor", "code", "verdict"), [(0.001, 0, "PASS"), (1e9, 1, "FAIL: tokens_per_second")])
def test_study_prints_a_row_per_experiment_and_gates_the_exit_code(tiny_model, tmp_path, floor, code, verdict):
    config = write(tmp_path / "llem_pair.yaml", STUDY.format(model=tiny_model, floor=floor))
    proc = llem("run", str(config), "-q")
    assert proc.returncode == code, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("pair[")]
    assert [row.split()[0] for row in rows] == ["pair[batch_size=1]", "pair[batch_size=2]"]
    assert all(verdict in row for row in rows)


@pytest.mark.slow
def test_sigint_during_a_run_exits_130_and_leaves_no_result(tiny_model, tmp_path):
    out = tmp_path / "out"
    config = write(tmp_path / "long.yaml", f"model: {tiny_model}\nn: 120\ndataset: builtin\nprecision: fp32\n"
                                           "max_output_tokens: 400\nrepeats: 50\n")
    proc = subprocess.Popen([*LLEM, "run", str(config), "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # past the imports and the model load, inside the measurement
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("llem did not stop within 60 s of SIGINT")
    assert proc.returncode == 130
    assert "Interrupted." in stderr
    assert "Traceback" not in stderr
    assert not out.exists() or not list(out.iterdir())


def test_version_and_config():
    assert llem("--version").stdout.startswith("llem ")
    proc = llem("config")
    assert proc.returncode == 0
    for label in ("python", "torch", "energy sources", "cpu_estimate", "user config"):
        assert label in proc.stdout


def test_import_llenergymeasure_does_not_import_torch():
    code = "import sys, llenergymeasure; llenergymeasure.ExperimentConfig; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.slow
def test_python_api_repeats_and_spread(tiny_model):
    from llenergymeasure import run_experiment

    result = run_experiment(model=str(tiny_model), n=4, dataset="builtin", precision="fp32", max_output_tokens=8,
                            repeats=2, **{"pytorch.batch_size": 2})
    assert len(result.repeats) == 2
    assert result.stats["tokens_per_second"].n == 2
    assert result.metrics.tokens_per_second > 0
    assert json.loads(result.model_dump_json())["schema_version"] == 1
    assert os.environ["HF_HUB_OFFLINE"] == "1"
