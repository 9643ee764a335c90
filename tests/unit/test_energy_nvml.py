"""The NVML meter against a fake pynvml: counters, integration, device mapping, faults, warnings."""

from __future__ import annotations

import threading
import time

import pytest

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy import hardware
from llenergymeasure.energy.meters import create_meter
from llenergymeasure.energy.nvml import NvmlMeter, open_nvml
from llenergymeasure.exceptions import ExperimentError, PreFlightError
from tests.fakes.pynvml import FakeGpu, FakeNvml


@pytest.fixture
def install():
    def _install(gpus, **kwargs):
        fake = FakeNvml(gpus, **kwargs)
        hardware.set_pynvml(fake)
        return fake

    yield _install
    hardware.set_pynvml(None)


def _meter(interval_s=0.01):
    return NvmlMeter(*open_nvml(), interval_s)


def _window(meter, seconds):
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def test_counter_delta_becomes_joules_exactly(install):
    # reads: device probe at open, window start, window end
    install([FakeGpu("GPU-a", counter_mj=[1_000, 1_000_000, 1_004_321])])
    reading = _window(_meter(), 0.15)
    assert reading.source == "nvml_counter"
    assert reading.energy_j == pytest.approx(4.321, abs=1e-12)
    assert reading.gpu_energy_j == reading.energy_j
    assert [d.source for d in reading.devices] == ["nvml_counter"]


def test_gpu_without_counter_integrates_power_within_half_a_percent(install):
    created = time.perf_counter()
    ramp = lambda t: 150.0 + 200.0 * t  # noqa: E731  W, t in s since the fake GPU was created
    install([FakeGpu("GPU-old", name="Tesla P100", counter_mj=None, power_w=ramp, created=created)])
    meter = _meter(interval_s=0.005)

    def energy(start: float, end: float) -> float:  # the exact integral of the ramp
        t0, t1 = start - created, end - created
        return 150.0 * (t1 - t0) + 100.0 * (t1**2 - t0**2)

    # The meter's own window lies between the inner and outer timestamps, however long the
    # machine's load makes starting and stopping it: the exact answer lies between their integrals.
    before = time.perf_counter()
    meter.start()
    started = time.perf_counter()
    time.sleep(1.0)
    stopping = time.perf_counter()
    reading = meter.stop()
    after = time.perf_counter()
    assert reading.source == "nvml_power"
    assert energy(started, stopping) * 0.995 <= reading.energy_j <= energy(before, after) * 1.005
    assert reading.devices[0].samples >= 100


def test_cuda_visible_devices_maps_to_nvml_devices(install, monkeypatch):
    install([
        FakeGpu("GPU-zero", counter_mj=[0, 0, 1_000]),
        FakeGpu("GPU-one", counter_mj=[0, 0, 50_000]),
        FakeGpu("GPU-two", counter_mj=[0, 0, 2_000]),
    ])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    reading = _window(_meter(), 0.15)
    assert [d.device for d in reading.devices] == ["gpu2", "gpu0"]
    assert reading.energy_j == pytest.approx(3.0)


def test_gpu_work_measures_only_the_gpu_the_model_runs_on(install, monkeypatch):
    install([FakeGpu("GPU-zero", counter_mj=[0, 0, 1_000]), FakeGpu("GPU-one", counter_mj=[0, 0, 50_000]),
             FakeGpu("GPU-two", counter_mj=[0, 0, 2_000])])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    meter = create_meter(EnergyConfig(source="auto"), "cuda:1")  # the second visible GPU: NVML device 0
    try:
        reading = _window(meter, 0.15)
    finally:
        meter.close()
    assert [d.device for d in reading.devices] == ["gpu0"]
    assert reading.energy_j == pytest.approx(1.0)


def test_cuda_visible_devices_by_uuid(install, monkeypatch):
    install([FakeGpu("GPU-aaaa-1111", counter_mj=[0]), FakeGpu("GPU-bbbb-2222", counter_mj=[0])])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb")
    _, devices = open_nvml()
    assert [d.uuid for d in devices] == ["GPU-bbbb-2222"]


def test_nvml_error_mid_window_is_an_experiment_error_and_stops_the_sampler(install):
    install([FakeGpu("GPU-a", counter_mj=[0, 10, 20], fail_counter_after=2)])
    meter = _meter()
    meter.start()
    time.sleep(0.05)
    with pytest.raises(ExperimentError, match=r"NVML failed while reading the GPU energy counter of GPU 0 \(NVIDIA H100 80GB HBM3\): GPU is lost"):
        meter.stop()
    meter.close()
    assert not [t for t in threading.enumerate() if t.name == "llem-sampler"]


def test_window_shorter_than_the_sensor_reports_no_energy_rather_than_zero(install):
    install([FakeGpu("GPU-a", counter_mj=[0, 0, 0])])
    reading = _window(_meter(), 0.0)
    assert reading.energy_j is None
    assert "too short to measure" in reading.unavailable_reason


def test_warnings_throttling_drift_persistence_and_other_processes(install):
    install([FakeGpu(
        "GPU-a", counter_mj=[0, 0, 90_000], throttle_reasons=0x20 | 0x4, persistence=0, other_pids=[4242],
        temperature_c=lambda t: 40 + int(100 * t),
    )])
    reading = _window(_meter(), 0.3)
    codes = {code for code, _ in reading.warnings}
    assert {"throttled", "temperature_drift", "persistence_off", "other_processes", "short_window"} <= codes
    throttled = next(text for code, text in reading.warnings if code == "throttled")
    assert "SW power cap" in throttled and "SW thermal slowdown" in throttled


def test_timeline_records_every_telemetry_field(install):
    install([FakeGpu("GPU-a", counter_mj=[0, 0, 1])])
    reading = _window(_meter(), 0.12)
    samples = reading.timeline["gpu0"]
    assert len(samples) >= 5
    assert {"t", "power_w", "temperature_c", "sm_clock_mhz", "memory_used_mb", "utilization_pct",
            "throttle_reasons"} <= set(samples[0])


def test_unusable_nvml_is_a_preflight_error_naming_the_cause(install):
    install([], init_error="Driver Not Loaded")
    with pytest.raises(PreFlightError, match="Driver Not Loaded"):
        open_nvml()
