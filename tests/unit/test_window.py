"""``measure_energy``: a window around any code, over the same meters and checks as ``llem run``.

The GPUs are the fake pynvml at the hardware seam (counters scripted read by read, so the joules
of a window are exact), RAPL a fake powercap tree; everything above the seam runs for real.
"""

from __future__ import annotations

import threading
import time

import pytest

from llenergymeasure import EnergyMonitor, measure_energy
from llenergymeasure.energy import hardware
from llenergymeasure.exceptions import ConfigError, ExperimentError, PreFlightError
from tests.fakes.pynvml import FakeGpu, FakeNvml
from tests.unit.test_energy_cpu import make_powercap


@pytest.fixture
def gpus():
    """``gpus(FakeGpu(...), ...)`` installs them; no telemetry thread may be left afterwards."""
    yield lambda *devices: hardware.set_pynvml(FakeNvml(list(devices)))
    hardware.set_pynvml(None)
    assert not [t for t in threading.enumerate() if t.name.startswith("llem-")], "a telemetry thread was left"


def two_gpus():
    """GPU a would read 500 J a window, GPU b exactly 30 J (reads: the listing's probe, start, stop)."""
    return (FakeGpu("GPU-aaaaaaaa-1111", counter_mj=[0, 1_000, 501_000]),
            FakeGpu("GPU-bbbbbbbb-2222", counter_mj=[0, 1_000, 31_000]))


@pytest.mark.parametrize("selector", [1, "1", "cuda:1", "GPU-bbbbbbbb-2222", "GPU-bbbbbbbb"])
def test_a_window_measures_exactly_the_gpus_it_is_given(gpus, selector):
    gpus(*two_gpus())
    with measure_energy(devices=[selector]) as window:
        time.sleep(0.2)
        window.tokens = 300
    assert window.energy_j == pytest.approx(30.0)
    assert [d.device for d in window.devices] == ["gpu1"]
    assert window.joules_per_token == pytest.approx(0.1)
    assert (window.source, window.estimated, window.suspect) == ("nvml_counter", False, False)
    assert window.duration_s >= 0.2
    assert "gpu1" in window.timeline  # the sampler ran beside the counter


def test_by_default_every_visible_gpu_is_measured(gpus):
    gpus(*two_gpus())
    with measure_energy() as window:
        time.sleep(0.2)
    assert window.energy_j == pytest.approx(530.0)
    assert window.joules_per_token is None  # no tokens given


def test_sync_runs_just_before_the_window_opens_and_just_before_it_closes(gpus):
    gpu = FakeGpu("GPU-aaaaaaaa-1111", counter_mj=[0, 1_000, 31_000])
    gpus(gpu)
    seen = []
    with measure_energy(sync=lambda: seen.append(("sync", gpu.reads))) as window:
        seen.append(("work", gpu.reads))
        time.sleep(0.15)
    seen.append(("closed", gpu.reads))
    # the listing's probe is read 1; the window's first read follows the first sync, its last the second
    assert seen == [("sync", 1), ("work", 2), ("sync", 2), ("closed", 3)]
    assert window.energy_j == pytest.approx(30.0)


def test_an_error_in_the_block_measures_nothing_and_leaves_no_thread(gpus):
    gpus(*two_gpus())
    with pytest.raises(KeyError), measure_energy() as window:
        raise KeyError("the measured code failed")
    assert not window.closed
    with pytest.raises(RuntimeError, match="still open"):
        _ = window.energy_j


def test_the_sanity_checks_apply_a_counter_reset_is_an_error(gpus):
    gpus(FakeGpu("GPU-aaaaaaaa-1111", counter_mj=[0, 9_000_000, 1_234]))
    with pytest.raises(ExperimentError, match="went backwards"), measure_energy():
        time.sleep(0.15)


def test_a_window_too_short_for_the_sensor_has_no_energy_rather_than_a_wrong_one(gpus):
    gpus(FakeGpu("GPU-aaaaaaaa-1111", counter_mj=[0, 1_000, 1_500]))
    with measure_energy() as window:
        window.tokens = 10
    assert window.energy_j is None and window.joules_per_token is None
    assert "window too short to measure" in window.unavailable_reason


def test_one_meter_for_several_windows(gpus):
    gpus(FakeGpu("GPU-aaaaaaaa-1111", counter_mj=[0, 1_000, 11_000, 11_000, 31_000]))
    with EnergyMonitor(devices=[0]) as monitor:
        energies = []
        for _ in range(2):
            with monitor.window() as window:
                time.sleep(0.15)
            energies.append(window.energy_j)
    assert energies == [pytest.approx(10.0), pytest.approx(20.0)]


def test_without_gpus_the_cpu_is_measured_by_rapl_or_else_estimated(tmp_path, monkeypatch):
    with measure_energy() as window:
        sum(i * i for i in range(200_000))
    assert (window.source, window.estimated) == ("cpu_estimate", True)
    assert window.energy_j > 0

    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(make_powercap(tmp_path / "powercap", 1_000_000, 500_000)))
    with measure_energy(devices=["cpu"]) as window:
        from tests.unit.test_energy_cpu import set_counters

        set_counters(tmp_path / "powercap", 3_000_000, 600_000)
    assert (window.source, window.energy_j, window.estimated) == ("rapl", pytest.approx(2.1), False)


def test_mistakes_are_config_or_preflight_errors_naming_what_is_wrong(gpus):
    gpus(*two_gpus())
    with pytest.raises(ConfigError, match=r"measure_energy\(source='nvm'\): Input should be 'auto', 'nvml'"):
        measure_energy(source="nvm").__enter__()
    with pytest.raises(ConfigError, match="give a list of GPUs"):
        measure_energy(devices=0).__enter__()
    with pytest.raises(PreFlightError, match=r"devices: GPU 'GPU-cccc' is not visible to this process \(visible: "
                                             r"0 \(GPU-aaaaaaaa-1111\), 1 \(GPU-bbbbbbbb-2222\)\)"):
        measure_energy(devices=["GPU-cccc"], source="nvml").__enter__()
    with pytest.raises(ConfigError, match="sync='cuda'"):
        with measure_energy(sync="cuda"):
            pass
