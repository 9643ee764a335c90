"""Regression gates against saved baselines, end to end on the tiny model (CPU), and CI reports.

Save a baseline; an unchanged rerun passes; the same experiment spending more energy per token
fails its item with the numbers and a note that its config changed; what cannot be compared warns
(or fails with --llem-require-baseline) and is never a usage error.

The verdicts are measured on a fake GPU (``fake_meter``: a fixed number of joules per window),
not on the CPU estimate: that varies 10-60% from process to process on a shared machine, so a
verdict on it would depend on the machine's load. The tests that need no verdict use the CPU.
"""

from __future__ import annotations

import json

import pytest

TINY = """\
model: MODEL
dataset: builtin
n: 16
max_input_tokens: 32
max_output_tokens: 48
precision: fp32
repeats: 3
warmup: {n_warmup: 1}
baseline: {enabled: false}
pytorch: {batch_size: 8}
regression:
  joules_per_token: 50%
"""

# Measured on the fake GPU: every window is exactly the fake's joules over 8 x 32 tokens. One
# prompt at a time: 256 generation steps keep a window above the 0.1 s the NVML meter needs
# even on a fast, idle CPU.
METERED = """\
model: MODEL
dataset: builtin
n: 8
max_input_tokens: 32
max_output_tokens: 32
precision: fp32
repeats: 3
warmup: {n_warmup: 1}
baseline: {enabled: false}
energy: {source: nvml}
pytorch: {batch_size: 1, device: cpu}
regression:
  joules_per_token: 50%
"""


def _baselines(pytester: pytest.Pytester) -> list:
    return sorted((pytester.path / ".llem" / "baselines").glob("*/*.json"))


def test_save_then_unchanged_passes_then_more_energy_per_token_fails(pytester, write_llem, fake_meter):
    fake_meter(joules=1.0)
    llem_file = write_llem("llem_tiny.yaml", METERED)
    saved = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline")
    saved.assert_outcomes(passed=1)
    [baseline] = _baselines(pytester)
    assert baseline.parent.name.startswith("cpu-")
    shown = baseline.relative_to(pytester.path).as_posix()  # relative to the repository (here: where pytest ran)
    saved.stdout.fnmatch_lines([f"llem: baseline of 1 item(s) (1 passed) saved to {shown}"])
    entry = json.loads(baseline.read_text())["entries"]["llem_tiny.yaml::tiny"]
    assert len(entry["repeats"]) == 3 and entry["config"]["max_input_tokens"] == 32
    assert [r["joules_per_token"] for r in entry["repeats"]] == [1.0 / 256] * 3  # exact: the fake's 1 J per window
    assert entry["status"] == "passed"

    first = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-save-baseline")
    first.assert_outcomes(passed=1)  # one saved session: how sessions differ is unknown, so no verdict yet
    first.stdout.re_match_lines([r"llem_tiny.yaml::tiny .* joules_per_token \+0\.0% inconclusive"])
    unchanged = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto")
    unchanged.assert_outcomes(passed=1)
    unchanged.stdout.re_match_lines([r"item\s+J/token\s+tokens/s\s+energy source\s+verdict\s+vs baseline",
                                     r"llem_tiny.yaml::tiny .* joules_per_token \+0\.0% unchanged"])

    fake_meter(joules=3.0)  # the GPU now spends three times the energy on the same tokens: +200%, exactly
    llem_file.write_text(llem_file.read_text().replace("max_input_tokens: 32", "max_input_tokens: 24"))
    regressed = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-markdown", "report.md")
    assert regressed.ret == pytest.ExitCode.TESTS_FAILED
    regressed.assert_outcomes(failed=1)
    regressed.stdout.re_match_lines([
        r"joules_per_token 0.01172 vs 0.003906 \(\+200\.0%, 95% CI \+200\.0%\.\.\+200\.0%, over 2 history sessions, "
        r"between-session SD 0\.0%\) > 50% threshold: regressed",
        r"confirmed on re-measurement: joules_per_token 0.01172 vs 0.003906 \(\+200\.0%, 98\.5% CI .*: regressed",
        r"config changed since the baseline: max_input_tokens 32 -> 24",
        r"judged against the level of the previous config \(a new config has no history yet\)",
        rf"baseline: this machine's history in {baseline.parent.relative_to(pytester.path).as_posix()}",
    ])
    regressed.stdout.re_match_lines([r"llem_tiny.yaml::tiny .* FAIL: regressed against the baseline \(confirmed\)"
                                     r"(?:; doubtful: \w+(?:, \w+)*)?\s+"  # short_window, on a machine fast enough
                                     r"joules_per_token \+200\.0% regressed, re-measured: joules_per_token \+200\.0% "
                                     r"regressed \(confirmed\)",
                                     r"FAILED llem_tiny.yaml::tiny - joules_per_token"])
    report = (pytester.path / "report.md").read_text()
    assert "| llem_tiny.yaml::tiny |" in report and "regressed" in report
    assert "config changed since the baseline: max_input_tokens 32 -> 24" in report


