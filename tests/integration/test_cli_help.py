"""Every ``llem`` command's ``--help`` reads as a command line usually does: ``llem compare [OPTIONS]
BASELINE CANDIDATE``, ``llem report [OPTIONS] RESULTS...``, an option's value as ``N`` or ``DIR``;
never typer's ``{BASELINE}``, ``<path>``, ``<list[Path]>``, ``<int range>`` or ``<str>``.

The commands are read from the app, so a command added later is checked too; each help is the
real process's output.
"""

from __future__ import annotations

import re

import pytest
import typer.main

from llenergymeasure.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
TYPE_PLACEHOLDER = re.compile(r"<[a-z][^>]*>")  # <path>, <str>, <int range>, <list[Path]>


def test_the_commands_are_the_ones_a_user_knows():
    assert {"run", "config", "compare", "ab", "report"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_plain_names_and_metavars(run_llem, command):
    args = ("--help",) if command is None else (command, "--help")
    done = run_llem(*args, timeout=60)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "{" not in text and "}" not in text, text
    assert not TYPE_PLACEHOLDER.findall(text), text
    for shown in ("<list[", "<int range>", "<path>", "<str>", "<int>"):
        assert shown not in text, text


@pytest.mark.parametrize(("command", "usage", "arguments"), [
    ("compare", "compare [OPTIONS] BASELINE CANDIDATE", ["BASELINE", "CANDIDATE"]),
    ("ab", "ab [OPTIONS] BASELINE CANDIDATE", ["BASELINE", "CANDIDATE"]),
    ("report", "report [OPTIONS] RESULTS...", ["RESULTS..."]),
    ("run", "run [OPTIONS] [FILE]", ["FILE"]),
    ("config", "config [OPTIONS]", []),
])
def test_usage_and_arguments_read_like_a_normal_cli(run_llem, command, usage, arguments):
    done = run_llem(command, "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Usage: ") and lines[0].endswith(f" {usage}"), lines[0]  # after "llem" (or python -m)
    listed = [line.split()[0] for line in _section(lines, "Arguments:")]
    assert listed == arguments


@pytest.mark.parametrize(("command", "option", "metavar"), [
    ("ab", "--pairs", "N"), ("run", "--repeats", "N"), ("run", "-n", "N"), ("run", "--output", "DIR"),
    ("ab", "--output", "DIR"), ("run", "--model", "MODEL"), ("compare", "--fail-on", "METRIC:THRESHOLD"),
])
def test_an_option_shows_what_it_takes(run_llem, command, option, metavar):
    done = run_llem(command, "--help", timeout=60)
    assert re.search(rf"^\s+(?:-\w, )?{re.escape(option)} {re.escape(metavar)}\s", done.stdout, re.M), done.stdout


def test_a_missing_argument_is_named_as_the_help_names_it(run_llem):
    done = run_llem("compare", timeout=60)
    assert done.returncode == 2
    assert "Missing argument 'BASELINE'" in done.stderr


def _section(lines: list[str], title: str) -> list[str]:
    """The rows of a help section (an entry starts at two spaces; wrapped text is indented further)."""
    if title not in lines:
        return []
    rows = []
    for line in lines[lines.index(title) + 1:]:
        if not line.strip():
            break
        if re.match(r"^  \S", line):
            rows.append(line)
    return rows
