"""load_experiment_config: precedence CLI > YAML > user config > defaults, and where each value came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.config.models import DECODER_PRESETS, ExperimentConfig
from llenergymeasure.exceptions import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a user config file and point LLEM_CONFIG at it."""

    def make(text: str) -> Path:
        path = write(tmp_path / "user-config.yaml", text)
        monkeypatch.setenv("LLEM_CONFIG", str(path))
        return path

    return make


# --- precedence, one layer at a time -------------------------------------------------------------


def test_defaults_only_every_source_is_default():
    config = load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={})
    defaults = ExperimentConfig(model="x")
    assert config.n == defaults.n == 100
    assert config.precision == "auto"
    assert config.pytorch.batch_size == 1
    sources = config.sources()
    assert sources["model"] == "CLI --model"
    assert {path for path, label in sources.items() if label != "default"} == {"model"}


def test_all_four_layers_each_key_owned_by_the_highest_layer_that_sets_it(tmp_path, user_config):
    user = user_config(
        "defaults:\n"           # 1
        "  precision: fp16\n"   # 2
        "  n: 7\n"              # 3
        "  max_output_tokens: 9\n"  # 4
        "  repeats: 3\n"        # 5
    )
    exp = write(
        tmp_path / "exp.yaml",
        "model: gpt2\n"         # 1
        "n: 20\n"               # 2
        "pytorch:\n"            # 3
        "  batch_size: 2\n"     # 4
        "repeats: 2\n",         # 5
    )
    config = load_experiment_config(exp, cli_overrides={"pytorch.batch_size": 8, "repeats": 5})

    assert config.pytorch.batch_size == 8  # CLI beats file
    assert config.repeats == 5  # CLI beats file beats user config
    assert config.n == 20  # file beats user config
    assert config.precision == "fp16"  # user config beats default
    assert config.max_output_tokens == 9
    assert config.max_input_tokens == 512  # default

    sources = config.sources()
    assert sources["pytorch.batch_size"] == "CLI --batch-size"
    assert sources["repeats"] == "CLI --repeats"
    assert sources["model"] == f"{exp}:1"
    assert sources["n"] == f"{exp}:2"
    assert sources["precision"] == f"user config {user}:2"
    assert sources["max_output_tokens"] == f"user config {user}:4"
    assert sources["max_input_tokens"] == "default"
    assert sources["pytorch.device"] == "default"


def test_yaml_beats_user_config_and_points_at_the_file_line(tmp_path, user_config):
    user_config("defaults:\n  precision: fp16\n  dataset: builtin\n")
    exp = write(tmp_path / "exp.yaml", "model: gpt2\n\n# comment\nprecision: fp32\n")
    config = load_experiment_config(exp)
    assert config.precision == "fp32"
    assert config.dataset == "builtin"
    assert config.sources()["precision"] == f"{exp}:4"


def test_cli_beats_yaml_for_a_top_level_key(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\nn: 20\nprecision: fp16\n")
    config = load_experiment_config(exp, cli_overrides={"n": 3, "precision": "fp32"}, user_config_defaults={})
    assert (config.n, config.precision) == (3, "fp32")
    assert config.sources()["n"] == "CLI -n"
    assert config.sources()["precision"] == "CLI --precision"


def test_cli_model_overrides_the_file_model(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\n")
    config = load_experiment_config(exp, cli_overrides={"model": "distilgpt2"}, user_config_defaults={})
    assert config.model == "distilgpt2"
    assert config.sources()["model"] == "CLI --model"


def test_cli_output_flag_label(tmp_path):
    config = load_experiment_config(cli_overrides={"model": "gpt2", "output_dir": "out"}, user_config_defaults={})
    assert config.output_dir == "out"
    assert config.sources()["output_dir"] == "CLI --output"


def test_user_config_and_file_merge_inside_one_section(tmp_path, user_config):
    user = user_config("defaults:\n  pytorch:\n    device: cpu\n")
    exp = write(tmp_path / "exp.yaml", "model: gpt2\npytorch:\n  batch_size: 4\n")
    config = load_experiment_config(exp)
    assert config.pytorch.device == "cpu"
    assert config.pytorch.batch_size == 4
    assert config.sources()["pytorch.device"] == f"user config {user}:3"
    assert config.sources()["pytorch.batch_size"] == f"{exp}:3"


# --- user config ---------------------------------------------------------------------------------


def test_user_config_file_is_read_from_LLEM_CONFIG(user_config):
    user = user_config("defaults:\n  n: 11\n  energy: {source: cpu_estimate}\n")
    config = load_experiment_config(cli_overrides={"model": "gpt2"})
    assert config.n == 11
    assert config.energy.source == "cpu_estimate"
    assert config.sources()["n"] == f"user config {user}:2"
    assert config.sources()["energy.source"] == f"user config {user}:3"


def test_missing_user_config_file_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LLEM_CONFIG", str(tmp_path / "does-not-exist.yaml"))
    config = load_experiment_config(cli_overrides={"model": "gpt2"})
    assert config.n == 100


def test_empty_user_config_file_is_ignored(user_config):
    user_config("# nothing here yet\n")
    assert load_experiment_config(cli_overrides={"model": "gpt2"}).precision == "auto"


def test_explicit_user_config_defaults_replace_the_file(user_config):
    user_config("defaults:\n  n: 11\n")
    config = load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={"n": 4})
    assert config.n == 4
    assert config.sources()["n"] == "user config"
    ignored = load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={})
    assert ignored.n == 100
    assert ignored.sources()["n"] == "default"


