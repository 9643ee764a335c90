"""read_yaml: safe_load semantics, the line of every key, and errors that point at file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.config.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, read_yaml
from llenergymeasure.exceptions import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert info.value.exit_code == 2
    return info.value


def test_reads_data_and_records_the_line_of_every_key(tmp_path):
    path = write(
        tmp_path / "c.yaml",
        "# a comment\n"         # 1
        "model: gpt2\n"         # 2
        "\n"                    # 3
        "pytorch:\n"            # 4
        "  batch_size: 4\n"     # 5
        "sweep:\n"              # 6
        "  precision:\n"        # 7
        "    - fp16\n"          # 8
        "    - bf16\n",         # 9
    )
    doc = read_yaml(path)
    assert doc.path == path
    assert doc.data == {"model": "gpt2", "pytorch": {"batch_size": 4}, "sweep": {"precision": ["fp16", "bf16"]}}
    assert doc.line_of(("model",)) == 2
    assert doc.line_of(("pytorch",)) == 4
    assert doc.line_of(("pytorch", "batch_size")) == 5
    assert doc.line_of(("sweep", "precision", 0)) == 8
    assert doc.line_of(("sweep", "precision", 1)) == 9
    assert doc.where(("pytorch", "batch_size")) == f"{path}:5"


def test_line_of_an_unknown_path_falls_back_to_the_nearest_parent(tmp_path):
    doc = read_yaml(write(tmp_path / "c.yaml", "model: gpt2\npytorch:\n  batch_size: 4\n"))
    assert doc.line_of(("pytorch", "nope", "deeper")) == 2
    assert doc.line_of(("nothing",)) is None
    assert doc.where(("nothing",)) == str(tmp_path / "c.yaml")


def test_accepts_a_str_path(tmp_path):
    write(tmp_path / "c.yaml", "model: gpt2\n")
    assert read_yaml(str(tmp_path / "c.yaml")).data == {"model": "gpt2"}


# --- syntax errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("model: gpt2\nn: [1, 2\nprecision: fp16\n", 3),  # unclosed flow sequence, detected on line 3
        ("model: gpt2\npytorch:\n  batch_size: 1\n\tdevice: cpu\n", 4),  # a tab
        ("model: gpt2\nn: 5\n  bad: 3\n", 3),  # mapping value in the wrong place
        ("model: gpt2\n---\nn: 3\n", 2),  # two documents
    ],
    ids=["unclosed-bracket", "tab", "bad-indent", "two-documents"],
)
def test_syntax_error_names_file_and_line(tmp_path, text, line):
    path = write(tmp_path / "c.yaml", text)
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:{line}: YAML syntax error: ")


def test_syntax_error_reaches_load_benchmark_file_as_config_error(tmp_path):
    path = write(tmp_path / "llem_x.yaml", "model: gpt2\nn: [1,\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:\d+: YAML syntax error"):
        load_benchmark_file(path, user_config_defaults={})


def test_python_tags_are_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path / "c.yaml", f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:1: YAML syntax error")
    assert "python/object/apply" in problem
    assert not marker.exists()


# --- duplicate keys ------------------------------------------------------------------------------


def test_duplicate_top_level_key_names_both_lines(tmp_path):
    path = write(tmp_path / "c.yaml", "model: gpt2\nn: 1\nprecision: fp16\nn: 2\n")
    assert error_of(path).problems == [f"{path}:4: duplicate key 'n' (first at line 2); remove one of them"]


def test_duplicate_nested_key_names_the_dotted_key(tmp_path):
    path = write(tmp_path / "c.yaml", "model: gpt2\npytorch:\n  batch_size: 1\n  device: cpu\n  batch_size: 2\n")
    assert error_of(path).problems == [
        f"{path}:5: duplicate key 'pytorch.batch_size' (first at line 3); remove one of them"
    ]


def test_duplicate_key_inside_a_list_entry(tmp_path):
    path = write(tmp_path / "c.yaml", "model: gpt2\nexperiments:\n  - n: 1\n    n: 2\n")
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:4: duplicate key 'experiments.0.n' (first at line 3)")


def test_same_key_in_different_sections_is_not_a_duplicate(tmp_path):
    doc = read_yaml(write(tmp_path / "c.yaml", "warmup:\n  enabled: true\nbaseline:\n  enabled: false\n"))
    assert doc.data == {"warmup": {"enabled": True}, "baseline": {"enabled": False}}


def test_duplicate_key_in_a_benchmark_file_is_a_config_error(tmp_path):
    path = write(tmp_path / "llem_x.yaml", "model: gpt2\nmodel: distilgpt2\n")
    with pytest.raises(ConfigError, match=r"llem_x.yaml:2: duplicate key 'model' \(first at line 1\)"):
        load_benchmark_file(path, user_config_defaults={})


# --- empty, missing, not a mapping ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_has_no_data(tmp_path, text):
    doc = read_yaml(write(tmp_path / "c.yaml", text))
    assert doc.data is None
    assert doc.lines == {}


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert error_of(path).problems == [f"{path}: config file not found"]


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    [problem] = error_of(tmp_path / "dir.yaml").problems
    assert problem.startswith(f"{tmp_path / 'dir.yaml'}: cannot read config file")


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"n: 3\nmodel: \xff\xfe gpt2\n")
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:2: cannot read config file (UnicodeDecodeError")
    assert problem.endswith("save it as UTF-8 text")


@pytest.mark.parametrize("text", ["- model: gpt2\n", "gpt2\n", "42\n"])
def test_non_mapping_top_level_is_read_but_refused_by_the_loader(tmp_path, text):
    path = write(tmp_path / "llem_x.yaml", text)
    assert not isinstance(read_yaml(path).data, dict)
    with pytest.raises(ConfigError) as info:
        load_benchmark_file(path, user_config_defaults={})
    assert info.value.problems == [f"{path}:1: expected a mapping of config keys at the top level"]


def test_missing_benchmark_file(tmp_path):
    path = tmp_path / "llem_missing.yaml"
    with pytest.raises(ConfigError, match="config file not found"):
        load_benchmark_file(path, user_config_defaults={})


# --- hostile files: bounded reading --------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    """Each level is a list of nine aliases of the one before: 9**levels strings once expanded."""
    lines = ["model: gpt2", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_without_expanding_it(tmp_path):
    path = write(tmp_path / "c.yaml", billion_laughs())
    [problem] = error_of(path).problems
    assert problem == (
        f"{path}: holds more than {MAX_NODES:,} keys and values once its aliases (*name) are expanded "
        "(the cap for a config file); a benchmark file needs a few dozen"
    )


def test_a_few_aliases_and_merge_keys_still_work(tmp_path):
    path = write(tmp_path / "c.yaml", "base: &base {n: 3, precision: fp16}\nexperiments:\n  - <<: *base\n    n: 4\n")
    doc = read_yaml(path)
    assert doc.data["experiments"] == [{"n": 4, "precision": "fp16"}]
    assert doc.line_of(("experiments", 0, "n")) == 4


def test_recursive_alias_is_refused(tmp_path):
    path = write(tmp_path / "c.yaml", "model: gpt2\nloop: &loop [*loop]\n")
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:2: nested more than {MAX_DEPTH} levels deep once its aliases")


def test_aliases_that_stack_nesting_past_the_cap_are_refused(tmp_path):
    # each anchor is shallow, but each holds the one before it: expanded, far deeper than the cap
    lines = ["a0: &a0 {x: 1}"]
    for i in range(1, 70):
        lines.append(f"a{i}: &a{i} " + "{k: " * 30 + f"*a{i - 1}" + "}" * 30)
    path = write(tmp_path / "deep.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels deep once its aliases"):
        read_yaml(path)


def test_deep_nesting_is_refused_at_its_line(tmp_path):
    path = write(tmp_path / "c.yaml", "model: gpt2\nx: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    assert error_of(path).problems == [
        f"{path}:2: nested more than {MAX_DEPTH} levels deep (the cap for a config file)"
    ]


def test_nesting_far_past_the_recursion_limit_is_a_config_error(tmp_path):
    path = write(tmp_path / "c.yaml", "x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:1: ")


def test_nesting_up_to_the_cap_is_fine(tmp_path):
    path = write(tmp_path / "c.yaml", "x: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n")
    assert read_yaml(path).data["x"] is not None


def test_too_many_values_without_aliases_are_refused_at_the_line_reached(tmp_path):
    path = write(tmp_path / "c.yaml", "model: gpt2\nx:\n" + "  - 1\n" * MAX_NODES)
    [problem] = error_of(path).problems
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: holds more than {MAX_NODES:,} keys and values "
                        r"\(the cap for a config file\)", problem)


def test_file_larger_than_the_cap_is_refused_before_parsing(tmp_path):
    path = write(tmp_path / "c.yaml", "model: gpt2\n" + "#" * MAX_FILE_BYTES + "\n")
    assert error_of(path).problems == [
        f"{path}: config file is larger than {MAX_FILE_BYTES / 2**20:g} MiB (the cap for a config file); "
        "is this the right file?"
    ]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_stream_is_never_read():
    [problem] = error_of(Path("/dev/zero")).problems
    assert problem == "/dev/zero: cannot read config file: it is a character device, not a regular file"


@pytest.mark.parametrize(
    ("text", "line", "where"),
    [
        ('model: gpt2\nname: "a\\0b"\n', 2, "in 'name'"),
        ('model: gpt2\npytorch:\n  device: "cpu\\e[31m"\n', 3, "in 'pytorch.device'"),
        ('model: gpt2\n"bad\\x01key": 1\n', 2, "at the top level"),
        ('model: gpt2\nsweep:\n  n: [1, "\\x7f"]\n', 3, "in 'sweep.n.1'"),
    ],
    ids=["nul", "escape", "key", "list-item"],
)
def test_escaped_control_characters_are_refused_with_line_and_key(tmp_path, text, line, where):
    path = write(tmp_path / "c.yaml", text)
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:{line}: control character U+")
    assert f"{where}; remove it (config values are plain text)" in problem


def test_tabs_and_newlines_in_values_are_fine(tmp_path):
    path = write(tmp_path / "c.yaml", 'model: gpt2\nname: "a\\tb"\ntext: |\n  two\n  lines\n')
    assert read_yaml(path).data["name"] == "a\tb"


def test_raw_nul_byte_names_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"model: gpt2\nn: 3\nname: a\x00b\n")
    assert error_of(path).problems == [f"{path}:3: character U+0000 is not allowed in a YAML file; remove it"]


def test_a_binary_file_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    [problem] = error_of(path).problems
    assert problem.startswith(f"{path}:")
