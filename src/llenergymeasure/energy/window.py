"""``measure_energy``: a measurement window around any code, with the meters and checks of ``llem run``.

    from llenergymeasure import measure_energy

    with measure_energy(sync=torch.cuda.synchronize) as window:
        output = model.generate(**inputs, max_new_tokens=128)
        window.tokens = output.shape[0] * 128
    print(window.joules_per_token, window.source, window.estimated, window.warnings)

Several windows over one meter (repeats, a server under load), opened once:

    with EnergyMonitor(devices=[0]) as monitor:
        for _ in range(5):
            with monitor.window(sync=torch.cuda.synchronize) as window:
                ...

A monitor has one window open at a time: its meter holds one start reading and one power
sampler, so a window opened inside another (or beside it, from another thread) raises
ConfigError; overlapping work is measured with an EnergyMonitor of its own.

``source`` is that of ``llem run`` (auto, nvml, rapl, cpu_estimate, none). ``devices`` names
what the work runs on: GPUs by visible index, ``cuda:N`` or UUID, and "cpu"; by default every
visible GPU (and RAPL beside them), or the CPU on a machine without GPUs. ``sync`` is called just
before the window opens and just before it closes, so queued GPU work lands inside it; the
default, "auto", is ``torch.cuda.synchronize`` once this process has started CUDA (and nothing
otherwise), so a forgotten sync cannot move a kernel's energy out of its window.

``window.tokens`` takes a whole number of tokens, 0 or more (ConfigError otherwise). The numbers
are set when the ``with`` block ends, after the same sanity checks as every other
reading (sanity.py): an impossible reading raises ExperimentError, a doubtful one is
``suspect``, and a window too short for the sensor has no energy (``unavailable_reason``)
rather than a wrong one. An exception inside the block closes the window and measures nothing.
The runner, the pytest fixture and the server backend all measure through ``open_window``.
"""

from __future__ import annotations

import contextlib
import operator
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from llenergymeasure.energy.base import DeviceEnergy, EnergyMeter, EnergyReading
from llenergymeasure.exceptions import ConfigError

if TYPE_CHECKING:
    from llenergymeasure.config.models import EnergyConfig


def whole_tokens(value: Any, what: str) -> int:
    """``value`` as a count of tokens (numpy and torch integer scalars included); ConfigError
    naming ``what`` and the value unless it is a whole number, 0 or more."""
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            count = operator.index(value)
            if count >= 0:
                return count
    raise ConfigError(f"{what} must be a whole number of generated tokens, 0 or more (got {value!r})")


class EnergyWindow:
    """One window's measurement. Everything but ``tokens`` is filled in when the window closes."""

    def __init__(self) -> None:
        self.owner = ""  # who opened the window (a test's node id), named by its errors
        self.reading: EnergyReading | None = None
        self.duration_s: float | None = None
        self._tokens: int | None = None

    @property
    def tokens(self) -> int | None:
        """Output tokens generated in the window, set by the caller."""
        return self._tokens

    @tokens.setter
    def tokens(self, value: Any) -> None:
        what = f"{self.owner}: window.tokens" if self.owner else "window.tokens"
        self._tokens = None if value is None else whole_tokens(value, what)

    @property
    def closed(self) -> bool:
        return self.reading is not None

    @property
    def energy_j(self) -> float | None:
        return self._read().energy_j

    @property
    def gpu_energy_j(self) -> float | None:
        return self._read().gpu_energy_j

    @property
    def cpu_energy_j(self) -> float | None:
        return self._read().cpu_energy_j

    @property
    def source(self) -> str:
        return self._read().source

    @property
    def estimated(self) -> bool:
        return self._read().estimated

    @property
    def suspect(self) -> bool:
        return self._read().suspect

    @property
    def unavailable_reason(self) -> str | None:
        return self._read().unavailable_reason

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """(code, sentence) pairs, as in a result's ``measurement_warnings``."""
        return self._read().warnings

    @property
    def devices(self) -> list[DeviceEnergy]:
        return self._read().devices

    @property
    def timeline(self) -> dict[str, list[dict[str, Any]]]:
        return self._read().timeline

    @property
    def joules_per_token(self) -> float | None:
        """energy_j / tokens; None until both are known (no energy measured, or ``tokens`` unset or 0)."""
        energy = self.energy_j
        return energy / self.tokens if energy is not None and self.tokens else None

    def _read(self) -> EnergyReading:
        if self.reading is None:
            raise RuntimeError("the energy window is still open: read it after the with block")
        return self.reading

    def __repr__(self) -> str:
        if self.reading is None:
            return "EnergyWindow(open)"
        energy = "unavailable" if self.energy_j is None else f"{self.energy_j:.4g} J"
        flags = "".join([" estimated" if self.estimated else "", " suspect" if self.suspect else ""])
        return f"EnergyWindow({energy} over {self.duration_s:.3f} s, {self.source}{flags}, tokens={self.tokens})"