def test_user_config_defaults_accept_dotted_keys():
    config = load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={"pytorch.batch_size": 3})
    assert config.pytorch.batch_size == 3
    assert config.sources()["pytorch.batch_size"] == "user config"


def test_user_config_without_defaults_section_is_a_config_error(user_config):
    user = user_config("precision: fp16\n")
    with pytest.raises(ConfigError) as info:
        load_experiment_config(cli_overrides={"model": "gpt2"})
    assert f"{user}:1" in str(info.value)
    assert "defaults" in str(info.value)


def test_user_config_defaults_must_be_a_mapping(user_config):
    user = user_config("defaults:\n  - precision\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(user))}:1: 'defaults' must be a mapping"):
        load_experiment_config(cli_overrides={"model": "gpt2"})


def test_user_config_bad_value_names_user_config_file_and_line(user_config):
    user = user_config("defaults:\n  n: 5\n  precision: fp8\n")
    with pytest.raises(ConfigError) as info:
        load_experiment_config(cli_overrides={"model": "gpt2"})
    [problem] = info.value.problems
    assert problem.startswith(f"user config {user}:3: precision: 'fp8' is not one of")


def test_a_bad_user_config_value_overridden_by_cli_is_harmless(user_config):
    user_config("defaults:\n  precision: fp8\n")
    config = load_experiment_config(cli_overrides={"model": "gpt2", "precision": "fp16"})
    assert config.precision == "fp16"


# --- dotted override keys ------------------------------------------------------------------------


def test_dotted_cli_keys_reach_nested_fields():
    config = load_experiment_config(
        cli_overrides={"model": "gpt2", "pytorch.batch_size": 6, "pytorch.device": "cpu", "energy.source": "none",
                       "decoder.temperature": 0.7},
        user_config_defaults={},
    )
    assert config.pytorch.batch_size == 6
    assert config.pytorch.device == "cpu"
    assert config.energy.source == "none"
    assert config.decoder.temperature == 0.7
    sources = config.sources()
    assert sources["pytorch.batch_size"] == "CLI --batch-size"
    assert sources["pytorch.device"] == "CLI --device"  # llem run --device
    assert sources["decoder.temperature"] == "CLI --decoder.temperature"
    # siblings not overridden keep their defaults
    assert config.pytorch.use_cache is True
    assert sources["pytorch.use_cache"] == "default"


