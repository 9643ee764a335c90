"""Idle power before the model loads, cached per meter with a TTL for the life of the process.

Measured with the meter itself over an idle window, so it is in the same units, from the same
sensor, as the energy it is subtracted from. The cache makes a pytest session (or a sweep)
pay for it once per device set, not once per experiment.
"""

from __future__ import annotations

import time

from llenergymeasure.energy.base import EnergyMeter, EnergyReading

_CACHE: dict[str, tuple[float, float]] = {}  # key -> (measured at, watts)


def idle_power_w(meter: EnergyMeter, key: str, duration_s: float, ttl_s: float) -> float | None:
    """Mean power over ``duration_s`` of idling; None when the meter measures nothing or the
    sanity checks doubt what it measured (then no net_* metric is derived from it)."""
    cached = cached_idle_power_w(key, ttl_s)
    if cached is not None:
        return cached
    return measure_idle_power(meter, key, duration_s)[0]


def measure_idle_power(meter: EnergyMeter, key: str, duration_s: float) -> tuple[float | None, EnergyReading]:
    """``idle_power_w`` measured now (and cached under ``key``), with the idle window's reading."""
    now = time.monotonic()
    meter.start()
    start = time.perf_counter()
    time.sleep(duration_s)
    reading = meter.stop()
    elapsed = time.perf_counter() - start
    if reading.energy_j is None or reading.suspect or elapsed <= 0:
        return None, reading
    watts = reading.energy_j / elapsed
    _CACHE[key] = (now, watts)
    return watts, reading


def cached_idle_power_w(key: str, ttl_s: float) -> float | None:
    """The idle power measured for ``key`` less than ``ttl_s`` ago, or None."""
    cached = _CACHE.get(key)
    if cached is not None and time.monotonic() - cached[0] <= ttl_s:
        return cached[1]
    return None


def clear_cache() -> None:
    _CACHE.clear()
