"""pytest-xdist: ``-n auto`` starts one worker per GPU and pins worker N to GPU N; on a CPU-only
machine measurements take turns, and the controller's table is the serial run's table."""

from __future__ import annotations

import json
import os
import re

import pytest

TINY = "model: MODEL\ndataset: builtin\nn: 2\nmax_input_tokens: 32\nmax_output_tokens: 4\nprecision: fp32\n" \
       "warmup: {enabled: false}\nsweep:\n  pytorch.batch_size: [1, 2, 3]\nexpect:\n  tokens_per_second: {min: 0.01}\n"


def _table(outlines: list[str]) -> list[str]:
    """The llem results table with every number masked and spacing collapsed."""
    start = next(i for i, line in enumerate(outlines) if "llem results" in line)
    rows = [line for line in outlines[start + 1:] if line.startswith(("item", "llem_"))]
    return [" ".join(re.sub(r"\d[\d.e+-]*", "#", row).split()) for row in rows]


def test_two_workers_give_the_serial_table_and_never_measure_at_once(pytester, write_llem):
    write_llem("llem_tiny.yaml", TINY)
    serial = pytester.runpytest_subprocess()
    parallel = pytester.runpytest_subprocess("-n", "2", "--llem-output", "out")
    serial.assert_outcomes(passed=3)
    parallel.assert_outcomes(passed=3)
    assert _table(parallel.outlines) == _table(serial.outlines)
    assert len(_table(serial.outlines)) == 4
    parallel.stdout.fnmatch_lines(["llem: 2 xdist workers on a CPU-only machine: measurements take turns*"])

    windows = sorted(
        (data["started_at"], data["finished_at"])
        for data in (json.loads(p.read_text()) for p in (pytester.path / "out").glob("*.json")
                     if not p.name.endswith(".timeline.json"))
    )
    assert len(windows) == 3
    for (_, end), (next_start, _) in zip(windows, windows[1:]):
        assert end <= next_start, "two items measured the CPU at the same time"


def test_n_auto_gives_one_worker_per_gpu_pinned_in_order(pytester, write_llem, fake_gpus):
    uuids = fake_gpus(count=3)
    write_llem("llem_tiny.yaml", TINY.replace("[1, 2, 3]", "[1, 2, 3, 4, 5, 6]"))
    result = pytester.runpytest_subprocess("-p", "fakegpus", "-n", "auto", "--llem-dry-run")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*3 workers [[]6 items[]]*"])
    pinned = {p.stem: p.read_text() for p in pytester.path.glob("gw*.cvd")}
    assert pinned, "no worker ran an item"
    for worker, visible in pinned.items():
        assert visible == uuids[int(worker[2:])]


def test_other_test_suites_keep_xdist_defaults(pytester, fake_gpus):
    if os.cpu_count() == 3:
        pytest.skip("this machine has as many CPUs as the fake has GPUs: the two defaults cannot be told apart")
    fake_gpus(count=3)
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "fakegpus", "-n", "auto")
    result.assert_outcomes(passed=1)
    assert not any("3 workers" in line for line in result.outlines)


def test_n_auto_gives_each_worker_the_gpus_its_largest_experiment_is_spread_over(pytester, write_llem, fake_gpus):
    uuids = fake_gpus(count=4)
    write_llem("llem_one.yaml", TINY)
    write_llem("llem_spread.yaml", TINY.replace("sweep:\n  pytorch.batch_size: [1, 2, 3]\n",
                                                "pytorch: {device_map: auto, gpus: [0, 1]}\n"))
    result = pytester.runpytest_subprocess("-p", "fakegpus", "-n", "auto", "--llem-dry-run")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*2 workers [[]4 items[]]*"])  # 4 GPUs in pairs
    pinned = {p.stem: p.read_text() for p in pytester.path.glob("gw*.cvd")}
    assert pinned, "no worker ran an item"
    for worker, visible in pinned.items():
        first = 2 * int(worker[2:])
        assert visible == ",".join(uuids[first:first + 2])