def test_dotted_cli_key_merges_with_the_same_section_from_the_file(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\npytorch:\n  batch_size: 2\n  device: cpu\n")
    config = load_experiment_config(exp, cli_overrides={"pytorch.batch_size": 16}, user_config_defaults={})
    assert (config.pytorch.batch_size, config.pytorch.device) == (16, "cpu")
    assert config.sources()["pytorch.device"] == f"{exp}:4"


def test_dotted_keys_in_the_yaml_file_work_too(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\npytorch.batch_size: 5\n")
    config = load_experiment_config(exp, user_config_defaults={})
    assert config.pytorch.batch_size == 5
    assert config.sources()["pytorch.batch_size"] == f"{exp}:2"


def test_dotted_cli_key_with_a_typo_suggests_the_field():
    with pytest.raises(ConfigError, match=r"unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'\?"):
        load_experiment_config(cli_overrides={"model": "gpt2", "pytorch.batchsize": 2}, user_config_defaults={})


def test_dotted_key_through_a_scalar_is_a_config_error():
    with pytest.raises(ConfigError, match="'n.x' sets a field inside 'n', which is a value here, not a section"):
        load_experiment_config(cli_overrides={"model": "gpt2", "n": 3, "n.x": 1}, user_config_defaults={})


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("model: gpt2\nmodel.x: 1\n", 2, "'model.x' sets a field inside 'model', which is a value here, not a section"),
        ("model: gpt2\nsweep:\n  n: [1]\n  n.x: [2]\n", 4,
         "'n.x' sets a field inside 'n', which is a value here, not a section"),
        ("model: gpt2\nn.x: 1\nn: 2\n", 3, "'n' is given a value, but another key sets fields inside it"),
    ],
    ids=["top-level", "sweep", "section-first"],
)
def test_dotted_key_through_a_scalar_in_a_file_names_its_line(tmp_path, text, line, key):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_benchmark_file(path, user_config_defaults={})
    assert info.value.problems == [f"{path}:{line}: {key}; remove one of them"]


@pytest.mark.parametrize("preset", ["[1]", "{a: 1}", "7"])
def test_a_preset_that_is_not_a_name_is_a_config_error(tmp_path, preset):
    path = tmp_path / "c.yaml"
    path.write_text(f"model: gpt2\ndecoder:\n  preset: {preset}\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: decoder.preset: "):
        load_benchmark_file(path, user_config_defaults={})


def test_an_empty_key_names_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: gpt2\n'': 1\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: unknown key ''"):
        load_benchmark_file(path, user_config_defaults={})


def test_an_experiment_name_that_is_not_text_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: gpt2\nexperiments:\n  - name: [1]\n    n: 2\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: name: must be text \(got \[1\]\)"):
        load_benchmark_file(path, user_config_defaults={})


def test_invalid_cli_value_names_the_flag():
    with pytest.raises(ConfigError) as info:
        load_experiment_config(cli_overrides={"model": "gpt2", "pytorch.batch_size": 0}, user_config_defaults={})
    [problem] = info.value.problems
    assert problem.startswith("CLI --batch-size: pytorch.batch_size:")
    assert "greater than or equal to 1" in problem


# --- missing model -------------------------------------------------------------------------------


def test_no_model_anywhere_is_a_config_error():
    with pytest.raises(ConfigError, match="no model given") as info:
        load_experiment_config(user_config_defaults={})
    assert info.value.exit_code == 2


def test_model_from_user_config_satisfies_a_file_without_model(tmp_path, user_config):
    user = user_config("defaults:\n  model: gpt2\n")
    exp = write(tmp_path / "exp.yaml", "n: 3\n")
    config = load_experiment_config(exp)
    assert config.model == "gpt2"
    assert config.sources()["model"] == f"user config {user}:2"


def test_model_from_user_config_is_used_without_a_file(user_config):
    user_config("defaults:\n  model: gpt2\n")
    config = load_experiment_config(cli_overrides={"n": 5})
    assert config.model == "gpt2"


def test_file_without_model_is_a_config_error_mentioning_model(tmp_path):
    exp = write(tmp_path / "exp.yaml", "n: 3\n")
    with pytest.raises(ConfigError, match="'model' is required"):
        load_experiment_config(exp, user_config_defaults={})


def test_file_without_model_error_names_the_file(tmp_path):
    exp = write(tmp_path / "exp.yaml", "n: 3\n")
    with pytest.raises(ConfigError) as info:
        load_experiment_config(exp, user_config_defaults={})
    assert str(exp) in str(info.value)


def test_empty_model_string_is_rejected():
    with pytest.raises(ConfigError, match="model"):
        load_experiment_config(cli_overrides={"model": ""}, user_config_defaults={})


# --- decoder presets -----------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(DECODER_PRESETS))
def test_decoder_preset_expands_to_its_values(tmp_path, preset):
    exp = write(tmp_path / "exp.yaml", f"model: gpt2\ndecoder:\n  preset: {preset}\n")
    config = load_experiment_config(exp, user_config_defaults={})
    for key, value in DECODER_PRESETS[preset].items():
        assert getattr(config.decoder, key) == value, key


