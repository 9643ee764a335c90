"""The benchmark file (llem_*.yaml): experiment ids, sweeps, extras, gates, marks and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.benchmark_file import MAX_EXPERIMENTS, Bound, load_benchmark_file
from llenergymeasure.config.layers import MAX_PROBLEMS
from llenergymeasure.exceptions import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, **kwargs):
    kwargs.setdefault("user_config_defaults", {})
    return load_benchmark_file(path, **kwargs)


def problems_of(path: Path, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path, **kwargs)
    assert info.value.exit_code == 2
    return info.value.problems


def ids(study) -> list[str]:
    return [e.id for e in study.experiments]


# --- single experiment ids -----------------------------------------------------------------------


def test_single_experiment_id_from_name_key(tmp_path):
    study = load(write(tmp_path / "llem_whatever.yaml", "name: my-bench\nmodel: gpt2\n"))
    assert ids(study) == ["my-bench"]
    assert study.name == "my-bench"
    assert study.experiments[0].config.name == "my-bench"


def test_single_experiment_id_from_file_stem_without_llem_prefix(tmp_path):
    study = load(write(tmp_path / "llem_gpt2_serving.yaml", "model: gpt2\n"))
    assert ids(study) == ["gpt2_serving"]
    assert study.name == "gpt2_serving"


def test_file_stem_without_llem_prefix_is_kept_whole(tmp_path):
    assert ids(load(write(tmp_path / "bench.yaml", "model: gpt2\n"))) == ["bench"]


def test_file_named_just_llem_underscore_keeps_its_stem(tmp_path):
    assert ids(load(write(tmp_path / "llem_.yaml", "model: gpt2\n"))) == ["llem_"]


def test_single_experiment_has_no_params_and_line_1(tmp_path):
    [exp] = load(write(tmp_path / "llem_a.yaml", "model: gpt2\nn: 3\n")).experiments
    assert exp.params == {}
    assert exp.line == 1
    assert exp.config.n == 3


def test_empty_study_sections_default(tmp_path):
    study = load(write(tmp_path / "llem_a.yaml", "model: gpt2\n"))
    assert (study.expect, study.regression, study.marks) == ({}, {}, [])
    assert study.path == tmp_path / "llem_a.yaml"


# --- sweep ---------------------------------------------------------------------------------------

SWEEP = """\
name: serving
model: gpt2
n: 50
pytorch: {batch_size: 2}
sweep:
  precision: [fp16, bf16]
  pytorch.batch_size: [8, 1]
