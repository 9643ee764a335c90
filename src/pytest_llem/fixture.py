"""The ``llem_energy`` fixture and the ``llem`` marker: energy gates around any code in a test.

    @pytest.mark.llem(expect={"joules_per_token": {"max": 0.5}}, regression={"joules_per_token": "5%"})
    def test_generate(llem_energy, model, inputs):
        out = llem_energy(model.generate, **inputs, max_new_tokens=64,
                          tokens=lambda out: out[:, inputs["input_ids"].shape[1]:].numel())

    def test_server_load(llem_energy):
        with llem_energy.window() as window:
            window.tokens = send_requests()

``llem_energy(fn, *args, tokens=, repeats=, warmup=, sync=, **kwargs)`` calls ``fn(*args, **kwargs)``
``warmup`` times unmeasured (default 1), then ``repeats`` times, each call in its own measurement
window, and returns the last call's result. ``tokens`` is the number of tokens one call generates,
or a function of its result giving it. Every ``window()`` block is one more repeat.

Misuse is an error naming the test, never a wrong number: a window opened while another of the
test is open (nested, or from another thread: the meter holds one start reading), an ``fn`` that
returns a generator, coroutine or other lazy iterator (its work would run after the window
closed), ``tokens`` other than a whole number, 0 or more, and ``repeats`` outside 1 to the cap of
a benchmark file's ``repeats``. A marker's bad ``source`` or ``devices``, or a device this process
does not see, fails the test at setup.

Repeats: ``--llem-repeats`` wins, then ``repeats=``; without either one window, or five when the
session compares or saves baselines (as for benchmark files). The marker's ``expect`` and
``regression`` take the keys of a benchmark file, with its rules; ``source`` and ``devices`` choose
the meter as in ``measure_energy``. Gates are judged when the test body has passed, by the same
code as a benchmark file's items (gating.py): one-line diffs, baselines keyed by the test's node
id, the session table, JSON, markdown and JUnit properties. The devices measured are locked for
the test, as for a benchmark item. Under ``--llem-dry-run`` a test that uses the fixture is
skipped at setup, saying so (its marker is still checked). Under ``--llem-disable`` ``fn`` is called
once and a ``window()`` block runs once, unmeasured (a window reads no energy): no warmup, device lock, gate or baseline.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from llenergymeasure.exceptions import ConfigError, PreFlightError
from pytest_llem.gating import Judge, LlemFailure, attach, save_result
from pytest_llem.progress import say_line
from pytest_llem.settings import GATING_REPEATS, SETTINGS, Settings

MARKER_KEYS = ("expect", "regression", "source", "devices")

# A test that uses the fixture: its state, for the hook that judges it after its body, and its
# report record (as a benchmark item's, see report.py), for the hook that attaches it to reports.
STATE = pytest.StashKey["EnergyFixture"]()
RECORD = pytest.StashKey[dict[str, Any]]()


def marker_options(item: pytest.Item) -> dict[str, Any]:
    """The keywords of ``@pytest.mark.llem(...)`` on ``item`` (the closest mark wins per key);
    a usage error naming the test for positional arguments or unknown keys."""
    options: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers("llem"))):  # the closest (the function's) last
        if mark.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.llem takes keywords only "
                                    f"({', '.join(MARKER_KEYS)}), not {mark.args!r}")
        unknown = sorted(set(mark.kwargs) - set(MARKER_KEYS))
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.llem got unknown keyword(s) {', '.join(unknown)}; "
                                    f"it takes {', '.join(MARKER_KEYS)}")
        options.update(mark.kwargs)
    return options


def gates(item: pytest.Item, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str | float]]:
    """The marker's ``expect`` and ``regression`` gates, checked with a benchmark file's rules."""
    from llenergymeasure.config.benchmark_file import parse_gates

    def where(key_path: tuple[Any, ...]) -> str:
        return f"{item.nodeid}: @pytest.mark.llem({'.'.join(map(str, key_path))})"

    data = {key: options[key] for key in ("expect", "regression") if key in options}
    return parse_gates(data, where)


class EnergyFixture:
    """What ``llem_energy`` is: a callable measuring ``fn``, and ``window()`` for a block."""

    def __init__(self, item: pytest.Item, settings: Settings, options: dict[str, Any]) -> None:
        from llenergymeasure.energy.window import energy_config

        self.item, self.settings = item, settings
        self.source = options.get("source", "auto")
        self.devices = options.get("devices")
        energy_config(self.source, self.devices, where=f"{item.nodeid}: @pytest.mark.llem")
        self.expect, self.regression = gates(item, options)
        self.started = datetime.now(timezone.utc)
        self.repeats: list[Any] = []
        self.readings: list[Any] = []
        self._monitor: Any = None
        self._stack = contextlib.ExitStack()
        self._window_open = threading.Lock()

    def missing_device(self) -> str | None:
        """Why the marker's ``devices`` name a GPU that this process does not see (the test would
        otherwise measure nothing of it and pass with no J/token), naming the test; or None."""
        from llenergymeasure.energy.meters import select_gpus

        gpus = [device for device in self.devices or [] if str(device).lower() != "cpu"]
        if not gpus:
            return None
        try:
            select_gpus(self.settings.machine.gpus, gpus)  # type: ignore[arg-type]  # Gpu has the uuid it matches
        except PreFlightError as exc:
            xdist = "PYTEST_XDIST_WORKER" in os.environ
            hint = "; under xdist (-n) each worker sees only its own GPU(s)" if xdist else ""
            return f"{self.item.nodeid}: @pytest.mark.llem {exc.problems[0]}{hint}"
        return None

    def __call__(self, fn: Callable[..., Any], *args: Any, tokens: int | Callable[[Any], int],
                 repeats: int | None = None, warmup: int = 1, sync: Any = "auto", **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``: ``warmup`` calls unmeasured, then a window around each of the
        repeats; the last call's result."""
        from llenergymeasure.energy.window import whole_tokens

        __tracebackhide__ = True  # pytest shows the test's line that called, not this function
        count = 1 if self.settings.disable else self._repeats(repeats)
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
            raise ConfigError(f"{self.item.nodeid}: llem_energy(warmup={warmup!r}): a whole number of calls, 0 or more")
        what = f"{self.item.nodeid}: llem_energy: tokens"
        if not callable(tokens):
            whole_tokens(tokens, what)
        for _ in range(0 if self.settings.disable else warmup):
            self._done(fn, fn(*args, **kwargs))
        result = None
        for _ in range(count):
            with self.window(sync=sync) as window:
                result = self._done(fn, fn(*args, **kwargs))
                window.tokens = whole_tokens(tokens(result) if callable(tokens) else tokens, what)
        return result

    def _done(self, fn: Callable[..., Any], result: Any) -> Any:
        """``result``, unless it is work that runs only when consumed or awaited (after the window
        closed): then ConfigError naming the test, the coroutine or generator closed first, so that
        Python does not warn it was never awaited."""
        __tracebackhide__ = True
        name = getattr(fn, "__qualname__", None) or repr(fn)
        kind = type(result).__name__
        if inspect.isawaitable(result):
            kind = "a coroutine" if inspect.iscoroutine(result) else f"an awaitable ({kind})"
            when, how = "awaited", f"await it inside the call, e.g. llem_energy(lambda: asyncio.run({name}(...)), ...)"
        elif isinstance(result, AsyncIterator):
            kind = "an async generator" if inspect.isasyncgen(result) else f"an async iterator ({kind})"
            when, how = "consumed", "consume it inside the call, e.g. in a coroutine that collects it (asyncio.run)"
        elif isinstance(result, Iterator):
            kind = "a generator" if inspect.isgenerator(result) else f"a lazy iterator ({kind})"
            when, how = "consumed", f"consume it inside the call, e.g. llem_energy(lambda: list({name}(...)), ...)"
        else:
            return result
        if inspect.iscoroutine(result) or inspect.isgenerator(result):
            result.close()
        raise ConfigError(f"{self.item.nodeid}: llem_energy({name}) returned {kind}: its work runs only when it is "
                          f"{when}, after the window has closed, so the window would measure none of it; {how}")

    @contextlib.contextmanager
    def window(self, sync: Any = "auto") -> Iterator[Any]:
        """One measured repeat around the block; set ``window.tokens`` inside it."""
        from llenergymeasure.backends.base import BatchOutput
        from llenergymeasure.core.runner import repeat_result

        __tracebackhide__ = True
        if not self._window_open.acquire(blocking=False):
            raise ConfigError(f"{self.item.nodeid}: llem_energy: a window was opened while another window of the test "
                              "is open (nested, from another thread, or llem_energy(fn) inside a window); the meter "
                              "holds one start reading, so each would measure part of the energy. Close each window "
                              "before opening the next: every window is one repeat")
        try:
            with self._open().window(sync=sync) as window:
                window.owner = self.item.nodeid
                yield window
        finally:
            self._window_open.release()
        if window.tokens is None:
            pytest.fail(f"{self.item.nodeid}: llem_energy.window(): set window.tokens to the number of tokens "
                        "generated inside the with block", pytrace=False)
        if self.settings.disable:
            return
        output = BatchOutput(input_tokens=0, output_tokens=window.tokens, latency_s=window.duration_s, ttft_s=None)
        self.readings.append(window.reading)
        self.repeats.append(repeat_result(len(self.repeats), [output], window.reading, window.duration_s,
                                          1, None, None))

    def _repeats(self, repeats: int | None) -> int:
        cap = max_repeats()
        if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool)
                                    or not 1 <= repeats <= cap):
            raise ConfigError(f"{self.item.nodeid}: llem_energy(repeats={repeats!r}): a whole number of windows, "
                              f"1 to {cap} (as a benchmark file's repeats)")
        return self.settings.repeats or repeats or (GATING_REPEATS if self.settings.gating else 1)

    def _open(self) -> Any:
        """The meter, opened on first use with the devices it measures locked for the test."""
        if self._monitor is None:
            from llenergymeasure.energy.window import EnergyMonitor
            from pytest_llem.workers import LOCK_TIMEOUT_HINT, measurement_lock

            if self.settings.disable:  # --llem-disable: windows as plain code, on a meter that reads nothing
                self._monitor = self._stack.enter_context(EnergyMonitor("none"))
                return self._monitor

            machine = self.settings.machine
            devices = [g.uuid for g in machine.gpus] or ["cpu"]
            self._stack.enter_context(measurement_lock(devices, holder=self.item.nodeid,
                                                       timeout=self.settings.lock_timeout,
                                                       timeout_hint=LOCK_TIMEOUT_HINT, notify=lambda text: say_line(self.item, text)))
            self._monitor = self._stack.enter_context(EnergyMonitor(self.source, self.devices))
        return self._monitor

    def close(self) -> None:
        self._stack.close()

    def finish(self, record: dict[str, Any]) -> None:
        """Judge what the test measured (its body passed): pytest.fail with the gates' lines. A
        regression is confirmed by running the test body once more (``--llem-confirm``)."""
        if self.settings.disable:
            return
        if not self.repeats:
            record["error"] = "the test used llem_energy but measured nothing"
            pytest.fail(f"{record['error']}: call llem_energy(fn, ..., tokens=N) or use llem_energy.window()",
                        pytrace=False)
        failures: list[str] = []
        result = self.result()
        saved = save_result(result, self.settings.output, failures)
        failures += Judge(self.item, record, self.settings, self.regression).failures(
            result, self.expect, saved=saved, remeasure=lambda: self._again(failures))
        if failures:
            record["error"] = "\n".join(failures)
            pytest.fail(str(LlemFailure(failures)), pytrace=False)

    def _again(self, failures: list[str]) -> tuple[Any, None, str | None]:
        """Run the test body again with fresh windows (same fixtures, same devices held): the
        measurement that confirms a regression or not."""
        self.repeats, self.readings = [], []
        self.started = datetime.now(timezone.utc)
        self.item.runtest()
        if not self.repeats:
            pytest.fail(f"{self.item.nodeid}: measured nothing when its body ran again to confirm a regression",
                        pytrace=False)
        result = self.result()
        return result, None, save_result(result, self.settings.output, failures)

    def result(self) -> Any:
        """The test's windows as an ExperimentResult, named by its node id."""
        from llenergymeasure.config.models import EnergyConfig
        from llenergymeasure.core.environment import snapshot
        from llenergymeasure.core.runner import result_from_windows
        from llenergymeasure.energy.carbon import carbon_intensity
        from llenergymeasure.results.model import make_experiment_id

        name = self.item.nodeid.split("::", 1)[-1]
        config = {"test": name, "n": 1, "source": self.source, "devices": self.devices, "repeats": len(self.repeats)}
        config_hash = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
        gpus = [d.name for d in self.readings[0].devices if d.device.startswith("gpu")]
        environment = snapshot({"device": "cuda" if gpus else "cpu", "gpus": gpus, **_libraries()})
        return result_from_windows(
            self.repeats, self.readings, experiment_id=make_experiment_id(name, config_hash, self.started), name=name,
            config=config, config_hash=config_hash, started=self.started, environment=environment, warnings=[],
            intensity=carbon_intensity(EnergyConfig()),
        )


