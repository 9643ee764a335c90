"""``llem compare BASELINE CANDIDATE``: the regression verdict per experiment and metric, as a table.

Each side is a baseline file (``pytest --llem-save-baseline``), a result JSON, or a directory of
result JSONs (``llem run -o DIR``). Experiments are matched by key, else by experiment id.
Exit codes: 0 nothing regressed, 1 a metric regressed (or stopped being measured), 2 unreadable
input or a bad --fail-on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llenergymeasure.cli.errors import exit_codes

if TYPE_CHECKING:
    from llenergymeasure.results.baselines import Baseline


def compare(
    baseline: Annotated[Path, typer.Argument(metavar="BASELINE",
                                             help="Baseline file, result JSON, or directory of result JSONs.")],
    candidate: Annotated[Path, typer.Argument(metavar="CANDIDATE", help="The same kinds of input, measured later.")],
    fail_on: Annotated[
        list[str] | None,
        typer.Option("--fail-on", metavar="METRIC:THRESHOLD",
                     help="A regression gate, e.g. tokens_per_second:10% or joules_per_token:0.01; repeatable; "
                          "added to the default joules_per_token:5% (or replacing it)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
) -> None:
    with exit_codes(verbose):
        regressed = _compare(baseline, candidate, fail_on or [])
    if regressed:
        raise typer.Exit(1)


def _compare(baseline_path: Path, candidate_path: Path, fail_on: list[str]) -> bool:
    import statistics

    from llenergymeasure.cli.display import print_table
    from llenergymeasure.exceptions import ConfigError
    from llenergymeasure.results.baselines import load_comparable
    from llenergymeasure.results.regression import check_regression, thresholds
    from llenergymeasure.results.tables import change_text, ci_text, fmt

    try:
        gates = thresholds({}, fail_on)
    except ValueError as exc:
        raise ConfigError(f"--fail-on: {exc}") from None
    old, new = load_comparable(baseline_path), load_comparable(candidate_path)
    pairs = _match(old, new)
    if not pairs:
        raise ConfigError(f"{candidate_path}: none of its experiments ({', '.join(new.entries)}) "
                          f"is in {baseline_path} ({', '.join(old.entries)})")

    rows, notes, regressed = [], [], False
    for old_key, new_key in pairs:
        check = check_regression(old, old_key, new.entries[new_key], new.machine, gates, across_machines=True)
        regressed = regressed or check.failed
        notes.extend(f"{new_key}: {note}" for note in check.notes)
        for c in check.comparisons:
            relative = c.threshold.relative
            rows.append({
                "experiment": new_key,
                "metric": c.metric,
                "baseline": fmt(c.baseline),
                "candidate": fmt(c.candidate),
                "change": change_text(c.change, relative),
                "95% CI": ci_text(c.ci_low, c.ci_high, relative),
                "verdict": c.verdict,
            })
        for metric in check.lost:
            before = statistics.median(old.entries[old_key].values(metric))
            rows.append({"experiment": new_key, "metric": metric, "baseline": fmt(before), "candidate": "n/a",
                         "change": "-", "95% CI": "-", "verdict": "not measured"})
    print_table(rows)
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    for key in sorted(set(new.entries) - {n for _, n in pairs}):
        print(f"note: {key}: not in the baseline")
    return regressed


def _match(old: Baseline, new: Baseline) -> list[tuple[str, str]]:
    """(baseline key, candidate key) pairs: the same key, else the same experiment id when unique."""
    pairs = [(old.find(key, entry.experiment), key) for key, entry in new.entries.items()]
    return [(found, key) for found, key in pairs if found is not None]

