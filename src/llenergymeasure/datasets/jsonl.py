"""Prompts from JSON-lines files: the user's own and the built-in set shipped with the package."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from llenergymeasure.exceptions import PreFlightError

# Tried in order when a file does not say which column holds the prompt.
PROMPT_COLUMNS = ("prompt", "text", "question", "instruction", "input", "content")


def builtin_prompts() -> list[str]:
    text = resources.files("llenergymeasure.datasets").joinpath("builtin_prompts.jsonl").read_text("utf-8")
    return prompts_from_rows(_parse_lines(text.splitlines(), "builtin_prompts.jsonl"), "builtin")


def read_prompts(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PreFlightError(f"dataset: cannot read {path}: {exc.strerror or exc}") from None
    return prompts_from_rows(_parse_lines(lines, str(path)), str(path))


def prompts_from_rows(rows: list[Any], where: str) -> list[str]:
    """Pick the prompt column (or take plain strings) and drop empty prompts."""
    if not rows:
        return []
    if all(isinstance(row, str) for row in rows):
        return [row for row in rows if row.strip()]
    first = rows[0]
    if not isinstance(first, dict):
        raise PreFlightError(f"dataset: {where}: each line must be a JSON object or string")
    column = next((c for c in PROMPT_COLUMNS if c in first), None)
    if column is None:
        raise PreFlightError(
            f"dataset: {where}: no prompt column found (looked for {', '.join(PROMPT_COLUMNS)}; "
            f"the file has {', '.join(map(str, first))}); rename the column to 'prompt'"
        )
    prompts = [row.get(column) for row in rows if isinstance(row, dict)]
    return [p for p in prompts if isinstance(p, str) and p.strip()]


def _parse_lines(lines: list[str], where: str) -> list[Any]:
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise PreFlightError(f"dataset: {where}:{number}: not valid JSON ({exc.msg})") from None
    return rows
