"""The Python API: ``llenergymeasure.run_experiment`` on the tiny model, and a torch-free import.

Errors from the API are exceptions carrying the CLI's exit code, never a SystemExit.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import llenergymeasure
from llenergymeasure.exceptions import ConfigError, LLEMError, PreFlightError

TINY = {"n": 4, "dataset": "builtin", "precision": "fp32", "max_output_tokens": 8, "pytorch.batch_size": 2}


def test_import_does_not_import_torch_or_transformers():
    code = (
        "import sys, llenergymeasure\n"
        "llenergymeasure.ExperimentConfig, llenergymeasure.load_experiment_config, llenergymeasure.__version__\n"
        "print(sorted(m for m in ('torch', 'transformers', 'llenergymeasure.config.models') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # The lazy attribute did load the config module, and that pulled in neither torch nor transformers.
    assert proc.stdout.strip() == "['llenergymeasure.config.models']"


@pytest.mark.slow
def test_run_experiment_returns_a_result_with_throughput(tiny_model, tmp_path):
    out = tmp_path / "results"
    result = llenergymeasure.run_experiment(model=str(tiny_model), output_dir=str(out), **TINY)
    assert isinstance(result, llenergymeasure.ExperimentResult)
    assert result.metrics.tokens_per_second > 0
    assert result.n_prompts == 4 and 0 < result.output_tokens <= 4 * 8
    assert len(result.repeats) == 1 and len(result.repeats[0].latencies_s) == 2
    assert result.stats == {}  # no spread from a single repeat
    assert result.config["pytorch"]["batch_size"] == 2 and result.config["precision"] == "fp32"
    # output_dir set: saved, and the file reads back as the same result.
    saved = out / result.filename
    assert saved.is_file()
    loaded = llenergymeasure.ExperimentResult.load(saved)
    assert loaded.experiment_id == result.experiment_id
    assert loaded.metrics == result.metrics and loaded.output_tokens == result.output_tokens
    assert json.loads(saved.read_text())["schema_version"] == 1


@pytest.mark.slow
def test_run_experiment_honours_repeats_and_reports_the_spread(tiny_model):
    result = llenergymeasure.run_experiment(model=str(tiny_model), repeats=2, **TINY)
    assert [r.index for r in result.repeats] == [0, 1]
    assert all(r.n_prompts == 4 and r.output_tokens > 0 for r in result.repeats)
    per_repeat = [r.metrics.tokens_per_second for r in result.repeats]
    assert result.metrics.tokens_per_second == pytest.approx(statistics.median(per_repeat))
    spread = result.stats["tokens_per_second"]
    assert spread.n == 2
    assert spread.median == pytest.approx(statistics.median(per_repeat))
    assert result.config["repeats"] == 2


def test_a_machine_problem_is_a_preflight_error_listing_everything(tmp_path):
    with pytest.raises(PreFlightError) as info:
        llenergymeasure.run_experiment(model=str(tmp_path / "nope"), n=500, dataset="builtin")
    assert info.value.exit_code == 1
    assert len(info.value.problems) == 2
    assert "does not exist" in str(info.value) and "n=500" in str(info.value)


def test_a_config_problem_is_a_config_error_with_a_hint(tiny_model):
    with pytest.raises(ConfigError) as info:
        llenergymeasure.run_experiment(model=str(tiny_model), **{"pytorch.batchsize": 2})
    assert info.value.exit_code == 2
    assert isinstance(info.value, LLEMError)
    assert "did you mean 'pytorch.batch_size'?" in str(info.value)


def test_api_errors_and_sources_do_not_speak_of_cli_flags(tiny_model):
    with pytest.raises(ConfigError) as info:
        llenergymeasure.run_experiment(model=str(tiny_model), **{"pytorch.batchsize": 2})
    assert "CLI" not in str(info.value)


def test_load_benchmark_file_gives_the_same_ids_as_llem(run_llem, tiny_model, tmp_path):
    config = tmp_path / "llem_grid.yaml"
    config.write_text(f"model: {tiny_model}\nn: 4\nsweep:\n  precision: [fp32, bf16]\n")
    study = llenergymeasure.load_benchmark_file(config)
    ids = [e.id for e in study.experiments]
    assert ids == ["grid[precision=fp32]", "grid[precision=bf16]"]
    proc = run_llem("run", "--dry-run", str(config), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("grid[")] == ids
    assert Path(study.path) == config
