"""The session timeline and prefill/decode energy, end to end on the tiny model (CPU).

``llem run`` as a user types it (the CPU estimate), then in-process runs on the fakes at the
hardware seam: a fake GPU with exact power, a RAPL tree whose counters a thread advances, and
scripted counters that a prefill window cannot be trusted with. Assertions are on structure,
labels and sums that hold by construction, or on the fakes' exact numbers: never on this
machine's speed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from llem_helpers import LLEM, isolated_env_vars, result_files
from llenergymeasure.config.benchmark_file import Bound
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.core.runner import measure_interleaved, run_experiment
from llenergymeasure.energy import hardware
from llenergymeasure.energy.baseline import clear_cache
from llenergymeasure.results.gates import check_expect
from llenergymeasure.results.model import ExperimentResult
from tests.fakes.pynvml import FakeGpu, FakeNvml
from tests.unit.test_energy_cpu import make_powercap

pytestmark = pytest.mark.slow

# A GPU's energy needs a window of at least 100 ms (the sensor's update period): 4 batches of 48
# tokens take ~0.85 s on a 2-core runner, ~0.45 s on a fast one, well clear of it everywhere.
TINY = {"dataset": "builtin", "n": 8, "precision": "fp32", "max_output_tokens": 48, "pytorch.batch_size": 2,
        "decoder.ignore_eos": True, "warmup.n_warmup": 1}
GPU_W = 212.0


def phases(result: ExperimentResult) -> list[tuple[str, int | None]]:
    return [(phase["name"], phase["repeat"]) for phase in result.timeline["phases"]]


def assert_adds_up_per_repeat(result: ExperimentResult) -> None:
    """prefill + decode = the window's energy in every repeat (decode is the difference), and the
    per-token figures are those energies over their tokens."""
    for repeat in result.repeats:
        m = repeat.metrics
        assert m.prefill_energy_j is not None and m.decode_energy_j is not None
        assert m.prefill_energy_j + m.decode_energy_j == pytest.approx(m.energy_j, rel=1e-12)
        assert m.prefill_joules_per_input_token == pytest.approx(m.prefill_energy_j / repeat.input_tokens)
        assert m.decode_joules_per_token == pytest.approx(m.decode_energy_j / (repeat.output_tokens - repeat.n_prompts))


def assert_phases_are_ordered_inside_the_timeline(result: ExperimentResult, interval_s: float) -> None:
    spans = result.timeline["phases"]
    assert all(0 <= p["start"] <= p["end"] for p in spans)
    assert all(a["end"] <= b["start"] for a, b in zip(spans, spans[1:]))  # phases never overlap
    last = max(samples[-1]["t"] for samples in result.timeline["devices"].values())
    assert spans[-1]["end"] <= last + interval_s  # sampled to the end of the last window
    for repeat in result.repeats:
        window = next(p for p in spans if p["name"] == "window" and p["repeat"] == repeat.index)
        assert window["end"] - window["start"] == pytest.approx(repeat.metrics.duration_s, abs=1e-5)


def test_llem_run_on_cpu_has_a_labelled_timeline_phases_and_prefill_decode(tiny_model, tmp_path):
    import subprocess

    env = isolated_env_vars(tmp_path)
    Path(env["LLEM_CONFIG"]).write_text("defaults:\n  max_output_tokens: 16\n")
    out = tmp_path / "out"
    done = subprocess.run([*LLEM, "run", "--model", str(tiny_model), "-d", "builtin", "-n", "8", "--batch-size", "4",
                           "-p", "fp32", "-o", str(out)], capture_output=True, text=True, env=env, timeout=240,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.strip().startswith("prefill / decode"))
    assert "J/input token) / " in line and line.endswith("J/token) (estimated)"), line

    [path] = result_files(out)
    result = ExperimentResult.load(path)
    assert result.energy_source == "cpu_estimate"
    assert list(result.timeline["devices"]) == ["cpu"]
    samples = result.timeline["devices"]["cpu"]
    assert samples and all(s["estimated"] is True and s["power_w"] >= 0 for s in samples)
    assert phases(result) == [("load", None), ("warmup", None), ("window", 0), ("prefill", 0)]  # no baseline: estimate
    assert_phases_are_ordered_inside_the_timeline(result, 0.1)
    assert_adds_up_per_repeat(result)
    m = result.metrics  # one repeat: the headline is that repeat
    assert m.prefill_energy_j + m.decode_energy_j == pytest.approx(m.energy_j, rel=1e-12)

    sidecar = json.loads(path.with_name(path.stem + ".timeline.json").read_text())
    assert set(sidecar) == {"experiment_id", "repeats", "session"}
    assert len(sidecar["session"]["devices"]["cpu"]) >= len(samples)
    assert sidecar["session"]["phases"] == result.timeline["phases"]
    assert all(s["estimated"] for s in sidecar["repeats"][0]["cpu"])  # the window's own timeline, as before


@pytest.fixture
def fake_gpu():
    """One fake GPU drawing GPU_W watts, its counter in step; no baseline cached from another test."""
    clear_cache()
    gpu = FakeGpu("GPU-phases", counter_mj=lambda t: int(t * GPU_W * 1000), power_w=lambda t: GPU_W)
    hardware.set_pynvml(FakeNvml([gpu]))
    yield gpu
    hardware.set_pynvml(None)
    clear_cache()


class SwitchingGpu(FakeGpu):
    """Draws ``before_w`` until the main window's last counter read (the third: the listing's
    probe, the window's start and end), then ``after_w`` through the prefill window. The counter
    is the exact integral of that power, so the sampler's readings agree with it however long
    this machine's load makes either window."""

    def __init__(self, uuid: str, before_w: float, after_w: float) -> None:
        super().__init__(uuid, counter_mj=[0])
        self.before_w, self.after_w, self.switched = before_w, after_w, None
        self.power_w = lambda t: self.after_w if self.switched is not None and t >= self.switched else self.before_w

    def counter(self) -> int:
        t = self.elapsed()
        self.reads += 1
        if self.reads == 3:
            self.switched = t
        switched = t if self.switched is None else self.switched
        return int((self.before_w * switched + self.after_w * (t - switched)) * 1000)


