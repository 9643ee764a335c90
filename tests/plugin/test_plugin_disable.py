"""``--llem-disable``: benchmark items and ``llem_energy`` tests run once, unmeasured, as plain
tests (pytest-benchmark's ``--benchmark-disable``): no windows, gates, baselines or table; a broken
experiment still fails; options that compare or save are ignored, and said so; with a dry run it is
a usage error."""

from __future__ import annotations

import pytest

from tests.plugin.test_plugin_run import TINY as RUN_TINY

TINY = RUN_TINY + "repeats: 3\nexpect:\n  joules_per_token: {max: 1.0e-12}\n"

COUNTING = """\
import pytest

calls = []


@pytest.mark.llem(expect={"joules_per_token": {"max": 1e-12}})
def test_call(llem_energy):
    llem_energy(calls.append, 1, tokens=4, repeats=5, warmup=2)
    assert len(calls) == 1


@pytest.mark.llem(expect={"joules_per_token": {"max": 1e-12}})
def test_block(llem_energy):
    with llem_energy.window() as window:
        window.tokens = 8


def test_block_without_tokens(llem_energy):
    with llem_energy.window():
        pass
"""


def test_items_and_fixture_tests_run_once_unmeasured_and_ungated(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY)
    pytester.makepyfile(test_counting=COUNTING)
    result = pytester.runpytest_subprocess("--llem-disable", "--junitxml=junit.xml", "-p", "no:cacheprovider")
    # the 1e-12 J/token gates would fail a measured run; unmeasured, only the misuse fails
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    assert "llem: --llem-disable: benchmark items and llem_energy tests run once, unmeasured" in out
    assert "llem results" not in out and "joules_per_token" not in out
    result.stdout.fnmatch_lines(["*test_block_without_tokens*set window.tokens*"])
    err = result.stderr.str()
    assert "window 1/1" in err and "window 2/" not in err and "warmup" not in err, err
    assert not (pytester.path / ".llem").exists()


def test_a_broken_experiment_still_fails_unmeasured(pytester, write_llem):
    write_llem("llem_broken.yaml", TINY.replace("model: MODEL", "model: MODEL/../no-such-model"))
    result = pytester.runpytest_subprocess("--llem-disable", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "no-such-model" in result.stdout.str()


def test_with_a_dry_run_it_is_a_usage_error(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY)
    result = pytester.runpytest("--llem-disable", "--llem-dry-run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llem-disable with --llem-dry-run: *drop one of them*"])


def test_options_that_compare_or_save_are_ignored_and_said_so(pytester, write_llem):
    # the CI's addopts may hold them; a quick unmeasured run must not need them removed
    write_llem("llem_tiny.yaml", TINY)
    pytester.makeini("[pytest]\naddopts = --llem-baseline auto --llem-save-baseline --llem-require-baseline\n")
    result = pytester.runpytest_subprocess("--llem-disable", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["llem: --llem-disable: *(--llem-save-baseline, --llem-baseline, "
                                 "--llem-require-baseline ignored)"])
    assert not (pytester.path / ".llem").exists()
