"""The ``llem`` command line (typer). Commands import their work lazily so ``--help`` is instant."""

from __future__ import annotations

from typing import Annotated

import typer

from llenergymeasure import __version__
from llenergymeasure.cli.ab_cmd import ab
from llenergymeasure.cli.compare_cmd import compare
from llenergymeasure.cli.config_cmd import config
from llenergymeasure.cli.report_cmd import report
from llenergymeasure.cli.run import run

app = typer.Typer(
    name="llem",
    help="Measure the energy an LLM spends per generated token.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help shows flags as taking a "<bool>" and reads "[ray]" in a
    # help text as markup.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"llem {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Measure the energy an LLM spends per generated token."""


app.command(help="Run experiments from a config file or flags; print a summary, save results.",
            epilog="Exit codes: 0 ok; 1 run or pre-flight error, result not saved, or failed gate; "
                   "2 config error; 130 Ctrl-C; 143 SIGTERM.")(run)
app.command(help="Show this machine's environment: versions, GPUs, energy sources, user config.")(config)
app.command(help="Compare two sets of results (baseline files, result JSONs or directories); exit 1 on a regression.")(
    compare
)
app.command(help="Measure two experiments in one session, windows interleaved (ABBA); exit 1 if the candidate "
                 "regressed.")(ab)
app.command(help="Write one self-contained HTML report (power timelines, J/token, sweeps, verdicts, warnings) "
                 "from results, baseline files or pytest --llem-json files.")(report)


def main() -> None:
    app()
