"""What ``llem report`` reads: result JSONs, directories of them, baseline files and ``--llem-json``
session files, each recognised by its content (not its name). Every file, given or found in a
given directory, is read through ``results.io.read_limited``: a regular file of at most
MAX_DOCUMENT_BYTES (a FIFO, a device or a symlink to one is refused, never opened for reading).

Everything measured becomes a ``Measured``: one experiment's result (from a result file or a
session item's ``"result"``), with the session record when it came from one. A file that is none
of these kinds, unreadable, or invalid is a ConfigError naming it (exit 2).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llenergymeasure.config.models import flatten
from llenergymeasure.exceptions import ConfigError
from llenergymeasure.results.baselines import Baseline
from llenergymeasure.results.io import parse_json, read_limited
from llenergymeasure.results.model import TIMELINE_SUFFIX, ExperimentResult

KINDS = "a result JSON (llem run -o DIR), a directory of them, a baseline file (.llem/baselines/) " \
        "or a session file (pytest --llem-json)"


@dataclass
class Measured:
    """One experiment as the report shows it: its result (None for a session item that measured
    nothing: skipped, failed, a dry run) and its session record (None for a result file)."""

    name: str
    origin: str  # the file it was read from, as given
    result: ExperimentResult | None
    record: dict[str, Any] | None = None
    label: str = ""  # unique among the report's experiments (set by ``label_all``)

    @property
    def joules_per_token(self) -> float | None:
        if self.result is not None:
            return self.result.metrics.joules_per_token
        value = (self.record or {}).get("joules_per_token")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def ci(self) -> tuple[float, float] | None:
        """The 95% CI of J/token over the repeats (of the mean; results.stats), when there were several."""
        stats = self.result.stats.get("joules_per_token") if self.result is not None else None
        return (stats.ci95_low, stats.ci95_high) if stats is not None else None

    @property
    def estimated(self) -> bool:
        return bool(self.result.estimated if self.result is not None else (self.record or {}).get("estimated"))

    @property
    def suspect(self) -> bool:
        if self.result is not None:
            return self.result.energy_suspect
        return bool((self.record or {}).get("energy_suspect"))

    @property
    def energy_source(self) -> str:
        if self.result is not None:
            return self.result.energy_source
        return str((self.record or {}).get("energy_source", "-"))

    @property
    def config(self) -> dict[str, Any]:
        """The flattened config; for a session item without its result, the sweep values in its id."""
        if self.result is not None:
            return flatten(self.result.config)
        return id_params(self.name)

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """(code, message) of every measurement warning."""
        if self.result is not None:
            return [(w.code, w.message) for w in self.result.measurement_warnings]
        return [(str(code), "") for code in (self.record or {}).get("warnings", [])]


@dataclass
class Inputs:
    measured: list[Measured] = field(default_factory=list)
    baselines: list[tuple[str, Baseline]] = field(default_factory=list)  # (origin, file), oldest first
    sessions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (origin, document)
    sources: list[str] = field(default_factory=list)  # every file read, as given

    def finish(self) -> Inputs:
        self.baselines.sort(key=lambda pair: pair[1].created_at)
        label_all(self.measured)
        return self


def load_inputs(paths: list[Path]) -> Inputs:
    """Every input read and checked; the first bad one raises ConfigError naming it."""
    inputs = Inputs()
    for file in input_files(paths):
        _add_file(inputs, file)
    return inputs.finish()


def input_files(paths: list[Path]) -> list[Path]:
    """The files ``load_inputs`` reads: each file given, and the JSON files of each directory given
    (not the timeline sidecars, nor hidden files); ConfigError when there are none."""
    if not paths:
        raise ConfigError(f"no inputs: give {KINDS}")
    files = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(p for p in path.glob("*.json")
                       if not p.name.endswith(TIMELINE_SUFFIX) and not p.name.startswith("."))
        if not found:
            raise ConfigError(f"{path}: no result, baseline or session JSON files in this directory")
        files.extend(found)
    return files


def inputs_from_session(document: dict[str, Any], origin: str = "pytest session") -> Inputs:
    """The report's inputs from an in-memory ``--llem-json`` document."""
    inputs = Inputs()
    _add_session(inputs, origin, document)
    return inputs.finish()