"""


def test_2x2_sweep_gives_4_experiments_in_cartesian_order(tmp_path):
    study = load(write(tmp_path / "llem_s.yaml", SWEEP))
    assert ids(study) == [
        "serving[precision=fp16,batch_size=8]",
        "serving[precision=fp16,batch_size=1]",
        "serving[precision=bf16,batch_size=8]",
        "serving[precision=bf16,batch_size=1]",
    ]
    got = [(e.config.precision, e.config.pytorch.batch_size) for e in study.experiments]
    assert got == [("fp16", 8), ("fp16", 1), ("bf16", 8), ("bf16", 1)]
    assert study.experiments[2].params == {"precision": "bf16", "pytorch.batch_size": 8}
    # shared values reach every experiment; each config carries its id as its name
    assert all(e.config.n == 50 for e in study.experiments)
    assert [e.config.name for e in study.experiments] == ids(study)


def test_sweep_ids_are_stable_across_loads(tmp_path):
    path = write(tmp_path / "llem_s.yaml", SWEEP)
    first, second = load(path), load(path)
    assert ids(first) == ids(second)
    assert [e.config.config_hash() for e in first.experiments] == [e.config.config_hash() for e in second.experiments]


def test_sweep_experiments_have_distinct_config_hashes(tmp_path):
    study = load(write(tmp_path / "llem_s.yaml", SWEEP))
    hashes = {e.config.config_hash() for e in study.experiments}
    assert len(hashes) == 4


def test_sweep_values_point_at_their_line(tmp_path):
    path = write(tmp_path / "llem_s.yaml", "model: gpt2\nsweep:\n  precision:\n    - fp16\n    - bf16\n")
    first, second = load(path).experiments
    assert first.config.sources()["precision"] == f"{path}:4"
    assert second.config.sources()["precision"] == f"{path}:5"
    assert first.config.sources()["model"] == f"{path}:1"


def test_sweep_value_beats_the_shared_value(tmp_path):
    study = load(write(tmp_path / "llem_s.yaml", SWEEP))
    assert study.experiments[0].config.sources()["pytorch.batch_size"] == f"{tmp_path / 'llem_s.yaml'}:7"


def test_cli_override_beats_sweep_values(tmp_path):
    study = load(write(tmp_path / "llem_s.yaml", SWEEP), cli_overrides={"n": 4})
    assert all(e.config.n == 4 for e in study.experiments)
    assert all(e.config.sources()["n"] == "CLI -n" for e in study.experiments)


def test_cli_override_of_a_swept_key_is_an_error_naming_flag_sweep_line_and_fix(tmp_path):
    path = write(tmp_path / "llem_s.yaml", SWEEP)
    assert problems_of(path, cli_overrides={"pytorch.batch_size": 2}) == [
        f"{path}:7: sweep.pytorch.batch_size is overridden by CLI --batch-size, so every experiment would run "
        "with the same value while its id says otherwise; remove the flag or the sweep key"
    ]


def test_python_override_of_a_swept_key_is_named_by_its_label(tmp_path):
    path = write(tmp_path / "llem_s.yaml", SWEEP)
    [problem] = problems_of(path, cli_overrides={"pytorch": {"batch_size": 2}}, override_label="run_experiment(...)")
    assert problem.startswith(f"{path}:7: sweep.pytorch.batch_size is overridden by run_experiment(...)")
    assert problem.endswith("remove the override or the sweep key")


def test_sweep_ids_use_full_keys_when_short_names_collide_and_bools_lowercase(tmp_path):
    path = write(tmp_path / "llem_w.yaml", "model: gpt2\nsweep:\n  warmup.enabled: [true, false]\n  baseline.enabled: [false]\n")
    assert ids(load(path)) == [
        "w[warmup.enabled=true,baseline.enabled=false]",
        "w[warmup.enabled=false,baseline.enabled=false]",
    ]


def test_single_value_sweep(tmp_path):
    study = load(write(tmp_path / "llem_one.yaml", "model: gpt2\nsweep:\n  n: [7]\n"))
    assert ids(study) == ["one[n=7]"]
    assert study.experiments[0].config.n == 7


# --- explicit experiments ------------------------------------------------------------------------

STUDY = """\
name: serving
model: gpt2
n: 50
sweep:
  precision: [fp16, bf16]
experiments:
  - {precision: fp32, n: 20}
  - name: special
    max_output_tokens: 16
