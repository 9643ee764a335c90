"""Where ``.llem/baselines`` is: the benchmark's git top, else the ini file's directory, else the
file's own directory; never the rootdir pytest derives from the arguments (without an ini file,
``pytest benchmarks/x.py`` and ``pytest .`` would then keep two histories, and the second would
find none). Energy from the fake GPU: exact, on any machine.
"""

from __future__ import annotations

import json

MEASURED = """\
import time

import pytest


@pytest.mark.llem(source="nvml")
def test_serving(llem_energy):
    for _ in range(3):
        with llem_energy.window(sync=None) as window:
            time.sleep(0.12)  # longer than the 0.1 s the NVML meter needs
            window.tokens = 1000
"""


def test_one_history_whatever_the_arguments_without_git_or_ini(pytester, fake_meter):
    fake_meter(joules=1.0)
    benchmarks = pytester.mkdir("benchmarks")
    (benchmarks / "test_serving.py").write_text(MEASURED)
    assert not any((pytester.path / name).exists() for name in ("pytest.ini", "pyproject.toml", "tox.ini", ".git"))

    pytester.runpytest_subprocess("-p", "fakemeter", "benchmarks/test_serving.py",
                                  "--llem-save-baseline").assert_outcomes(passed=1)
    [saved] = (benchmarks / ".llem" / "baselines").glob("*/*.json")  # beside the file: its arguments' rootdir
    assert list(json.loads(saved.read_text())["entries"]) == ["test_serving.py::test_serving"]

    again = pytester.runpytest_subprocess("-p", "fakemeter", ".", "--llem-baseline", "auto", "--llem-json=s.json")
    again.assert_outcomes(passed=1)
    [item] = json.loads((pytester.path / "s.json").read_text())["items"]
    assert "no baseline saved" not in json.dumps(item), item  # the rootdir is "." now: the history is found
    assert not (pytester.path / ".llem").exists()


def test_the_ini_files_directory_holds_the_history_outside_git(pytester, fake_meter):
    fake_meter(joules=1.0)
    pytester.makeini("[pytest]\n")
    benchmarks = pytester.mkdir("benchmarks")
    (benchmarks / "test_serving.py").write_text(MEASURED)
    pytester.runpytest_subprocess("-p", "fakemeter", "benchmarks/test_serving.py",
                                  "--llem-save-baseline").assert_outcomes(passed=1)
    [saved] = (pytester.path / ".llem" / "baselines").glob("*/*.json")
    assert list(json.loads(saved.read_text())["entries"]) == ["benchmarks/test_serving.py::test_serving"]
