"""The session's baselines: where they live, what each item is keyed by, the history an item is
compared with, and saving what this session measured.

Keys and places do not depend on where pytest was started or which rootdir it guessed: a
benchmark file inside a git work tree is keyed by its path from the top of that tree
(``benchmarks/llem_gpt2.yaml::gpt2[batch_size=8]``), and its baselines live in
``<top>/.llem/baselines/<machine>/``; outside git, pytest's rootdir stands in for the top.

``--llem-baseline auto`` compares with the machine's last ``--llem-history`` saved sessions
(10 by default): the verdict then allows for how much whole sessions differ. A path compares
with that one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llenergymeasure.results.baselines import Baseline
    from pytest_llem.settings import Settings

MIN_SAVED_REPEATS = 3  # fewer, and a later comparison has no spread to judge by


class NotWritten(Exception):
    """An output that was asked for has nothing to hold (the text says why)."""


def locate(path: Path, rootdir: Path) -> tuple[Path, str]:
    """(the directory holding ``.llem/baselines`` for benchmark file ``path``, the file's key)."""
    from llenergymeasure.results.project import project_root

    root = project_root(path) or rootdir
    try:
        return root, path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return root, path.name


def read_reference(settings: Settings, root: Path, machine_key: str) -> tuple[list[Baseline], str]:
    """(the baselines to compare with for ``machine_key``, oldest first, and where they are), or
    ([], why there are none). A history file that cannot be read is left out, with a note."""
    from llenergymeasure.exceptions import ConfigError
    from llenergymeasure.results.baselines import Baseline, history, machine_dir

    if settings.baseline != "auto":
        try:
            return [Baseline.load(settings.baseline)], str(settings.baseline)
        except ConfigError as exc:
            return [], str(exc)
    paths = history(root, machine_key, settings.history)
    if not paths:
        return [], (f"no baseline saved for this machine ({machine_key}) under {root}/.llem/baselines; "
                    "save one with --llem-save-baseline")
    loaded, unreadable = [], []
    for path in paths:
        try:
            loaded.append(Baseline.load(path))
        except ConfigError as exc:
            unreadable.append(str(exc))
    if not loaded:
        return [], "; ".join(unreadable)
    where = (f"{paths[-1]}" if len(loaded) == 1 else
             f"{len(loaded)} sessions in {machine_dir(root, machine_key)}, the latest {paths[-1].name}")
    return loaded, where + (f" ({len(unreadable)} unreadable file(s) left out)" if unreadable else "")


def save_session(settings: Settings, records: list[dict[str, Any]], lines: list[str]) -> None:
    """Save the baseline material of ``records``: one file per project root and machine; ``lines``
    gets what was saved and left out. NotWritten when there is nothing to save.

    Only items that passed with measured, unsuspected energy go in (``exclusion`` says why the
    others did not). A new file under .llem/baselines also carries over the entries of that
    machine's previous baseline that this session did not save (a ``-k`` run, an interrupted
    one, an item that failed), so that the history never silently drops an experiment's gate.
    An explicit path gets this session only.
    """
    from llenergymeasure.results.baselines import Baseline, BaselineEntry, CommitInfo, MachineInfo, new_baseline_path

    kept_out = left_out(records)
    if kept_out:
        lines.append(f"{sum(kept_out.values())} item(s) left out of the baseline: "
                     + ", ".join(f"{count} {why}" for why, count in kept_out.items()))
    saved = [r for r in records if exclusion(r) is None]
    if not saved:
        raise NotWritten("no item passed with measured energy, so there is nothing to save as a baseline")
    groups: dict[tuple[str, str], tuple[MachineInfo, dict[str, BaselineEntry]]] = {}
    for record in saved:
        machine = MachineInfo.model_validate(record["machine"])
        _, entries = groups.setdefault((record["root"], machine.key), (machine, {}))
        entries[record["baseline_key"]] = BaselineEntry.model_validate(record["baseline_entry"])
    explicit = settings.save_baseline != "auto"
    for (root, key), (machine, entries) in groups.items():
        commit = CommitInfo.detect(root)
        kept = {} if explicit else _previous_entries(Path(root), key, machine, set(entries), lines)
        path = Path(settings.save_baseline) if explicit else new_baseline_path(root, key, commit)
        if explicit and len(groups) > 1:
            path = path.with_name(f"{path.stem}-{key}{path.suffix}")
        path = Baseline.from_entries({**kept, **entries}, machine, commit).save(path)
        carried = f" (and {len(kept)} carried over from the previous one)" if kept else ""
        lines.append(f"baseline of {len(entries)} item(s){carried} saved to {path}")
    few = [r["nodeid"] for r in saved if len(r["baseline_entry"]["repeats"]) < MIN_SAVED_REPEATS]
    if few:
        lines.append(f"WARNING: {len(few)} item(s) saved with fewer than {MIN_SAVED_REPEATS} repeats: a later run "
                     f"has no spread to compare them with and can give no verdict; save with --llem-repeats 5")


def _previous_entries(root: Path, key: str, machine: Any, measured: set[str], lines: list[str]) -> dict[str, Any]:
    """Entries of this machine's latest baseline that this session did not measure."""
    from llenergymeasure.exceptions import ConfigError
    from llenergymeasure.results.baselines import Baseline, latest

    previous = latest(root, key)
    try:
        baseline = Baseline.load(previous) if previous else None
    except ConfigError as exc:
        lines.append(f"previous baseline not carried over: {exc}")
        return {}
    if baseline is None or machine.mismatch(baseline.machine):
        return {}
    return {name: entry for name, entry in baseline.entries.items() if name not in measured}


def exclusion(record: dict[str, Any]) -> str | None:
    """Why an item's record must not become a baseline entry, or None: only a passed item whose
    energy was measured and not doubted is a reference for later runs."""
    if record["outcome"] == "skipped":
        return "skipped"
    if record["outcome"] != "passed":
        return "failed"
    if "baseline_entry" not in record:
        return "not measured"
    if record.get("joules_per_token") is None:
        return "without measured energy"
    if record.get("energy_suspect"):
        return "with suspect energy readings"
    return None


def left_out(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many ``records`` were left out of a baseline, per reason, in a stable order."""
    counts: dict[str, int] = {}
    for record in records:
        why = exclusion(record)
        if why is not None:
            counts[why] = counts.get(why, 0) + 1
    return counts
