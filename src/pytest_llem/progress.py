"""What a measuring item says while it runs, so a CI log shows a long benchmark session is alive.

    llem: benchmarks/llem_gpt2.yaml::bs8: start: 5 windows
    llem: benchmarks/llem_gpt2.yaml::bs8: loading models/tiny-gpt2 on cpu ...
    llem: benchmarks/llem_gpt2.yaml::bs8: window 1/5: 12/40 batches, 15 s
    llem: benchmarks/llem_gpt2.yaml::bs8: window 1/5: done, 40/40 batches in 31.2 s
    llem: benchmarks/llem_gpt2.yaml::bs8: done in 170.4 s

The phase lines are the core's (core/progress.py), as ``llem run`` prints them outside a
terminal: plain lines, a batch count at most every ``LLEM_PROGRESS_INTERVAL_S`` seconds per phase.
They are on at pytest's default verbosity and off with ``-q``. They go to stderr past pytest's
output capture, from an xdist worker too (its stderr is the controller's); in the controller each
starts a line of its own, while a worker's may follow a row of the controller's dots.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import pytest


def say_line(item: pytest.Item, text: str) -> None:
    """``llem: <node id>: text`` on stderr now, on a line of its own: progress, a lock wait, a
    re-measurement to confirm a regression."""
    capture = item.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter = item.config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None and not hasattr(item.config, "workerinput"):
            reporter.ensure_newline()  # after "file.yaml " or a row of dots
            reporter.flush()
        sys.stderr.write(f"llem: {item.nodeid}: {text}\n")
        sys.stderr.flush()


def enabled(item: pytest.Item) -> bool:
    """Progress lines are for pytest's default verbosity and above; ``-q`` silences them."""
    return item.config.get_verbosity() >= 0


def for_item(item: pytest.Item) -> Any:
    """The core's Progress for a run inside ``item``: its lines go through ``say_line``."""
    from llenergymeasure.core.progress import Progress

    return Progress(enabled(item), stream=_ItemLines(item))


class _ItemLines:
    """A text stream that says each complete line it is given through ``say_line``; never a
    terminal, so the core writes plain lines rather than a tqdm bar pytest's output would break."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                say_line(self.item, line)
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False
