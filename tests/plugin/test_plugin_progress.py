"""What a measuring session says while it runs: a start and an end line per item, the core's
phase lines named by the item, at pytest's default verbosity; nothing with ``-q``."""

from __future__ import annotations

import re

import pytest

from tests.plugin.test_plugin_run import TINY as RUN_TINY

TINY = RUN_TINY + "repeats: 2\n"


def test_each_item_says_when_it_starts_each_window_and_when_it_ends(pytester, write_llem, monkeypatch):
    monkeypatch.setenv("LLEM_PROGRESS_INTERVAL_S", "0")  # a batch line after every batch
    write_llem("llem_tiny.yaml", TINY)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    err = result.stderr.str()
    item = re.escape("llem: llem_tiny.yaml::tiny: ")
    lines = [line for line in err.splitlines() if line.startswith("llem: ")]
    assert re.fullmatch(item + "start: 2 windows", lines[0]), err
    assert re.fullmatch(item + r"done in \d+\.\d s", lines[-1]), err
    for window in (1, 2):
        assert re.search(item + rf"window {window}/2: \d+/\d+ batches, \d+ s\n", err), err
        assert re.search(item + rf"window {window}/2: done, 2/2 batches in \d+\.\d s\n", err), err
    assert re.search(item + r"loading .+ on cpu: done in \d+\.\d s\n", err), err
    assert "\r" not in err and "\x1b" not in err  # plain lines in a log, never a redrawn bar


def test_quiet_sessions_say_nothing_while_they_measure(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
    said = [line for line in result.stderr.str().splitlines()
            if line.startswith("llem: ") and "waiting for" not in line]  # a lock wait is always said
    assert said == []


def test_an_ab_item_says_what_it_is_measured_beside(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY + "against:\n  pytorch.batch_size: 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    assert re.search(r"llem: llem_tiny.yaml::tiny: start: 2 windows, each beside one of \S+", result.stderr.str()), \
        result.stderr.str()
