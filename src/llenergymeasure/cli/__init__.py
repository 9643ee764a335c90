"""The ``llem`` command line (typer). Commands import their work lazily so ``--help`` is instant."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from typer.core import TyperArgument, TyperCommand

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


class PlainArgument(TyperArgument):
    """An argument as a command line usually shows it: ``BASELINE``, ``[FILE]``, ``RESULTS...``
    (typer wraps a required one's name in braces and lists it with its type, ``<path>`` or
    ``<list[Path]>``, whatever its metavar)."""

    def _usage_display_name(self) -> str:
        name = self._plain_name()
        return name if self.required else f"[{name}]"

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        return self._plain_name(), record[1].replace("[required]", "").rstrip()  # the usage line says so

    def _plain_name(self) -> str:
        """The metavar (else the name in capitals), with "..." when it takes several values."""
        name = self.metavar or (self.name or "").upper()
        return name if self.nargs == 1 or name.endswith("...") else f"{name}..."


class PlainCommand(TyperCommand):
    """A command whose arguments show as ``PlainArgument`` (typer has no setting for it); its
    options show their metavars, which every option of llem sets (tests/integration/test_cli_help.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = PlainArgument


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


app.command(cls=PlainCommand, help="Run experiments from a config file or flags; print a summary, save results.",
            epilog="Exit codes: 0 ok; 1 run or pre-flight error, result not saved, or failed gate; "
                   "2 config error; 130 Ctrl-C; 143 SIGTERM.")(run)
app.command(cls=PlainCommand,
            help="Show this machine's environment: versions, GPUs, energy sources, user config.")(config)
app.command(cls=PlainCommand,
            help="Compare two sets of results (baseline files, result JSONs, session files of pytest --llem-json, "
                 "or directories); exit 1 on a regression.")(compare)
app.command(cls=PlainCommand,
            help="Measure two experiments in one session, windows interleaved (ABBA); exit 1 if the candidate "
                 "regressed.")(ab)
app.command(cls=PlainCommand,
            help="Write one self-contained HTML report (power timelines, J/token, sweeps, verdicts, warnings) "
                 "from results, baseline files or pytest --llem-json files.")(report)


def main() -> None:
    app()
