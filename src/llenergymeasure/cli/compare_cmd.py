"""``llem compare BASELINE CANDIDATE``: the regression verdict per experiment and metric, as a table.

Each side is any file ``llem report`` reads, read by the same code (report/inputs.py): a baseline
file (``pytest --llem-save-baseline``), a result JSON (``llem run -o DIR``), a session file
(``pytest --llem-json``), or a directory of them. Experiments are matched by key (a session's
items and a baseline's entries share the plugin's keys, ``benchmarks/llem_x.yaml::name``; a
result's key is its name), else by experiment id. Where a side holds one experiment more than
once (a directory of several runs), the newest is compared, with a note. A session's items that
measured nothing (skipped, failed before measuring, a dry run) are left out.
Exit codes: 0 nothing regressed, 1 a metric regressed (or stopped being measured), 2 unreadable
input (or one that measured nothing) or a bad --fail-on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llenergymeasure.cli.errors import exit_codes

if TYPE_CHECKING:
    from llenergymeasure.results.baselines import BaselineEntry, MachineInfo


def compare(
    baseline: Annotated[Path, typer.Argument(
        metavar="BASELINE", show_default=False,
        help="A baseline file, result JSON, pytest --llem-json session file, or a directory of them.")],
    candidate: Annotated[Path, typer.Argument(metavar="CANDIDATE", show_default=False,
                                              help="The same kinds of input, measured later.")],
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
    from llenergymeasure.results.baselines import Baseline
    from llenergymeasure.results.regression import check_regression, thresholds
    from llenergymeasure.results.tables import change_text, ci_text, fmt

    try:
        gates = thresholds({}, fail_on)
    except ValueError as exc:
        raise ConfigError(f"--fail-on: {exc}") from None
    (old, old_notes), (new, new_notes) = _side(baseline_path), _side(candidate_path)
    pairs = _match(old, new)
    if not pairs:
        raise ConfigError(f"{candidate_path}: none of its experiments ({', '.join(new)}) "
                          f"is in {baseline_path} ({', '.join(old)})")

    rows, notes, regressed = [], [*old_notes, *new_notes], False
    for old_key, new_key in pairs:
        before, after = old[old_key], new[new_key]
        reference = Baseline.from_entries({old_key: before.entry}, before.machine, None)
        check = check_regression(reference, old_key, after.entry, after.machine, gates, across_machines=True)
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
            median = statistics.median(before.entry.values(metric))
            rows.append({"experiment": new_key, "metric": metric, "baseline": fmt(median), "candidate": "n/a",
                         "change": "-", "95% CI": "-", "verdict": "not measured"})
    print_table(rows)
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    for key in sorted(set(new) - {n for _, n in pairs}):
        print(f"note: {key}: not in the baseline")
    return regressed


@dataclass
class Measurement:
    """One experiment's per-repeat values on one side, with the machine that measured them."""

    entry: BaselineEntry
    machine: MachineInfo
    origin: str  # the file it was read from
    at: datetime | None  # when it was measured (or saved), to pick the newest of several


def _side(path: Path) -> tuple[dict[str, Measurement], list[str]]:
    """(every experiment measured in ``path``, by key; notes on what was left out), read as ``llem
    report`` reads its inputs. ConfigError naming the file when it is unreadable, of no llem kind,
    or measured nothing."""
    from llenergymeasure.exceptions import ConfigError
    from llenergymeasure.report.inputs import load_inputs

    inputs = load_inputs([path])
    found: list[tuple[str, Measurement]] = []
    for origin, baseline in inputs.baselines:
        found += [(key, Measurement(entry, baseline.machine, origin, baseline.created_at))
                  for key, entry in baseline.entries.items()]
    for item in inputs.measured:
        measured = _measured(item.origin, item.result, item.record)
        if measured is not None:
            found.append(measured)
    if not found:
        raise ConfigError(f"{path}: measured nothing to compare (its items were skipped, failed before measuring, "
                          "or ran dry); give a result, baseline or session file that holds measurements")
    side: dict[str, Measurement] = {}
    kept: dict[str, list[Measurement]] = {}
    for key, measurement in found:
        kept.setdefault(key, []).append(measurement)
    notes = []
    for key, measurements in kept.items():
        newest = max(measurements, key=lambda m: (m.at is not None, m.at or datetime.min))
        side[key] = newest
        if len(measurements) > 1:
            notes.append(f"{key}: measured {len(measurements)} times in {path}; the newest ({newest.origin}) "
                         "is compared")
    return side, notes


def _measured(origin: str, result: Any, record: dict[str, Any] | None) -> tuple[str, Measurement] | None:
    """(key, measurement) of a result file's result or a session item; None for an item that
    measured nothing."""
    from pydantic import ValidationError

    from llenergymeasure.exceptions import ConfigError
    from llenergymeasure.results.baselines import BaselineEntry, MachineInfo

    if record is None:  # a result file: keyed by its name, as ``llem run`` names it
        return result.name, Measurement(BaselineEntry.from_result(result), MachineInfo.from_result(result), origin,
                                        result.started_at)
    key = record.get("baseline_key") if isinstance(record.get("baseline_key"), str) else record["nodeid"]
    if result is not None:
        return key, Measurement(BaselineEntry.from_result(result), MachineInfo.from_result(result), origin,
                                result.started_at)
    if not (isinstance(record.get("baseline_entry"), dict) and isinstance(record.get("machine"), dict)):
        return None
    try:
        entry, machine = BaselineEntry.model_validate(record["baseline_entry"]), MachineInfo.model_validate(
            record["machine"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{origin}: item {record['nodeid']}: not a valid measurement ({where}: {first['msg']})"
                          ) from None
    return key, Measurement(entry, machine, origin, None)


def _match(old: dict[str, Measurement], new: dict[str, Measurement]) -> list[tuple[str, str]]:
    """(baseline key, candidate key) pairs: the same key, else the same experiment id when unique
    on the baseline's side (the same file run from another directory has other keys)."""
    pairs = []
    for key, measurement in new.items():
        if key in old:
            pairs.append((key, key))
            continue
        same = [name for name, m in old.items() if m.entry.experiment == measurement.entry.experiment]
        if len(same) == 1:
            pairs.append((same[0], key))
    return pairs