def no_sampler_left() -> bool:
    deadline = time.monotonic() + 2
    while any(t.name == "llem-sampler" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(t.name == "llem-sampler" for t in threading.enumerate())


def test_fake_gpu_run_has_every_phase_from_the_baseline_on_with_the_gpu_power(fake_gpu, tiny_model, tmp_path):
    result = run_experiment(model=str(tiny_model), **TINY, repeats=2, output_dir=str(tmp_path),
                            **{"energy.source": "nvml", "energy.sample_interval_ms": 20,
                               "baseline.duration_seconds": 0.3})
    assert phases(result) == [("baseline", None), ("load", None), ("warmup", None),
                              ("window", 0), ("prefill", 0), ("window", 1), ("prefill", 1)]
    samples = result.timeline["devices"]["gpu0"]
    assert samples and all(s["power_w"] == GPU_W for s in samples)
    assert {"temperature_c", "sm_clock_mhz", "throttle_reasons"} <= set(samples[0])
    assert_phases_are_ordered_inside_the_timeline(result, 0.02)
    assert_adds_up_per_repeat(result)
    spans = result.timeline["phases"]
    for repeat in (0, 1):
        window, prefill = (next(p for p in spans if p["name"] == name and p["repeat"] == repeat)
                           for name in ("window", "prefill"))
        # the prefill window spans 10 sensor updates (1 s) unless the main window is shorter
        assert prefill["end"] - prefill["start"] >= min(1.0, window["end"] - window["start"]) - 1e-6
    assert result.metrics.decode_energy_j > 0 and not result.energy_suspect
    # a prefill window no longer than a short main window is as coarse as it, and says so the same way
    assert {w.code for w in result.measurement_warnings if w.code.startswith("prefill")} <= {"prefill_short_window"}
    assert no_sampler_left()
    sidecar = json.loads(next(tmp_path.glob("*.timeline.json")).read_text())
    assert len(sidecar["session"]["devices"]["gpu0"]) >= len(samples)


def test_a_prefill_window_with_a_stuck_counter_has_no_number_and_says_why(tiny_model):
    clear_cache()
    gpu = SwitchingGpu("GPU-stuck", before_w=50.0, after_w=0.0)  # its counter stops after the main window
    hardware.set_pynvml(FakeNvml([gpu]))
    try:
        result = run_experiment(model=str(tiny_model), **TINY, **{"energy.source": "nvml", "baseline.enabled": False})
    finally:
        hardware.set_pynvml(None)
    # the main window reads its own counters, whatever follows it
    assert result.metrics.energy_j == pytest.approx(50.0 * result.metrics.duration_s, rel=0.05)
    assert not result.energy_suspect
    m = result.metrics
    assert (m.prefill_energy_j, m.decode_energy_j, m.prefill_joules_per_input_token, m.decode_joules_per_token) == (
        None, None, None, None)
    [note] = [w.message for w in result.measurement_warnings if w.code == "prefill_unmeasured"]
    assert note.startswith("prefill and decode energy not measured in the prefill window after repeat 1:")
    assert "read 0 J" in note
    [verdict] = check_expect(result, {"decode_joules_per_token": Bound(max=1.0)})
    assert not verdict.passed and verdict.text == f"decode_joules_per_token not measured ({note})"
    assert check_expect(result, {"joules_per_token": Bound(max=1e6)})[0].passed


def test_a_prefill_that_measures_more_than_its_window_is_not_reported(tiny_model):
    clear_cache()
    # 0.1 W through the main window, 1 kW through the prefill window: a prefill pass (at least a
    # ten-thousandth of the main window's work) measures more than the whole main window
    hardware.set_pynvml(FakeNvml([SwitchingGpu("GPU-noisy", before_w=0.1, after_w=1000.0)]))
    try:
        result = run_experiment(model=str(tiny_model), **TINY, **{"energy.source": "nvml", "baseline.enabled": False})
    finally:
        hardware.set_pynvml(None)
    assert result.metrics.energy_j == pytest.approx(0.1 * result.metrics.duration_s, rel=0.05)
    assert result.metrics.prefill_energy_j is None and not result.energy_suspect
    [note] = [w.message for w in result.measurement_warnings if w.code == "prefill_unmeasured"]
    assert f"more than the whole window's {result.metrics.energy_j:.4g} J: the decode energy is below what the meter " \
           "resolves" in note


def test_rapl_run_has_a_power_timeline_per_zone(tiny_model, tmp_path, monkeypatch):
    root = make_powercap(tmp_path / "powercap", package_uj=0, dram_uj=0)
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(root))
    zones = {root / "intel-rapl:0" / "energy_uj": 30.0, root / "intel-rapl:0" / "intel-rapl:0:1" / "energy_uj": 5.0}
    stop = threading.Event()

    def advance() -> None:  # the CPU draws 30 W, its DRAM 5 W: the counters move as the hardware's would
        start = time.perf_counter()
        while not stop.wait(0.002):
            elapsed = time.perf_counter() - start
            for path, watts in zones.items():  # replaced whole, as sysfs reads are: never a half-written file
                path.with_suffix(".new").write_text(f"{int(elapsed * watts * 1e6)}\n")
                os.replace(path.with_suffix(".new"), path)

    writer = threading.Thread(target=advance, daemon=True)
    writer.start()
    try:
        result = run_experiment(model=str(tiny_model), **TINY, **{"energy.source": "rapl", "baseline.enabled": False})
    finally:
        stop.set()
        writer.join()
    assert result.energy_source == "rapl" and not result.estimated
    assert set(result.timeline["devices"]) == {"package-0", "dram-0"}
    for samples in result.timeline["devices"].values():
        assert samples and all(s["power_w"] >= 0 and isinstance(s["energy_uj"], int) and "estimated" not in s
                               for s in samples)
    assert phases(result) == [("load", None), ("warmup", None), ("window", 0), ("prefill", 0)]
    if result.repeats[0].metrics.prefill_energy_j is None:
        # The prefill window is ~10 ms: a writer thread starved for all of it (a loaded machine) leaves
        # the counters still, and a window below the meter's resolution is unavailable, never 0 J.
        [note] = [w.message for w in result.measurement_warnings if w.code == "prefill_unmeasured"]
        assert "the meter's resolution is 1 uJ" in note
    else:
        assert_adds_up_per_repeat(result)
    assert set(result.repeats[0].timeline) == {"package-0", "dram-0"}


