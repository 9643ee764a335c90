"""Windows cannot be misused into wrong numbers: a second window of one monitor (nested, or from
another thread) is an error that leaves the open one exact and no thread behind; ``tokens`` and
``devices`` take only what they can mean.

The GPU is the fake pynvml at the hardware seam, its counter scripted read by read (the listing's
probe, then each window's start and stop), so the joules of every window are exact.
"""

from __future__ import annotations

import threading
import time

import pytest

from llenergymeasure import EnergyMonitor, measure_energy
from llenergymeasure.energy import hardware
from llenergymeasure.exceptions import ConfigError
from tests.fakes.pynvml import FakeGpu, FakeNvml

SECOND_WINDOW = r"EnergyMonitor.window\(\): another window of this monitor is still open \(nested, or in another thread\)"


@pytest.fixture
def gpu():
    """``gpu(counter_mj)`` installs one fake GPU; no telemetry thread may be left afterwards."""
    yield lambda counter_mj: hardware.set_pynvml(FakeNvml([FakeGpu("GPU-aaaaaaaa-1111", counter_mj=counter_mj)]))
    hardware.set_pynvml(None)
    assert not [t for t in threading.enumerate() if t.name.startswith("llem-")], "a telemetry thread was left"


def sampler_threads() -> int:
    return sum(t.name == "llem-sampler" for t in threading.enumerate())


def test_a_window_nested_in_another_of_one_monitor_is_an_error_and_the_outer_one_stays_exact(gpu):
    gpu([0, 1_000, 11_000, 11_000, 31_000])  # the outer window 10 J, the next one 20 J
    refused = SECOND_WINDOW + r".*close it before opening the next, or measure the overlapping work with an " \
                              r"EnergyMonitor of its own"
    with EnergyMonitor(devices=[0]) as monitor:
        with monitor.window(sync=None) as outer:
            with pytest.raises(ConfigError, match=refused), monitor.window(sync=None):
                pass
            assert sampler_threads() == 1
            time.sleep(0.15)
        assert sampler_threads() == 0
        with monitor.window(sync=None) as after:  # the error left the monitor usable
            time.sleep(0.15)
    assert (outer.energy_j, after.energy_j) == (pytest.approx(10.0), pytest.approx(20.0))


def test_an_error_from_the_nested_window_closes_the_outer_one_measuring_nothing(gpu):
    gpu([0, 1_000, 11_000])
    with EnergyMonitor(devices=[0]) as monitor, pytest.raises(ConfigError, match=SECOND_WINDOW), \
            monitor.window(sync=None) as outer, monitor.window(sync=None):
        pass
    assert not outer.closed


def test_a_window_opened_from_another_thread_while_one_is_open_is_an_error(gpu):
    gpu([0, 1_000, 11_000])
    opened, tried = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_thread() -> None:
        opened.wait()
        try:
            with monitor.window(sync=None):
                pass
        except ConfigError as exc:
            errors.append(exc)
        tried.set()

    with EnergyMonitor(devices=[0]) as monitor:
        thread = threading.Thread(target=other_thread)
        thread.start()
        with monitor.window(sync=None) as window:
            opened.set()
            tried.wait(10)
            time.sleep(0.15)
        thread.join()
    assert len(errors) == 1 and "another window of this monitor is still open" in str(errors[0])
    assert window.energy_j == pytest.approx(10.0)


def test_separate_monitors_measure_overlapping_windows_each_from_its_own_start(gpu):
    # reads: each monitor's listing probe, then a.start, b.start, b.stop, a.stop
    gpu([0, 0, 1_000, 11_000, 21_000, 41_000])
    with EnergyMonitor(devices=[0]) as a, EnergyMonitor(devices=[0]) as b, a.window(sync=None) as outer, \
            b.window(sync=None) as inner:
        time.sleep(0.15)
    assert (outer.energy_j, inner.energy_j) == (pytest.approx(40.0), pytest.approx(10.0))


@pytest.mark.parametrize("tokens", [True, 1.5, 2.0, -1, "3", [3]])
def test_window_tokens_must_be_a_whole_number_0_or_more(gpu, tokens):
    gpu([0, 1_000, 11_000])
    with pytest.raises(ConfigError) as raised, measure_energy(sync=None) as window:
        window.tokens = tokens
    assert str(raised.value) == f"window.tokens must be a whole number of generated tokens, 0 or more (got {tokens!r})"
    assert not window.closed  # the error closed the window, measuring nothing


def test_window_tokens_takes_integer_scalars_and_none(gpu):
    np = pytest.importorskip("numpy")
    gpu([0, 1_000, 11_000])
    with measure_energy(sync=None) as window:
        window.tokens = np.int64(100)
        time.sleep(0.15)
    assert type(window.tokens) is int and window.joules_per_token == pytest.approx(0.1)
    window.tokens = None
    assert window.joules_per_token is None


@pytest.mark.parametrize("devices", ["0", 0, [], [True], [-1], [1.5], [""], [None], {0: "a"}])
def test_devices_of_another_form_than_a_list_of_gpus_or_cpu_is_a_config_error(devices):
    with pytest.raises(ConfigError, match=r"measure_energy\(devices=.*\): give a list of GPUs \(index, 'cuda:N' or "
                                          r"UUID\) and/or 'cpu', or None for every visible GPU"):
        EnergyMonitor(devices=devices)
