"""An energy that came out empty never passes: not a gate (``max: 1e-9`` on 0 J), not ``--llem-require-energy``.

A test measures an empty window with the ``llem_energy`` fixture on RAPL, a fake powercap tree at
the hardware seam whose counters never move: 0 uJ, less than one step of the meter, so no energy
(or, should the test's own process have worked 10 ms in the window, a frozen counter: no energy
either, whatever this machine's load). A benchmark item measures the fake GPU of ``fake_meter``
at 0 J per window. Real pytest sessions run through ``pytester``.
"""

from __future__ import annotations

import pytest

from tests.unit.test_energy_cpu import make_powercap

LIGHT_TEST = """\
import pytest


@pytest.mark.llem(source="rapl"{gate})
def test_light(llem_energy):
    with llem_energy.window() as window:
        window.tokens = 10
"""

GATE = ', expect={"joules_per_token": {"max": 1e-9}}'

ON_FAKE_GPU = """\
model: MODEL
dataset: builtin
n: 2
max_output_tokens: 4
precision: fp32
repeats: 1
warmup: {enabled: false}
baseline: {enabled: false}
pytorch: {device: cpu}
energy: {source: nvml}
"""


@pytest.fixture
def frozen_rapl(tmp_path, monkeypatch):
    """Sessions see RAPL: a package and a DRAM zone whose counters never move."""
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(make_powercap(tmp_path / "powercap", 1_000_000, 500_000)))


def test_a_gate_does_not_pass_on_0_j_under_the_meters_resolution(pytester, frozen_rapl):
    pytester.makepyfile(test_light=LIGHT_TEST.format(gate=GATE))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["joules_per_token not measured (package-0 (rapl), dram (rapl)*)"])


def test_require_energy_fails_a_fixture_test_whose_energy_came_out_empty(pytester, frozen_rapl):
    pytester.makepyfile(test_light=LIGHT_TEST.format(gate=""))
    pytester.runpytest_subprocess().assert_outcomes(passed=1)  # no gate: only the flag asks for energy

    required = pytester.runpytest_subprocess("--llem-require-energy")
    required.assert_outcomes(failed=1)
    required.stdout.fnmatch_lines(["energy not measured: package-0 (rapl), dram (rapl)*(--llem-require-energy)"])


def test_require_energy_fails_a_benchmark_item_whose_energy_came_out_empty(pytester, write_llem, fake_meter):
    fake_meter(joules=0.0)  # a GPU whose counter never moves
    write_llem("llem_gpu.yaml", ON_FAKE_GPU)
    pytester.runpytest_subprocess("-p", "fakemeter").assert_outcomes(passed=1)

    required = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-require-energy")
    required.assert_outcomes(failed=1)
    # read 0 J (a frozen counter), or shorter than the GPU sensor's 100 ms on a fast machine: empty either way
    required.stdout.fnmatch_lines(["energy not measured: *(--llem-require-energy)"])
