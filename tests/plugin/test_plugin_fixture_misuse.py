"""The ``llem_energy`` fixture misused: an error naming the test, never a wrong number.

A second window while one is open (nested, from another thread, ``llem_energy(fn)`` inside a
window), an ``fn`` that returns work not done yet (a generator, a coroutine), tokens or repeats
that cannot be meant, and a marker whose source or devices are wrong (an error at setup). The
energy comes from the fake GPU of ``fake_meter`` (exactly JOULES per window), so a window that
survives a refused second one can be shown to have measured all of its energy.
"""

from __future__ import annotations

import json

WINDOWS = """\
import threading
import time

import pytest

from llenergymeasure.exceptions import ConfigError


def samplers():
    return [t for t in threading.enumerate() if t.name == "llem-sampler"]


def test_nested_caught(llem_energy):
    with llem_energy.window(sync=None) as outer:
        with pytest.raises(ConfigError, match="a window was opened while another window of the test is open"):
            with llem_energy.window(sync=None):
                pass
        time.sleep(0.15)
        outer.tokens = 100
    assert not samplers()


def test_nested(llem_energy):
    with llem_energy.window(sync=None) as outer:
        with llem_energy.window(sync=None) as inner:
            inner.tokens = 1
        outer.tokens = 1


def test_call_inside_window(llem_energy):
    with llem_energy.window(sync=None) as window:
        llem_energy(time.sleep, 0.15, tokens=10, warmup=0, sync=None)
        window.tokens = 10


def test_other_thread(llem_energy):
    opened, tried = threading.Event(), threading.Event()
    errors = []

    def other():
        opened.wait()
        try:
            with llem_energy.window(sync=None) as window:
                window.tokens = 1
        except ConfigError as exc:
            errors.append(str(exc))
        tried.set()

    thread = threading.Thread(target=other)
    thread.start()
    with llem_energy.window(sync=None) as window:
        opened.set()
        assert tried.wait(10)
        time.sleep(0.15)
        window.tokens = 100
    thread.join()
    assert len(errors) == 1 and "another window of the test is open (nested, from another thread" in errors[0]
    assert not samplers()
"""


def test_a_second_window_while_one_is_open_is_an_error_and_the_open_one_measures_all_its_energy(
        pytester, fake_meter):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_windows=WINDOWS)
    result = pytester.runpytest_subprocess("-p", "fakemeter", "-p", "no:randomly", "--llem-json=session.json")
    result.assert_outcomes(passed=2, failed=2)
    second = ("llem_energy: a window was opened while another window of the test is open (nested, from another thread, or "
              "llem_energy(fn) inside a window); the meter holds one start reading, so each would measure part of "
              "the energy. Close each window before opening the next: every window is one repeat")
    result.stdout.fnmatch_lines_random([f"E   *ConfigError: test_windows.py::test_nested: {second}",
                                        f"E   *ConfigError: test_windows.py::test_call_inside_window: {second}"])
    items = {item["nodeid"]: item for item in json.loads((pytester.path / "session.json").read_text())["items"]}
    for test in ("test_nested_caught", "test_other_thread"):
        [repeat] = items[f"test_windows.py::{test}"]["result"]["repeats"]
        assert repeat["metrics"]["energy_j"] == 1.0  # the whole window's, not the part after a second start
        assert repeat["output_tokens"] == 100


LAZY = """\
import pytest


def generate():
    yield "a token"


async def complete():
    return "a token"


async def stream():
    yield "a token"


@pytest.mark.parametrize("fn", [generate, complete, stream, lambda: map(str, range(3))],
                         ids=["generator", "coroutine", "async_generator", "map"])
def test_lazy(llem_energy, fn):
    llem_energy(fn, tokens=1, sync=None)
"""


def test_fn_returning_work_not_done_yet_fails_saying_to_consume_it_inside_the_call(pytester, fake_meter):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_lazy=LAZY)
    result = pytester.runpytest_subprocess("-p", "fakemeter", "-p", "no:randomly", "-W", "error::RuntimeWarning")
    result.assert_outcomes(failed=4)
    after = "after the window has closed, so the window would measure none of it"
    result.stdout.fnmatch_lines_random([
        (f"E   *ConfigError: test_lazy.py::test_lazy[[]generator[]]: llem_energy(generate) returned a generator: its "
         f"work runs only when it is consumed, {after}; consume it inside the call, e.g. "
         "llem_energy(lambda: list(generate(...)), ...)"),
        (f"E   *ConfigError: test_lazy.py::test_lazy[[]coroutine[]]: llem_energy(complete) returned a coroutine: its "
         f"work runs only when it is awaited, {after}; await it inside the call, e.g. "
         "llem_energy(lambda: asyncio.run(complete(...)), ...)"),
        (f"E   *ConfigError: test_lazy.py::test_lazy[[]async_generator[]]: llem_energy(stream) returned an async "
         f"generator: its work runs only when it is consumed, {after}; consume it inside the call, e.g. in a "
         "coroutine that collects it (asyncio.run)"),
        "E   *ConfigError: test_lazy.py::test_lazy[[]map[]]: llem_energy(<lambda>) returned a lazy iterator (map):*",
    ])
    output = result.stdout.str() + result.stderr.str()
    assert "never awaited" not in output and "Unraisable" not in output


