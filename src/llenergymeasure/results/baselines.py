"""Baselines: the measured repeats a later run is compared with, per experiment and machine.

A baseline file holds, for each experiment (keyed by its pytest node id, or its name for
``llem`` results), the config it ran, its hash, and every repeat's metrics; plus the machine
(GPUs, driver, power limits, CPU, torch and transformers, energy source) and the commit.

Files live in ``.llem/baselines/<machine-key>/<UTC time>[-<commit>].json`` unless a path is
given: one file per saved session, holding every experiment that session measured, each with
its ``status`` (passed, accepted, regressed, failed): a red session is kept for the record but
is never a reference (results/segments.py chooses the reference). ``MachineHistory`` reads a
machine's files newest first, as far as a verdict needs. The machine key names the measuring
hardware only (GPU model x count, or the CPU); software versions are recorded and reported
when they differ, since a driver or torch upgrade is often exactly what a gate should catch.

Schema 1 files (before statuses) held only passed entries, plus copies of the previous file's
entries for experiments the session did not save; they are read as passed, the copies dropped.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from llenergymeasure.config.models import flatten
from llenergymeasure.exceptions import ConfigError
from llenergymeasure.results.io import create_numbered, load_document, read_json
from llenergymeasure.results.metrics import METRIC_NAMES
from llenergymeasure.results.model import ExperimentResult

SCHEMA_VERSION = 2
READ_VERSIONS = (1, 2)
DEFAULT_DIR = Path(".llem") / "baselines"
# Keys that change neither what one repeat measures nor its comparability.
NOT_COMPARED_KEYS = ("name", "output_dir", "repeats")
MAX_HISTORY_FILES = 1000  # a machine's newest saved sessions a verdict may read (years of nightly runs)

Status = Literal["passed", "accepted", "regressed", "failed"]
REFERENCE_STATUSES = ("passed", "accepted")  # what a later run may be judged against


class MachineInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    gpus: list[str] = []
    gpu_driver: str | None = None
    gpu_power_limits_w: list[float] = []
    cpu: str | None = None
    cuda: str | None = None
    torch: str | None = None
    transformers: str | None = None
    energy_source: str = "none"

    @classmethod
    def from_result(cls, result: ExperimentResult) -> MachineInfo:
        env = result.environment
        measured_gpus = env.device.startswith(("cuda", "server:"))  # a server's: the GPUs it runs on
        return cls(gpus=env.gpus if measured_gpus else [], gpu_driver=env.gpu_driver,
                   gpu_power_limits_w=env.gpu_power_limits_w, cpu=env.cpu, cuda=env.cuda,
                   torch=env.torch, transformers=env.transformers, energy_source=result.energy_source)

    @property
    def key(self) -> str:
        return _machine_key(tuple(self.gpus), self.cpu)

    def describe(self) -> str:
        return f"{_hardware(self.gpus, self.cpu)}, {self.energy_source}"

    def mismatch(self, other: MachineInfo) -> str | None:
        """Why results from ``other`` cannot be compared with this machine's, or None."""
        if self.key != other.key or self.energy_source != other.energy_source:
            return f"baseline measured on {other.describe()}, this run on {self.describe()}"
        return None

    def software_changes(self, other: MachineInfo) -> list[str]:
        """Recorded differences that do not stop a comparison (but may explain its verdict)."""
        fields = ("gpu_driver", "gpu_power_limits_w", "cuda", "torch", "transformers")
        return [f"{name} {getattr(other, name)} -> {getattr(self, name)}"
                for name in fields if getattr(self, name) != getattr(other, name)]


def machine_key(gpus: list[str], cpu: str | None) -> str:
    """A directory name for the measuring hardware: ``2x-nvidia-h200`` or ``cpu-amd-epyc-7763``."""
    return _machine_key(tuple(gpus), cpu)


@lru_cache(maxsize=256)
def _machine_key(gpus: tuple[str, ...], cpu: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _hardware(list(gpus), cpu).lower()).strip("-")


def _hardware(gpus: list[str], cpu: str | None) -> str:
    if gpus:
        return " + ".join(f"{gpus.count(name)}x {name}" for name in sorted(set(gpus)))
    return f"cpu {cpu or 'unknown'}"


class CommitInfo(BaseModel):
    sha: str
    branch: str | None = None
    dirty: bool = False

    @classmethod
    def detect(cls, directory: str | Path = ".") -> CommitInfo | None:
        """The git commit of ``directory`` (CI's GITHUB_SHA when git is not there), or None."""
        def git(*args: str) -> str | None:
            try:
                done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.SubprocessError):
                return None
            return done.stdout.strip() if done.returncode == 0 else None

        sha = git("rev-parse", "HEAD")
        if sha:
            return cls(sha=sha, branch=git("rev-parse", "--abbrev-ref", "HEAD"), dirty=bool(git("status", "--porcelain")))
        if os.environ.get("GITHUB_SHA"):
            return cls(sha=os.environ["GITHUB_SHA"], branch=os.environ.get("GITHUB_REF_NAME"))
        return None


