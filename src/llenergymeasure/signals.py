"""SIGTERM as an exception, so that a cancelled CI job cleans up as Ctrl-C does.

SIGTERM is turned into ``Terminated`` (a KeyboardInterrupt) in the main thread, so the same
clean-up runs: the meter and the model are released, a file being written is whole or absent,
temp files go. A second SIGTERM during that clean-up ends the process at once. Used by ``llem``
(cli/errors.py) and by the plugin while it writes its outputs; no typer, no pytest here.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so everything that cleans up after Ctrl-C runs."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated (once; a second one kills as usual)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