"""


def test_experiments_are_appended_after_the_sweep(tmp_path):
    path = write(tmp_path / "llem_s.yaml", STUDY)
    study = load(path)
    assert ids(study) == [
        "serving[precision=fp16]",
        "serving[precision=bf16]",
        "serving[precision=fp32,n=20]",
        "special",
    ]
    extra = study.experiments[2]
    assert (extra.config.precision, extra.config.n) == ("fp32", 20)
    assert extra.params == {"precision": "fp32", "n": 20}
    assert extra.line == 7
    assert extra.config.sources()["n"] == f"{path}:7"


def test_an_entry_name_becomes_its_id_and_other_values_still_apply(tmp_path):
    study = load(write(tmp_path / "llem_s.yaml", STUDY))
    special = study.experiments[3]
    assert special.id == "special"
    assert special.config.name == "special"
    assert special.config.max_output_tokens == 16
    assert special.config.n == 50  # shared
    assert special.line == 8


def test_experiments_without_sweep(tmp_path):
    study = load(write(tmp_path / "llem_x.yaml", "model: gpt2\nexperiments:\n  - {n: 1}\n  - {n: 2}\n"))
    assert ids(study) == ["x[n=1]", "x[n=2]"]


def test_experiment_entry_with_nested_section_uses_dotted_id(tmp_path):
    study = load(write(tmp_path / "llem_x.yaml", "model: gpt2\nexperiments:\n  - pytorch: {batch_size: 4}\n"))
    assert ids(study) == ["x[batch_size=4]"]
    assert study.experiments[0].config.pytorch.batch_size == 4


def test_duplicate_explicit_names_are_an_error(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nexperiments:\n  - {name: a, n: 2}\n  - {name: a, n: 3}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:4: experiment 'a' is defined twice (first at line 3)")
    assert "distinct 'name'" in problem


def test_extra_experiment_duplicating_a_sweep_point_is_an_error(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nsweep:\n  precision: [fp16]\nexperiments:\n  - {precision: fp16}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:5: experiment 'f[precision=fp16]' is defined twice (first at line 2)")


# --- expect / regression / marks -----------------------------------------------------------------


def test_expect_regression_and_marks_are_parsed(tmp_path):
    path = write(
        tmp_path / "llem_g.yaml",
        "model: gpt2\n"
        "expect:\n"
        "  joules_per_token: {max: 0.40}\n"
        "  tokens_per_second: {min: 50}\n"
        "  latency_s_p95: {min: 0.1, max: 2}\n"
        "regression:\n"
        "  joules_per_token: 5%\n"
        "  energy_j: ' 2.5 % '\n"
        "  tokens_per_second: 0.01\n"
        "  duration_s: 3\n"
        "marks: [slow, gpu]\n",
    )
    study = load(path)
    assert study.expect == {
        "joules_per_token": Bound(max=0.40),
        "tokens_per_second": Bound(min=50),
        "latency_s_p95": Bound(min=0.1, max=2),
    }
    assert study.regression == {"joules_per_token": "5%", "energy_j": "2.5 %", "tokens_per_second": 0.01,
                                "duration_s": 3.0}
    assert isinstance(study.regression["duration_s"], float)
    assert study.marks == ["slow", "gpu"]
    # gates and marks are not experiment fields
    assert ids(study) == ["g"]


def test_unknown_metric_without_near_match_lists_the_known_metrics(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nregression:\n  zzz: 5%\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: unknown metric 'regression.zzz'; known metrics: energy_j,")
    assert "joules_per_token" in problem


@pytest.mark.parametrize(
    ("bound", "fragment"),
    [
        ("{maximum: 1}", "must be a mapping with 'min' and/or 'max'"),
        ("0.4", "must be a mapping with 'min' and/or 'max'"),
        ("{}", "must be a mapping with 'min' and/or 'max'"),
        ("{max: high}", "expect.joules_per_token.max must be a finite number (got 'high')"),
        ("{max: true}", "expect.joules_per_token.max must be a finite number (got True)"),
        ("{max: .nan}", "expect.joules_per_token.max must be a finite number (got nan)"),
        ("{max: .inf}", "expect.joules_per_token.max must be a finite number (got inf)"),
        ("{min: -.inf}", "expect.joules_per_token.min must be a finite number (got -inf)"),
        ("{max: 1.0e+400}", "expect.joules_per_token.max must be a finite number (got inf)"),
        (f"{{max: {10**400}}}", "expect.joules_per_token.max must be a finite number"),
        ("{min: -1}", "expect.joules_per_token.min is -1, but no metric is ever negative"),
        ("{min: 2, max: 1}", "expect.joules_per_token has min 2 above max 1, so it can never pass"),
    ],
)
def test_bad_expect_bounds(tmp_path, bound, fragment):
    path = write(tmp_path / "f.yaml", f"model: gpt2\nexpect:\n  joules_per_token: {bound}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: expect.joules_per_token")
    assert fragment in problem


@pytest.mark.parametrize(
    ("section", "start"),
    [
        ("expect: [joules_per_token]", "'expect' must map metrics to bounds"),
        ("regression: 5%", "'regression' must map metrics to thresholds"),
    ],
    ids=["expect", "regression"],
)
def test_expect_and_regression_must_be_mappings(tmp_path, section, start):
    path = write(tmp_path / "f.yaml", f"model: gpt2\n{section}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:2: {start}")


@pytest.mark.parametrize("threshold", ["five", "'5'", "-1", "true", "'-5%'", "5%%", ".nan", ".inf", "1.0e+400",
                                       "'" + "9" * 400 + "%'"])
def test_bad_regression_threshold_format(tmp_path, threshold):
    path = write(tmp_path / "f.yaml", f"model: gpt2\nregression:\n  joules_per_token: {threshold}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: regression.joules_per_token must be a percentage like '5%'")


@pytest.mark.parametrize("marks", ["slow", "[slow, 'not a mark']", "[1]", "{slow: true}"])
def test_marks_must_be_a_list_of_names(tmp_path, marks):
    path = write(tmp_path / "f.yaml", f"model: gpt2\nmarks: {marks}\n")
    assert problems_of(path) == [f"{path}:2: 'marks' must be a list of mark names, e.g. [slow, gpu]"]


# --- error messages: file, line, key, hints, all at once -----------------------------------------


UNKNOWN_KEYS = [
    # (id, file text, line of the problem, the whole message after "FILE:LINE: ")
    ("typo-at-top-level", "model: gpt2\n\nprecison: fp16\n", 3,
     "unknown key 'precison'; did you mean 'precision'?"),
    ("typo-of-a-file-key", "model: gpt2\nexperimnts:\n  - {n: 1}\n", 2,
     "unknown key 'experimnts'; did you mean 'experiments'?"),
    ("nested-typo-dotted", "model: gpt2\npytorch:\n  devce: cpu\n", 3,
     "unknown key 'pytorch.devce'; did you mean 'pytorch.device'?"),
    ("unknown-section-own-line", "model: gpt2\npytroch:\n  batch_size: 2\n", 2,
     "unknown key 'pytroch'; did you mean 'pytorch'?"),
    ("no-near-match-lists-valid-keys", "model: gpt2\nwarmup:\n  zzzzzz: 1\n", 3,
     "unknown key 'warmup.zzzzzz'; valid keys here: enabled, n_warmup"),
    ("in-experiments-entry", "model: gpt2\nexperiments:\n  - n: 2\n    pytorch: {batchsize: 2}\n", 4,
     "unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"),
    ("inside-sweep", "model: gpt2\nn: 3\nsweep:\n  pytorch.batchsize: [1, 2]\n", 4,
     "unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"),
    ("unknown-section-inside-sweep", "model: gpt2\nsweep:\n  precision: [fp16]\n  pytroch.batch_size: [1]\n", 4,
     "unknown key 'pytroch'; did you mean 'pytorch'?"),
    ("expect-metric-typo", "model: gpt2\nexpect:\n  joules_per_tokn: {max: 1}\n", 3,
     "unknown metric 'expect.joules_per_tokn'; did you mean 'joules_per_token'?"),
    ("regression-metric-typo", "model: gpt2\nregression:\n  tokens_per_secnd: 5%\n", 3,
     "unknown metric 'regression.tokens_per_secnd'; did you mean 'tokens_per_second'?"),
    ("study-key-in-an-entry-says-where-it-belongs", "model: gpt2\nexperiments:\n  - n: 2\n    marks: [slow]\n", 4,
     ("unknown key 'marks' in an entry of 'experiments'; sweep, experiments, expect, regression, against and "
      "marks are file-level keys: move it to the top level of the file")),
]


@pytest.mark.parametrize(("text", "line", "message"), [c[1:] for c in UNKNOWN_KEYS], ids=[c[0] for c in UNKNOWN_KEYS])
def test_an_unknown_key_or_metric_is_one_problem_with_its_line_and_a_hint(tmp_path, text, line, message):
    path = write(tmp_path / "f.yaml", text)
    assert problems_of(path) == [f"{path}:{line}: {message}"]


def test_bad_value_names_file_line_key_and_value(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nn: 0\nprecision: fp8\n")
    problems = problems_of(path)
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:2: n: ")
    assert "greater than or equal to 1" in problems[0]
    assert problems[1].startswith(f"{path}:3: precision: 'fp8' is not one of auto, fp32, fp16, bf16")


def test_unknown_key_in_block_sweep_is_reported_once(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nsweep:\n  pytorch.batchsize:\n    - 1\n    - 2\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert "unknown key 'pytorch.batchsize'" in problems[0]


def test_bad_value_in_block_sweep_points_at_that_value(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nsweep:\n  precision:\n    - fp16\n    - fp8\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:5: precision: 'fp8' is not one of")


@pytest.mark.parametrize(
    ("sweep", "line", "fragment"),
    [
        ("sweep: {}\n", 2, "'sweep' must map keys to lists of values"),
        ("sweep: [fp16]\n", 2, "'sweep' must map keys to lists of values"),
        ("sweep:\n  precision: fp16\n", 3, "sweep.precision must be a non-empty list of values (got 'fp16')"),
        ("sweep:\n  precision: []\n", 3, "sweep.precision must be a non-empty list of values"),
    ],
)
def test_malformed_sweep(tmp_path, sweep, line, fragment):
    path = write(tmp_path / "f.yaml", "model: gpt2\n" + sweep)
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:{line}: ")
    assert fragment in problem


def test_malformed_experiments(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nexperiments: {n: 1}\n")
    assert problems_of(path) == [
        f"{path}:2: 'experiments' must be a non-empty list of mappings, e.g. '- {{precision: fp32, n: 20}}'; "
        "remove the key if there are none"
    ]
    path = write(tmp_path / "g.yaml", "model: gpt2\nexperiments:\n  - {n: 1}\n  - fp16\n")
    assert problems_of(path) == [f"{path}:4: each entry of 'experiments' must be a mapping"]


def test_several_problems_are_reported_together(tmp_path):
    path = write(
        tmp_path / "f.yaml",
        "model: gpt2\n"                 # 1
        "precison: fp16\n"              # 2
        "marks: slow\n"                 # 3
        "expect:\n"                     # 4
        "  joules_per_tokn: {max: 1}\n"  # 5
        "regression:\n"                 # 6
        "  energy_j: lots\n"            # 7
        "pytorch:\n"                    # 8
        "  batch_size: 0\n",            # 9
    )
    problems = problems_of(path)
    text = "\n".join(problems)
    assert len(problems) == 5, text
    for line, key in [(2, "precison"), (3, "marks"), (5, "joules_per_tokn"), (7, "energy_j"),
                      (9, "pytorch.batch_size")]:
        assert any(p.startswith(f"{path}:{line}: ") and key in p for p in problems), (line, key, text)


def test_problems_from_several_experiments_are_reported_together(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nexperiments:\n  - {n: 0}\n  - {precision: fp8}\n")
    problems = problems_of(path)
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:3: n: ")
    assert problems[1].startswith(f"{path}:4: precision: ")


def test_every_problem_names_the_file_and_a_line(tmp_path):
    path = write(
        tmp_path / "f.yaml",
        "model: gpt2\nn: -1\nsweep:\n  precison: [fp16]\nexperiments:\n  - {repeats: 0}\n  - 3\nmarks: [a b]\n",
    )
    problems = problems_of(path)
    assert len(problems) >= 4
    for problem in problems:
        where, _, _ = problem.partition(": ")
        file, _, line = where.rpartition(":")
        assert file == str(path), problem
        assert line.isdigit(), problem


def test_study_key_inside_an_entry_gets_a_sensible_message(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nexperiments:\n  - {expect: {joules_per_token: {max: 1}}}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: unknown key 'expect'")
    assert "did you mean 'expect'" not in problem


def test_study_key_inside_a_sweep_says_where_it_belongs(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nsweep:\n  n: [1, 2]\n  regression: [5%]\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:4: unknown key 'regression' in 'sweep'; ")
    assert "move it to the top level of the file" in problem


def test_empty_file_is_a_config_error(tmp_path):
    path = write(tmp_path / "f.yaml", "")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: the file is empty")
    assert "model" in problem


def test_non_mapping_file_is_a_config_error(tmp_path):
    path = write(tmp_path / "f.yaml", "- model: gpt2\n")
    assert problems_of(path) == [f"{path}:1: expected a mapping of config keys at the top level"]


def test_user_config_file_applies_to_every_experiment(tmp_path, monkeypatch):
    user = write(tmp_path / "user.yaml", "defaults:\n  dataset: builtin\n")
    monkeypatch.setenv("LLEM_CONFIG", str(user))
    study = load_benchmark_file(write(tmp_path / "llem_s.yaml", SWEEP))
    assert all(e.config.dataset == "builtin" for e in study.experiments)
    assert study.experiments[0].config.sources()["dataset"] == f"user config {user}:2"


# --- "./" paths are relative to the file ---------------------------------------------------------


@pytest.fixture
def bench_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path/benchmarks, with the working directory at tmp_path (as for ``pytest benchmarks/``)."""
    (tmp_path / "benchmarks").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path / "benchmarks"


