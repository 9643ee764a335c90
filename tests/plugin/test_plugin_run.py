"""Running items for real on the tiny model (CPU): gates, failure texts, JUnit properties,
result files, run errors, and setup skips for what the machine lacks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

TINY = """\
model: MODEL
dataset: builtin
n: 2
max_input_tokens: 32
max_output_tokens: 4
precision: fp32
warmup: {enabled: false}
baseline: {enabled: false}
"""


def test_a_gate_below_the_measurement_fails_its_item_with_the_diff(pytester, write_llem):
    write_llem("llem_pass.yaml", TINY + "expect:\n  joules_per_token: {max: 100}\n")
    write_llem("llem_fail.yaml", TINY + "expect:\n  joules_per_token: {max: 0.000001}\n  tokens_per_second: {min: 0.1}\n")
    result = pytester.runpytest_subprocess("--junitxml=junit.xml", "-rf")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    # the failure text is the gate's diff, not a traceback
    result.stdout.re_match_lines([
        r"_+ fail _+",
        r"joules_per_token \S+ > max 1e-06 \(\+\d[\d.]*%\)",
        r"energy: cpu_estimate \(estimated, not measured\)",
    ])
    result.stdout.re_match_lines([r"FAILED llem_fail.yaml::fail - joules_per_token \S+ > max 1e-06"])
    assert "Traceback" not in result.stdout.str()

    testcases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")}
    properties = {p.get("name"): p.get("value") for p in testcases["pass"].iter("property")}
    assert float(properties["joules_per_token"]) > 0
    assert properties["energy_source"] == "cpu_estimate"
    assert properties["estimated"] == "True"


def test_summary_table_lists_every_item_with_source_and_verdict(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY + "sweep:\n  pytorch.batch_size: [1, 2]\nexpect:\n  tokens_per_second: {min: 0.1}\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([
        r"=+ llem results =+",
        r"item\s+J/token\s+tokens/s\s+energy source\s+verdict",
        r"llem_tiny.yaml::tiny\[batch_size=1\]\s+\S+ \(est\.\)\s+\S+\s+cpu_estimate\s+PASS: tokens_per_second \S+ within min 0.1",
        r"llem_tiny.yaml::tiny\[batch_size=2\]\s+\S+ \(est\.\)\s+\S+\s+cpu_estimate\s+PASS",
        r"\(est\.\) = estimated from CPU time, not measured.*",
    ])


def test_output_repeats_and_json_options(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY)
    result = pytester.runpytest_subprocess("--llem-output", "results", "--llem-repeats", "2", "--llem-json", "session.json")
    result.assert_outcomes(passed=1)
    saved = [p for p in (pytester.path / "results").glob("*.json") if not p.name.endswith(".timeline.json")]
    assert len(saved) == 1
    assert len(json.loads(saved[0].read_text())["repeats"]) == 2

    session = json.loads((pytester.path / "session.json").read_text())
    [item] = session["items"]
    assert item["nodeid"] == "llem_tiny.yaml::tiny"
    assert item["outcome"] == "passed"
    assert item["energy_source"] == "cpu_estimate" and item["estimated"] is True
    assert item["result_path"] == str(saved[0].relative_to(pytester.path))
    assert item["result"]["config"]["repeats"] == 2


def test_a_run_error_fails_the_item_with_the_core_message(pytester, write_llem):
    write_llem("llem_toomany.yaml", TINY.replace("n: 2", "n: 500"))
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*Pre-flight check failed (1 problem):*", "*dataset: 'builtin' has 120 prompts but n=500*"])
    assert "Traceback" not in result.stdout.str()


def test_missing_gpu_skips_at_setup_and_require_energy_fails(pytester, write_llem):
    write_llem("llem_gpu.yaml", TINY + "pytorch: {device: cuda}\n")
    skipped = pytester.runpytest_subprocess("-rs")
    assert skipped.ret == pytest.ExitCode.OK  # skipped at setup, not at collection (which exits 5)
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.re_match_lines([r"SKIPPED \[1\] llem_gpu.yaml:1: needs a GPU \(pytorch.device: cuda\) but none is visible"])

    required = pytester.runpytest_subprocess("--llem-require-energy")
    assert required.ret == pytest.ExitCode.TESTS_FAILED
    required.assert_outcomes(errors=1)
    required.stdout.fnmatch_lines(["*needs a GPU (pytorch.device: cuda)*(--llem-require-energy)"])


def test_require_energy_refuses_an_estimate(pytester, write_llem):
    write_llem("llem_cpu.yaml", TINY)
    pytester.makeini("[pytest]\nllem_require_energy = true\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*energy would only be estimated from CPU time*(--llem-require-energy)"])
