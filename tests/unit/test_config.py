"""Config resolution: precedence, provenance, the benchmark-file format and its error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.config.models import MAX_BASELINE_SECONDS, MAX_CACHE_TTL_SECONDS, MAX_SAMPLE_INTERVAL_MS
from llenergymeasure.energy.carbon import carbon_intensity
from llenergymeasure.exceptions import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_cli_over_file_over_user_config_over_defaults(tmp_path, monkeypatch):
    user = write(tmp_path / "user.yaml", "defaults:\n  precision: fp16\n  n: 7\n  max_output_tokens: 9\n")
    monkeypatch.setenv("LLEM_CONFIG", str(user))
    config_file = write(tmp_path / "exp.yaml", "model: gpt2\nn: 20\npytorch:\n  batch_size: 2\n")
    config = load_experiment_config(config_file, cli_overrides={"pytorch.batch_size": 8})

    assert (config.pytorch.batch_size, config.n, config.precision, config.max_output_tokens, config.max_input_tokens) \
        == (8, 20, "fp16", 9, 512)
    sources = config.sources()
    assert sources["pytorch.batch_size"] == "CLI --batch-size"
    assert sources["n"] == f"{config_file}:2"
    assert sources["precision"] == f"user config {user}:2"
    assert sources["max_input_tokens"] == "default"


def test_user_config_with_an_unknown_key_names_its_file_and_line(tmp_path, monkeypatch):
    user = write(tmp_path / "user.yaml", "defaults:\n  precison: fp16\n")
    monkeypatch.setenv("LLEM_CONFIG", str(user))
    with pytest.raises(ConfigError, match=rf"user config {user}:2: unknown key 'precison'; did you mean 'precision'"):
        load_experiment_config(cli_overrides={"model": "gpt2"})


def test_config_hash_tracks_what_is_measured_only():
    base = load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={})
    renamed = load_experiment_config(cli_overrides={"model": "gpt2", "name": "x", "output_dir": "o"},
                                     user_config_defaults={})
    bigger = load_experiment_config(cli_overrides={"model": "gpt2", "pytorch.batch_size": 4}, user_config_defaults={})
    assert base.config_hash() == renamed.config_hash() != bigger.config_hash()


def test_decoder_preset_expands_and_explicit_keys_win():
    config = load_experiment_config(
        cli_overrides={"model": "gpt2", "decoder": {"preset": "creative", "temperature": 0.5}}, user_config_defaults={}
    )
    assert config.decoder.do_sample is True and config.decoder.top_p == 0.95 and config.decoder.temperature == 0.5


STUDY = """\
name: serving
model: gpt2
n: 50
pytorch: {batch_size: 8}
sweep:
  precision: [fp16, bf16]
  pytorch.batch_size: [1, 8]
experiments:
  - {precision: fp32, n: 20}
  - {name: special, max_output_tokens: 16}
expect:
  joules_per_token: {max: 0.40}
regression:
  joules_per_token: 5%