@pytest.mark.parametrize("where", ["benchmarks", "elsewhere"])
def test_dot_slash_model_and_dataset_are_relative_to_the_file(bench_dir, monkeypatch, where):
    write(bench_dir / "llem_p.yaml", "model: ./models/tiny\ndataset: ../data/prompts.jsonl\n")
    if where == "elsewhere":
        (bench_dir.parent / "elsewhere").mkdir()
        monkeypatch.chdir(bench_dir.parent / "elsewhere")
    path = Path("../benchmarks/llem_p.yaml") if where == "elsewhere" else Path("benchmarks/llem_p.yaml")
    [exp] = load(path).experiments
    assert exp.config.model == str(bench_dir / "models" / "tiny")
    assert exp.config.dataset == str(bench_dir.parent / "data" / "prompts.jsonl")
    assert exp.config.sources()["model"] == f"{path}:1"
    assert exp.config.sources()["dataset"] == f"{path}:2"


def test_other_values_are_left_as_written(bench_dir):
    write(bench_dir / "llem_p.yaml", "model: gpt2\ndataset: data/prompts.jsonl\noutput_dir: ./results\n")
    [exp] = load(Path("benchmarks/llem_p.yaml")).experiments
    assert (exp.config.model, exp.config.dataset, exp.config.output_dir) == ("gpt2", "data/prompts.jsonl", "./results")


