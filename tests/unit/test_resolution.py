"""A window that reads less than one step of its meter has no energy, with the resolution said; never 0 J.

The CPU estimate of a server counts the CPU time of its process tree, which the kernel keeps in
10 ms ticks: here the server is a real process that sleeps through the window (so its tree
reads no tick whatever this machine's load), or one that works until it has spent two ticks.
RAPL is a fake powercap tree (the hardware seam), the GPU the fake pynvml.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy import hardware
from llenergymeasure.energy.meters import create_meter
from llenergymeasure.energy.processes import find_server
from tests.fakes.pynvml import FakeGpu, FakeNvml
from tests.unit.test_energy_cpu import make_powercap

SLEEPER = "import time; print('ready', flush=True); time.sleep(600)"
WORKER = "import time; print('ready', flush=True); time.sleep(0.5)\nwhile True: pass"


@pytest.fixture
def server():
    """``server(code)``: a process running ``code``, once it has said it is ready; its process tree."""
    started: list[subprocess.Popen] = []

    def start(code: str):
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "ready"
        return find_server(pid=process.pid)

    yield start
    for process in started:
        process.kill()
        process.wait()


def window(meter, until=lambda: True, seconds=0.2):
    """One window of at least ``seconds``, open until ``until()`` holds."""
    try:
        meter.start()
        time.sleep(seconds)
        while not until():
            time.sleep(0.01)
        return meter.stop()
    finally:
        meter.close()


def test_a_light_window_of_a_servers_cpu_estimate_is_unavailable_with_the_resolution_not_0_j(server):
    tree = server(SLEEPER)
    meter = create_meter(EnergyConfig(source="cpu_estimate"), cpu_seconds=tree.cpu_seconds)
    watts = meter.meter.watts_per_cpu_second
    reading = window(meter)
    assert reading.energy_j is None and reading.cpu_energy_j is None, "0 J is never reported as measured"
    assert reading.estimated and not reading.suspect
    assert f": the meter's resolution is 10 ms of CPU time x {watts:.3g} W per CPU = {0.01 * watts:.3g} J, and " \
           "this window read less (0 J over " in reading.unavailable_reason
    assert reading.unavailable_reason.endswith("put more work in the window (more prompts, requests or tokens)")


def test_a_window_in_which_the_server_spent_ticks_is_measured(server):
    tree = server(WORKER)
    meter = create_meter(EnergyConfig(source="cpu_estimate"), cpu_seconds=tree.cpu_seconds)
    watts = meter.meter.watts_per_cpu_second
    start = tree.cpu_seconds()
    reading = window(meter, until=lambda: tree.cpu_seconds() >= start + 0.02)
    assert reading.unavailable_reason is None
    assert reading.energy_j >= 0.02 * watts - 1e-9


def test_rapl_counters_that_did_not_move_in_a_light_window_are_unavailable_not_0_j(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(make_powercap(tmp_path, 1_000_000, 500_000)))
    tree = server(SLEEPER)  # the work is the server's, and it does none
    reading = window(create_meter(EnergyConfig(source="rapl"), cpu_seconds=tree.cpu_seconds))
    assert reading.energy_j is None and not reading.suspect
    assert reading.unavailable_reason.startswith(
        "package-0 (rapl), dram (rapl): the meter's resolution is 1 uJ, the unit of energy_uj = 1e-06 J, and this "
        "window read less (0 J over ")


def test_beside_a_gpu_only_the_cpu_energy_under_its_resolution_is_unavailable(server):
    hardware.set_pynvml(FakeNvml([FakeGpu("GPU-a", counter_mj=lambda t: 5_000_000 + int(t * 100_000),
                                          power_w=lambda t: 100.0)]))
    try:
        tree = server(SLEEPER)
        reading = window(create_meter(EnergyConfig(source="auto"), gpus=[0, "cpu"], cpu_seconds=tree.cpu_seconds))
    finally:
        hardware.set_pynvml(None)
    assert reading.source == "nvml_counter+cpu_estimate"
    assert reading.cpu_energy_j is None and reading.unavailable_reason is None and not reading.suspect
    assert reading.energy_j == reading.gpu_energy_j > 0
    [note] = [text for code, text in reading.warnings if code == "cpu_energy_unresolved"]
    assert note.startswith("CPU energy not measured: ") and "the total is the GPUs' energy alone" in note
