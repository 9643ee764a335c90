"""HTML building blocks for the report: one self-contained page, every string escaped.

Names, warnings and notes come from result files that anyone can write, so every piece of text
goes through ``escape``; the only markup not built here is the charts' SVG (matplotlib's, text
drawn as paths). The page loads nothing: no script, no remote URL, no font, and its Content
Security Policy forbids all of it, so an injection that slipped through could still not run.

Table cells wrap only where the text has a space (never inside a word, a number or an id); a table
wider than the page scrolls inside its own box instead of squeezing its columns.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # charts imports matplotlib: only when a report is drawn
    from llenergymeasure.report.charts import Chart

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# How every page begins: an existing file is replaced by a report only when it begins so (results.io.Output).
PAGE_START = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
              f'<meta http-equiv="Content-Security-Policy" content="{CSP}">')

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2933;
       margin: 0 auto; padding: 1.5em 2em 4em; max-width: 1200px; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d9dee3; padding-bottom: 0.2em; }
h3 { font-size: 1em; margin: 1.2em 0 0.4em; }
p.meta, p.note { color: #52606d; margin: 0.3em 0; }
div.table { overflow-x: auto; margin: 0.5em 0 1em; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #d9dee3; padding: 0.3em 0.6em; text-align: left; vertical-align: top;
         overflow-wrap: normal; word-break: normal; hyphens: manual; }
th { background: #f3f5f7; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.word, span.w { white-space: nowrap; }
.regressed, .suspect, .failed, .error { color: #c62828; font-weight: 600; }
.improved, .passed { color: #2e7d32; }
.inconclusive, .unverified, .estimated, .skipped { color: #a86400; }
p.verdict { font-size: 1.05em; font-weight: 600; margin: 0.4em 0; }
article.ab { margin: 1em 0 2em; }
figure.chart { margin: 1em 0; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { color: #52606d; font-size: 0.9em; }
ul.lines, ol.lines { margin: 0.2em 0 1em; padding-left: 1.4em; }
ol.sources { margin: 0.2em 0 0.6em; padding-left: 2em; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.95em; }
"""


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class Cell:
    text: str
    css: str = ""  # class names (from our own vocabulary, never from a result)
    numeric: bool = False


def table(headers: list[str], rows: list[list[str | Cell]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            cell = cell if isinstance(cell, Cell) else Cell(cell)
            classes = " ".join(filter(None, [cell.css, "num" if cell.numeric else ""]))
            attribute = f' class="{escape(classes)}"' if classes else ""
            text = escape(cell.text) if cell.numeric or "word" in cell.css.split() else unbroken(cell.text)
            cells.append(f"<td{attribute}>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


_BREAKS_INSIDE = re.compile(r"[^\w\s.,:;'\"%+=()\[\]<>&#*@^$~`]")  # "-", "/", dashes...: a browser may break after them


def unbroken(text: str) -> str:
    """``text`` escaped, each word holding a character a browser may break a line after (a hyphen,
    a slash) kept on one line: a cell wraps only at its spaces."""
    return "".join(f'<span class="w">{escape(part)}</span>' if _BREAKS_INSIDE.search(part) else escape(part)
                   for part in re.split(r"(\s+)", text))


def figure(chart: Chart) -> str:
    return (f'<figure class="chart" id="chart-{escape(chart.slug)}" data-kind="{escape(chart.kind)}">'
            f"{chart.svg}<figcaption>{escape(chart.title)}</figcaption></figure>")


def section(title: str, *parts: str, anchor: str = "") -> str:
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def heading(text: str) -> str:
    return f"<h3>{escape(text)}</h3>"


def paragraph(text: str, css: str = "note") -> str:
    return f'<p class="{escape(css)}">{escape(text)}</p>'


def bullet_list(lines: list[str]) -> str:
    return '<ul class="lines">' + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>" if lines else ""


def numbered_list(lines: list[str], css: str = "lines") -> str:
    return f'<ol class="{escape(css)}">' + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ol>" \
        if lines else ""


def page(title: str, body: list[str]) -> str:
    return (
        PAGE_START
        + '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{''.join(body)}\n</body></html>\n"
    )