def max_repeats() -> int:
    """The cap of a benchmark file's ``repeats`` (ExperimentConfig's), so the fixture's is the same."""
    from llenergymeasure.config.models import ExperimentConfig

    return next(rule.le for rule in ExperimentConfig.model_fields["repeats"].metadata if hasattr(rule, "le"))


def _libraries() -> dict[str, str]:
    """Versions of the inference libraries this test process has imported (imports none)."""
    return {name: sys.modules[name].__version__ for name in ("torch", "transformers")
            if name in sys.modules and hasattr(sys.modules[name], "__version__")}


def energy_fixture(request: pytest.FixtureRequest) -> Iterator[EnergyFixture]:
    """The ``llem_energy`` fixture's body (the fixture itself is declared in plugin.py, which
    imports this module only for a test that asks for it)."""
    item = request.node
    settings = request.config.stash[SETTINGS]
    record = item.stash[RECORD] = record_for(item)
    try:
        fixture = EnergyFixture(item, settings, marker_options(item))
    except (pytest.UsageError, ConfigError) as exc:
        record["error"] = str(exc)
        pytest.fail(str(exc), pytrace=False)
    missing = None if settings.dry_run else fixture.missing_device()  # a dry run checks the marker's form only
    if missing:
        record["error"] = missing
        pytest.fail(missing, pytrace=False)
    if settings.dry_run:
        record.update(dry_run=True, notes=["measured only without --llem-dry-run"])
        pytest.skip("llem dry run: the energy of this test is measured only without --llem-dry-run")
    item.stash[STATE] = fixture
    try:
        yield fixture
    finally:
        fixture.close()


