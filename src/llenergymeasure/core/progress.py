"""What a run says on stderr while it goes: a line when a long phase starts and when it ends,
and progress through its batches.

    loading models/tiny-gpt2 on cpu ...
    loading models/tiny-gpt2 on cpu: done in 1.2 s
    window 1/3 ...
    window 1/3: 12/40 batches, 15 s          (not on a terminal: at most every INTERVAL_ENV seconds)
    window 1/3: done, 40/40 batches in 31.2 s

On a terminal the batches are a tqdm bar, redrawn in place and cleared when the phase ends.
Anywhere else (a CI log, a pipe) they are plain lines, no carriage return or escape sequence,
at most one every ``LLEM_PROGRESS_INTERVAL_S`` seconds (default 15) per phase, so a long phase
shows it is alive without flooding the log. A disabled Progress (``--quiet``, and the API's
default) says nothing at all.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TextIO

INTERVAL_ENV = "LLEM_PROGRESS_INTERVAL_S"
DEFAULT_INTERVAL_S = 15.0


class Progress:
    """Phase lines and batch progress on ``stream`` (stderr); silent when not ``enabled``."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr

    @contextmanager
    def phase(self, label: str, total: int | None = None, *, batches: bool = False,
              unit: str = "batch") -> Iterator[Any]:
        """Say ``label ...``, yield what counts its batches (``bar.update(1)``; ``total`` may be
        unknown), then say how long it took. Said only for a phase that completes. ``unit``: what
        is counted, when not batches ("request": a load point's requests)."""
        if not self.enabled:
            yield _Silent()
            return
        self._say(f"{label} ...")
        start = time.perf_counter()
        with self._bar(label, total, unit) as bar:
            yield bar
        took = time.perf_counter() - start
        count = f"{bar.n}/{total}" if total is not None else f"{bar.n}"
        self._say(f"{label}: done, {count} {_plural(unit)} in {took:.1f} s" if batches else
                  f"{label}: done in {took:.1f} s")

    def _bar(self, label: str, total: int | None, unit: str = "batch") -> Any:
        if _is_terminal(self.stream):
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=label, unit=unit, file=self.stream, leave=False)
        return nullcontext(LineBar(label, total, self.stream, interval_s(), unit))

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _plural(unit: str) -> str:
    return "batches" if unit == "batch" else f"{unit}s"


class LineBar:
    """A progress bar as plain lines: ``label: n/total batches, 15 s`` once ``interval`` seconds
    have passed since the phase began or since the last line (checked as each batch ends)."""

    def __init__(self, label: str, total: int | None, stream: TextIO, interval: float, unit: str = "batch") -> None:
        self.label, self.total, self.stream, self.interval, self.unit = label, total, stream, interval, unit
        self.n = 0
        self.start = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
            print(f"{self.label}: {count} {_plural(self.unit)}, {now - self.start:.0f} s", file=self.stream, flush=True)


class _Silent:
    """Counts nothing, says nothing: a disabled phase's bar."""

    n = 0

    def update(self, n: int = 1) -> None:
        return None


def interval_s() -> float:
    """Seconds between two plain progress lines of one phase: ``LLEM_PROGRESS_INTERVAL_S`` when it
    is a number >= 0, else DEFAULT_INTERVAL_S."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, ""))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