def _add_file(inputs: Inputs, path: Path) -> None:
    data = _read_json(path)
    kind = kind_of(data)
    origin = str(path)
    inputs.sources.append(origin)
    if kind == "result":
        result = ExperimentResult.load(path, data)
        inputs.measured.append(Measured(result.name, origin, result))
    elif kind == "baseline":
        inputs.baselines.append((origin, Baseline.load(path, data)))
    elif kind == "session":
        _add_session(inputs, origin, data)
    elif kind == "timeline":
        raise ConfigError(f"{path}: a {TIMELINE_SUFFIX} sidecar, not a result; give the result JSON beside it "
                          "(or their directory)")
    else:
        raise ConfigError(f"{path}: not an llem file; give {KINDS}")


def kind_of(data: Any) -> str | None:
    """``result``, ``baseline``, ``session``, ``timeline`` (a sidecar) or None, from a file's JSON."""
    if not isinstance(data, dict):
        return None
    if data.get("kind") == "llem-baseline":
        return "baseline"
    if "experiment_id" in data and "schema_version" in data:
        return "result"
    if "experiment_id" in data and "repeats" in data:
        return "timeline"
    if isinstance(data.get("items"), list) and "llem_version" in data:
        return "session"
    return None


def _read_json(path: Path) -> Any:
    """The JSON of an input, read by ``read_limited``: a regular file of at most MAX_DOCUMENT_BYTES."""
    try:
        raw = read_limited(path, "a result, baseline or session file")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file or directory") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_json(raw, path, "result, baseline or session", hint=f"give {KINDS}")


def _add_session(inputs: Inputs, origin: str, document: dict[str, Any]) -> None:
    """Each item of a session: its result when it measured one, else its record alone."""
    inputs.sessions.append((origin, document))
    for number, record in enumerate(document.get("items") or [], 1):
        if not isinstance(record, dict) or not isinstance(record.get("nodeid"), str):
            raise ConfigError(f"{origin}: item {number} is not a session record (no \"nodeid\")")
        result = None
        if isinstance(record.get("result"), dict):
            try:
                result = ExperimentResult.model_validate(record["result"])
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ConfigError(f"{origin}: item {record['nodeid']}: not a valid result ({where}: {first['msg']})"
                                  ) from None
        inputs.measured.append(Measured(record["nodeid"], origin, result, record))


_ID_PARAMS = re.compile(r"\[([^\[\]]*)\]$")


def id_params(experiment_id: str) -> dict[str, Any]:
    """``{"batch_size": 8, "precision": "fp16"}`` from ``file.yaml::name[batch_size=8,precision=fp16]``."""
    found = _ID_PARAMS.search(experiment_id)
    params: dict[str, Any] = {}
    for part in found.group(1).split(",") if found else []:
        key, sep, value = part.partition("=")
        if sep:
            params[key] = _number(value)
    return params


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def label_all(measured: list[Measured]) -> None:
    """Unique labels: the name; where names repeat, what differs in their configs, else a number."""
    by_name: dict[str, list[Measured]] = {}
    for item in measured:
        by_name.setdefault(item.name, []).append(item)
    for name, same in by_name.items():
        if len(same) == 1:
            same[0].label = name
            continue
        configs = [item.config for item in same]
        keys = [k for k in dict.fromkeys(k for c in configs for k in c)
                if k not in ("name", "output_dir") and len({json.dumps(c.get(k), sort_keys=True, default=str)
                                                            for c in configs}) > 1]
        for item in same:
            differs = ",".join(f"{k.rsplit('.', 1)[-1]}={item.config.get(k)}" for k in keys)
            item.label = f"{name} [{differs}]" if differs else name
    counts = Counter(item.label for item in measured)
    seen: Counter[str] = Counter()
    for item in measured:
        base = item.label
        if counts[base] > 1:
            seen[base] += 1
            item.label = f"{base} #{seen[base]}"
