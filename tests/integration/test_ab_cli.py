"""``llem ab``: two experiments in one session, windows in ABBA order, the paired verdict, exit codes.

Measured on the CPU estimate with a 50% gate: batch 8 against batch 1 on the tiny model costs
several times the energy per token (+200-700% here), far beyond what the noise of a shared
machine can produce, and two identical configs measured side by side cannot come out 50% apart.
The subprocesses run torch on one thread (OMP_NUM_THREADS=1): a second OpenMP thread spin-waits,
and on a loaded machine the CPU time it burns (what the estimate counts) varies from window to
window by more than the change measured here (docs/measurements.md). With it, and windows of
16 prompts x 32 tokens, 5 pairs give CIs of about +-100 points around +600%.
"""

from __future__ import annotations

import json
import re

import pytest

from llem_helpers import result_files

pytestmark = pytest.mark.slow

STUDY = """\
name: tiny
model: {model}
dataset: builtin
n: 16
precision: fp32
max_input_tokens: 32
max_output_tokens: 32
warmup: {{n_warmup: 1}}
sweep:
  pytorch.batch_size: [8, 1]
regression:
  joules_per_token: 50%
"""


@pytest.fixture
def study(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = tmp_path / "llem_ab.yaml"
    path.write_text(STUDY.format(model=tiny_model), encoding="utf-8")
    return path


def test_a_costlier_candidate_fails_with_the_paired_numbers(run_llem, study, tmp_path):
    done = run_llem("ab", f"{study}::tiny[batch_size=8]", f"{study}::tiny[batch_size=1]", "-o", str(tmp_path / "out"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "paired over 5 A/B pairs) > 50% threshold: regressed" in done.stdout
    assert "B differs from A in: pytorch.batch_size 8 -> 1" in done.stdout
    assert re.search(r"windows ([AB] ){9}[AB] after an unmeasured settling pair [AB] [AB] \(order seed \d+\)",
                     done.stdout)
    results = [json.loads(path.read_text()) for path in result_files(tmp_path / "out")]
    assert sorted(r["ab"]["side"] for r in results) == ["A", "B"]
    assert results[0]["ab"]["order"] == results[1]["ab"]["order"] and len(results[0]["ab"]["settling"]) == 2
    assert [r["ab"]["gates"] for r in results] == [["joules_per_token:50%"]] * 2  # what llem report judges with


def test_identical_configs_pass(run_llem, study):
    same = f"{study}::tiny[batch_size=8]"
    done = run_llem("ab", same, same, "--pairs", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "paired over 3 A/B pairs" in done.stdout and "regressed" not in done.stdout


@pytest.mark.parametrize(("spec", "message"), [
    ("{study}", "holds 2 experiments; name one as {study}::ID (ids: tiny[batch_size=8], tiny[batch_size=1])"),
    ("{study}::tiny[batch_size=2]", "no experiment 'tiny[batch_size=2]'; did you mean 'tiny[batch_size=8]'?"),
])
def test_an_ambiguous_or_unknown_experiment_is_a_config_error(run_llem, study, spec, message):
    done = run_llem("ab", spec.format(study=study), f"{study}::tiny[batch_size=1]")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message.format(study=study) in done.stderr
