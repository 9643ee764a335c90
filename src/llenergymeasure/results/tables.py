"""Tables of results as text: aligned columns for terminals, pipe tables for markdown reports.

Rows are dicts of already formatted strings; their keys are the columns, in the order they first
appear, and a cell a row lacks shows "-".
Used by ``llem``'s summaries and the pytest plugin's terminal summary and CI reports.
"""

from __future__ import annotations

import math


def fmt(value: float | None, digits: int = 4, unit: str = "") -> str:
    """``value`` to ``digits`` significant figures; "n/a" when it was not measured (None) or is no
    number a meter could give (NaN, infinite, not a number at all). Zero and negative values are
    shown as they are: hiding them would hide a fault. A value of ``digits`` or more integer digits
    is shown whole (``10520`` tokens/s, never ``1.052e+04``); a small one keeps its significant
    figures (``0.0001234``, then ``1.234e-05``)."""
    if not is_number(value):
        return "n/a"
    text = f"{value:.{digits}g}"
    if "e+" in text:
        text = f"{value:.0f}"
    return f"{text}{' ' + unit if unit else ''}"


def is_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float (not a bool, not None, not NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def change_text(value: float | None, relative: bool) -> str:
    """A change as ``+5.1%`` (relative) or ``+0.012`` (absolute); "n/a" when undefined (NaN, None)."""
    if not is_number(value):
        return "n/a"
    if relative:
        return f"{value:+.1%}"
    text = fmt(value)
    return text if text.startswith("-") else "+" + text


def ci_text(low: float | None, high: float | None, relative: bool) -> str:
    """``+1.0%..+9.2%``, or "-" where there is no interval."""
    return f"{change_text(low, relative)}..{change_text(high, relative)}" if is_number(low) else "-"


def load_point_text(point: dict | None) -> str:
    """A load point in a few words: ``4/s offered, 3.98/s served, 12.3 in flight, saturated``."""
    if not point:
        return "-"
    offered = point.get("offered_rate")
    pace = f"{fmt(offered, 3)}/s offered" if is_number(offered) else f"closed loop of {point.get('concurrency')}"
    text = f"{pace}, {fmt(point.get('achieved_rate'), 3)}/s served, {fmt(point.get('concurrency_mean'), 3)} in flight"
    return text + (", saturated" if point.get("saturated") else "")


def text_table(rows: list[dict[str, str]]) -> list[str]:
    """Left-aligned columns under a header and a rule of dashes."""
    if not rows:
        return []
    headers = _columns(rows)
    widths = {h: max(len(h), *(len(r.get(h, "-")) for r in rows)) for h in headers}
    lines = ["  ".join(h.ljust(widths[h]) for h in headers).rstrip(), "  ".join("-" * widths[h] for h in headers)]
    lines.extend("  ".join(row.get(h, "-").ljust(widths[h]) for h in headers).rstrip() for row in rows)
    return lines


def markdown_table(rows: list[dict[str, str]]) -> list[str]:
    """A GitHub-flavoured markdown table; pipes inside cells are escaped."""
    if not rows:
        return []
    headers = _columns(rows)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(headers), line(["---"] * len(headers)), *(line([row.get(h, "-") for h in headers]) for row in rows)]


def _columns(rows: list[dict[str, str]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))
