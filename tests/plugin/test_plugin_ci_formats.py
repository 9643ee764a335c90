"""What CI tools read: github-action-benchmark's JSON, and a markdown report that puts what needs
attention first and fits in a GitHub comment."""

from __future__ import annotations

import json

from pytest_llem.ci_formats import GITHUB_COMMENT_LIMIT, attention_first, benchmark_entries, fit_markdown

METERED = """\
model: MODEL
dataset: builtin
n: 4
max_input_tokens: 16
max_output_tokens: 32
precision: fp32
repeats: 3
warmup: {n_warmup: 0}
baseline: {enabled: false}
energy: {source: nvml}
pytorch: {batch_size: 1, device: cpu}
"""


def test_benchmark_json_and_html_report_of_a_session(pytester, write_llem, fake_meter):
    fake_meter(joules=2.0)  # every window exactly 2 J over 4 x 32 tokens
    write_llem("llem_tiny.yaml", METERED)
    result = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-benchmark-json", "out/b.json",
                                           "--llem-html", "out/r.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["llem: 2 benchmark value(s) written to out/b.json (github-action-benchmark, "
                                 "customSmallerIsBetter)", "llem: HTML report written to out/r.html"])
    html = (pytester.path / "out" / "r.html").read_text()
    assert "llem_tiny.yaml::tiny" in html and "<svg" in html
    assert "http://" not in html and "https://" not in html
    entries = json.loads((pytester.path / "out" / "b.json").read_text())
    assert [(e["name"], e["unit"]) for e in entries] == [("llem_tiny.yaml::tiny joules_per_token", "J/token"),
                                                         ("llem_tiny.yaml::tiny wh_per_1000_queries", "Wh/1000 queries")]
    assert entries[0]["value"] == 2.0 / 128
    assert entries[1]["value"] == 2.0 / 4 * 1000 / 3600
    assert entries[0]["range"] == "± 0" and entries[0]["extra"] == "energy: nvml_counter"


def test_items_without_a_measured_number_are_left_out_and_flags_are_said():
    records = [
        {"nodeid": "a", "joules_per_token": None, "energy_source": "none"},
        {"nodeid": "b", "joules_per_token": 0.5, "wh_per_1000_queries": float("nan"), "energy_source": "cpu_estimate",
         "estimated": True, "ci95": {"joules_per_token": [0.4, 0.6]}},
    ]
    assert benchmark_entries(records) == [{"name": "b joules_per_token", "unit": "J/token", "value": 0.5,
                                           "range": "± 0.1", "extra": "energy: cpu_estimate (estimated)"}]


def test_failed_and_regressed_items_come_first_then_undecided_ones():
    records = [{"nodeid": "ok", "outcome": "passed"},
               {"nodeid": "undecided", "outcome": "passed", "regression": {"verdict": "inconclusive", "why": "noisy"}},
               {"nodeid": "regressed", "outcome": "failed", "regression": {"verdict": "regressed"}},
               {"nodeid": "fine", "outcome": "passed", "regression": {"verdict": "unchanged"}}]
    assert [r["nodeid"] for r in attention_first(records)] == ["regressed", "undecided", "ok", "fine"]


def test_a_report_too_long_for_a_github_comment_drops_passed_rows_from_the_end_with_a_count():
    rows = [f"| item {i} | {'x' * 200} |" for i in range(1000)]  # ~210 KB
    report = fit_markdown(["## llem results", "", "| item | verdict |", "| --- | --- |"], rows, ["", "note"], keep=3)
    assert len(report) <= GITHUB_COMMENT_LIMIT
    assert "| item 0 |" in report and "| item 2 |" in report and "| item 999 |" not in report
    shown = sum(line.startswith("| item ") and "xxx" in line for line in report.splitlines())
    assert f"... {1000 - shown} more item(s) not shown" in report
    assert report.index("note") < report.index("more item(s) not shown")
    small = fit_markdown(["## h"], ["| a |"], ["tail"], keep=0)
    assert small == "## h\n| a |\ntail\n"