def test_dot_slash_values_from_the_cli_stay_relative_to_the_working_directory(bench_dir):
    write(bench_dir / "llem_p.yaml", "model: ./models/tiny\n")
    [exp] = load(Path("benchmarks/llem_p.yaml"), cli_overrides={"model": "./other", "dataset": "../d.jsonl"}).experiments
    assert (exp.config.model, exp.config.dataset) == ("./other", "../d.jsonl")
    assert exp.config.sources()["model"] == "CLI --model"


def test_dot_slash_paths_in_sweeps_and_entries_are_relative_to_the_file(bench_dir):
    write(
        bench_dir / "llem_p.yaml",
        "name: p\n"                                  # 1
        "sweep:\n"                                   # 2
        "  model:\n"                                 # 3
        "    - ./a\n"                                # 4
        "    - gpt2\n"                               # 5
        "experiments:\n"                             # 6
        "  - {model: ../b, dataset: ./p.jsonl}\n",   # 7
    )
    path = Path("benchmarks/llem_p.yaml")
    study = load(path)
    assert ids(study) == ["p[model=./a]", "p[model=gpt2]", "p[model=../b,dataset=./p.jsonl]"]  # as written
    models = [e.config.model for e in study.experiments]
    assert models == [str(bench_dir / "a"), "gpt2", str(bench_dir.parent / "b")]
    assert study.experiments[2].config.dataset == str(bench_dir / "p.jsonl")
    assert [e.config.sources()["model"] for e in study.experiments] == [f"{path}:4", f"{path}:5", f"{path}:7"]


