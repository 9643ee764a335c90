"""Prompt sources: builtin, synthetic, JSON-lines files and the AI Energy Score set from the HF cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.datasets import load_prompts
from llenergymeasure.exceptions import PreFlightError


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- builtin -------------------------------------------------------------------------------------


def test_builtin_has_at_least_100_distinct_non_empty_prompts():
    prompts = load_prompts("builtin", 100)
    assert len(prompts) == 100
    assert all(isinstance(p, str) and p.strip() for p in prompts)
    assert len(set(prompts)) == 100


def test_builtin_is_in_file_order_so_a_smaller_n_is_a_prefix():
    assert load_prompts("builtin", 10) == load_prompts("builtin", 100)[:10]


def test_builtin_asking_for_more_than_it_has_is_a_preflight_error():
    with pytest.raises(PreFlightError, match=r"'builtin' has \d+ prompts but n=100000; lower n") as info:
        load_prompts("builtin", 100_000)
    assert info.value.exit_code == 1


# --- synthetic -----------------------------------------------------------------------------------


def test_synthetic_same_seed_same_prompts():
    assert load_prompts("synthetic", 5, seed=7, input_tokens=20) == load_prompts("synthetic", 5, seed=7, input_tokens=20)


def test_synthetic_different_seed_different_prompts():
    assert load_prompts("synthetic", 5, seed=7, input_tokens=20) != load_prompts("synthetic", 5, seed=8, input_tokens=20)


@pytest.mark.parametrize("words", [1, 13, 512])
def test_synthetic_has_the_requested_word_count(words):
    prompts = load_prompts("synthetic", 4, seed=0, input_tokens=words)
    assert len(prompts) == 4
    assert [len(p.split()) for p in prompts] == [words] * 4


def test_synthetic_prompts_differ_from_each_other():
    prompts = load_prompts("synthetic", 10, seed=1, input_tokens=30)
    assert len(set(prompts)) == 10


def test_synthetic_gives_any_n():
    assert len(load_prompts("synthetic", 1000, seed=1, input_tokens=3)) == 1000


# --- jsonl ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["prompt", "text", "question", "instruction", "input", "content"])
def test_jsonl_prompt_column_is_auto_detected(tmp_path, column):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, column: "first"}, {"id": 2, column: "second"}])
    assert load_prompts(str(path), 2) == ["first", "second"]


def test_jsonl_prefers_prompt_over_text(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "wrong", "prompt": "right"}])
    assert load_prompts(str(path), 1) == ["right"]


def test_jsonl_skips_blank_lines_and_empty_prompts_and_takes_the_first_n(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "   "}\n{"prompt": "b"}\n{"prompt": "c"}\n', encoding="utf-8")
    assert load_prompts(str(path), 2) == ["a", "b"]


def test_jsonl_of_plain_strings(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ["one", "two", ""])
    assert load_prompts(str(path), 2) == ["one", "two"]


def test_json_suffix_is_read_as_json_lines(tmp_path):
    path = write_jsonl(tmp_path / "p.json", [{"question": "q1"}, {"question": "q2"}])
    assert load_prompts(str(path), 2) == ["q1", "q2"]


def test_jsonl_with_no_known_column_lists_the_columns_found(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"body": "x", "label": 1}])
    with pytest.raises(PreFlightError) as info:
        load_prompts(str(path), 1)
    message = str(info.value)
    assert str(path) in message
    assert "no prompt column found" in message
    assert "the file has body, label" in message
    assert "rename the column to 'prompt'" in message


def test_jsonl_invalid_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": oops}\n', encoding="utf-8")
    with pytest.raises(PreFlightError) as info:
        load_prompts(str(path), 1)
    assert f"{path}:3: not valid JSON" in str(info.value)


def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n\n\n[1,\n', encoding="utf-8")
    with pytest.raises(PreFlightError, match=r"p\.jsonl:4: not valid JSON"):
        load_prompts(str(path), 1)


def test_jsonl_with_too_few_prompts_for_n(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": "b"}])
    with pytest.raises(PreFlightError) as info:
        load_prompts(str(path), 3)
    assert f"'{path}' has 2 prompts but n=3" in str(info.value)
    assert info.value.problems and len(info.value.problems) == 1


def test_missing_jsonl_file_is_a_preflight_error(tmp_path):
    path = tmp_path / "missing.jsonl"
    with pytest.raises(PreFlightError, match=r"dataset: file '.*missing\.jsonl' does not exist; check the path"):
        load_prompts(str(path), 1)


def test_unknown_dataset_name_lists_the_choices():
    with pytest.raises(PreFlightError) as info:
        load_prompts("wikitext", 1)
    message = str(info.value)
    assert "unknown dataset 'wikitext'" in message
    for name in ("aienergyscore", "builtin", "synthetic", ".jsonl"):
        assert name in message


def test_jsonl_rows_that_are_neither_objects_nor_strings(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [[1, 2], [3, 4]])
    with pytest.raises(PreFlightError, match="each line must be a JSON object or string"):
        load_prompts(str(path), 1)


# --- broken and hostile prompt files ------------------------------------------------------------


def preflight_problem(dataset: str, n: int = 1) -> str:
    with pytest.raises(PreFlightError) as info:
        load_prompts(dataset, n)
    [problem] = info.value.problems
    return problem


def test_binary_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"prompt": "fine"}\n' + bytes(range(128, 256)) + b"\n")
    assert preflight_problem(str(path)) == (
        f"dataset: {path}:2: not UTF-8 text (byte 0x80 at column 1); is this a JSON-lines file? save it as UTF-8"
    )


def test_latin1_text_names_the_line_and_column(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    assert preflight_problem(str(path)).startswith(f"dataset: {path}:3: not UTF-8 text (byte 0xe9 at column 16)")


def test_a_file_that_is_no_json_lines_at_all_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    import llenergymeasure.datasets.jsonl as jsonl

    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x" * 5000)
    assert preflight_problem(str(path)) == (
        f"dataset: {path}:1: line longer than 1,000 bytes; is this a JSON-lines file (one prompt per line)?"
    )


@pytest.mark.parametrize(
    ("prompt", "code"), [("a\x00b", "0000"), ("\x1b[31mred", "001B"), ("del\x7f", "007F")], ids=["nul", "esc", "del"]
)
def test_control_characters_in_a_prompt_name_the_file_and_line(tmp_path, prompt, code):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "fine"}, {"prompt": prompt}])
    assert preflight_problem(str(path)) == (
        f"dataset: {path}:2: the prompt holds control character U+{code}; remove it (prompts are plain text)"
    )


def test_tabs_and_newlines_in_prompts_are_fine(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "two\nlines\twith a tab\r\n"}])
    assert load_prompts(str(path), 1) == ["two\nlines\twith a tab\r\n"]


def test_unicode_line_separators_inside_a_prompt_do_not_split_its_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "a\u2028b\x85c"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_prompts(str(path), 1) == ["a\u2028b\x85c"]


def test_json_nested_past_the_recursion_limit_names_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    assert preflight_problem(str(path)) == f"dataset: {path}:2: not valid JSON (nested too deeply)"


def test_a_directory_as_dataset_is_a_preflight_error(tmp_path):
    (tmp_path / "prompts.jsonl").mkdir()
    assert preflight_problem(str(tmp_path / "prompts.jsonl")).startswith(f"dataset: cannot read {tmp_path}")


def test_a_dataset_name_too_long_for_the_filesystem_is_an_unknown_dataset():
    assert preflight_problem("x" * 300).startswith("dataset: unknown dataset 'xxx")


def test_damaged_cached_aienergyscore_file_names_it(hf_snapshot):
    snapshot = hf_snapshot("datasets", "AIEnergyScore/text_generation")
    (snapshot / "data.json").write_bytes(b"\xff\xfe garbage")
    problem = preflight_problem("aienergyscore")
    assert problem.startswith(f"dataset: {snapshot / 'data.json'}: cannot read it (UnicodeDecodeError")
    assert problem.endswith("delete it from the Hugging Face cache to download it again")


def test_cached_aienergyscore_json_that_is_not_a_list(hf_snapshot):
    snapshot = hf_snapshot("datasets", "AIEnergyScore/text_generation")
    (snapshot / "data.json").write_text('{"text": "a"}', encoding="utf-8")
    expected = f"dataset: {snapshot / 'data.json'}: expected a list of rows, found a dict"
    assert preflight_problem("aienergyscore") == expected


# --- aienergyscore from a hand-made HF cache -----------------------------------------------------


@pytest.fixture
def snapshot(hf_snapshot) -> Path:
    """The cached snapshot folder of AIEnergyScore/text_generation (``hf_cache``), empty until a test writes to it."""
    return hf_snapshot("datasets", "AIEnergyScore/text_generation")


def test_aienergyscore_from_cached_jsonl(snapshot):
    write_jsonl(snapshot / "text_generation.jsonl", [{"text": f"prompt {i}", "source": "x"} for i in range(5)])
    assert load_prompts("aienergyscore", 3) == ["prompt 0", "prompt 1", "prompt 2"]


def test_aienergyscore_from_cached_csv(snapshot):
    (snapshot / "data.csv").write_text('text,source\n"first, with a comma",wiki\nsecond,oscar\n', encoding="utf-8")
    assert load_prompts("aienergyscore", 2) == ["first, with a comma", "second"]


def test_aienergyscore_from_cached_json_array(snapshot):
    (snapshot / "data.json").write_text(json.dumps([{"text": "a"}, {"text": "b"}]), encoding="utf-8")
    assert load_prompts("aienergyscore", 2) == ["a", "b"]


def test_aienergyscore_data_file_in_a_subfolder(snapshot):
    (snapshot / "data").mkdir()
    write_jsonl(snapshot / "data" / "train.jsonl", [{"text": "nested"}])
    assert load_prompts("aienergyscore", 1) == ["nested"]


def test_aienergyscore_with_too_few_cached_prompts(snapshot):
    write_jsonl(snapshot / "text_generation.jsonl", [{"text": "only one"}])
    with pytest.raises(PreFlightError, match="'aienergyscore' has 1 prompts but n=2"):
        load_prompts("aienergyscore", 2)


def test_aienergyscore_snapshot_without_data_file(snapshot):
    (snapshot / "README.md").write_text("# no data\n")
    with pytest.raises(PreFlightError, match="holds no data file"):
        load_prompts("aienergyscore", 1)


def test_aienergyscore_with_an_empty_cache_suggests_builtin(hf_cache):
    with pytest.raises(PreFlightError) as info:
        load_prompts("aienergyscore", 1)
    message = str(info.value)
    assert "AIEnergyScore/text_generation" in message
    assert "builtin" in message
    assert info.value.exit_code == 1


def test_synthetic_prompts_too_large_to_build_are_a_preflight_error():
    from llenergymeasure.datasets.synthetic import MAX_WORDS

    with pytest.raises(PreFlightError) as info:
        load_prompts("synthetic", 1_000_000, input_tokens=1 << 20)
    assert info.value.problems == [
        f"dataset: synthetic prompts of n=1,000,000 x max_input_tokens=1,048,576 make 1,048,576,000,000 words, "
        f"more than {MAX_WORDS:,}; lower n or max_input_tokens"
    ]
