"""`llem` as a user runs it: real subprocesses, real tiny model, exit codes and output.

The first tests written for the CLI; what the later modules cover in more depth is tested there
(config errors and pre-flight: test_errors, dry runs and imports: test_dry_run, studies:
test_study, Ctrl-C: test_sigint, ``--version`` and ``config``: test_info, the API: test_api).
"""

from __future__ import annotations

import json
import os
import re

import pytest

from llem_helpers import imported_modules
from llenergymeasure.results.model import ExperimentResult


@pytest.mark.slow
def test_run_tiny_model_writes_a_result_that_loads_back(run_llem, tiny_model, tmp_path):
    out = tmp_path / "out"
    proc = run_llem("run", "--model", str(tiny_model), "-n", "8", "--batch-size", "4", "-d", "builtin",
                    "-p", "fp32", "-o", str(out), timeout=300)
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


def test_help_imports_neither_torch_nor_transformers(run_llem):
    # test_dry_run checks torch and transformers for more commands; --help must not need pydantic either.
    proc = run_llem("--help", python_flags=("-X", "importtime"), timeout=60)
    assert proc.returncode == 0
    assert not {"torch", "transformers", "pydantic"} & imported_modules(proc.stderr)


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


def test_everyday_flags_set_their_fields_and_say_so(run_llem, tiny_model):
    proc = run_llem("run", "--model", str(tiny_model), "-n", "2", "--dataset", "builtin", "--max-output-tokens", "7",
                    "--max-input-tokens", "9", "--seed", "3", "--device", "cpu", "--dry-run", "--verbose", timeout=120)
    assert proc.returncode == 0, proc.stderr
    for field, value, flag in (("max_output_tokens", "7", "--max-output-tokens"), ("max_input_tokens", "9",
                               "--max-input-tokens"), ("random_seed", "3", "--seed"), ("pytorch.device", "cpu",
                                                                                        "--device")):
        assert re.search(rf"^  {re.escape(field)} +{value} +# CLI {flag}$", proc.stdout, re.M), proc.stdout
    bad = run_llem("run", "--model", str(tiny_model), "--device", "tpu", "--dry-run", timeout=120)
    assert bad.returncode == 2 and "CLI --device: pytorch.device: " in bad.stderr, bad.stderr