def test_dot_slash_paths_in_the_user_config_are_relative_to_it(tmp_path, monkeypatch):
    user = write(tmp_path / "user.yaml", "defaults:\n  dataset: ./prompts.jsonl\n")
    monkeypatch.setenv("LLEM_CONFIG", str(user))
    [exp] = load_benchmark_file(write(tmp_path / "sub.yaml", "model: gpt2\n")).experiments
    assert exp.config.dataset == str(tmp_path / "prompts.jsonl")
    assert exp.config.sources()["dataset"] == f"user config {user}:2"


# --- caps: experiments per file ------------------------------------------------------------------


def sweep_of(*sizes: int) -> str:
    keys = ["n", "max_output_tokens", "max_input_tokens", "random_seed", "repeats", "pytorch.batch_size"]
    lines = [f"  {key}: [{', '.join(str(v) for v in range(1, size + 1))}]" for key, size in zip(keys, sizes)]
    return "model: gpt2\nsweep:\n" + "\n".join(lines) + "\n"


def test_sweep_over_the_cap_is_refused_before_it_is_expanded(tmp_path):
    # 10**12 points: expanding them first would never end, so this test ending proves it does not
    path = write(tmp_path / "f.yaml", sweep_of(100, 100, 100, 100, 100, 100))
    assert problems_of(path) == [
        f"{path}:2: its sweep expands to 1,000,000,000,000 experiments, more than the cap of {MAX_EXPERIMENTS:,} "
        "per file; sweep fewer values, or split the study into several files"
    ]


