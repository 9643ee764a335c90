"""Verdicts that hold across CI runs, through real pytest sessions on the tiny model:

- ``--llem-baseline auto`` compares with this machine's history of saved sessions;
- an item that cannot be judged says why and what to do, in the terminal and in JUnit;
- ``against:`` and ``--llem-against REF`` measure an experiment beside its reference (ABBA);
- baselines are found whatever directory pytest is started from.

Exact verdicts come from the fake GPU (``fake_meter``: a fixed number of joules per window); the
A/B tests on the CPU estimate use changes of several hundred percent against a 50% gate, far
beyond what process-to-process noise on a shared machine can produce.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.plugin.test_plugin_baseline import METERED, TINY

pytestmark = pytest.mark.slow

# A/B on the CPU estimate: 5 pairs, and torch on one thread (the fixture below), so that a loaded
# machine's window-to-window noise (mostly a second OpenMP thread spin-waiting) cannot hide +400%.
AB_TINY = TINY.replace("repeats: 3", "repeats: 5")


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _git(cwd, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_auto_compares_with_the_history_of_saved_sessions(pytester, write_llem, fake_meter):
    fake_meter(joules=1.0)
    write_llem("llem_tiny.yaml", METERED)
    for _ in range(3):
        pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline").assert_outcomes(passed=1)
    assert len(sorted((pytester.path / ".llem" / "baselines").glob("*/*.json"))) == 3

    same = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-json", "s.json")
    same.assert_outcomes(passed=1)
    [record] = json.loads((pytester.path / "s.json").read_text())["items"]
    assert record["regression"]["lines"][0] == (
        "joules_per_token 0.003906 vs 0.003906 (+0.0%, 95% CI +0.0%..+0.0%, over 3 history sessions, "
        "between-session SD 0.0%) within ±50% threshold: unchanged")
    assert record["regression"]["against"].startswith("this machine's history in ")

    fake_meter(joules=3.0)
    worse = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-history", "2")
    worse.assert_outcomes(failed=1)
    worse.stdout.fnmatch_lines(["joules_per_token 0.01172 vs 0.003906 (+200.0%, 95% CI +200.0%..+200.0%, "
                                "over 2 history sessions, between-session SD 0.0% (from 3 sessions)) > 50% threshold: "
                                "regressed; +200.0% since 20??-??-??, 3 sessions"])


def test_a_one_repeat_baseline_says_why_nothing_was_judged_and_what_to_do(pytester, write_llem, fake_meter):
    fake_meter(joules=1.0)
    write_llem("llem_tiny.yaml", METERED.replace("repeats: 3", "repeats: 1"))
    saved = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline")
    saved.stdout.fnmatch_lines(["llem: WARNING: 1 item(s) saved with fewer than 3 repeats: * save with --llem-repeats 5"])

    rerun = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--junitxml", "junit.xml",
                                          "-o", "junit_logging=system-out")
    rerun.assert_outcomes(passed=1, warnings=1)
    reason = ("joules_per_token 0.003906 vs 0.003906 (+0.0%) within ±50% threshold: inconclusive (1 history session, "
              "between-session variation unknown); joules_per_token: no MDE: with one session, how sessions differ is "
              "unknown; save more sessions (--llem-save-baseline) or measure an A/B (--llem-against)")
    rerun.stdout.fnmatch_lines([
        "*LlemBaselineWarning: " + reason.replace("[", "[[]"),
        "llem: 1 item(s) could not be judged against their baseline (--llem-inconclusive=warn):",
        "  llem_tiny.yaml::tiny: " + reason.replace("[", "[[]"),
    ])
    case = ET.parse(pytester.path / "junit.xml").getroot().find(".//testcase")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["baseline_verdict"] == "inconclusive" and properties["baseline_reason"] == reason
    assert f"llem: inconclusive: {reason}" in case.find("system-out").text

    strict = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-inconclusive", "fail")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["(--llem-inconclusive=fail)"])


def test_against_measures_each_experiment_beside_its_reference(pytester, write_llem, one_thread):
    write_llem("llem_tiny.yaml", AB_TINY.replace("pytorch: {batch_size: 8}\n", "")
               + "sweep:\n  pytorch.batch_size: [8, 1]\nagainst: {pytorch.batch_size: 8}\n")
    done = pytester.runpytest_subprocess("-p", "no:randomly")
    done.assert_outcomes(passed=1, failed=1)  # batch 8 is its own reference; batch 1 spends far more per token
    done.stdout.re_match_lines([r"joules_per_token .* \(\+\d+\.\d%, 95% CI .*, paired over 5 A/B pairs\) "
                                r"> 50% threshold: regressed",
                                r"B differs from A in: pytorch.batch_size 8 -> 1",
                                r"baseline: measured beside tiny\[batch_size=1\]~against \(A/B\)"])


def test_llem_against_a_git_revision_measures_the_change_beside_the_old_config(pytester, write_llem, one_thread):
    llem_file = write_llem("llem_tiny.yaml", AB_TINY)
    _git(pytester.path, "init", "-q")
    _git(pytester.path, "add", "llem_tiny.yaml")
    _git(pytester.path, "commit", "-qm", "batch 8")

    unchanged = pytester.runpytest_subprocess("--llem-against", "HEAD", "--llem-json", "u.json")
    unchanged.assert_outcomes(passed=1)
    [record] = json.loads((pytester.path / "u.json").read_text())["items"]
    assert record["notes"] == ["--llem-against HEAD: unchanged since HEAD, measured alone"]

    llem_file.write_text(llem_file.read_text().replace("batch_size: 8", "batch_size: 1"))
    changed = pytester.runpytest_subprocess("--llem-against", "HEAD")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*paired over 5 A/B pairs) > 50% threshold: regressed*",
                                  "B differs from A in: pytorch.batch_size 8 -> 1"])

    bad = pytester.runpytest_subprocess("--llem-against", "no-such-branch")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--llem-against no-such-branch: not a git revision of *"])


def test_baselines_are_found_from_any_directory(pytester, write_llem, fake_meter):
    fake_meter(joules=1.0)
    repo = pytester.path / "repo"
    write_llem("repo/benchmarks/llem_tiny.yaml", METERED)
    _git(repo, "init", "-q")
    run = [sys.executable, "-m", "pytest", "-p", "fakemeter", "-p", "no:cacheprovider"]
    for _ in range(2):
        inside = subprocess.run([*run, "benchmarks", "--llem-save-baseline"], cwd=repo, capture_output=True, text=True)
        assert inside.returncode == 0, inside.stdout
    saved = sorted((repo / ".llem" / "baselines").glob("*/*.json"))
    assert [list(json.loads(path.read_text())["entries"]) for path in saved] == [["benchmarks/llem_tiny.yaml::tiny"]] * 2

    outside = subprocess.run([*run, "repo/benchmarks/llem_tiny.yaml", "--llem-baseline", "auto", "--llem-json", "o.json"],
                             cwd=pytester.path, capture_output=True, text=True)
    assert outside.returncode == 0, outside.stdout
    [record] = json.loads((pytester.path / "o.json").read_text())["items"]
    assert record["regression"]["verdict"] == "unchanged"
    assert not (pytester.path / ".llem").exists()
