"""Timelines of every meter: the RAPL and CPU-estimate probes with the fakes' exact numbers, each
meter's window timeline, and the session recorder (phases, owners, relative times, no thread left)."""

from __future__ import annotations

import threading
import time
from itertools import count

import pytest

from llenergymeasure.energy import hardware
from llenergymeasure.energy.combined import CombinedMeter
from llenergymeasure.energy.cpu_estimate import CpuEstimateMeter
from llenergymeasure.energy.nvml import NvmlMeter, open_nvml
from llenergymeasure.energy.rapl import RaplMeter, power_probe, rapl_zones
from llenergymeasure.energy.sampler import MIN_RATE_INTERVAL_S, Sampler
from llenergymeasure.energy.sanity import CheckedMeter
from llenergymeasure.energy.timeline import TimelineRecorder
from tests.fakes.pynvml import FakeGpu, FakeNvml
from tests.unit.test_energy_cpu import make_powercap, set_counters


class Clock:
    """A clock that moves only when told to, for exact rates."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llem-sampler"]


def test_rapl_probe_gives_mean_power_since_its_previous_sample(tmp_path):
    root = make_powercap(tmp_path, package_uj=1_000_000, dram_uj=0)
    package = rapl_zones(root)[0]
    clock = Clock()
    probe = power_probe(package, clock)
    assert probe() is None  # the first read only primes the difference
    set_counters(root, 13_000_000, 0)
    clock.now += 0.5
    assert probe() == {"power_w": pytest.approx(24.0, abs=1e-9), "energy_uj": 13_000_000}  # 12 J in 0.5 s
    set_counters(root, 13_500_000, 0)
    clock.now += 0.25
    assert probe()["power_w"] == pytest.approx(2.0, abs=1e-9)


def test_rapl_probe_allows_for_the_wrap_and_skips_a_reset(tmp_path):
    root = make_powercap(tmp_path, package_uj=900_000, dram_uj=0, max_uj=1_000_000)
    package = rapl_zones(root)[0]
    clock = Clock()
    probe = power_probe(package, clock)
    probe()
    set_counters(root, 100_000, 0)  # wrapped: 100 000 to the top, 100 000 after
    clock.now += 0.1
    assert probe()["power_w"] == pytest.approx(2.0, abs=1e-9)  # 0.2 J in 0.1 s

    big = make_powercap(tmp_path / "big", package_uj=200_000_000_000, dram_uj=0)
    probe = power_probe(rapl_zones(big)[0], clock)
    probe()
    set_counters(big, 5, 0)  # down by 200 kJ in a second: a reset, not a wrap
    clock.now += 1.0
    assert probe() is None
    set_counters(big, 1_000_005, 0)
    clock.now += 1.0
    assert probe()["power_w"] == pytest.approx(1.0, abs=1e-9)  # the next interval is whole again


def test_a_rate_over_too_short_an_interval_waits_for_the_next_sample(tmp_path):
    root = make_powercap(tmp_path, package_uj=0, dram_uj=0)
    clock = Clock()
    probe = power_probe(rapl_zones(root)[0], clock)
    probe()
    set_counters(root, 1_000, 0)
    clock.now += MIN_RATE_INTERVAL_S / 2
    assert probe() is None
    set_counters(root, 40_000, 0)
    clock.now += MIN_RATE_INTERVAL_S * 1.5
    assert probe()["power_w"] == pytest.approx(0.04 / (2 * MIN_RATE_INTERVAL_S), abs=1e-9)  # spans both


def test_cpu_estimate_probe_turns_cpu_seconds_per_second_into_labelled_watts():
    cpu = iter([10.0, 10.15, 10.15, 11.15])
    meter = CpuEstimateMeter("Imaginary CPU 9000", cpu_seconds=lambda: next(cpu))
    watts = meter.watts_per_cpu_second
    clock = Clock()
    probe = meter.probes(clock)["cpu"]
    assert probe() is None
    clock.now += 0.1
    assert probe() == {"power_w": pytest.approx(1.5 * watts), "cpu_seconds_per_s": pytest.approx(1.5),
                       "estimated": True}
    clock.now += 0.1
    assert probe()["power_w"] == 0.0
    clock.now += 0.5
    assert probe()["cpu_seconds_per_s"] == pytest.approx(2.0)


def test_the_sampler_keeps_no_sample_for_a_probe_with_nothing_to_say():
    calls = count()
    sampler = Sampler({"x": lambda: None if next(calls) == 0 else {"v": 1}}, interval_s=0.01)
    sampler.start()
    time.sleep(0.05)
    samples = sampler.stop()["x"]
    assert samples and all(sample["v"] == 1 for sample in samples)
    assert not sampler_threads()


def test_rapl_meter_window_has_a_power_timeline_per_zone(tmp_path):
    root = make_powercap(tmp_path, package_uj=1_000_000, dram_uj=500_000)
    meter = RaplMeter(rapl_zones(root), interval_s=0.01)
    meter.start()
    time.sleep(0.05)
    set_counters(root, 3_500_000, 750_000)
    time.sleep(0.05)
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(2.75)  # the counters at the edges, as without a timeline
    assert set(reading.timeline) == {"package-0", "dram-0"}
    for key, (first, last) in {"package-0": (1_000_000, 3_500_000), "dram-0": (500_000, 750_000)}.items():
        samples = reading.timeline[key]
        assert samples and all(s["power_w"] >= 0 and "estimated" not in s for s in samples)
        assert samples[-1]["energy_uj"] == last and {s["energy_uj"] for s in samples} <= {first, last}
    assert [d.samples for d in reading.devices] == [len(reading.timeline["package-0"]), len(reading.timeline["dram-0"])]
    assert not sampler_threads()


def test_rapl_meter_reports_a_sampler_that_failed_but_keeps_the_counters(tmp_path):
    root = make_powercap(tmp_path, package_uj=1_000_000, dram_uj=500_000)
    meter = RaplMeter(rapl_zones(root), interval_s=0.01)
    meter.start()
    (root / "intel-rapl:0" / "intel-rapl:0:1" / "energy_uj").unlink()  # the sampler reads it first
    time.sleep(0.05)
    (root / "intel-rapl:0" / "intel-rapl:0:1" / "energy_uj").write_text("600000\n")
    set_counters(root, 2_000_000, 600_000)
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(1.1)
    assert [code for code, _ in reading.warnings] == ["sampler_failed"]


def test_cpu_estimate_window_timeline_is_labelled_estimated():
    ticks = count()
    meter = CpuEstimateMeter(None, cpu_seconds=lambda: next(ticks) * 0.001, interval_s=0.01)
    meter.start()
    time.sleep(0.1)
    reading = meter.stop()
    samples = reading.timeline["cpu"]
    assert samples and reading.devices[0].samples == len(samples)
    assert all(s["estimated"] is True and s["power_w"] >= 0 for s in samples)
    assert not sampler_threads()


@pytest.fixture
def fake_gpu():
    hardware.set_pynvml(FakeNvml([FakeGpu("GPU-a", counter_mj=lambda t: int(t * 100_000), power_w=lambda t: 212.0)]))
    yield
    hardware.set_pynvml(None)


def test_combined_meter_probes_every_device_under_its_timeline_name(fake_gpu, tmp_path):
    root = make_powercap(tmp_path, package_uj=0, dram_uj=0)
    meter = CheckedMeter(CombinedMeter(NvmlMeter(*open_nvml(), 0.01), RaplMeter(rapl_zones(root))))
    try:
        assert set(meter.probes()) == {"gpu0", "package-0", "dram-0"}
        assert meter.update_period_s == 0.1  # NVML's sensor, the slower of the two
        assert meter.probes()["gpu0"]()["power_w"] == 212.0
    finally:
        meter.close()


def test_session_recorder_gives_each_config_the_devices_and_its_own_phases(fake_gpu):
    meter = NvmlMeter(*open_nvml(), 0.01)
    recorder = TimelineRecorder(meter, 0.01)
    recorder.start()
    with recorder.phase("baseline"):
        time.sleep(0.03)
    for owner in (0, 1):
        with recorder.phase("load", owner=owner):
            time.sleep(0.01)
    now = time.perf_counter()
    recorder.add_phase("window", now, now + 0.02, repeat=0, owner=1)
    recorder.add_phase("window", now + 0.03, now + 0.05, repeat=0, owner=0)
    time.sleep(0.06)
    recorder.stop()
    recorder.stop()  # twice is harmless
    meter.close()
    assert not sampler_threads() and recorder.error is None

    mine = recorder.timeline(owner=0)
    assert [(p["name"], p["repeat"]) for p in mine["phases"]] == [("baseline", None), ("load", None), ("window", 0)]
    assert [p["name"] for p in recorder.timeline(owner=1)["phases"]] == ["baseline", "load", "window"]
    samples = mine["devices"]["gpu0"]
    assert len(samples) >= 2 and all(s["power_w"] == 212.0 for s in samples)
    times = [s["t"] for s in samples]
    assert times == sorted(times) and 0 <= times[0] < times[-1]
    assert all(0 <= p["start"] <= p["end"] <= times[-1] + 0.01 for p in mine["phases"])
    short = recorder.timeline(owner=0, points=3)["devices"]["gpu0"]
    assert len(short) == 3 and short[0] == samples[0] and short[-1] == samples[-1]


def test_session_recorder_keeps_what_it_had_when_a_device_fails(tmp_path):
    root = make_powercap(tmp_path, package_uj=0, dram_uj=0)
    recorder = TimelineRecorder(RaplMeter(rapl_zones(root)), 0.01)
    recorder.start()
    time.sleep(0.05)
    (root / "intel-rapl:0" / "energy_uj").unlink()
    time.sleep(0.05)
    recorder.stop()
    assert isinstance(recorder.error, FileNotFoundError)
    assert recorder.timeline()["devices"]["package-0"]  # the samples before the failure
    assert not sampler_threads()


def test_a_meter_without_telemetry_has_phases_but_no_devices():
    from llenergymeasure.energy.base import NoEnergyMeter

    recorder = TimelineRecorder(NoEnergyMeter("energy.source is 'none'"), 0.1)
    recorder.start()
    with recorder.phase("warmup"):
        pass
    recorder.stop()
    assert recorder.timeline() == {"devices": {}, "phases": [recorder.timeline()["phases"][0]]}
    assert not sampler_threads()


def test_a_paused_sampler_takes_no_sample_until_resumed_with_fresh_probes():
    calls = {"old": 0, "new": 0}

    def probe(which):
        def call():
            calls[which] += 1
            return {"v": which}
        return call

    sampler = Sampler({"x": probe("old")}, interval_s=0.005)
    sampler.start()
    time.sleep(0.03)
    sampler.pause()
    time.sleep(0.02)  # a sample under way when pausing still lands
    paused_at = dict(calls)
    time.sleep(0.1)
    assert calls == paused_at  # twenty intervals, not one sample
    sampler.resume({"x": probe("new")})
    time.sleep(0.03)
    samples = sampler.stop()["x"]
    assert calls["old"] == paused_at["old"] and calls["new"] >= 1
    assert [s["v"] for s in samples] == ["old"] * paused_at["old"] + ["new"] * calls["new"]
    assert not sampler_threads()


def test_while_a_window_is_measured_the_session_takes_its_samples_instead_of_its_own(fake_gpu):
    meter = NvmlMeter(*open_nvml(), 0.01)
    recorder = TimelineRecorder(meter, 0.01)
    recorder.start()
    time.sleep(0.05)
    recorder.pause()
    time.sleep(0.02)
    meter.start()
    opened = time.perf_counter()
    time.sleep(0.1)
    closed = time.perf_counter()
    reading = meter.stop()
    recorder.resume(reading.timeline)
    time.sleep(0.05)
    recorder.stop()
    meter.close()
    session = recorder.timeline()["devices"]["gpu0"]
    own = {round(s["t"] - recorder.origin, 6) for s in reading.timeline["gpu0"]}
    inside = [s["t"] for s in session if opened - recorder.origin < s["t"] < closed - recorder.origin]
    assert inside and set(inside) <= own  # only the window's own sampler polled while it was open
    assert own <= {s["t"] for s in session}
    times = [s["t"] for s in session]
    assert times == sorted(times) and times[-1] > closed - recorder.origin  # sampling went on after it
