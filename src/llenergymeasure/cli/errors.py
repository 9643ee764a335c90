"""The exit-code contract, in one place: 0 ok, 1 run error or failed gate, 2 config error, 130 Ctrl-C.

Errors a user can cause print one friendly message; a traceback only with ``--verbose``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from llenergymeasure.exceptions import ConfigError, LLEMError

EXIT_INTERRUPTED = 130


@contextmanager
def exit_codes(verbose: bool) -> Iterator[None]:
    try:
        yield
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


def error_text(exc: LLEMError) -> str:
    if isinstance(exc, ConfigError):
        return "Config error:\n" + "\n".join(f"  {p}" for p in exc.problems)
    return f"Error: {exc}"
