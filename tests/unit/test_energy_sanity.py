"""Every reading is checked before anyone sees it: counters that go backwards, reset, wrap, stick,
read zero or jump; RAPL trees that freeze or reset; NVML calls that fail or never return.

The GPUs are the fake pynvml at the hardware seam; the meters, sampler and checks run for real,
through ``create_meter`` as the runner builds them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy import hardware
from llenergymeasure.energy.base import DeviceEnergy, EnergyReading
from llenergymeasure.energy.meters import create_meter
from llenergymeasure.energy.sanity import check_reading
from llenergymeasure.energy.sources import nvml_status
from llenergymeasure.exceptions import ExperimentError, PreFlightError
from tests.fakes import pynvml as fake_pynvml
from tests.fakes.pynvml import FakeGpu, FakeNvml
from tests.unit.test_energy_cpu import make_powercap, set_counters

WINDOW_S = 0.3


@pytest.fixture
def gpus(monkeypatch):
    """``gpus(FakeGpu(...), ...)`` installs them; hung calls are released and no thread is left."""
    monkeypatch.setenv("LLEM_DRIVER_TIMEOUT_S", "0.5")

    def install(*devices, **kwargs):
        hardware.set_pynvml(FakeNvml(list(devices), **kwargs))

    yield install
    fake_pynvml.RELEASE.set()
    time.sleep(0.05)
    fake_pynvml.RELEASE.clear()
    hardware.set_pynvml(None)
    assert not [t for t in threading.enumerate() if t.name.startswith("llem-")], "a telemetry thread was left"


def measure(seconds=WINDOW_S, busy=False):
    meter = create_meter(EnergyConfig(source="nvml", sample_interval_ms=10), "cpu")
    try:
        meter.start()
        end = time.perf_counter() + seconds
        while busy and time.perf_counter() < end:
            sum(i * i for i in range(1000))
        time.sleep(max(0.0, end - time.perf_counter()))
        return meter.stop()
    finally:
        meter.close()


def codes(reading):
    return [code for code, _ in reading.warnings]


def at_watts(watts):
    """A counter that follows a steady draw of ``watts``: what a healthy GPU reports."""
    return lambda t: 5_000_000 + int(watts * t * 1000)


def test_a_healthy_counter_passes_every_check(gpus):
    gpus(FakeGpu("GPU-a", counter_mj=at_watts(100), power_w=lambda t: 100.0))
    reading = measure()
    assert not reading.suspect and reading.unavailable_reason is None
    assert reading.energy_j == pytest.approx(100 * WINDOW_S, rel=0.2)
    assert not {"energy_zero", "energy_implausible", "energy_disagrees"} & set(codes(reading))


def test_a_counter_that_goes_backwards_is_an_error_naming_the_gpu(gpus):
    # reads: the listing's probe, the window's start, its end (a driver reload reset it to ~0)
    gpus(FakeGpu("GPU-a", counter_mj=[9_000_000, 9_000_000, 1_234]))
    with pytest.raises(ExperimentError, match=r"GPU 0 \(NVIDIA H100 80GB HBM3\): the energy counter went backwards "
                                              r"during the window \(9000000 -> 1234\)"):
        measure()


def test_a_counter_that_wraps_at_64_bits_gives_the_true_difference(gpus):
    top = 2**64
    gpus(FakeGpu("GPU-a", counter_mj=[top - 10_000, top - 10_000, 20_000], power_w=lambda t: 100.0))
    reading = measure()
    assert reading.energy_j == pytest.approx(30.0)
    assert "counter_wrapped" in codes(reading) and not reading.suspect


@pytest.mark.parametrize("counter", [[7_000, 7_000, 7_000], [0, 0, 0]], ids=["stuck", "zero"])
def test_a_counter_that_does_not_move_while_power_flows_is_not_a_measurement(gpus, counter):
    gpus(FakeGpu("GPU-a", counter_mj=counter, power_w=lambda t: 250.0))
    reading = measure()
    assert reading.energy_j is None and reading.gpu_energy_j is None, "0 J is never reported as measured"
    assert reading.suspect and "energy_zero" in codes(reading)
    assert "GPU 0 (NVIDIA H100 80GB HBM3) read 0 J" in reading.unavailable_reason


def test_a_counter_that_jumps_by_1e12_joules_is_suspect(gpus):
    gpus(FakeGpu("GPU-a", counter_mj=[0, 0, 10**15], power_w=lambda t: 100.0))
    reading = measure()
    assert reading.energy_j == pytest.approx(1e12)  # kept for the record, flagged
    assert reading.suspect
    assert {"energy_implausible", "energy_disagrees"} <= set(codes(reading))
    implausible = next(text for code, text in reading.warnings if code == "energy_implausible")
    assert "more than the device can draw (1050 W)" in implausible  # 1.5 x the 700 W enforced limit


def test_a_counter_far_from_the_integrated_power_is_suspect(gpus):
    # 10x the power the sampler reads, yet under the power limit: only the cross-check sees it
    gpus(FakeGpu("GPU-a", counter_mj=at_watts(600), power_w=lambda t: 60.0))
    reading = measure(seconds=1.5)
    assert reading.suspect and codes(reading).count("energy_disagrees") == 1
    text = next(text for code, text in reading.warnings if code == "energy_disagrees")
    assert "the energy counter says" in text and "integrated power readings" in text


def test_a_gpu_lost_at_start_up_leaves_nvml_unavailable_with_the_reason(gpus):
    gpus(FakeGpu("GPU-a", counter_mj=[0]), lost_at_listing=True)
    status, found, _ = nvml_status()
    assert not status.available and found == []
    assert "NVML could not list the GPUs (GPU is lost)" in status.detail
    with pytest.raises(PreFlightError, match="GPU is lost"):
        create_meter(EnergyConfig(source="nvml"), "cpu")


def test_a_gpu_without_a_counter_lost_mid_window_is_an_error_not_a_held_sample(gpus):
    gpus(FakeGpu("GPU-old", counter_mj=None, fail_power_after=3))
    with pytest.raises(ExperimentError, match=r"GPU 0 .*: power sampling failed after \d+ sample\(s\) "
                                              r"\(GPU is lost\); this GPU has no energy counter"):
        measure()


def test_a_gpu_with_a_counter_keeps_its_energy_when_only_the_sampler_fails(gpus):
    gpus(FakeGpu("GPU-a", counter_mj=at_watts(100), fail_power_after=3))
    reading = measure()
    assert reading.energy_j == pytest.approx(100 * WINDOW_S, rel=0.2)
    assert "sampler_failed" in codes(reading)


@pytest.mark.parametrize("where", ["init", "counter", "power"])
def test_an_nvml_call_that_never_returns_ends_within_the_time_limit(gpus, where):
    if where == "init":
        gpus(FakeGpu("GPU-a", counter_mj=[0]), init_hangs=True)
    elif where == "counter":
        gpus(FakeGpu("GPU-a", counter_mj=at_watts(100), hang_counter_after=2))  # the window's end
    else:
        gpus(FakeGpu("GPU-old", counter_mj=None, hang_power_after=3))
    started = time.perf_counter()
    if where == "init":
        status, _, _ = nvml_status()
        assert "NVML did not answer (nvmlInit did not return within 0.5 s)" in status.detail
        with pytest.raises(PreFlightError, match="did not answer"):
            create_meter(EnergyConfig(source="nvml"), "cpu")
        meter = create_meter(EnergyConfig(source="auto"), "cuda:0")
        assert meter.stop().unavailable_reason.startswith("the work runs on cuda:0 but GPU energy cannot be read")
    else:
        with pytest.raises(ExperimentError, match="did not return within 0.5 s"):
            measure()
    assert time.perf_counter() - started < 10  # a few 0.5 s limits, never a hang


@pytest.mark.parametrize(("value", "word"), [(-3.0, "negative"), (float("nan"), "not a number"),
                                             (float("inf"), "infinite")])
def test_negative_or_non_finite_energy_is_an_error_naming_the_device_and_source(value, word):
    reading = EnergyReading(source="nvml_counter", energy_j=value, gpu_energy_j=value,
                            devices=[DeviceEnergy("gpu1", "NVIDIA H200", value, "nvml_counter")])
    with pytest.raises(ExperimentError, match=f"the nvml_counter energy reading is {word}"):
        check_reading(reading, 1.0, 0.5)


def test_a_frozen_rapl_tree_while_the_cpu_works_is_not_a_measurement(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(make_powercap(tmp_path, 1_000_000, 500_000)))
    meter = create_meter(EnergyConfig(source="rapl"), "cpu")
    meter.start()
    sum(i * i for i in range(2_000_000))  # CPU time spent, counters never move
    reading = meter.stop()
    assert reading.energy_j is None and reading.suspect
    assert "package-0 (rapl), dram (rapl) read 0 J" in reading.unavailable_reason


def test_a_reset_rapl_counter_is_an_error_not_a_wrap(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(make_powercap(tmp_path, 200_000_000_000, 500_000)))
    meter = create_meter(EnergyConfig(source="rapl"), "cpu")
    meter.start()
    set_counters(tmp_path, 1_000, 600_000)  # as a wrap: 62 kJ in well under a second
    with pytest.raises(ExperimentError, match=r"RAPL package-0 .*: the energy counter went backwards"):
        meter.stop()


def test_a_suspect_gpu_reading_stays_suspect_beside_rapl(gpus, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(make_powercap(tmp_path, 1_000_000, 500_000)))
    gpus(FakeGpu("GPU-a", counter_mj=at_watts(600), power_w=lambda t: 60.0))
    meter = create_meter(EnergyConfig(source="auto", sample_interval_ms=10), "cuda:0")
    try:
        assert meter.source == "nvml_counter+rapl"
        meter.start()
        time.sleep(1.5)
        reading = meter.stop()
    finally:
        meter.close()
    assert "energy_disagrees" in codes(reading) and reading.suspect