class BaselineEntry(BaseModel):
    """One experiment's config and per-repeat metrics (finite numbers or null)."""

    model_config = ConfigDict(allow_inf_nan=False)

    experiment: str  # the experiment id (a node id's last part)
    config_hash: str
    config: dict[str, Any]  # flattened
    estimated: bool = False
    energy_suspect: bool = False  # the sanity checks doubted its energy: never a reference
    # passed or accepted (an accepted session begins a new segment: the level after an intended
    # change); regressed or failed: kept for the record, never a reference
    status: Status = "passed"
    repeats: list[dict[str, float | None]]

    @property
    def is_reference(self) -> bool:
        return self.status in REFERENCE_STATUSES and not self.energy_suspect

    @classmethod
    def from_result(cls, result: ExperimentResult) -> BaselineEntry:
        return cls(experiment=result.name, config_hash=result.config_hash, config=flatten(result.config),
                   estimated=result.estimated, energy_suspect=result.energy_suspect,
                   repeats=[{name: getattr(r.metrics, name) for name in METRIC_NAMES} for r in result.repeats])

    def values(self, metric: str) -> list[float]:
        return [r[metric] for r in self.repeats if r.get(metric) is not None]

    def tokens_per_prompt(self) -> float | None:
        """Median output tokens per prompt over the repeats: the work one J/token is spread over. None
        for a load point (openai.load): it counts the tokens of a timed window, not of n prompts."""
        tokens, prompts = self.values("output_tokens"), self.config.get("n")
        if "openai.load.rates" in self.config:
            return None
        if not tokens or not isinstance(prompts, int) or prompts <= 0:
            return None
        return statistics.median(tokens) / prompts

    def workload_change(self, before: BaselineEntry, tolerance: float = 0.01) -> str | None:
        """A note when this run decoded another number of tokens per prompt than ``before``: its
        J/token then divides other work (a model that stops earlier, a changed EOS or max length)."""
        old, new = before.tokens_per_prompt(), self.tokens_per_prompt()
        if old is None or new is None or abs(new - old) <= tolerance * old:
            return None
        return (f"workload changed: {old:.4g} -> {new:.4g} output tokens per prompt; J/token now divides "
                "different work (same prompts and lengths? greedy decoding?)")

    def config_changes(self, before: BaselineEntry) -> list[str]:
        """``key old -> new`` for what changed since ``before``; a local model in another checkout
        (same directory name) is not a change."""
        if self.config == before.config:
            return []
        changes = []
        for key in sorted(set(self.config) | set(before.config)):
            old, new = before.config.get(key), self.config.get(key)
            if key in NOT_COMPARED_KEYS or old == new or key == "model" and _same_local_model(old, new):
                continue
            changes.append(f"{key} {old} -> {new}")
        return changes