NUMBERS = """\
import pytest


@pytest.mark.parametrize("tokens", [True, 1.5, -1, "3"], ids=["bool", "float", "negative", "str"])
def test_window_tokens(llem_energy, tokens):
    with llem_energy.window(sync=None) as window:
        window.tokens = tokens


def test_call_tokens(llem_energy):
    llem_energy(sum, [1], tokens=lambda out: 1.5, sync=None)


def not_called():
    raise AssertionError("llem_energy called fn despite its bad repeats")


def test_repeats_over_the_cap(llem_energy):
    llem_energy(not_called, tokens=1, repeats=1001)


def test_repeats_at_the_cap(llem_energy):
    with pytest.raises(AssertionError, match="despite its bad repeats"):  # accepted: fn is called
        llem_energy(not_called, tokens=1, repeats=1000)
    with llem_energy.window(sync=None) as window:
        window.tokens = 1
"""


def test_tokens_and_repeats_take_whole_numbers_and_repeats_has_the_yaml_cap(pytester, fake_meter):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_numbers=NUMBERS)
    result = pytester.runpytest_subprocess("-p", "fakemeter", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=6)
    whole = "must be a whole number of generated tokens, 0 or more"
    result.stdout.fnmatch_lines_random([
        f"E   *ConfigError: test_numbers.py::test_window_tokens[[]bool[]]: window.tokens {whole} (got True)",
        f"E   *ConfigError: test_numbers.py::test_window_tokens[[]float[]]: window.tokens {whole} (got 1.5)",
        f"E   *ConfigError: test_numbers.py::test_window_tokens[[]negative[]]: window.tokens {whole} (got -1)",
        f"E   *ConfigError: test_numbers.py::test_window_tokens[[]str[]]: window.tokens {whole} (got '3')",
        f"E   *ConfigError: test_numbers.py::test_call_tokens: llem_energy: tokens {whole} (got 1.5)",
        ("E   *ConfigError: test_numbers.py::test_repeats_over_the_cap: llem_energy(repeats=1001): a whole number of "
         "windows, 1 to 1000 (as a benchmark file's repeats)"),
    ])


MARKERS = """\
import time

import pytest


@pytest.mark.llem(source="bogus")
def test_bogus_source(llem_energy):
    llem_energy(time.sleep, 0.15, tokens=10, warmup=0, sync=None)


@pytest.mark.llem(devices="0")
def test_devices_not_a_list(llem_energy):
    llem_energy(time.sleep, 0.15, tokens=10, warmup=0, sync=None)


@pytest.mark.llem(devices=[0, 5])
def test_missing_gpu(llem_energy):
    llem_energy(time.sleep, 0.15, tokens=10, warmup=0, sync=None)


@pytest.mark.llem(devices=["GPU-meter-fake", "cpu"], source="nvml")
def test_visible_gpu(llem_energy):
    llem_energy(time.sleep, 0.15, tokens=10, warmup=0, sync=None)
"""


def test_a_marker_naming_a_bad_source_or_devices_is_an_error_at_setup(pytester, fake_meter):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_markers=MARKERS)
    result = pytester.runpytest_subprocess("-p", "fakemeter", "-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines_random([
        "*ERROR at setup of test_bogus_source*",
        "*ERROR at setup of test_devices_not_a_list*",
        "*ERROR at setup of test_missing_gpu*",
        ("*test_markers.py::test_bogus_source: @pytest.mark.llem(source='bogus'): Input should be 'auto', 'nvml', "
         "'rapl', 'cpu_estimate' or 'none'*"),
        ("*test_markers.py::test_devices_not_a_list: @pytest.mark.llem(devices='0'): give a list of GPUs (index, "
         "'cuda:N' or UUID) and/or 'cpu', or None for every visible GPU*"),
        ("*test_markers.py::test_missing_gpu: @pytest.mark.llem devices: GPU 5 is not visible to this process "
         "(visible: 0 (GPU-meter-fake))*"),
    ])
    assert "Traceback" not in result.stdout.str()

    dry = pytester.runpytest_subprocess("-p", "fakemeter", "-p", "no:randomly", "--llem-dry-run")
    dry.assert_outcomes(skipped=2, errors=2)  # a dry run checks the marker's form, not this machine's GPUs
