"""The session's baselines: where they live, what each item is keyed by, the history an item is
compared with, and saving what this session measured.

Keys and places do not depend on where pytest was started or which rootdir it guessed: a
benchmark file inside a git work tree is keyed by its path from the top of that tree
(``benchmarks/llem_gpt2.yaml::gpt2[batch_size=8]``), and its baselines live in
``<top>/.llem/baselines/<machine>/``; outside git, pytest's rootdir stands in for the top.

``--llem-baseline auto`` compares with this machine's saved sessions (the level of the newest
``--llem-history`` of the current segment, 10 by default; results/segments.py): the verdict then
allows for how much whole sessions differ. A path compares with that one file.

A saved session holds every item it measured, each with its status: passed, accepted
(``--llem-accept``), regressed or failed. Red ones are kept for the record and the report; only
passed and accepted ones are ever a reference.

A history's files may come from anywhere (a CI cache): one that cannot be read (corrupt, too
large, not a regular file) is left out, and ``note_unreadable`` names it in a warning, once, and
in the record of each item judged against that history (for the summary and the JSON report).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from llenergymeasure.results.baselines import Baseline, MachineHistory
    from pytest_llem.settings import Settings

MIN_SAVED_REPEATS = 3  # fewer, and a later comparison has no spread to judge by
WARNED = pytest.StashKey[set[str]]()  # unreadable baseline files this process has warned of


class NotWritten(Exception):
    """An output that was asked for has nothing to hold (the text says why)."""


def locate(path: Path, config: pytest.Config) -> tuple[Path, str]:
    """(the directory holding ``.llem/baselines`` for benchmark file ``path``, the file's key).

    The top of the file's git work tree; outside git, the directory of pytest's ini file, else the
    file's own directory. Never pytest's rootdir as such: without an ini file it is derived from
    the arguments, so ``pytest benchmarks/`` and ``pytest .`` would keep two histories."""
    from llenergymeasure.results.project import project_root

    root = project_root(path) or (config.inipath.parent if config.inipath else path.parent)
    try:
        return root, path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return root, path.name


def read_reference(settings: Settings, root: Path, machine_key: str
                   ) -> tuple[Baseline | MachineHistory | None, str]:
    """(what to compare with for ``machine_key``: the file of ``--llem-baseline PATH``, or this
    machine's history under ``root``; and where it is), or (None, why there is nothing)."""
    from llenergymeasure.exceptions import ConfigError
    from llenergymeasure.results.baselines import Baseline, MachineHistory

    if settings.baseline != "auto":
        try:
            return Baseline.load(settings.baseline), str(settings.baseline)
        except ConfigError as exc:
            return None, str(exc)
    history = MachineHistory(root, machine_key)
    if not history:
        where = root / ".llem" / "baselines"
        return None, f"no baseline saved for this machine ({machine_key}) under {where}; {SAVE_ONE}"
    return history, f"this machine's history in {history.directory}"


# What a reason tells a session that saved nothing to do, as the verdict code words it
# (results/regression.py, results/history.py), and what a session that saves says instead.
SAVE_ONE = "save one with --llem-save-baseline"
SAVE_A_NEW_ONE = "save a new one with --llem-save-baseline"
SAVE_MORE = "save more sessions (--llem-save-baseline)"


def reworded(text: str, settings: Settings) -> str:
    """``text`` (a verdict's line, reason or hint) without advice to pass ``--llem-save-baseline``
    when this session passed it: what this session saves instead. Unchanged otherwise."""
    if not settings.save_baseline or "--llem-save-baseline" not in text:
        return text
    if settings.save_baseline == "auto":
        first = "this session's measurement is saved to this machine's history (--llem-save-baseline)"
        more = "this session is saved as one more (--llem-save-baseline), for a verdict in a later one"
    else:
        first = more = (f"this session is saved to {settings.save_baseline} (--llem-save-baseline=PATH): compare "
                        f"with that file next time (--llem-baseline {settings.save_baseline}), or save to this "
                        "machine's history (--llem-save-baseline, no PATH)")
    text = text.replace(SAVE_MORE + " or ", more + "; or ")
    return text.replace(SAVE_A_NEW_ONE, first).replace(SAVE_ONE, first).replace(SAVE_MORE, more)


def note_unreadable(item: pytest.Item, record: dict[str, Any]) -> None:
    """Name in ``record`` (as ``unreadable_baselines``) the files of the history ``record`` was
    judged against that could not be read so far, and warn of each the first time."""
    from llenergymeasure.results.baselines import MachineInfo
    from pytest_llem.gating import LlemBaselineWarning
    from pytest_llem.report import shown_paths
    from pytest_llem.settings import SETTINGS

    settings = item.config.stash[SETTINGS]
    if settings.baseline != "auto" or "regression" not in record or "machine" not in record:
        return
    machine = MachineInfo.model_validate(record["machine"])
    history, _ = settings.load_reference(Path(record["root"]), machine.key)  # read once per process
    paths = shown_paths(item.config)
    unreadable = [paths.text(line) for line in getattr(history, "unreadable", [])]
    if not unreadable:
        return
    record["unreadable_baselines"] = unreadable
    warned = item.config.stash.setdefault(WARNED, set())
    for line in unreadable:
        if line not in warned:
            warned.add(line)
            item.warn(LlemBaselineWarning(f"left out of this machine's baseline history: {line}"))


def save_session(settings: Settings, records: list[dict[str, Any]], lines: list[str],
                 shown: Callable[[str | Path], str] = str) -> None:
    """Save what ``records`` measured: one file per project root and machine, every measured item
    with its status (``status``); ``lines`` gets what was saved (each file as ``shown`` shows it)
    and left out. NotWritten when nothing was measured. Items not saved this time are not copied:
    a history is read per item, past the sessions that did not measure it."""
    from llenergymeasure.results.baselines import Baseline, BaselineEntry, CommitInfo, MachineInfo, new_baseline_path

    kept_out = left_out(records)
    if kept_out:
        lines.append(f"{sum(kept_out.values())} item(s) left out of the baseline: "
                     + ", ".join(f"{count} {why}" for why, count in kept_out.items()))
    saved = [r for r in records if exclusion(r) is None]
    if not saved:
        raise NotWritten("no item was measured with energy, so there is nothing to save as a baseline")
    groups: dict[tuple[str, str], tuple[MachineInfo, dict[str, BaselineEntry]]] = {}
    for record in saved:
        machine = MachineInfo.model_validate(record["machine"])
        _, entries = groups.setdefault((record["root"], machine.key), (machine, {}))
        entries[record["baseline_key"]] = BaselineEntry.model_validate({**record["baseline_entry"],
                                                                        "status": status(record)})
    explicit = settings.save_baseline != "auto"
    for (root, key), (machine, entries) in groups.items():
        commit = CommitInfo.detect(root)
        path = Path(settings.save_baseline) if explicit else new_baseline_path(root, key, commit)
        if explicit and len(groups) > 1:
            path = path.with_name(f"{path.stem}-{key}{path.suffix}")
        path = Baseline.from_entries(entries, machine, commit).save(path)
        counts: dict[str, int] = {}
        for entry in entries.values():
            kind = "suspect" if entry.energy_suspect else entry.status
            counts[kind] = counts.get(kind, 0) + 1
        kinds = ", ".join(f"{count} {name}" for name, count in counts.items())
        lines.append(f"baseline of {len(entries)} item(s) ({kinds}) saved to {shown(path)}")
    references = [r for r in saved if status(r) in ("passed", "accepted") and not r.get("energy_suspect")]
    few = [r["nodeid"] for r in references if len(r["baseline_entry"]["repeats"]) < MIN_SAVED_REPEATS]
    if few:
        lines.append(f"WARNING: {len(few)} item(s) saved with fewer than {MIN_SAVED_REPEATS} repeats: a later run "
                     f"has no spread to compare them with and can give no verdict; save with --llem-repeats 5")


def status(record: dict[str, Any]) -> str:
    """The saved status of a measured item: passed, accepted, regressed (its regression gate
    failed) or failed (another gate, suspect energy)."""
    if record["outcome"] == "passed":
        return "accepted" if record.get("accepted") else "passed"
    verdict = record.get("regression", {}).get("verdict")
    return "regressed" if verdict == "regressed" and not record.get("energy_suspect") else "failed"


def exclusion(record: dict[str, Any]) -> str | None:
    """Why an item's record is not saved at all, or None: every item that measured energy is saved,
    red or suspect ones with a status that keeps them from ever being a reference."""
    if record["outcome"] == "skipped":
        return "skipped"
    if "baseline_entry" not in record:
        return "not measured"
    if record.get("joules_per_token") is None:
        return "without measured energy"
    return None


def left_out(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many ``records`` were left out of a baseline, per reason, in a stable order."""
    counts: dict[str, int] = {}
    for record in records:
        why = exclusion(record)
        if why is not None:
            counts[why] = counts.get(why, 0) + 1
    return counts