def test_what_cannot_be_compared_warns_or_fails_when_required(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY.replace("repeats: 3", "repeats: 1"))
    missing = pytester.runpytest_subprocess("--llem-baseline", "auto")
    missing.assert_outcomes(passed=1, warnings=1)
    missing.stdout.fnmatch_lines(["llem_tiny.yaml::tiny",
                                  "  llem_tiny.yaml:1: LlemBaselineWarning: not compared with the baseline: "
                                  "no baseline saved for this machine (cpu-*) under *; save one with --llem-save-baseline",
                                  "*llem_tiny.yaml::tiny *passed*unverified"])

    (pytester.path / "corrupt.json").write_text('{"kind": "llem-baseline", "schema_version": 1, "entries": 3')
    required = pytester.runpytest_subprocess("--llem-baseline", "corrupt.json", "--llem-require-baseline")
    assert required.ret == pytest.ExitCode.TESTS_FAILED
    required.stdout.fnmatch_lines(["*corrupt.json: not a readable baseline file*", "(--llem-require-baseline)"])


def test_a_baseline_from_another_machine_is_not_compared(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY.replace("repeats: 3", "repeats: 1"))
    pytester.runpytest_subprocess("--llem-save-baseline=base.json").assert_outcomes(passed=1)
    data = json.loads((pytester.path / "base.json").read_text())
    data["machine"]["gpus"] = ["NVIDIA H200"]
    (pytester.path / "base.json").write_text(json.dumps(data))
    result = pytester.runpytest_subprocess("--llem-baseline", "base.json")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*not compared with the baseline: baseline measured on 1x NVIDIA H200, "
                                 "cpu_estimate, this run on cpu *"])


def test_a_malformed_fail_on_is_a_usage_error(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY)
    result = pytester.runpytest("--llem-fail-on", "joules:5%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llem-fail-on joules:5%: unknown metric 'joules'*"])


def test_a_partial_save_holds_what_it_measured_and_the_others_history_is_read_past_it(pytester, write_llem, fake_meter):
    fake_meter(joules=1.0)
    # both keep METERED's 8 prompts x 32 tokens one at a time: windows well above the 0.1 s the meter needs
    write_llem("llem_pair.yaml", METERED + "experiments:\n  - {name: small}\n  - {name: big, max_input_tokens: 24}\n")
    for _ in range(2):
        pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline").assert_outcomes(passed=2)
    partial = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline", "-k", "small")
    partial.assert_outcomes(passed=1, deselected=1)
    partial.stdout.fnmatch_lines(["llem: baseline of 1 item(s) (1 passed) saved to *"])
    assert set(json.loads(_baselines(pytester)[-1].read_text())["entries"]) == {"llem_pair.yaml::small"}

    judged = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "-k", "big")
    judged.assert_outcomes(passed=1, deselected=1)
    judged.stdout.re_match_lines([r"llem_pair.yaml::big .* joules_per_token \+0\.0% unchanged"])
