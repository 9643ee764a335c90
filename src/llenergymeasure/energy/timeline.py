"""The session timeline: every device's telemetry over a whole ``llem run``, with its phases.

A window's numbers are easier to trust when one can see what they sit in: the idle baseline,
the model load, the warmup, each window and prefill window, and the gaps between them.

    recorder = TimelineRecorder(meter, interval_s)
    recorder.start()                                   # before the idle baseline
    with recorder.phase("load", owner=0):              # a config's own phase (owner: its index)
        ...
    recorder.pause()                                   # a measured window opens: its meter samples
    reading = ...                                      # the window
    recorder.resume(reading.timeline)                  # its samples fill the pause
    recorder.add_phase("window", start, end, repeat=0, owner=0)   # perf_counter edges
    recorder.stop()                                    # bounded; no thread left
    recorder.timeline(owner=0)                         # SessionTimeline for config 0's result

``timeline(owner)`` holds every device's samples (shared by all configs of a session) and the
phases that belong to that config or to none (the baseline); ``t``, ``start`` and ``end`` are
seconds since ``start()``.

Between windows the recorder polls fresh probes of the run's meter (``probes_of(meter)``) on
its own Sampler thread, at the meter's sampling interval. While a measured window is open (the
idle baseline, each window, each prefill window) it is paused: the meter's own sampler, which
polls the same probes at the same interval for the window's timeline, is the only one, and its
samples become the session's for that span. So a window runs exactly as without a session
timeline: no second thread (docs/measurements.md, "Timelines"), and the energy is the difference
of the meter's counters at the window's edges.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from llenergymeasure.energy.base import EnergyMeter, probes_of
from llenergymeasure.energy.sampler import Sampler, downsample


class TimelineRecorder:
    def __init__(self, meter: EnergyMeter, interval_s: float) -> None:
        self._meter = meter
        self._sampler = Sampler(probes_of(meter), interval_s)
        self._phases: list[tuple[int | None, dict[str, Any]]] = []  # (owner, phase)
        self._samples: dict[str, list[dict[str, Any]]] = {}
        self._windows: dict[str, list[dict[str, Any]]] = {}  # the windows' own samples, for the pauses
        self.origin: float | None = None  # time.perf_counter() at start(): t = 0 of the timeline
        self._running = False
        self.error: BaseException | None = None

    def start(self) -> None:
        self.origin = time.perf_counter()
        if self._sampler.probes:
            self._sampler.start()
            self._running = True

    def pause(self) -> None:
        """A measured window with its own sampler opens: take no sample until ``resume``."""
        if self._running:
            self._sampler.pause()

    def resume(self, window_samples: dict[str, list[dict[str, Any]]]) -> None:
        """The window closed; ``window_samples`` (its reading's timeline) cover the pause."""
        for name, samples in window_samples.items():
            self._windows.setdefault(name, []).extend(samples)
        if self._running:
            self._sampler.resume(probes_of(self._meter))

    def stop(self) -> None:
        """Stop sampling (at most the sampler's bounded wait); safe to call more than once."""
        if self._running:
            self._running = False
            self._samples = self._sampler.stop()
            self.error = self._sampler.error

    def add_phase(self, name: str, start: float, end: float, *, repeat: int | None = None,
                  owner: int | None = None) -> None:
        """A phase from ``start`` to ``end`` (``time.perf_counter()`` values)."""
        if self.origin is None:
            return
        self._phases.append((owner, {"name": name, "start": self._since(start), "end": self._since(end),
                                     "repeat": repeat}))

    @contextlib.contextmanager
    def phase(self, name: str, *, owner: int | None = None) -> Iterator[None]:
        """The ``with`` block as a phase; one that raised is not marked."""
        start = time.perf_counter()
        yield
        self.add_phase(name, start, time.perf_counter(), owner=owner)

    def timeline(self, owner: int | None = None, points: int | None = None) -> dict[str, Any]:
        """The session timeline of config ``owner``: ``{"devices", "phases"}``, every device's
        samples (at most ``points`` each, evenly spaced, when given) with ``t`` relative."""
        devices = {}
        for name in {**self._samples, **self._windows}:
            samples = sorted(self._samples.get(name, []) + self._windows.get(name, []), key=lambda s: s["t"])
            kept = downsample(samples, points) if points else samples
            devices[name] = [{**sample, "t": self._since(sample["t"])} for sample in kept]
        phases = [dict(phase) for who, phase in self._phases if who is None or who == owner]
        return {"devices": devices, "phases": sorted(phases, key=lambda phase: phase["start"])}

    def _since(self, moment: float) -> float:
        assert self.origin is not None
        return round(moment - self.origin, 6)
