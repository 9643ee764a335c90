"""A GPU energy counter stuck for part of a window is caught; a healthy one, late as real ones are, is not.

The GPU is the fake pynvml at the hardware seam, its counter and power scripted as functions of
time, so the sampler sees the same GPU however this machine's load delays it: a starved sampler
reads a freeze as shorter, never a healthy counter as frozen. Everything above the seam runs for
real, through ``create_meter`` as the runner builds it.
"""

from __future__ import annotations

import threading
import time

import pytest

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy import hardware
from llenergymeasure.energy.meters import create_meter
from tests.fakes.pynvml import FakeGpu, FakeNvml

WATTS = 300.0


@pytest.fixture
def gpu():
    """``gpu(counter_mj, power_w)`` installs one fake GPU; no telemetry thread may be left afterwards."""
    installed = []

    def install(counter_mj, power_w=lambda t: WATTS):
        installed.append(FakeGpu("GPU-a", counter_mj=counter_mj, power_w=power_w))
        hardware.set_pynvml(FakeNvml(installed))
        return installed[0]

    yield install
    hardware.set_pynvml(None)
    assert not [t for t in threading.enumerate() if t.name.startswith("llem-")], "a telemetry thread was left"


def measure(device, seconds, interval_ms=100):
    """One window of ``seconds``, its clock (the fake's time) starting as the window opens."""
    meter = create_meter(EnergyConfig(source="nvml", sample_interval_ms=interval_ms), "cpu")
    try:
        device.created = time.perf_counter()
        meter.start()
        time.sleep(seconds)
        return meter.stop()
    finally:
        meter.close()


def frozen(start, end):
    """A counter at WATTS that stands still from ``start`` to ``end`` seconds, then goes on from there."""
    return lambda t: 5_000_000 + int(WATTS * 1000 * (t - max(0.0, min(t, end) - start)))


def stalls(reading):
    return [text for code, text in reading.warnings if code == "energy_disagrees" and "stood still" in text]


@pytest.mark.parametrize(("share", "window_s"), [(0.3, 4.0), (0.5, 3.0), (0.7, 2.0)])
def test_a_counter_frozen_for_part_of_the_window_makes_it_suspect(gpu, share, window_s):
    held = share * window_s
    device = gpu(frozen((window_s - held) / 2, (window_s + held) / 2))
    reading = measure(device, window_s)
    assert reading.suspect, reading.warnings
    [stall] = stalls(reading)
    assert stall.startswith("GPU 0 (NVIDIA H100 80GB HBM3): the energy counter stood still at ")
    assert "a counter stuck for part of a window under-reads it" in stall
    assert reading.energy_j == pytest.approx(WATTS * (window_s - held), rel=0.2)  # kept, flagged as suspect


def lagging(update_s, late_s, step_at=0.5, idle_w=60.0):
    """A healthy GPU: idle until ``step_at``, then WATTS. Its counter publishes the energy up to each
    ``update_s`` tick up to ``late_s`` late (a fixed, irregular pattern); its power reading is the
    mean over the last second (NVML's averaging), so it lags the load step by up to a second."""

    def energy_j(t):
        return idle_w * min(t, step_at) + WATTS * max(0.0, t - step_at)

    def counter(t):
        tick = int(t / update_s)
        while tick > 0 and tick * update_s + late_s * ((tick * 7) % 6) / 5 > t:
            tick -= 1  # that update is not published yet
        return 5_000_000 + int(energy_j(tick * update_s) * 1000)

    def power(t):
        return (energy_j(t) - energy_j(t - 1.0)) / 1.0 if t >= 1.0 else energy_j(t) + idle_w * (1.0 - t)

    return counter, power


@pytest.mark.parametrize(("update_s", "late_s", "interval_ms"), [(0.1, 0.05, 100), (0.1, 0.05, 10), (1.0, 0.05, 100)],
                         ids=["h100-counter-100ms-sampler", "h100-counter-10ms-sampler", "counter-updating-every-1s"])
def test_a_healthy_counter_that_updates_late_is_not_flagged(gpu, update_s, late_s, interval_ms):
    counter, power = lagging(update_s, late_s)
    device = gpu(counter, power)
    reading = measure(device, 3.0, interval_ms)
    assert not reading.suspect and not stalls(reading), reading.warnings
    assert device.sampler_reads >= 10  # the sampler did read the counter through the window
