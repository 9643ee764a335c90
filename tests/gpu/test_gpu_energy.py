"""The NVML meter on a real GPU: counter vs integrated power, idle baseline, a too-short window.

The load is a loop of fp16 matmuls on cuda:0, started before the window opens so that power
is steady across it: the driver's power reading is an average over its own period (up to a
second on recent GPUs), and a step from idle inside the window would make the integral lag the
counter for reasons that have nothing to do with either being wrong.
"""

from __future__ import annotations

import time

import pytest

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy.baseline import idle_power_w
from llenergymeasure.energy.meters import create_meter
from llenergymeasure.energy.nvml import SENSOR_PERIOD_S, NvmlMeter
from tests.gpu.gpu_support import busy_gpu, integrated_energy_j, power_limit_w, sampler_threads, timed_window

pytestmark = pytest.mark.gpu

SETTLE_S = 2.0  # load before the window, for power to reach its steady level
WINDOW_S = 3.0  # 30 sensor periods
COUNTER_VS_POWER_REL = 0.10  # power is sampled (and on Hopper averaged), the counter is not


def test_energy_counter_agrees_with_integrated_power_under_steady_load(nvml_meter):
    meter = nvml_meter(interval_s=0.02)
    if not all(device.has_counter for device in meter.devices):
        pytest.skip("a visible GPU has no energy counter (pre-Volta): nothing to compare against")
    busy_gpu(SETTLE_S)
    reading, _ = timed_window(meter, lambda: busy_gpu(WINDOW_S))

    assert reading.source == "nvml_counter" and not reading.estimated
    assert reading.unavailable_reason is None
    assert reading.energy_j > 0
    for device in reading.devices:
        integrated = integrated_energy_j(reading.timeline[device.device])
        assert device.source == "nvml_counter"
        assert device.samples >= WINDOW_S / 0.02 / 4, f"{device.samples} samples: the sampler fell far behind"
        assert device.energy_j > 0 and integrated > 0
        assert integrated == pytest.approx(device.energy_j, rel=COUNTER_VS_POWER_REL), (
            f"{device.name}: counter {device.energy_j:.1f} J, integrated power {integrated:.1f} J"
        )
    assert not sampler_threads()


def test_idle_baseline_is_positive_below_the_power_limit_and_below_load(nvml_meter):
    meter = nvml_meter(interval_s=0.1)
    idle_w = idle_power_w(meter, "gpu-test", duration_s=2.0, ttl_s=0.0)
    limit_w = sum(power_limit_w(meter.nvml, device) for device in meter.devices)

    assert idle_w is not None
    assert 0 < idle_w < limit_w, f"idle {idle_w:.1f} W, power limit {limit_w:.0f} W"

    busy_gpu(SETTLE_S)
    loaded, seconds = timed_window(meter, lambda: busy_gpu(2.0))
    assert idle_w < loaded.energy_j / seconds


def test_a_window_of_a_few_ms_says_too_short_instead_of_zero_joules(nvml_meter):
    import torch

    meter = nvml_meter(interval_s=0.01)
    tensor = torch.ones(1024, device="cuda:0")
    torch.cuda.synchronize()  # CUDA is initialised before the window: only the op is inside

    def tiny_work() -> None:
        tensor.add_(1)
        torch.cuda.synchronize()
        time.sleep(0.003)

    reading, seconds = timed_window(meter, tiny_work)
    assert seconds < SENSOR_PERIOD_S, f"the window took {seconds * 1000:.0f} ms; the machine stalled"
    assert reading.energy_j is None and reading.gpu_energy_j is None
    assert "too short" in reading.unavailable_reason
    assert reading.devices, "per-device figures are still reported, for the record"


def test_auto_source_on_cuda_uses_the_nvml_counter():
    meter = create_meter(EnergyConfig(), "cuda:0")
    try:
        # RAPL is hidden by the isolated test environment; on a bare machine it may join as "+rapl".
        assert meter.source.split("+")[0] == "nvml_counter"
    finally:
        meter.close()


def test_explicit_nvml_source_gives_an_nvml_meter_over_the_visible_gpus():
    meter = create_meter(EnergyConfig(source="nvml"), "cuda:0")
    try:
        assert isinstance(meter.meter, NvmlMeter)  # inside the sanity checks every meter comes in
        assert meter.meter.devices and all(device.uuid.startswith("GPU-") for device in meter.meter.devices)
    finally:
        meter.close()
