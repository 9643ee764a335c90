"""The exit-code contract, in one place.

    0    ok
    1    a run error (pre-flight, backend, measurement, a result that could not be saved) or a failed gate
    2    a config error: nothing was loaded or measured
    130  interrupted by Ctrl-C (SIGINT)                          "Interrupted."
    143  terminated by SIGTERM (CI cancellation, docker stop)   "Terminated." (128 + 15, as a shell says)

Errors a user can cause print one friendly message; a traceback only with ``--verbose``. SIGTERM
is turned into an exception in the main thread, like Ctrl-C, so that the same clean-up runs: the
meter and the model are released, a result being written is whole or absent, temp files go.
A second SIGTERM during that clean-up ends the process at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from llenergymeasure.exceptions import ConfigError, LLEMError

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so everything that cleans up after Ctrl-C runs."""


@contextmanager
def exit_codes(verbose: bool) -> Iterator[None]:
    try:
        with sigterm_raises():
            yield
    except Terminated:
        print("\nTerminated.", file=sys.stderr)
        raise typer.Exit(EXIT_TERMINATED) from None
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except LLEMError as exc:
        if verbose:
            traceback.print_exc()
        print(error_text(exc), file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BrokenPipeError:  # stdout closed early (``llem ... | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    except Exception as exc:  # a bug of ours, not the user's: say so, keep the traceback behind -v
        if verbose:
            traceback.print_exc()
        print(f"Internal error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        if not verbose:
            print("Run again with --verbose for the traceback, and please report it.", file=sys.stderr)
        raise typer.Exit(1) from None


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


def error_text(exc: LLEMError) -> str:
    if isinstance(exc, ConfigError):
        return "Config error:\n" + "\n".join(f"  {p}" for p in exc.problems)
    return f"Error: {exc}"