marks: [slow]
"""


def test_study_expands_sweep_then_extras_with_stable_ids(tmp_path):
    path = write(tmp_path / "llem_serving.yaml", STUDY)
    study = load_benchmark_file(path, user_config_defaults={})
    ids = [e.id for e in study.experiments]
    assert ids == [
        "serving[precision=fp16,batch_size=1]",
        "serving[precision=fp16,batch_size=8]",
        "serving[precision=bf16,batch_size=1]",
        "serving[precision=bf16,batch_size=8]",
        "serving[precision=fp32,n=20]",
        "special",
    ]
    assert ids == [e.id for e in load_benchmark_file(path, user_config_defaults={}).experiments]
    second = study.experiments[1].config
    assert (second.precision, second.pytorch.batch_size, second.n) == ("fp16", 8, 50)
    assert second.sources()["pytorch.batch_size"] == f"{path}:7"
    assert study.experiments[4].config.pytorch.batch_size == 8
    assert study.expect["joules_per_token"].max == 0.40
    assert study.regression == {"joules_per_token": "5%"}
    assert study.marks == ["slow"]


def test_single_experiment_id_comes_from_the_file_name(tmp_path):
    study = load_benchmark_file(write(tmp_path / "llem_gpt2.yaml", "model: gpt2\n"), user_config_defaults={})
    assert [e.id for e in study.experiments] == ["gpt2"]


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ("model: gpt2\nsweep:\n  pytorch.batchsize: [1, 2]\n",
         ["f.yaml:3: unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"]),
        ("model: gpt2\nswep:\n  precision: [fp16]\n", ["f.yaml:2: unknown key 'swep'; did you mean 'sweep'?"]),
        ("model: gpt2\nsweep:\n  precision: fp16\n", ["f.yaml:3: sweep.precision must be a non-empty list"]),
        ("model: gpt2\nexpect:\n  joules_per_tokn: {max: 1}\n",
         ["f.yaml:3: unknown metric 'expect.joules_per_tokn'; did you mean 'joules_per_token'?"]),
        ("model: gpt2\nregression:\n  joules_per_token: five\n", ["f.yaml:3: regression.joules_per_token must be"]),
        ("model: gpt2\nn: 0\nprecision: fp8\n",
         ["f.yaml:2: n: Input should be greater than or equal to 1", "f.yaml:3: precision: 'fp8' is not one of"]),
        ("model: gpt2\nexperiments:\n  - {n: 5}\n  - {n: 5}\n", ["f.yaml:4: experiment 'f[n=5]' is defined twice"]),
        ("model: gpt2\nn: 1\nn: 2\n", ["f.yaml:3: duplicate key 'n' (first at line 2)"]),
        ("", ["f.yaml: the file is empty"]),
        ("- model: gpt2\n", ["f.yaml:1: expected a mapping"]),
    ],
    ids=["sweep-typo", "top-typo", "sweep-scalar", "metric-typo", "bad-threshold", "two-errors", "dup-id",
         "dup-key", "empty", "not-mapping"],
)
def test_file_errors_name_file_line_and_key(tmp_path, text, messages):
    path = write(tmp_path / "f.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_benchmark_file(path, user_config_defaults={})
    text = "\n".join(p.replace(str(tmp_path) + "/", "") for p in info.value.problems)
    for message in messages:
        assert message in text


def test_load_experiment_config_refuses_a_study(tmp_path):
    path = write(tmp_path / "s.yaml", "model: gpt2\nsweep:\n  n: [1, 2]\n")
    with pytest.raises(ConfigError, match="defines 2 experiments"):
        load_experiment_config(path, user_config_defaults={})


# --- numbers and text that cannot mean anything --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("energy:\n  carbon_intensity_g_per_kwh: .nan\n",
         "f.yaml:3: energy.carbon_intensity_g_per_kwh: Input should be a finite number (got nan)"),
        ("decoder:\n  temperature: .inf\n", "f.yaml:3: decoder.temperature: Input should be a finite number (got inf)"),
        ("decoder:\n  top_p: -.inf\n", "f.yaml:3: decoder.top_p: Input should be a finite number"),
        ("energy:\n  sample_interval_ms: 1000000\n",
         f"f.yaml:3: energy.sample_interval_ms: Input should be less than or equal to {MAX_SAMPLE_INTERVAL_MS}"),
        ("baseline:\n  duration_seconds: 1.0e+9\n",
         f"f.yaml:3: baseline.duration_seconds: Input should be less than or equal to {MAX_BASELINE_SECONDS:g}"),
        ("baseline:\n  duration_seconds: .inf\n",
         "f.yaml:3: baseline.duration_seconds: Input should be a finite number"),
        ("baseline:\n  cache_ttl_seconds: 99999999\n",
         f"f.yaml:3: baseline.cache_ttl_seconds: Input should be less than or equal to {MAX_CACHE_TTL_SECONDS:g}"),
        ("n: 100000000000000000000\n", "f.yaml:2: n: Input should be less than or equal to 1000000"),
        ("random_seed: -1\n", "f.yaml:2: random_seed: Input should be greater than or equal to 0"),
        ("repeats: 1000000\n", "f.yaml:2: repeats: Input should be less than or equal to 1000"),
        ("dataset: " + "d" * 300 + ".jsonl\n",
         "f.yaml:2: dataset: Value error, a part of this path is 306 characters long"),
        ("output_dir: \"out\\x01\"\n", "f.yaml:2: control character U+0001 in 'output_dir'"),
    ],
    ids=["nan", "inf", "minus-inf", "sample-interval", "baseline-duration", "baseline-inf", "cache-ttl", "huge-n",
         "negative-seed", "repeats", "long-path-part", "control-character"],
)
def test_numbers_and_text_that_cannot_mean_anything_are_config_errors(tmp_path, text, message):
    path = write(tmp_path / "f.yaml", "model: gpt2\n" + text)
    with pytest.raises(ConfigError) as info:
        load_benchmark_file(path, user_config_defaults={})
    assert info.value.exit_code == 2
    assert message in "\n".join(p.replace(str(tmp_path) + "/", "") for p in info.value.problems)


def test_a_long_value_is_cut_short_in_the_message(tmp_path):
    path = write(tmp_path / "f.yaml", "model: " + "m" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_benchmark_file(path, user_config_defaults={})
    [problem] = info.value.problems
    assert problem.endswith("... (5,002 characters))")
    assert len(problem) < 400


def test_control_characters_from_the_command_line_or_python_are_refused_too():
    with pytest.raises(ConfigError, match=r"^CLI --model: model: Value error, control character U\+0000"):
        load_experiment_config(cli_overrides={"model": "gpt\x002"}, user_config_defaults={})


def test_the_caps_leave_real_values_alone(tmp_path):
    path = write(tmp_path / "f.yaml", "model: gpt2\nbaseline: {duration_seconds: 600, cache_ttl_seconds: 604800}\n"
                                      "energy: {sample_interval_ms: 10000}\nrandom_seed: 4294967295\n")
    config = load_experiment_config(path, user_config_defaults={})
    assert (config.baseline.duration_seconds, config.energy.sample_interval_ms) == (600, 10_000)


# --- LLEM_CARBON_INTENSITY -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "lots", "1e999", "-inf"])
def test_bad_carbon_intensity_variable_is_a_config_error_when_the_config_loads(tmp_path, monkeypatch, value):
    monkeypatch.setenv("LLEM_CARBON_INTENSITY", value)
    path = write(tmp_path / "f.yaml", "model: gpt2\n")
    for load in (lambda: load_benchmark_file(path, user_config_defaults={}),
                 lambda: load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={})):
        with pytest.raises(ConfigError) as info:
            load()
        assert info.value.problems == [
            f"LLEM_CARBON_INTENSITY={value!r} is not a finite, non-negative number of gCO2e/kWh "
            "(e.g. 56 for France, 400 for the US); fix or unset the environment variable"
        ]


def test_good_carbon_intensity_variable_is_used(monkeypatch):
    monkeypatch.setenv("LLEM_CARBON_INTENSITY", "56")
    config = load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={})
    assert carbon_intensity(config.energy) == (56.0, "LLEM_CARBON_INTENSITY")
