"""``llem report RESULTS... -o report.html [--png DIR]``: one self-contained HTML report.

Inputs are result JSONs, directories of them, baseline files and ``pytest --llem-json`` session
files, recognised by their content; only regular files of at most 64 MiB are read (a FIFO, a
device or a symlink to one is refused). Exit codes: 0 written; 2 an input that is missing,
unreadable or not one of those kinds, or an output path that cannot be written or must not be
(each named): the report and its PNGs replace only an earlier report or chart of llem's (or an
empty file), never a file that was read, a result, a baseline or any other file; 1 matplotlib
missing, or a write that failed after all (a full disk).

The page shows the evidence behind each verdict (every window's J/token, the windows numbered on
the timelines, the +-threshold band of each gate; the two results of an ``llem ab`` session as one
comparison with its paired verdict), and paths relative to the repository (the top of the git
work tree holding the current directory, else the current directory): never this machine's
absolute paths, since a report ends up in PR comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llenergymeasure.cli.errors import exit_codes


def report(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="RESULTS...", show_default=False,
        help="Result JSONs, directories of them, baseline files (.llem/baselines/...) or pytest --llem-json files.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                         help="The HTML file to write (it replaces only an earlier llem report).")],
    png: Annotated[Path | None, typer.Option("--png", metavar="DIR",
                                             help="Also write each chart as a PNG in DIR (for a PR comment).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
) -> None:
    with exit_codes(verbose):
        for path in _report(inputs, output, png):
            print(path)


def _report(inputs: list[Path], output: Path, png: Path | None) -> list[Path]:
    from llenergymeasure.exceptions import LLEMError
    from llenergymeasure.report import write_report

    try:
        return write_report(inputs, output, png)
    except OSError as exc:
        where = exc.filename or output
        raise LLEMError(f"{where}: could not write the report: {exc.strerror or exc}") from None
