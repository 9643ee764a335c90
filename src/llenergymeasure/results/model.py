"""ExperimentResult: what one experiment measured, how, and on what; saved as JSON atomically,
never over another file.

Headline metrics are the median over repeats; each repeat keeps its own numbers so that a
later comparison can account for the spread. Every energy figure says how it was obtained
(``energy_source``) and whether it is a model rather than a measurement (``estimated``).

``timeline`` is the session's telemetry (``SessionTimeline``): every device's samples from before
the idle baseline to the end of the last window, with the phases (baseline, load, warmup, each
window and prefill window) marked, in seconds since the timeline started. The result JSON holds
it downsampled; the ``.timeline.json`` sidecar holds every sample.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from llenergymeasure.results.io import (MAX_NUMBERED, NotSaved, create_numbered, load_document, unsaved_dirs,
                                        write_failure)
from llenergymeasure.results.metrics import ENERGY_METRICS, METRIC_NAMES, PHASE_METRICS, SLO_METRICS, Metrics
from llenergymeasure.results.stats import MetricStats, summarize

SCHEMA_VERSION = 1
MAX_NAME_IN_ID = 120  # characters of an experiment's name kept in its id (and file name)
TIMELINE_SUFFIX = ".timeline.json"


class MeasurementWarning(BaseModel):
    """Something that makes a number less trustworthy: a stable code and a sentence."""

    code: str
    message: str


class EnvironmentSnapshot(BaseModel):
    """The software and hardware a result was measured on."""

    model_config = ConfigDict(extra="allow")

    llem_version: str
    python: str
    platform: str
    cpu: str | None = None
    torch: str | None = None
    transformers: str | None = None
    cuda: str | None = None
    device: str
    gpus: list[str] = Field(default_factory=list)
    gpu_driver: str | None = None
    gpu_power_limits_w: list[float] = Field(default_factory=list)
    auto_precision: str | None = None  # what ``precision: auto`` ran as (the config then records it); else None
    # Where it ran: the host's name, and the Ray node with ``llem run --ray`` (None in results
    # written before these existed, and for ray_node_id outside Ray).
    host: str | None = None
    ray_node_id: str | None = None


PhaseName = Literal["baseline", "load", "warmup", "window", "prefill", "decode", "steady"]


class TimelinePhase(TypedDict):
    """A span of the session: ``start``/``end`` in seconds since the timeline started; ``repeat``
    is the repeat's index for a window or prefill window, None for the others."""

    name: PhaseName
    start: float
    end: float
    repeat: int | None


class SessionTimeline(TypedDict, total=False):
    """``devices``: per device ("gpu0", "package-0", "dram-0", "cpu"), samples ``{"t": seconds,
    "power_w": ..., ...}`` in time order (a CPU estimate's carry ``"estimated": true``);
    ``phases``: what ran when. Empty (``{}``) for results written before timelines existed."""

    devices: dict[str, list[dict[str, Any]]]
    phases: list[TimelinePhase]


class RepeatResult(BaseModel):
    """One measurement window: all prompts, once."""

    index: int
    n_prompts: int
    input_tokens: int
    output_tokens: int
    latencies_s: list[float]
    ttfts_s: list[float]
    devices: list[dict[str, Any]] = Field(default_factory=list)
    timeline: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    metrics: Metrics
    load_point: dict[str, Any] | None = None  # a load point's window: serving/point.py


class ExperimentResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    experiment_id: str
    name: str
    config: dict[str, Any]
    config_hash: str
    started_at: datetime
    finished_at: datetime
    environment: EnvironmentSnapshot
    energy_source: str
    estimated: bool = False
    energy_unavailable_reason: str | None = None
    # The meter's sanity checks doubted the number (a counter reset, a jump, counter and integrated
    # power disagreeing): the warnings say why. Gates fail on it and no baseline stores it.
    energy_suspect: bool = False
    n_prompts: int
    input_tokens: int
    output_tokens: int
    metrics: Metrics
    stats: dict[str, MetricStats] = Field(default_factory=dict)
    repeats: list[RepeatResult]
    measurement_warnings: list[MeasurementWarning] = Field(default_factory=list)
    # Measured in an interleaved A/B session: its side ("A" or "B"), the measured windows' order,
    # the settling pair run (and discarded) before them, and the seed that drew the first block.
    ab: dict[str, Any] | None = None
    # A load point of a ramp (``openai.load``): its offered and achieved rate, mean in flight,
    # saturation, steady window's cut points and SLO (serving/point.py); None otherwise.
    load_point: dict[str, Any] | None = None
    co2_g: float | None = None  # an estimate: energy x carbon intensity
    carbon_intensity_g_per_kwh: float | None = None
    carbon_intensity_source: str | None = None

    # The session's telemetry and phases, downsampled (the module text); every sample is in the sidecar.
    timeline: SessionTimeline = Field(default_factory=dict)  # type: ignore[arg-type]

    # Every sample of every repeat, and of the session, for the ``.timeline.json`` sidecar; not in
    # the result JSON.
    full_timeline: list[dict[str, list[dict[str, Any]]]] = Field(default_factory=list, exclude=True)
    full_session_timeline: SessionTimeline = Field(default_factory=dict, exclude=True)  # type: ignore[arg-type]

    @classmethod
    def from_repeats(cls, repeats: list[RepeatResult], **fields: Any) -> ExperimentResult:
        """Headline metrics are medians over repeats; ``stats`` holds the spread when there are several."""
        columns = {name: [getattr(r.metrics, name) for r in repeats] for name in METRIC_NAMES}
        known = {name: [v for v in values if v is not None] for name, values in columns.items()}
        headline = Metrics(**{name: statistics.median(v) if v else None for name, v in known.items()})
        stats = {name: summarize(v) for name, v in known.items() if len(v) > 1}
        first = repeats[0]
        if any(r.load_point for r in repeats):
            from llenergymeasure.serving.point import merged_load_point

            fields.setdefault("load_point", merged_load_point([r.load_point for r in repeats]))  # type: ignore[misc]
        return cls(
            metrics=headline,
            stats=stats,
            repeats=repeats,
            n_prompts=first.n_prompts,
            input_tokens=first.input_tokens,
            output_tokens=first.output_tokens,
            **fields,
        )

    def unmeasured_reason(self, metric: str) -> str | None:
        """Why ``metric`` (an energy or SLO metric) has no value, where the result knows (for a gate's verdict)."""
        if metric in SLO_METRICS and (self.load_point is None or "slo_met" not in self.load_point):
            return "measured only for a load point (openai.load) with slo:"
        if metric not in ENERGY_METRICS:
            return None
        if self.energy_unavailable_reason or metric not in PHASE_METRICS:
            return self.energy_unavailable_reason
        note = next((w.message for w in self.measurement_warnings if w.code == "prefill_unmeasured"), None)
        if note:
            return note
        if metric == "decode_joules_per_token" and self.metrics.decode_energy_j is not None:
            return "no token was decoded after each prompt's first (max_output_tokens is 1)"
        backend = self.config.get("backend")
        return (f"the {backend} backend does not measure prefill and decode apart" if backend else
                "prefill and decode are measured by llem run with the pytorch backend only")

    @property
    def filename(self) -> str:
        """The name ``save`` gives this result, unless it is taken (then ``<experiment_id>-2.json``...:
        use the path ``save`` returns)."""
        return f"{self.experiment_id}.json"

    def save(self, directory: str | Path) -> Path:
        """Write ``<directory>/<experiment_id>.json`` and return its path. Never over a file: a taken
        name (another run into the same folder, a save in the same second) becomes
        ``<experiment_id>-2.json``, ``-3``... The full sampler timelines, when there are any, are
        written first beside it as ``<same stem>.timeline.json`` (``{"experiment_id", "repeats": [per
        window, per device, samples], "session": SessionTimeline}``), so no result lacks its sidecar
        and a save that fails or is interrupted leaves neither file (and no temp file).

        Where ``directory`` cannot take the file (a full disk, a permission, a file in the way),
        the result goes to the first of ``unsaved_dirs()`` that takes it, and NotSaved (an
        ExperimentError, exit 1) says what failed and where the result is."""
        directory = Path(directory).expanduser()
        try:
            return self._write_files(directory)
        except OSError as exc:
            failure = f"could not save the result in {directory}: {write_failure(directory, exc)}"
        tried = []
        for fallback in unsaved_dirs():
            try:
                kept = self._write_files(fallback)
            except OSError as exc:
                tried.append(f"{fallback} ({write_failure(fallback, exc)})")
                continue
            raise NotSaved(f"{failure}; it was written to {kept} instead", kept)
        raise NotSaved(f"{failure}; nor in {' or '.join(tried)}: the result was not saved", None)

    def _write_files(self, directory: Path) -> Path:
        """The sidecar (if any), then the result, under the first free stem; the result's path."""
        directory.mkdir(parents=True, exist_ok=True)
        suffixes, texts = [".json"], [self.model_dump_json(indent=2) + "\n"]
        if any(self.full_timeline) or self.full_session_timeline.get("devices"):
            suffixes.insert(0, TIMELINE_SUFFIX)
            texts.insert(0, json.dumps({"experiment_id": self.experiment_id, "repeats": self.full_timeline,
                                        "session": self.full_session_timeline}) + "\n")

        def names(number: int) -> list[Path]:
            stem = self.experiment_id if number == 1 else f"{self.experiment_id}-{number}"
            return [directory / f"{stem}{suffix}" for suffix in suffixes]

        return create_numbered(names, texts)[-1]

    @classmethod
    def load(cls, path: str | Path, data: Any = None) -> ExperimentResult:
        """Read a result file (or take ``data``, its JSON already read); a missing, oversized, corrupt
        or newer-schema file, or one that is not a regular file, is a ConfigError naming it."""
        return load_document(cls, path, noun="result", version=SCHEMA_VERSION, data=data)


def make_experiment_id(name: str, config_hash: str, started_at: datetime) -> str:
    """A filesystem-safe id: ``<name>-<hash8>-<YYYYmmddTHHMMSS>``. A name longer than
    MAX_NAME_IN_ID characters (a sweep's ``name[precision=fp16,batch_size=8,...]``) is cut and
    ends with 8 characters of its own hash, so that the file name, with ``-2`` and
    ``.timeline.json`` after it, stays far below the usual 255-byte NAME_MAX."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "experiment"
    if len(slug) > MAX_NAME_IN_ID:
        slug = f"{slug[:MAX_NAME_IN_ID - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return f"{slug}-{config_hash[:8]}-{started_at:%Y%m%dT%H%M%S}"


def longest_file_name(experiment_id: str) -> str:
    """The longest name a result of ``experiment_id`` gets in a folder (its numbered sidecar)."""
    return f"{experiment_id}-{MAX_NUMBERED}{TIMELINE_SUFFIX}"