def test_decoder_explicit_keys_win_over_the_preset(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\ndecoder:\n  preset: factual\n  temperature: 0.9\n  top_k: 3\n")
    config = load_experiment_config(exp, user_config_defaults={})
    assert config.decoder.do_sample is True  # from the preset
    assert config.decoder.top_p == 0.9  # from the preset
    assert config.decoder.temperature == 0.9  # explicit
    assert config.decoder.top_k == 3  # explicit
    assert config.sources()["decoder.temperature"] == f"{exp}:4"


def test_decoder_preset_from_file_with_explicit_cli_key():
    config = load_experiment_config(
        cli_overrides={"model": "gpt2", "decoder.preset": "creative", "decoder.top_p": 0.5}, user_config_defaults={}
    )
    assert (config.decoder.do_sample, config.decoder.temperature, config.decoder.top_p) == (True, 1.2, 0.5)


def test_unknown_decoder_preset_lists_the_choices():
    with pytest.raises(ConfigError) as info:
        load_experiment_config(cli_overrides={"model": "gpt2", "decoder.preset": "creativ"}, user_config_defaults={})
    message = str(info.value)
    assert "decoder.preset: 'creativ' is not one of" in message
    assert "did you mean 'creative'?" in message


def test_values_from_a_decoder_preset_are_not_labelled_default(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\ndecoder:\n  preset: creative\n")
    config = load_experiment_config(exp, user_config_defaults={})
    assert config.decoder.do_sample is True
    assert config.sources()["decoder.do_sample"] != "default"


def test_values_from_a_decoder_preset_name_the_preset_and_its_line(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\ndecoder:\n  preset: creative\n  top_k: 5\n")
    sources = load_experiment_config(exp, user_config_defaults={}).sources()
    assert sources["decoder.temperature"] == f"{exp}:3 (decoder.preset: creative)"
    assert sources["decoder.top_k"] == f"{exp}:4"  # explicit, not from the preset
    assert sources["decoder.repetition_penalty"] == "default"  # the preset does not set it


def test_nested_dict_cli_override_keeps_cli_provenance():
    config = load_experiment_config(
        cli_overrides={"model": "gpt2", "decoder": {"temperature": 0.5}}, user_config_defaults={}
    )
    assert config.decoder.temperature == 0.5
    assert config.sources()["decoder.temperature"].startswith("CLI")


def test_overrides_from_python_carry_the_callers_label():
    config = load_experiment_config(
        cli_overrides={"model": "gpt2", "pytorch": {"batch_size": 2}, "n": 3},
        user_config_defaults={},
        override_label="run_experiment(...)",
    )
    sources = config.sources()
    assert (sources["model"], sources["pytorch.batch_size"], sources["n"]) == ("run_experiment(...)",) * 3
    with pytest.raises(ConfigError) as info:
        load_experiment_config(
            cli_overrides={"model": "gpt2", "pytorch.batchsize": 2}, user_config_defaults={}, override_label="f()"
        )
    assert str(info.value) == "f(): unknown key 'pytorch.batchsize'; did you mean 'pytorch.batch_size'?"


# --- config hash ---------------------------------------------------------------------------------


def _config(**overrides):
    return load_experiment_config(cli_overrides={"model": "gpt2", **overrides}, user_config_defaults={})


def test_config_hash_ignores_name_and_output_dir():
    assert _config().config_hash() == _config(name="renamed", output_dir="/elsewhere").config_hash()


def test_config_hash_changes_with_batch_size_and_other_measured_fields():
    base = _config().config_hash()
    assert _config(**{"pytorch.batch_size": 2}).config_hash() != base
    assert _config(precision="fp16").config_hash() != base
    assert _config(**{"decoder.temperature": 0.5}).config_hash() != base
    assert _config(model="distilgpt2").config_hash() != base


def test_config_hash_is_stable_and_independent_of_the_source(tmp_path):
    exp = write(tmp_path / "exp.yaml", "model: gpt2\npytorch: {batch_size: 2}\n")
    from_file = load_experiment_config(exp, user_config_defaults={})
    from_cli = _config(**{"pytorch.batch_size": 2})
    assert from_file.config_hash() == from_cli.config_hash()
    assert len(from_file.config_hash()) == 16
    int(from_file.config_hash(), 16)  # hex


def test_loading_a_study_file_is_refused(tmp_path):
    exp = write(tmp_path / "s.yaml", "model: gpt2\nsweep:\n  n: [1, 2]\n")
    with pytest.raises(ConfigError, match="defines 2 experiments"):
        load_experiment_config(exp, user_config_defaults={})
