"""Collection: items per experiment with stable ids, YAML locations, marks, and config errors
reported as collection errors (exit 2) in the loader's words."""

from __future__ import annotations

import pytest

STUDY = """
    name: serving
    model: MODEL
    dataset: builtin
    n: 2
    sweep:
      precision: [fp32, bf16]
      pytorch.batch_size: [1, 2]
    experiments:
      - {name: big-batch, pytorch: {batch_size: 4}}
    marks: [slow]
"""


def test_sweep_points_are_items_with_stable_ids(pytester, write_llem):
    write_llem("llem_serving.yaml", STUDY)
    ids = [
        "llem_serving.yaml::serving[precision=fp32,batch_size=1]",
        "llem_serving.yaml::serving[precision=fp32,batch_size=2]",
        "llem_serving.yaml::serving[precision=bf16,batch_size=1]",
        "llem_serving.yaml::serving[precision=bf16,batch_size=2]",
        "llem_serving.yaml::big-batch",
    ]
    for _ in range(2):  # the same ids on every run
        result = pytester.runpytest("--co", "-q")
        assert result.ret == pytest.ExitCode.OK
        assert [line for line in result.outlines if "::" in line] == ids


def test_items_point_at_their_yaml_line(pytester, write_llem):
    write_llem("llem_serving.yaml", STUDY)
    items, _ = pytester.inline_genitems()
    locations = {item.name: item.location for item in items}
    assert locations["big-batch"][:2] == ("llem_serving.yaml", 9)  # line 10, 0-based
    assert locations["serving[precision=fp32,batch_size=1]"][0] == "llem_serving.yaml"


def test_k_and_m_select_experiments(pytester, write_llem):
    write_llem("llem_serving.yaml", STUDY)
    write_llem("llem_other.yaml", "model: MODEL\nn: 2\n")
    by_keyword = pytester.runpytest("--co", "-q", "-k", "bf16")
    assert [line for line in by_keyword.outlines if "::" in line] == [
        "llem_serving.yaml::serving[precision=bf16,batch_size=1]",
        "llem_serving.yaml::serving[precision=bf16,batch_size=2]",
    ]
    by_mark = pytester.runpytest("--co", "-q", "-m", "not slow", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    assert [line for line in by_mark.outlines if "::" in line] == ["llem_other.yaml::other"]
    every_llem_item = pytester.runpytest("--co", "-q", "-m", "llem", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    assert "6 tests collected" in every_llem_item.stdout.str()


def test_m_selects_sweep_points_by_value(pytester, write_llem):
    write_llem("llem_serving.yaml", STUDY.replace("marks: [slow]", ""))
    by_value = pytester.runpytest("--co", "-q", "-m", "llem(precision='bf16', batch_size=2)")
    assert [line for line in by_value.outlines if "::" in line] == [
        "llem_serving.yaml::serving[precision=bf16,batch_size=2]"]
    by_batch = pytester.runpytest("--co", "-q", "-m", "llem(batch_size=1)")
    assert [line for line in by_batch.outlines if "::" in line] == [
        "llem_serving.yaml::serving[precision=fp32,batch_size=1]",
        "llem_serving.yaml::serving[precision=bf16,batch_size=1]",
    ]


def test_a_bad_file_is_a_collection_error_naming_file_line_and_key(pytester, write_llem):
    write_llem("llem_good.yaml", "model: MODEL\nn: 2\ndataset: builtin\nmax_output_tokens: 4\n")
    write_llem("llem_bad.yaml", "model: MODEL\npytorch:\n  batch_sise: 2\nprecision: fp64\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2, as for any collection error
    result.stdout.fnmatch_lines(["*ERROR collecting llem_bad.yaml*"])
    assert "llem_bad.yaml:3: unknown key 'pytorch.batch_sise'; did you mean 'pytorch.batch_size'?" in result.outlines
    assert "llem_bad.yaml:4: precision: 'fp64' is not one of auto, fp32, fp16, bf16; did you mean 'fp16'?" in result.outlines
    assert "Traceback" not in result.stdout.str()
    assert "pydantic" not in result.stdout.str()

    carry_on = pytester.runpytest("--continue-on-collection-errors")
    carry_on.assert_outcomes(passed=1, errors=1)


def test_yaml_syntax_error_is_a_collection_error(pytester, write_llem):
    write_llem("llem_broken.yaml", "model: MODEL\nsweep:\n  precision: [fp32, bf16\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting llem_broken.yaml*", "*llem_broken.yaml:*"])
    assert "Traceback" not in result.stdout.str()


def test_ini_llem_files_changes_the_pattern(pytester, write_llem):
    pytester.makeini("[pytest]\nllem_files = energy_*.yaml\n")
    write_llem("energy_gpt.yaml", "model: MODEL\n")
    write_llem("llem_ignored.yaml", "model: MODEL\n")
    result = pytester.runpytest("--co", "-q")
    assert [line for line in result.outlines if "::" in line] == ["energy_gpt.yaml::energy_gpt"]


def test_p_no_llem_disables_the_plugin(pytester, write_llem):
    write_llem("llem_serving.yaml", STUDY)
    result = pytester.runpytest("-p", "no:llem", "--co", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    unknown = pytester.runpytest("-p", "no:llem", "--llem-dry-run")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR


def test_collection_never_imports_torch(pytester, write_llem):
    write_llem("llem_serving.yaml", STUDY)
    pytester.makeconftest(
        "import sys\n"
        "def pytest_unconfigure(config):\n"
        "    print('heavy imports:', sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    result = pytester.runpytest_subprocess("--co", "-q", "-s")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["heavy imports: []"])


def test_an_unregistered_yaml_mark_under_strict_markers_names_the_yaml_line(pytester, write_llem):
    write_llem("llem_marked.yaml", "model: MODEL\nmarks: [nightly]\n")
    result = pytester.runpytest("--co", "--strict-markers")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert ("llem_marked.yaml:2: marks: 'nightly' not registered and --strict-markers is on; "
            "add them to 'markers' in your pytest configuration") in result.outlines
    pytester.makeini("[pytest]\nmarkers =\n    nightly: slow benchmarks\n")
    assert pytester.runpytest("--co", "--strict-markers").ret == pytest.ExitCode.OK


def test_other_test_suites_get_no_llem_header(pytester):
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not any(line.startswith("llem:") for line in result.outlines)