def record_for(item: pytest.Item) -> dict[str, Any]:
    """The report record of a test that uses the fixture, ordered in the table by its line."""
    from pytest_llem.baselines import locate

    root, key = locate(item.path, item.config)
    name, line = item.nodeid.split("::", 1)[-1], (item.reportinfo()[1] or 0) + 1
    return {"nodeid": item.nodeid, "experiment": name, "file": item.nodeid.split("::", 1)[0], "index": line,
            "line": line, "root": str(root), "baseline_key": f"{key}::{name}"}


def check_marker_use(item: pytest.Item) -> None:
    """A test whose ``llem`` marker sets gates but that does not measure fails at setup: its gates
    would otherwise never be checked, and a gate that cannot fail is worse than none."""
    if "llem_energy" in getattr(item, "fixturenames", ()) or hasattr(item, "experiment"):
        return  # a benchmark file's item: its mark holds its sweep point (collect.point_keywords)
    if any(mark.kwargs or mark.args for mark in item.iter_markers("llem")):
        pytest.fail(f"{item.nodeid}: @pytest.mark.llem sets energy gates, but the test does not measure: "
                    "add the llem_energy fixture to its arguments", pytrace=False)


def judge(item: pytest.Item) -> None:
    """After a test body that passed: judge what its fixture measured."""
    fixture = item.stash.get(STATE, None)
    if fixture is not None:
        fixture.finish(item.stash[RECORD])


def annotate(item: pytest.Item, report: pytest.TestReport) -> None:
    """Attach the record of a test that used the fixture to the report that decides its outcome."""
    record = item.stash.get(RECORD, None)
    if record is not None and not item.config.stash[SETTINGS].disable:  # an unmeasured test is a plain one
        attach(record, report)
