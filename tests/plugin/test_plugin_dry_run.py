"""``--llem-dry-run``: every experiment checked without loading or measuring; items fail only on
what can be known here (a missing local model or dataset, a VRAM estimate above the GPU's memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TINY = "model: MODEL\ndataset: builtin\nn: 2\nprecision: fp32\n"

# Printed at the end of a session: which heavy modules it imported.
IMPORT_WATCH = """
import sys

def pytest_unconfigure(config):
    print("heavy imports:", sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""


def test_the_repository_benchmarks_pass_a_dry_run_without_torch(pytester):
    pytester.makepyfile(importwatch=IMPORT_WATCH)
    result = pytester.runpytest_subprocess(str(REPO / "benchmarks"), "--llem-dry-run", "-p", "importwatch", "-s",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    collected = pytester.runpytest_subprocess(str(REPO / "benchmarks"), "--co", "-q", "-p", "no:cacheprovider")
    n_experiments = sum("::" in line for line in collected.outlines)
    assert n_experiments >= 2
    result.assert_outcomes(passed=n_experiments)
    result.stdout.fnmatch_lines(["*llem dry run*", "heavy imports: []"])


def test_dry_run_table_shows_vram_estimates(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY + "sweep:\n  pytorch.batch_size: [1, 64]\n")
    result = pytester.runpytest("--llem-dry-run")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([
        r"=+ llem dry run =+",
        r"item\s+VRAM estimate\s+verdict",
        r"llem_tiny.yaml::tiny\[batch_size=1\]\s+\d+\.\d\d GB\s+ok",
        r"llem_tiny.yaml::tiny\[batch_size=64\]\s+\d+\.\d\d GB\s+ok",
    ])


def test_dry_run_fails_what_cannot_run(pytester, write_llem):
    write_llem("llem_nomodel.yaml", "model: ./no-such-model\ndataset: ./prompts.jsonl\n")
    result = pytester.runpytest("--llem-dry-run")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model: path * does not exist*", "*dataset: file * does not exist*"])
    assert "Traceback" not in result.stdout.str()


def test_dry_run_fails_when_the_vram_estimate_exceeds_the_gpu(pytester, write_llem, fake_gpus):
    fake_gpus(count=1, memory_gb=0.1)
    write_llem("llem_tiny.yaml", TINY)
    result = pytester.runpytest_subprocess("-p", "fakegpus", "--llem-dry-run")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*VRAM: the estimate is * GB but the GPU has 0.1 GB; lower pytorch.batch_size*"])


def test_markdown_report_is_written_and_appended_to_the_github_step_summary(pytester, write_llem, monkeypatch):
    write_llem("llem_tiny.yaml", TINY)
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--llem-dry-run", "--llem-markdown", "report.md")
    result.assert_outcomes(passed=1)
    report = (pytester.path / "report.md").read_text()
    assert report.splitlines()[:4] == ["## llem dry run", "", "| item | VRAM estimate | verdict |", "| --- | --- | --- |"]
    assert "| llem_tiny.yaml::tiny |" in report
    assert summary.read_text() == "earlier step\n" + report


def test_require_energy_in_a_dry_run_is_a_note_not_a_failure(pytester, write_llem):
    write_llem("llem_gpu.yaml", TINY + "pytorch: {device: cuda}\n")
    result = pytester.runpytest("--llem-dry-run", "--llem-require-energy")
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"llem_gpu.yaml::gpu .* ok; .*on this machine: needs a GPU \(pytorch.device: cuda\)"])
