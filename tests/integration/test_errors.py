"""What a user sees when a config is wrong (exit 2) or the machine cannot run it (exit 1).

Contract: one friendly message on stderr, every problem at once, file:line and key for config
errors with a did-you-mean hint, no traceback unless ``--verbose``, nothing on stdout and
nothing written.
"""

from __future__ import annotations


import pytest

CONFIG_ERRORS = [
    # (id, args, files, expected lines in stderr)
    ("no-args", ("run",), {}, ["no model given: pass --model"]),
    ("backend-typo", ("run", "--model", "gpt2", "--backend", "pytorh"), {},
     ["CLI --backend: backend: 'pytorh' is not one of pytorch, openai; did you mean 'pytorch'?"]),
    ("unknown-key", ("run", "bad.yaml"), {"bad.yaml": "model: gpt2\nn: 4\npytorch:\n  batchsize: 4\n"},
     ["bad.yaml:4: unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"]),
    ("unknown-top-level-key", ("run", "bad.yaml"), {"bad.yaml": "model: gpt2\nprecison: fp16\n"},
     ["bad.yaml:2: unknown key 'precison'; did you mean 'precision'?"]),
    ("malformed-yaml", ("run", "broken.yaml"), {"broken.yaml": "model: [gpt2\nn: 3\n"},
     ["broken.yaml:2: YAML syntax error"]),
    ("bad-indentation", ("run", "broken.yaml"), {"broken.yaml": "model: gpt2\n  n: 3\n"},
     ["broken.yaml:2: YAML syntax error"]),
    ("duplicate-key", ("run", "dup.yaml"), {"dup.yaml": "model: gpt2\nn: 3\nn: 4\n"},
     ["dup.yaml:3: duplicate key 'n' (first at line 2)"]),
    ("every-problem-at-once", ("run", "many.yaml"),
     {"many.yaml": "model: gpt2\nn: -3\nprecision: fp17\npytorch: {batchsize: 2}\n"},
     ["many.yaml:2: n: Input should be greater than or equal to 1",
      "many.yaml:3: precision: 'fp17' is not one of auto, fp32, fp16, bf16; did you mean 'fp16'?",
      "many.yaml:4: unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"]),
    ("study-typos", ("run", "llem_s.yaml"),
     {"llem_s.yaml": "model: gpt2\nsweep:\n  pytorch.batchsize: [1, 2]\nexpect:\n  tokens_per_secnd: {min: 1}\n"},
     ["llem_s.yaml:3: unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?",
      "llem_s.yaml:5: unknown metric 'expect.tokens_per_secnd'; did you mean 'tokens_per_second'?"]),
    ("sweep-key-typo", ("run", "llem_s.yaml"), {"llem_s.yaml": "model: gpt2\nsweeep:\n  precision: [fp32]\n"},
     ["llem_s.yaml:2: unknown key 'sweeep'; did you mean 'sweep'?"]),
    ("missing-file", ("run", "missing.yaml"), {}, ["missing.yaml: config file not found"]),
    ("cli-value-out-of-range", ("run", "--model", "gpt2", "-n", "0"), {},
     ["CLI -n: n: Input should be greater than or equal to 1 (got 0)"]),
    ("not-an-integer", ("run", "--model", "gpt2", "-n", "abc"), {}, ["Invalid value for '-n'"]),
]


@pytest.mark.parametrize(("args", "files", "expected"), [c[1:] for c in CONFIG_ERRORS],
                         ids=[c[0] for c in CONFIG_ERRORS])
def test_config_errors_exit_2_with_one_friendly_message(run_llem, tmp_path, args, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    proc = run_llem(*args, "-o", str(tmp_path / "out"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    for line in expected:
        assert line in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("Config error:") <= 1  # one message, not one per problem
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()


def test_unsafe_yaml_tags_are_refused_not_executed(run_llem, tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(f'model: gpt2\nn: !!python/object/apply:os.system ["touch {marker}"]\n')
    proc = run_llem("run", "--dry-run", "evil.yaml", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "evil.yaml:2:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


def test_verbose_adds_the_traceback_and_keeps_the_message(run_llem, tmp_path):
    (tmp_path / "bad.yaml").write_text("model: gpt2\npytorch:\n  batchsize: 4\n")
    quiet = run_llem("run", "bad.yaml", cwd=tmp_path, timeout=60)
    verbose = run_llem("run", "--verbose", "bad.yaml", cwd=tmp_path, timeout=60)
    assert quiet.returncode == verbose.returncode == 2
    message = "bad.yaml:3: unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"
    assert message in quiet.stderr and message in verbose.stderr
    assert "Traceback" not in quiet.stderr
    assert "Traceback (most recent call last)" in verbose.stderr


def test_a_missing_required_key_names_the_file(run_llem, tmp_path):
    (tmp_path / "nomodel.yaml").write_text("n: 4\ndataset: builtin\n")
    proc = run_llem("run", "nomodel.yaml", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "'model' is required" in proc.stderr
    assert "nomodel.yaml" in proc.stderr


def test_preflight_lists_every_problem_at_once_and_exits_1(run_llem, tmp_path):
    missing = tmp_path / "no-such-model"
    out = tmp_path / "out"
    proc = run_llem("run", "--model", str(missing), "-n", "500", "-d", "builtin", "-o", str(out), timeout=120)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.count("Pre-flight") == 1  # one message ...
    assert "Pre-flight check failed (2 problems)" in proc.stderr
    problems = [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith("- ")]
    assert len(problems) == 2, proc.stderr  # ... listing both problems
    assert any(str(missing) in p and "does not exist" in p for p in problems)
    assert any("'builtin' has 120 prompts but n=500" in p for p in problems)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not out.exists()  # nothing was measured, so nothing was written


def test_preflight_error_from_a_file_exits_1_with_the_dataset_problem(run_llem, tiny_model, tmp_path):
    (tmp_path / "e.yaml").write_text(f"model: {tiny_model}\nn: 4\ndataset: prompts.jsonl\n")
    proc = run_llem("run", "e.yaml", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert "Pre-flight check failed (1 problem)" in proc.stderr
    assert "prompts.jsonl" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_output_dir_every_experiment_shares_is_one_problem_in_a_dry_run(run_llem, tmp_path):
    (tmp_path / "results").write_text("a file where the results should go\n")
    (tmp_path / "llem_s.yaml").write_text("model: gpt2\nsweep:\n  precision: [fp32, fp16]\n")
    proc = run_llem("run", "--dry-run", "llem_s.yaml", "-o", "results", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Pre-flight check failed (1 problem):\n  - output_dir: results is a file, not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr and "Internal error" not in proc.stderr