def test_interleaved_configs_share_the_devices_and_keep_their_own_phases(fake_gpu, tiny_model):
    configs = [load_experiment_config(cli_overrides={"model": str(tiny_model), **TINY, "name": name,
                                                     "energy.source": "nvml", "baseline.enabled": False,
                                                     "random_seed": seed}, user_config_defaults={})
               for name, seed in (("a", 1), ("b", 2))]
    a, b = measure_interleaved(configs, [0, 1, 1, 0])
    assert a.timeline["devices"] == b.timeline["devices"]
    for result in (a, b):
        assert phases(result) == [("load", None), ("warmup", None), ("window", 0), ("prefill", 0),
                                  ("window", 1), ("prefill", 1)]
        assert_adds_up_per_repeat(result)
    spans_a, spans_b = a.timeline["phases"], b.timeline["phases"]
    assert spans_a[0]["end"] <= spans_b[0]["start"]  # a loads first
    a_windows = [p for p in spans_a if p["name"] == "window"]
    b_windows = [p for p in spans_b if p["name"] == "window"]
    # ABBA: a's first window, b's two, a's second
    assert a_windows[0]["end"] <= b_windows[0]["start"] and b_windows[1]["end"] <= a_windows[1]["start"]
    assert no_sampler_left()


def test_a_gpu_whose_telemetry_fails_keeps_its_energy_and_says_the_timeline_is_incomplete(tiny_model):
    clear_cache()
    gpu = FakeGpu("GPU-mute", counter_mj=lambda t: int(t * GPU_W * 1000), fail_power_after=2)  # lost to telemetry
    hardware.set_pynvml(FakeNvml([gpu]))
    try:
        result = run_experiment(model=str(tiny_model), **TINY, **{"energy.source": "nvml", "baseline.enabled": False})
    finally:
        hardware.set_pynvml(None)
    assert result.metrics.energy_j > 0 and result.metrics.prefill_energy_j is not None  # from the counters
    codes = {w.code for w in result.measurement_warnings}
    assert {"timeline_incomplete", "sampler_failed"} <= codes
    [note] = [w.message for w in result.measurement_warnings if w.code == "timeline_incomplete"]
    assert note.startswith("the session timeline's sampler stopped early (GPU is lost)")
    assert phases(result) == [("load", None), ("warmup", None), ("window", 0), ("prefill", 0)]
    assert no_sampler_left()