Sync = Callable[[], Any] | str | None  # a callable, "auto" or None (no sync)


def resolve_sync(sync: Sync) -> Callable[[], Any] | None:
    """The callable for ``sync``: "auto" is torch.cuda.synchronize when CUDA is initialised here."""
    if sync != "auto":
        if isinstance(sync, str):
            raise ConfigError(f"sync={sync!r}: give a callable (e.g. torch.cuda.synchronize), 'auto' or None")
        return sync
    torch = sys.modules.get("torch")  # never imported here: a process without torch has no CUDA work
    if torch is not None and torch.cuda.is_initialized():
        return torch.cuda.synchronize
    return None


@contextlib.contextmanager
def open_window(meter: EnergyMeter, sync: Sync = None) -> Iterator[EnergyWindow]:
    """One window of ``meter`` around the block: sync, start, the block, sync, stop. A meter has
    one window open at a time (its start reading and sampler are single; EnergyMonitor enforces it)."""
    sync = resolve_sync(sync)
    window = EnergyWindow()
    if sync is not None:
        sync()
    meter.start()
    start = time.perf_counter()
    try:
        yield window
        if sync is not None:
            sync()
    except BaseException:
        with contextlib.suppress(Exception):  # the block failed: stop the meter's threads, keep no number
            meter.stop()
        raise
    window.duration_s = time.perf_counter() - start
    window.reading = meter.stop()


def energy_config(source: str, devices: Any, *, sample_interval_ms: int = 100,
                  where: str = "measure_energy") -> EnergyConfig:
    """The EnergyConfig of a window's meter; ConfigError naming ``where`` and the value for a bad
    ``source`` or sample interval, or ``devices`` other than a list of GPUs (visible index,
    "cuda:N" or UUID) and/or "cpu"."""
    from pydantic import ValidationError

    from llenergymeasure.config.models import EnergyConfig

    try:
        config = EnergyConfig(source=source, sample_interval_ms=sample_interval_ms)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError([f"{where}({error['loc'][0]}={error.get('input')!r}): {error['msg']}"
                           for error in exc.errors()]) from None
    if devices is not None and (isinstance(devices, str) or not isinstance(devices, Sequence) or not devices
                                or not all(_device_like(d) for d in devices)):
        raise ConfigError(f"{where}(devices={devices!r}): give a list of GPUs (index, 'cuda:N' or UUID) "
                          "and/or 'cpu', or None for every visible GPU")
    return config


def _device_like(device: Any) -> bool:
    if isinstance(device, bool):
        return False
    return (isinstance(device, int) and device >= 0) or (isinstance(device, str) and bool(device.strip()))


class EnergyMonitor:
    """A meter held open for several windows (a context manager; ``close`` releases it)."""

    def __init__(self, source: str = "auto", devices: Sequence[int | str] | None = None, *,
                 sample_interval_ms: int = 100, cpu_seconds: Callable[[], float] | None = None) -> None:
        from llenergymeasure.energy.meters import create_meter

        config = energy_config(source, devices, sample_interval_ms=sample_interval_ms)
        self.meter = create_meter(config, gpus=None if devices is None else list(devices), cpu_seconds=cpu_seconds,
                                  all_gpus=devices is None)
        self.source = self.meter.source
        self._window_open = threading.Lock()

    @contextlib.contextmanager
    def window(self, sync: Sync = "auto") -> Iterator[EnergyWindow]:
        """One window of the meter; ConfigError while another is open (see the module text)."""
        if not self._window_open.acquire(blocking=False):
            raise ConfigError("EnergyMonitor.window(): another window of this monitor is still open (nested, or in "
                              "another thread), and its meter holds one start reading and one sampler, so each window "
                              "would measure part of the energy; close it before opening the next, or measure the "
                              "overlapping work with an EnergyMonitor of its own")
        try:
            with open_window(self.meter, sync) as window:
                yield window
        finally:
            self._window_open.release()

    def close(self) -> None:
        self.meter.close()

    def __enter__(self) -> EnergyMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def measure_energy(source: str = "auto", devices: Sequence[int | str] | None = None, *,
                   sync: Sync = "auto", sample_interval_ms: int = 100) -> Iterator[EnergyWindow]:
    """One measurement window around the ``with`` block (see the module text)."""
    with EnergyMonitor(source, devices, sample_interval_ms=sample_interval_ms) as monitor, \
            monitor.window(sync) as window:
        yield window