def test_sweep_and_extras_count_together_against_the_cap(tmp_path):
    path = write(tmp_path / "f.yaml", sweep_of(100, 100) + "experiments:\n  - {n: 7, name: extra}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:2: its sweep expands to 10,000 plus 1 in 'experiments' experiments, "
                              f"more than the cap of {MAX_EXPERIMENTS:,}")


def test_a_sweep_of_exactly_the_cap_loads(tmp_path):
    study = load(write(tmp_path / "f.yaml", sweep_of(100, 100)))
    assert len(study.experiments) == MAX_EXPERIMENTS
    assert study.experiments[-1].id == "f[n=100,max_output_tokens=100]"


def test_a_problem_shared_by_every_sweep_point_is_reported_once(tmp_path):
    path = write(tmp_path / "f.yaml", sweep_of(100, 100).replace("model: gpt2\n", "model: gpt2\nprecison: fp16\n"))
    assert problems_of(path) == [f"{path}:2: unknown key 'precison'; did you mean 'precision'?"]


def test_thousands_of_unknown_keys_give_a_bounded_list_of_problems(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\n" + "".join(f"key{i}: 1\n" for i in range(5000)))
    problems = problems_of(path)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[0].startswith(f"{path}:2: unknown key 'key0'")
    assert problems[-1] == f"{path}: ... and {5000 - MAX_PROBLEMS:,} more problems like these"


def test_empty_experiments_list_names_its_line(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nn: 3\nexperiments: []\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: 'experiments' must be a non-empty list of mappings")
