"""Builders of real ExperimentResult objects for unit tests: one repeat from what was counted in
its window (``make_repeat``), and a result from repeats (``make_result``), with plain defaults."""

from __future__ import annotations

from datetime import datetime, timezone

from llenergymeasure.results.metrics import compute_metrics
from llenergymeasure.results.model import EnvironmentSnapshot, ExperimentResult, RepeatResult

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
EXPERIMENT_ID = "tiny-0123abcd-20260102T030405"


def make_repeat(
    index: int,
    *,
    energy_j: float | None,
    duration_s: float = 2.0,
    output_tokens: int = 100,
    n_prompts: int = 10,
    baseline_power_w: float | None = None,
    latencies_s: list[float] | None = None,
    peak_memory_mb: float | None = None,
) -> RepeatResult:
    latencies = latencies_s if latencies_s is not None else [0.5, 1.0, 1.5]
    metrics = compute_metrics(
        duration_s=duration_s,
        output_tokens=output_tokens,
        n_prompts=n_prompts,
        latencies_s=latencies,
        ttfts_s=[0.05, 0.07],
        energy_j=energy_j,
        gpu_energy_j=energy_j,
        baseline_power_w=baseline_power_w,
        peak_memory_mb=peak_memory_mb,
    )
    return RepeatResult(index=index, n_prompts=n_prompts, input_tokens=40, output_tokens=output_tokens,
                        latencies_s=latencies, ttfts_s=[0.05, 0.07], metrics=metrics)


def make_result(repeats: list[RepeatResult], **fields) -> ExperimentResult:
    base = dict(
        experiment_id=EXPERIMENT_ID,
        name="tiny",
        config={"model": "tiny", "pytorch": {"batch_size": 2}},
        config_hash="0123abcd0123abcd",
        started_at=STARTED,
        finished_at=STARTED,
        environment=EnvironmentSnapshot(llem_version="0.0", python="3.11", platform="linux", device="cpu"),
        energy_source="nvml_counter",
    )
    base.update(fields)
    return ExperimentResult.from_repeats(repeats, **base)