def _same_local_model(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.startswith("/") and b.startswith("/") \
        and Path(a).name == Path(b).name


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    kind: Literal["llem-baseline"] = "llem-baseline"
    created_at: datetime
    machine: MachineInfo
    commit: CommitInfo | None = None
    entries: dict[str, BaselineEntry]

    @classmethod
    def from_entries(cls, entries: dict[str, BaselineEntry], machine: MachineInfo,
                     commit: CommitInfo | None) -> Baseline:
        return cls(created_at=datetime.now(timezone.utc), machine=machine, commit=commit, entries=entries)

    @classmethod
    def from_results(cls, results: list[ExperimentResult]) -> Baseline:
        """Results of ``llem run`` (keyed by their names), as a baseline to compare."""
        if not results:
            raise ValueError("no results")
        return cls(created_at=results[0].started_at, machine=MachineInfo.from_result(results[0]),
                   entries={r.name: BaselineEntry.from_result(r) for r in results})

    def find(self, key: str, experiment: str) -> str | None:
        """The key of ``key``'s entry; failing that, of the one entry of ``experiment`` (the same
        file run from another directory has other node ids)."""
        if key in self.entries:
            return key
        same = [name for name, entry in self.entries.items() if entry.experiment == experiment]
        return same[0] if len(same) == 1 else None

    def save(self, path: str | Path) -> Path:
        """Create ``path`` (atomically) and return it; never over a file: a taken name gets ``.2``,
        ``.3``... before ``.json`` (a name from new_baseline_path counts on from its number), so
        use the path returned."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return create_numbered(_numbered(path), [self.model_dump_json(indent=2) + "\n"])[0]

    @classmethod
    def load(cls, path: str | Path, data: Any = None) -> Baseline:
        """A baseline file (or ``data``, its JSON already read); a missing, oversized, corrupt or
        foreign file, or one that is not a regular file, is a ConfigError naming it and what is wrong."""
        return load_document(cls, path, noun="baseline", version=READ_VERSIONS, kind="llem-baseline",
                             hint="baselines are written by pytest --llem-save-baseline", data=data)


def load_comparable(path: str | Path) -> Baseline:
    """A baseline file, a result JSON, or a directory of result JSONs, as a Baseline."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if not p.name.endswith(".timeline.json"))
        if not files:
            raise ConfigError(f"{path}: no result JSON files in this directory")
        return Baseline.from_results([ExperimentResult.load(p) for p in files])
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory")
    data = read_json(path, "baseline")
    if not isinstance(data, dict) or data.get("kind") != "llem-baseline" and "experiment_id" not in data:
        raise ConfigError(f"{path}: neither an llem baseline file (pytest --llem-save-baseline) nor a result JSON "
                          "(llem run -o DIR); give one of those, or a directory of result JSONs")
    if data.get("kind") == "llem-baseline":
        return Baseline.load(path, data)
    return Baseline.from_results([ExperimentResult.load(path, data)])


def machine_dir(root: str | Path, key: str) -> Path:
    return Path(root) / DEFAULT_DIR / key


_STAMPED = re.compile(r"^\d{8}T\d{6}Z(-[0-9a-f]+)?(\.\d+)?\.json$")


def new_baseline_path(root: str | Path, key: str, commit: CommitInfo | None) -> Path:
    """``<UTC time>[-<commit>].json``, with ``.2``, ``.3`` ... before ``.json`` if saved twice in a second
    (``Baseline.save`` numbers on if another process takes the name first)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{stamp}-{commit.sha[:8]}" if commit else stamp
    path, count = machine_dir(root, key) / f"{stem}.json", 1
    while path.exists():
        count += 1
        path = path.with_name(f"{stem}.{count}.json")
    return path


def _numbered(path: Path) -> Callable[[int], list[Path]]:
    """``path``, then ``<stem>.2.json``, ``<stem>.3.json``...; a stamped ``<time>.<n>.json`` goes on from n."""
    stem, first = path.stem, 1
    if _STAMPED.match(path.name) and path.stem.count(".") == 1:
        stem, number = path.stem.split(".")
        first = int(number)

    def names(n: int) -> list[Path]:
        number = first + n - 1
        return [path if n == 1 else path.with_name(f"{stem}.{number}{path.suffix}")]

    return names


def history(root: str | Path, key: str, limit: int) -> list[Path]:
    """The newest ``limit`` baselines saved for machine ``key`` under ``root``, oldest first;
    hand-named files are not part of a history."""
    def saved_order(path: Path) -> tuple[str, int]:
        parts = path.name.split(".")
        return parts[0][:16], int(parts[1]) if len(parts) == 3 else 1

    files = sorted((p for p in machine_dir(root, key).glob("*.json") if _STAMPED.match(p.name)), key=saved_order)
    return files[-limit:] if limit > 0 else []


def latest(root: str | Path, key: str) -> Path | None:
    """The newest baseline saved for machine ``key`` under ``root``; hand-named files are not candidates."""
    newest = history(root, key, 1)
    return newest[0] if newest else None




@dataclass(frozen=True)
class Session:
    """One saved measurement of an experiment: its entry, and when, on what and where it was saved."""

    entry: BaselineEntry
    saved_at: datetime
    machine: MachineInfo
    origin: str  # the file it was read from
    legacy: bool = False  # from a schema-1 file, which may hold a copy of another file's entry


def sessions_in(baselines: list[Baseline], key: str, experiment: str, origins: list[str] | None = None
                ) -> list[Session]:
    """The sessions of ``key`` (or, failing that, of the one entry of ``experiment``) in ``baselines``
    (oldest first), newest first."""
    found = []
    for index, baseline in enumerate(baselines):
        name = baseline.find(key, experiment)
        if name is not None:
            origin = origins[index] if origins else f"baseline {index + 1}"
            found.append(Session(baseline.entries[name], baseline.created_at, baseline.machine, origin,
                                 baseline.schema_version == 1))
    return found[::-1]


class MachineHistory:
    """The sessions saved for machine ``key`` under ``root``, read newest first and only as far as a
    verdict asks (a file is parsed once, when first needed). Files that cannot be read are left
    out and named in ``unreadable``; at most ``limit`` of the newest files are read."""

    def __init__(self, root: str | Path, key: str, limit: int = MAX_HISTORY_FILES) -> None:
        self.root, self.key = Path(root), key
        self.paths = history(root, key, limit)[::-1]
        self.unreadable: list[str] = []
        self._loaded: list[Baseline | None] = []

    def __bool__(self) -> bool:
        return bool(self.paths)

    @property
    def directory(self) -> Path:
        return machine_dir(self.root, self.key)

    def sessions(self, key: str, experiment: str) -> Iterator[Session]:
        """The sessions of ``key`` (or of the one entry of ``experiment`` in a file), newest first."""
        for index, path in enumerate(self.paths):
            baseline = self._load(index)
            name = baseline.find(key, experiment) if baseline is not None else None
            if name is not None:
                yield Session(baseline.entries[name], baseline.created_at, baseline.machine, path.name,
                              baseline.schema_version == 1)

    def _load(self, index: int) -> Baseline | None:
        while len(self._loaded) <= index:
            path = self.paths[len(self._loaded)]
            try:
                self._loaded.append(Baseline.load(path))
            except ConfigError as exc:
                self.unreadable.append(str(exc))
                self._loaded.append(None)
        return self._loaded[index]
