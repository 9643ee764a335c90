"""The exit-code contract, in one place.

    0    ok
    1    a run error (pre-flight, backend, measurement, a result that could not be saved) or a failed gate
    2    a config error: nothing was loaded or measured
    130  interrupted by Ctrl-C (SIGINT)                          "Interrupted."
    143  terminated by SIGTERM (CI cancellation, docker stop)   "Terminated." (128 + 15, as a shell says)

Errors a user can cause print one friendly message; a traceback only with ``--verbose``. SIGTERM
is turned into an exception in the main thread, like Ctrl-C, so that the same clean-up runs
(signals.py).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from llenergymeasure.exceptions import ConfigError, LLEMError, PreFlightError
from llenergymeasure.signals import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, sigterm_raises
from llenergymeasure.text import printable

@contextmanager
def exit_codes(verbose: bool) -> Iterator[None]:
    try:
        with sigterm_raises():
            _check_working_directory()
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


def _check_working_directory() -> None:
    """Relative paths, the result files' names and the model's lookup all need the current directory."""
    try:
        os.getcwd()
    except OSError as exc:
        raise PreFlightError(f"the current directory cannot be used ({exc.strerror}: it was deleted, or this user "
                             "cannot read it); cd to an existing directory and run again") from None


def error_text(exc: LLEMError) -> str:
    """The message, printable: it may quote a file's or a server's text (see text.py)."""
    if isinstance(exc, ConfigError):
        return printable("Config error:\n" + "\n".join(f"  {p}" for p in exc.problems))
    return printable(f"Error: {exc}")
