"""The background sampler: one thread, one interval, polling every device's telemetry.

It feeds the timeline stored with results, the power integration for GPUs without an energy
counter, and the warnings (throttling, temperature drift, too few samples). A probe is a
callable returning one sample as a dict, or None when it has nothing to say yet (a probe that
derives power from counter differences needs two reads); a probe that raises ends sampling for
the window and is reported by ``stop()`` rather than killing the measurement.

Every probe runs on the sampler's own thread, never the caller's, and ``stop()`` waits for it
only a bounded time: a driver call that blocks (a wedged GPU) costs the window its telemetry,
reported through ``error``, never the run itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from llenergymeasure.energy.hardware import call_timeout_s

Probe = Callable[[], dict[str, Any] | None]

# A rate from counter differences over less time than this is mostly the counters' own
# granularity (RAPL updates about every millisecond, a process's CPU time in the kernel's ticks).
MIN_RATE_INTERVAL_S = 0.01


class Sampler:
    def __init__(self, probes: dict[str, Probe], interval_s: float) -> None:
        self.probes = probes
        self.interval_s = interval_s
        self.samples: dict[str, list[dict[str, Any]]] = {name: [] for name in probes}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and resume()
        self._paused = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="llem-sampler", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Take no sample until ``resume`` (a sample already under way still lands); the thread
        sleeps meanwhile, without waking at each interval."""
        self._paused = True

    def resume(self, probes: dict[str, Probe] | None = None) -> None:
        """Sample again at once, with fresh ``probes`` when given (of the same devices): a probe
        that derives a rate then starts a new interval instead of spanning the pause."""
        if probes is not None:
            self.probes = probes
        self._paused = False
        self._wake.set()

    def stop(self) -> dict[str, list[dict[str, Any]]]:
        """Stop the thread and return the samples so far. A thread stuck in a probe is waited for
        ``call_timeout_s()`` at most, then abandoned (a daemon) and reported through ``error``."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            timeout = max(call_timeout_s(), 2 * self.interval_s)
            thread.join(timeout)
            if thread.is_alive():
                self.error = self.error or TimeoutError(
                    f"a telemetry call did not return within {timeout:g} s (the GPU driver stopped answering)")
        return {name: list(samples) for name, samples in self.samples.items()}

    def _loop(self) -> None:
        # Event.wait keeps the cadence without sleeping past a stop request; the last sample is
        # taken after the stop request, so the trace spans the whole window.
        while not self._stop.is_set():
            if not self._paused and not self._sample_once():
                return
            self._wake.wait(None if self._paused else self.interval_s)
            self._wake.clear()
        if not self._paused:
            self._sample_once()

    def _sample_once(self) -> bool:
        now = time.perf_counter()
        try:
            for name, probe in self.probes.items():
                sample = probe()
                if sample is not None:
                    self.samples.setdefault(name, []).append({"t": now, **sample})
        except Exception as exc:  # reported through ``error``; the window's counters stay valid
            self.error = exc
            return False
        return True


def rate_probe(read: Callable[[], float],
               sample: Callable[[float, float, float], dict[str, Any] | None],
               clock: Callable[[], float] = time.perf_counter) -> Probe:
    """A probe over a cumulative counter (RAPL's energy, a process's CPU time): each call reads
    it and returns ``sample(previous value, value, seconds between the reads)``. The first call
    only reads (None), and so does a call less than MIN_RATE_INTERVAL_S after the previous
    sample: the next sample then spans both intervals."""
    last: list[tuple[float, float]] = []

    def probe() -> dict[str, Any] | None:
        now, value = clock(), read()
        if not last:
            last.append((now, value))
            return None
        then, before = last[0]
        if now - then < MIN_RATE_INTERVAL_S:
            return None
        last[0] = (now, value)
        return sample(before, value, now - then)

    return probe


def trapezoid_energy_j(samples: list[dict[str, Any]], start: float, end: float, key: str = "power_w") -> float:
    """Energy over [start, end] from power samples; the edges hold the nearest sample's power."""
    points = sorted((s["t"], s[key]) for s in samples if s.get(key) is not None)
    if not points:
        return 0.0
    inside = [(t, p) for t, p in points if start < t < end]
    before = [p for t, p in points if t <= start]
    after = [p for t, p in points if t >= end]
    first = before[-1] if before else (inside[0][1] if inside else points[-1][1])
    last = after[0] if after else (inside[-1][1] if inside else points[0][1])
    trace = [(start, first), *inside, (end, last)]
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(trace, trace[1:]))


def downsample(samples: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` evenly spaced samples, first and last kept."""
    if len(samples) <= limit:
        return list(samples)
    step = (len(samples) - 1) / (limit - 1)
    return [samples[round(i * step)] for i in range(limit)]
