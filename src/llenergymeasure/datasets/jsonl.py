"""Prompts from JSON-lines files: the user's own and the built-in set shipped with the package.

A file is read line by line as UTF-8; anything else (a binary file, another encoding, a line
longer than MAX_LINE_BYTES) stops pre-flight with the file and line. So does a prompt holding
a control character (NUL, ESC, ...; tab and newline are fine): no tokenizer is fed bytes that
were never meant as text.

Both are read once per process (a file once per version of it): a study's dry run asks for
every one of its experiments.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from llenergymeasure.core.file_cache import cached_by_file
from llenergymeasure.exceptions import PreFlightError

# Tried in order when a file does not say which column holds the prompt.
PROMPT_COLUMNS = ("prompt", "text", "question", "instruction", "input", "content")

# A chat dataset (ShareGPT's "conversations" of {from, value}, or OpenAI-style "messages" of
# {role, content}): its prompt is the first user turn.
CONVERSATION_COLUMNS = ("conversations", "messages")
USER_ROLES = ("human", "user")

MAX_LINE_BYTES = 16 << 20  # one prompt per line: 16 MiB is millions of tokens, far past any context

# C0 controls but tab, newline and carriage return, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@functools.cache
def builtin_prompts() -> list[str]:
    text = resources.files("llenergymeasure.datasets").joinpath("builtin_prompts.jsonl").read_text("utf-8")
    rows, lines = _parse_lines(enumerate(text.split("\n"), start=1), "builtin_prompts.jsonl")
    return prompts_from_rows(rows, "builtin", lines)


@cached_by_file(PreFlightError)
def read_prompts(path: Path) -> list[str]:
    try:
        with path.open("rb") as fh:
            rows, lines = _parse_lines(_text_lines(fh, path), str(path))
    except OSError as exc:
        raise PreFlightError(f"dataset: cannot read {path}: {exc.strerror or exc}") from None
    return prompts_from_rows(rows, str(path), lines)


def first_user_turn(turns: Any) -> str | None:
    """The text of the first user turn of a conversation (ShareGPT or OpenAI messages), or None."""
    if not isinstance(turns, list):
        return None
    for turn in turns:
        if isinstance(turn, dict) and (turn.get("from") or turn.get("role")) in USER_ROLES:
            text = turn.get("value", turn.get("content"))
            return text if isinstance(text, str) else None
    return None


def prompts_from_rows(rows: list[Any], where: str, lines: list[int] | None = None) -> list[str]:
    """Pick the prompt column (or take plain strings) and drop empty prompts.

    ``lines`` are the file lines of ``rows``, for messages; without them a row is named by its number.
    """
    if not isinstance(rows, list):
        raise PreFlightError(f"dataset: {where}: expected a list of rows, found a {type(rows).__name__}")
    if not rows:
        return []
    if all(isinstance(row, str) for row in rows):
        prompts = rows
    else:
        first = rows[0]
        if not isinstance(first, dict):
            raise PreFlightError(f"dataset: {where}: each line must be a JSON object or string")
        column = next((c for c in PROMPT_COLUMNS if c in first), None)
        turns = next((c for c in CONVERSATION_COLUMNS if c in first), None)
        if column is None and turns is not None:
            rows = [{"prompt": first_user_turn(row.get(turns)) if isinstance(row, dict) else None} for row in rows]
            column = "prompt"
        if column is None:
            raise PreFlightError(
                f"dataset: {where}: no prompt column found (looked for {', '.join(PROMPT_COLUMNS)}; "
                f"the file has {', '.join(map(str, first))}); rename the column to 'prompt'"
            )
        prompts = [row.get(column) if isinstance(row, dict) else None for row in rows]
    for index, prompt in enumerate(prompts):
        found = _CONTROL.search(prompt) if isinstance(prompt, str) else None
        if found:
            at = f"{where}:{lines[index]}" if lines else f"{where} (row {index + 1})"
            raise PreFlightError(
                f"dataset: {at}: the prompt holds control character U+{ord(found.group()):04X}; "
                "remove it (prompts are plain text)"
            )
    return [p for p in prompts if isinstance(p, str) and p.strip()]


def _text_lines(fh: Any, path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a binary file, refusing what is not UTF-8 text."""
    for number, raw in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise PreFlightError(
                f"dataset: {path}:{number}: line longer than {MAX_LINE_BYTES:,} bytes; "
                "is this a JSON-lines file (one prompt per line)?"
            )
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PreFlightError(
                f"dataset: {path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "is this a JSON-lines file? save it as UTF-8"
            ) from None


def _parse_lines(lines: Iterable[tuple[int, str]], where: str) -> tuple[list[Any], list[int]]:
    """The JSON value of each non-blank line, and the line number of each."""
    rows, numbers = [], []
    for number, line in lines:
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise PreFlightError(f"dataset: {where}:{number}: not valid JSON ({reason})") from None
        numbers.append(number)
    return rows, numbers
