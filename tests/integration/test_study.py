"""``llem run FILE`` on a file of several experiments: every one runs, one row each, gates set the exit code.

Exit 0 when every experiment ran and every ``expect`` gate passed; 1 when a gate failed or an
experiment could not run (the others still run and are saved).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_helpers import leftovers, result_files
from llenergymeasure.results.model import ExperimentResult

pytestmark = pytest.mark.slow

STUDY = """\
name: pair
model: {model}
dataset: builtin
n: 4
precision: fp32
max_output_tokens: 8
warmup: {{n_warmup: 1}}
energy: {{source: cpu_estimate}}
experiments:
  - {{pytorch.batch_size: 1}}
  - {{pytorch.batch_size: 2}}
expect:
  tokens_per_second: {{min: {floor}}}
"""

IDS = ["pair[batch_size=1]", "pair[batch_size=2]"]


def rows_of(stdout: str) -> dict[str, str]:
    """Summary table rows (the lines under the ``----`` rule) keyed by experiment id."""
    lines = stdout.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("----")]
    assert len(rules) == 1, stdout
    return {line.split()[0]: line for line in lines[rules[0] + 1:] if line.strip()}


def run_study(run_llem, tiny_model: Path, tmp_path: Path, floor: float):
    config = tmp_path / "llem_pair.yaml"
    config.write_text(STUDY.format(model=tiny_model, floor=floor))
    out = tmp_path / "out"
    return run_llem("run", str(config), "-o", str(out)), out


def test_gates_that_pass_exit_0_with_a_row_per_experiment(run_llem, tiny_model, tmp_path):
    proc, out = run_study(run_llem, tiny_model, tmp_path, floor=0.001)
    assert proc.returncode == 0, proc.stderr
    rows = rows_of(proc.stdout)
    assert list(rows) == IDS
    for row in rows.values():
        assert row.rstrip().endswith("PASS")
        assert "(est.)" in row and "cpu_estimate" in row  # an estimate is labelled in every summary
    assert "[1/2] pair[batch_size=1]" in proc.stderr and "[2/2] pair[batch_size=2]" in proc.stderr
    # Both experiments ran and were saved, each with its own config.
    results = [ExperimentResult.load(p) for p in result_files(out)]
    assert sorted(r.name for r in results) == IDS
    assert sorted(r.config["pytorch"]["batch_size"] for r in results) == [1, 2]
    assert all(r.output_tokens > 0 and r.metrics.tokens_per_second > 0 for r in results)
    assert leftovers(out) == []


def test_a_failing_expect_gate_exits_1_and_says_which(run_llem, tiny_model, tmp_path):
    proc, out = run_study(run_llem, tiny_model, tmp_path, floor=1e9)
    assert proc.returncode == 1, proc.stderr
    rows = rows_of(proc.stdout)
    assert list(rows) == IDS  # a failed gate does not stop the next experiment
    for row in rows.values():
        assert "FAIL: tokens_per_second" in row
    assert "Traceback" not in proc.stderr
    assert len(result_files(out)) == 2  # results are kept even when a gate fails


def test_an_experiment_that_cannot_run_does_not_stop_the_others(run_llem, tiny_model, tmp_path):
    config = tmp_path / "llem_pair.yaml"
    config.write_text(STUDY.format(model=tiny_model, floor=0.001).replace(
        "  - {pytorch.batch_size: 2}\n", "  - {name: broken, dataset: missing-prompts.jsonl}\n"))
    out = tmp_path / "out"
    proc = run_llem("run", str(config), "-o", str(out))
    assert proc.returncode == 1, proc.stderr
    rows = rows_of(proc.stdout)
    assert list(rows) == ["pair[batch_size=1]", "broken"]
    assert rows["pair[batch_size=1]"].rstrip().endswith("PASS")
    assert "ERROR" in rows["broken"]
    assert "Error in broken:" in proc.stderr and "missing-prompts.jsonl" in proc.stderr
    assert "Traceback" not in proc.stderr
    [saved] = result_files(out)
    assert ExperimentResult.load(saved).name == "pair[batch_size=1]"


def test_the_error_row_says_what_went_wrong(run_llem, tiny_model, tmp_path):
    config = tmp_path / "llem_pair.yaml"
    config.write_text(STUDY.format(model=tiny_model, floor=0.001).replace(
        "  - {pytorch.batch_size: 1}\n  - {pytorch.batch_size: 2}\n",
        "  - {name: broken, dataset: missing-prompts.jsonl}\n  - {name: too-many, n: 500}\n"))
    proc = run_llem("run", str(config), timeout=120)  # both fail pre-flight: nothing is loaded
    assert proc.returncode == 1, proc.stderr
    rows = rows_of(proc.stdout)
    assert list(rows) == ["broken", "too-many"]
    assert "missing-prompts.jsonl" in rows["broken"]
    assert "n=500" in rows["too-many"]
