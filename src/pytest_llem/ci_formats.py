"""What CI tools read from a session: github-action-benchmark's JSON, and the markdown report for
a pull request's page.

``--llem-benchmark-json PATH`` writes github-action-benchmark's ``customSmallerIsBetter`` format:
a list of ``{"name", "unit", "value", "range", "extra"}``, one entry per measured item and metric
(J/token and Wh per 1000 queries: smaller is better for both), ``range`` the half width of the
95% CI over the repeats when there were several, ``extra`` the energy source and whether it was
estimated or doubted. Items without a measured number are left out (the tool cannot chart "n/a").

The markdown report lists what needs attention first (failed and regressed items, then those
that could not be judged), and stays under GitHub's limit for a comment or step summary
(65,536 characters): past it, the rows that passed are left out from the end, with a count.

JUnit gets each judged item's reason and notes as properties (``junit_properties``), worded as
the terminal, the markdown report and --llem-json word them (report.explain).

Each output replaces an existing file only when that file begins as the plugin writes it
(``SESSION_JSON``, ``BENCHMARK_JSON``, ``MARKDOWN``; results.io.output_problem): never a result,
a baseline or anyone else's file.
"""

from __future__ import annotations

import math
from typing import Any

from llenergymeasure.results.io import Output

BENCHMARK_METRICS = {"joules_per_token": "J/token", "wh_per_1000_queries": "Wh/1000 queries"}
GITHUB_COMMENT_LIMIT = 65_536

# How each file the plugin writes begins (json.dumps(..., indent=2) of the documents below).
SESSION_JSON = Output("a session JSON file (--llem-json)", (b'{\n  "llem_version": ',))
BENCHMARK_JSON = Output("a github-action-benchmark JSON file", (b"[]", b'[\n  {\n    "name": '))
MARKDOWN = Output("a markdown report of llem", (b"## llem ",))


def benchmark_entries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """github-action-benchmark entries for the measured items of ``records``."""
    entries = []
    for record in records:
        for metric, unit in BENCHMARK_METRICS.items():
            value = record.get(metric)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            entry: dict[str, Any] = {"name": f"{record['nodeid']} {metric}", "unit": unit, "value": value}
            low, high = (record.get("ci95") or {}).get(metric, (None, None))
            if isinstance(low, (int, float)) and isinstance(high, (int, float)) and math.isfinite(high - low):
                entry["range"] = f"± {(high - low) / 2:.4g}"
            flags = [f for f, on in (("estimated", record.get("estimated")), ("suspect", record.get("energy_suspect")))
                     if on]
            entry["extra"] = f"energy: {record.get('energy_source', '?')}" + (f" ({', '.join(flags)})" if flags else "")
            entries.append(entry)
    return entries


def junit_properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """JUnit properties of an item judged against a baseline: ``baseline_reason`` and one
    ``llem_note`` per note, as ``report.explain`` words them for every other surface (the testcase
    has its outcome and failure message already; ``baseline_verdict`` is set as it is judged)."""
    from pytest_llem.report import explain

    said = explain(record)
    return ([("baseline_reason", said.reason)] if said.reason else []) + [("llem_note", note) for note in said.notes]


def attention(record: dict[str, Any]) -> int:
    """0: failed or regressed; 1: could not be judged against its baseline; 2: nothing to see."""
    regression = record.get("regression") or {}
    if record.get("outcome") == "failed" or regression.get("verdict") == "regressed":
        return 0
    return 1 if regression.get("why") else 2


def attention_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with failed or regressed items first, then undecided ones, then the rest
    (each group in its own order)."""
    return sorted(records, key=attention)


def fit_markdown(head: list[str], rows: list[str], tail: list[str], keep: int,
                 limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """``head`` + ``rows`` + ``tail`` as one text under ``limit`` characters: rows after the first
    ``keep`` (those that need attention) are dropped from the end, with a line that counts them."""
    def text(shown: list[str], dropped: int) -> str:
        note = ["", f"... {dropped} more item(s) not shown: the report would pass GitHub's {limit:,}-character "
                     "limit (the JSON report, --llem-json, has them all)"] if dropped else []
        return "\n".join([*head, *shown, *tail, *note]) + "\n"

    report = text(rows, 0)
    if len(report) <= limit:
        return report
    low, high = min(keep, len(rows)), len(rows)  # the most rows that fit, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if len(text(rows[:middle], len(rows) - middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    report = text(rows[:low], len(rows) - low)
    return report if len(report) <= limit else report[: limit - 4] + "...\n"
