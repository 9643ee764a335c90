"""The measurement protocol: pre-flight -> meter -> load -> warmup -> measured repeats -> result.

    1. pre-flight reports every problem at once (PreFlightError)
    2. the energy meter is created (idle baseline, when measured, is taken before the load)
    3. model and tokenizer load; prompts are tokenized onto the device before any window
    4. warmup batches run and are thrown away
    5. each repeat: synchronize, open the window, run every batch, synchronize, close it;
       a small random pause before each later repeat moves the window's phase against the
       power sensor's own sampling period. Then, for a backend that can run the prefill alone
       (``run_prefill``), a prefill window: the same batches with one output token each,
       repeated until the window spans PREFILL_SENSOR_UPDATES of the meter's counter updates
       (never longer than the main window); prefill energy is its energy per pass, decode the
       main window's minus that (docs/measurements.md, "Prefill and decode")
    6. the result carries every metric, the spread over repeats, and every warning

One session timeline (energy/timeline.py) samples every device from before the idle baseline to
the end of the last window, with each phase marked; it pauses while a measured window's own
sampler runs and takes that window's samples, so the windows are measured exactly as without
it. Whatever happens (an error, Ctrl-C), the timeline's sampler is stopped, the meter closed and
the model released.

With ``progress``, each long phase (idle baseline, load, warmup, every window) says on stderr when
it starts and how long it took, with its batches as a bar on a terminal or as plain lines in a log
(core/progress.py). The garbage collector leaves alone what existed before the load for the
session (``_freeze_gc``).

``measure_interleaved`` runs the same protocol for several configs in one session, their windows
in a given order (``llem ab`` and a benchmark file's ``against:`` use ABBA order, results/ab.py).
"""

from __future__ import annotations

import atexit
import gc
import os
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llenergymeasure.backends import Backend, BatchOutput, get_backend
from llenergymeasure.config.layers import unflatten
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.config.models import ExperimentConfig, flatten
from llenergymeasure.core.environment import snapshot
from llenergymeasure.core.preflight import Plan, preflight
from llenergymeasure.core.progress import Progress
from llenergymeasure.core.vram import estimate_vram
from llenergymeasure.energy import EnergyMeter, EnergyReading
from llenergymeasure.energy.base import update_period_s
from llenergymeasure.energy.baseline import cached_idle_power_w, measure_idle_power
from llenergymeasure.energy.carbon import carbon_intensity, co2_grams
from llenergymeasure.energy.sampler import downsample
from llenergymeasure.energy.sanity import suspect_reasons
from llenergymeasure.energy.timeline import TimelineRecorder
from llenergymeasure.energy.window import open_window
from llenergymeasure.exceptions import ConfigError, PreFlightError
from llenergymeasure.results.metrics import compute_metrics
from llenergymeasure.results.model import (
    ExperimentResult,
    MeasurementWarning,
    RepeatResult,
    make_experiment_id,
)
from llenergymeasure.results.spread import spread_warnings

MAX_REPEAT_JITTER_S = 0.1  # one NVML power-sampling period on current datacenter GPUs
TIMELINE_POINTS = 200  # per device and repeat (and of the session) in the result JSON; the sidecar has them all
PREFILL_SENSOR_UPDATES = 10  # a prefill window spans this many counter updates (1 s on NVML), as a main one should
MAX_PREFILL_PASSES = 1000
GC_FREEZE_ENV = "LLEM_GC_FREEZE"  # "0": no gc.freeze() around a session (benchmarks/startup_costs.py compares)


def run_experiment(
    config: str | Path | ExperimentConfig | None = None,
    *,
    model: str | None = None,
    backend: str | None = None,
    n: int | None = None,
    dataset: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> ExperimentResult:
    """Run one experiment and return its result; saved to ``output_dir`` when the config sets one.

    ``config`` is a YAML path, an ExperimentConfig, or None (then ``model=`` is required).
    Keyword overrides win over the config, as CLI flags do; nested fields take dotted keys
    through ``**{"pytorch.batch_size": 8}`` or a dict: ``pytorch={"batch_size": 8}``.
    """
    given = {"model": model, "backend": backend, "n": n, "dataset": dataset, **overrides}
    cli = {key: value for key, value in given.items() if value is not None}
    label = "run_experiment(...)"  # not a CLI flag: the caller never used the CLI
    if isinstance(config, ExperimentConfig):
        if cli:
            chosen_by_files = config._from_files - set(flatten(unflatten(cli)))  # what a file chose stays so
            config = load_experiment_config(cli_overrides={**config.model_dump(exclude_defaults=True), **cli},
                                            user_config_defaults={}, override_label=label)
            config._from_files = chosen_by_files
    else:
        config = load_experiment_config(config, cli_overrides=cli, override_label=label)
    result = measure(config, progress=progress)
    if config.output_dir:
        result.save(config.output_dir)
    return result


def measure(config: ExperimentConfig, *, progress: bool | Progress = False) -> ExperimentResult:
    """Steps 1-6 above for a resolved config."""
    return measure_interleaved([config], [0] * config.repeats, progress=progress)[0]


def measure_interleaved(configs: list[ExperimentConfig], order: list[int], *, settle: list[int] | None = None,
                        progress: bool | Progress = False) -> list[ExperimentResult]:
    """Steps 1-6 for several configs in one session: every model loaded and warmed up first,
    then one measurement window per entry of ``order`` (an index into ``configs``), so that
    what drifts over a session (temperature, clocks, a neighbour) falls on all of them alike.
    ``settle``: whole windows run just before them, in that order, and not measured (an A/B's
    settling pair: the first window after the warm-ups reads high on some machines). They share
    the device and the meter; one result per config, in the order given. ``progress``: say on
    stderr what is happening (core/progress.py), or a Progress that says it elsewhere."""
    for config in configs:
        load = config.openai.load if config.backend == "openai" else None
        if load is not None and len(load.rates) > 1:
            raise ConfigError(f"openai.load.rates: {len(load.rates)} rates are a ramp of load points, one result "
                              "each: run it with llem run FILE or pytest, or give one rate here")
    intensity = carbon_intensity(configs[0].energy)  # a config error, before anything is opened
    plans = _preflight_all(configs)
    meter = plans[0].meter
    started = datetime.now(timezone.utc)
    backends: list[Backend] = []
    frozen = False
    say = progress if isinstance(progress, Progress) else Progress(progress)
    timeline = TimelineRecorder(meter, configs[0].energy.sample_interval_ms / 1000)
    try:
        timeline.start()
        backends = [get_backend(config.backend) for config in configs]
        frozen = _freeze_gc()  # the backends' imports are done: what they made is frozen
        sessions = [_Session(config, plan, backend, owner, named=len(configs) > 1)
                    for owner, (config, plan, backend) in enumerate(zip(configs, plans, backends))]
        first = configs[0]
        baseline_w = _idle_baseline(meter, first, plans[0].where, timeline, say)
        for session in sessions:
            session.load_and_warm_up(say, timeline)
        for which in settle or []:
            sessions[which].settle(say, timeline)
        jitter = random.Random(first.random_seed)
        for position, which in enumerate(order):
            if position:
                time.sleep(jitter.uniform(0, MAX_REPEAT_JITTER_S))
            sessions[which].measure_window(meter, baseline_w, say, of=order.count(which), timeline=timeline)
        timeline.stop()
        environments = [snapshot({**session.backend.environment(), "auto_precision": session.auto_precision})
                        for session in sessions]
    finally:
        timeline.stop()
        meter.close()
        for backend in backends:
            backend.unload()
        if frozen:
            gc.unfreeze()
    return [session.result(started, environment, intensity, timeline)
            for session, environment in zip(sessions, environments)]


def _freeze_gc() -> bool:
    """Move every object alive now (torch's and transformers' modules, mostly) out of the garbage
    collector's sight until the session ends: the full collections that loading a model triggers,
    and the one at unload, then scan only what the session made (about 1 s of a small CPU run,
    and no collection pausing a window for long). A collection first, so that no garbage is
    frozen; the caller unfreezes after the unload, so an API caller's objects are collected
    again afterwards. At exit everything is frozen (an atexit hook): the interpreter's last full
    collection has nothing to free that the process's end does not. Not done when something
    else has frozen objects (a pre-fork server: unfreezing would undo its freeze), nor with
    LLEM_GC_FREEZE=0. True when it froze."""
    if os.environ.get(GC_FREEZE_ENV) == "0" or gc.get_freeze_count():
        return False
    gc.collect()
    gc.freeze()
    atexit.unregister(gc.freeze)  # registered once, however many sessions
    atexit.register(gc.freeze)
    return True


def _idle_baseline(meter: EnergyMeter, config: ExperimentConfig, device: str,
                   timeline: TimelineRecorder, say: Progress) -> float | None:
    """Idle power before any model loads (cached per meter and device); a baseline phase on the
    timeline when it is measured now."""
    if not config.baseline.enabled or meter.source in ("none", "cpu_estimate"):
        return None
    key = f"{meter.source}:{device}"
    cached = cached_idle_power_w(key, config.baseline.cache_ttl_seconds)
    if cached is not None:
        return cached
    timeline.pause()
    start = time.perf_counter()
    with say.phase(f"idle baseline on {device} ({config.baseline.duration_seconds:g} s)"):
        watts, reading = measure_idle_power(meter, key, config.baseline.duration_seconds)
    timeline.add_phase("baseline", start, time.perf_counter())
    timeline.resume(reading.timeline)
    return watts


def _preflight_all(configs: list[ExperimentConfig]) -> list[Plan]:
    """Every config's pre-flight; they must run on one device with the same energy and idle
    baseline settings, since the first one's meter measures them all (the others' meters are
    closed). Nothing is left open when one fails."""
    plans: list[Plan] = []
    try:
        for config in configs:
            plans.append(preflight(config))
        if any(config.energy != configs[0].energy or config.baseline != configs[0].baseline for config in configs):
            raise PreFlightError("configs measured together share one meter: their energy.* and baseline.* settings "
                                 f"must be the same ({', '.join(c.name or c.model for c in configs)})")
        devices = {plan.where for plan in plans}
        if len(devices) > 1:
            raise PreFlightError(f"configs measured together must run on one device; these run on "
                                 f"{', '.join(sorted(devices))} ({', '.join(c.name or c.model for c in configs)})")
        if len(configs) > 1:
            _check_vram_together(configs, plans[0])
    except BaseException:
        for plan in plans:
            plan.meter.close()
        raise
    for plan in plans[1:]:
        plan.meter.close()
    return plans


def _check_vram_together(configs: list[ExperimentConfig], plan: Plan) -> None:
    """Configs measured together are all loaded at once: their VRAM estimates must fit together
    (on the device, or on the GPUs a spread model is on)."""
    from llenergymeasure.energy.hardware import cuda_index

    index = cuda_index(plan.device)
    estimates = [estimate_vram(config) for config in configs]
    if index is None or None in estimates:
        return
    if plan.gpus:
        from llenergymeasure.energy.sources import nvml_status

        memory = sum(gpu.memory_gb for gpu in nvml_status()[1] if gpu.uuid in plan.gpus)
    else:
        import torch

        memory = torch.cuda.get_device_properties(index).total_memory / 1e9
    total = sum(e.total_gb for e in estimates)
    if total > memory:
        raise PreFlightError(f"VRAM: the configs measured together are loaded at once: their estimates add up to "
                             f"{total:.1f} GB but {plan.where} has {memory:.1f} GB; measure them apart or make them "
                             "smaller")


class _Session:
    """One config's part of a measurement session: its backend, batches and windows so far.
    ``owner`` is its index among the session's configs (its phases on the timeline); ``named``:
    its progress lines name it (several configs in one session). ``config`` is what runs:
    ``precision: auto`` resolved for the plan's device (``auto_precision``), so the backend loads in
    it and the result records it (a baseline then compares like with like)."""

    def __init__(self, config: ExperimentConfig, plan: Plan, backend: Backend, owner: int = 0, *,
                 named: bool = False) -> None:
        self.auto_precision = plan.precision if config.precision == "auto" else None
        if self.auto_precision:
            config = config.model_copy(update={"precision": self.auto_precision})
        self.config, self.plan, self.backend, self.owner = config, plan, backend, owner
        self.name = f" ({config.name or config.model})" if named else ""
        self.batches: list[Any] = []
        self.repeats: list[RepeatResult] = []
        self.readings: list[EnergyReading] = []
        self.notes: list[tuple[str, str]] = []  # warnings of the prefill windows

    def load_and_warm_up(self, say: Progress, timeline: TimelineRecorder) -> None:
        with timeline.phase("load", owner=self.owner), say.phase(_load_label(self.config, self.plan)):
            self.backend.load(self.config, self.plan.device, self.plan.device_map)
            self.batches = self.backend.prepare(self.plan.prompts)
        warmup = self.batches[: self.config.warmup.n_warmup] if self.config.warmup.enabled else []
        if warmup:
            with timeline.phase("warmup", owner=self.owner), \
                    say.phase(f"warmup{self.name}", len(warmup), batches=True) as bar:
                self.backend.run(warmup, bar)

    def settle(self, say: Progress, timeline: TimelineRecorder) -> None:
        """One whole window's work, not measured (a warm-up phase on the timeline)."""
        with timeline.phase("warmup", owner=self.owner), \
                say.phase(f"settling window{self.name}", len(self.batches), batches=True) as bar:
            self.backend.run(self.batches, bar)

    def measure_window(self, meter: EnergyMeter, baseline_w: float | None, say: Progress, of: int,
                       timeline: TimelineRecorder) -> None:
        if self.config.backend == "openai" and self.config.openai.load is not None:
            self._measure_load_point(meter, baseline_w, say, of, timeline)
            return
        index = len(self.repeats)
        label = f"window {index + 1}/{of}{self.name}"
        timeline.pause()  # the window's own sampler is the only one while it is open
        with say.phase(label, len(self.batches), batches=True) as bar:
            outputs, reading, duration, start = _window(self.backend, meter, self.batches, bar)
        timeline.resume(reading.timeline)
        timeline.add_phase("window", start, start + duration, repeat=index, owner=self.owner)
        peak_memory_mb = self.backend.peak_memory_mb()  # of the main window alone
        prefill_j = self._prefill_energy(meter, reading, index, of, duration, say, timeline)
        self.readings.append(reading)
        self.repeats.append(repeat_result(index, outputs, reading, duration, len(self.plan.prompts),
                                          peak_memory_mb, baseline_w, prefill_energy_j=prefill_j))

    def _measure_load_point(self, meter: EnergyMeter, baseline_w: float | None, say: Progress, of: int,
                            timeline: TimelineRecorder) -> None:
        """One window of a load point: requests at its rate until its steady window is served; every
        number is of the steady window (serving/point.py), which the timeline marks."""
        from llenergymeasure.config.models import rate_label
        from llenergymeasure.serving.point import point_numbers

        index = len(self.repeats)
        load = self.config.openai.load
        assert load is not None
        rate = rate_label(load.rates[0])
        pace = f"closed loop of {self.config.openai.concurrency}" if rate == "inf" else f"{rate} requests/s"
        label = f"load point {pace}, {load.duration_s:g} s steady, window {index + 1}/{of}{self.name}"
        timeline.pause()
        with say.phase(label, batches=True, unit="request") as bar:
            run, reading, duration, start = _window(self.backend, meter, self.batches, bar,
                                                    run=self.backend.run_load)  # type: ignore[attr-defined]
        timeline.resume(reading.timeline)
        timeline.add_phase("window", start, start + duration, repeat=index, owner=self.owner)
        numbers = point_numbers(self.config, run, reading, start, start + duration)
        timeline.add_phase("steady", numbers.window.start, numbers.window.end, repeat=index, owner=self.owner)
        self.notes += [(code, f"load point {rate}: {message}") for code, message in numbers.warnings]
        self.readings.append(reading)
        self.repeats.append(RepeatResult(
            index=index, n_prompts=numbers.metrics["n_prompts"], input_tokens=numbers.metrics["input_tokens"],
            output_tokens=numbers.metrics["output_tokens"], latencies_s=numbers.metrics["latencies_s"],
            ttfts_s=numbers.metrics["ttfts_s"], devices=[vars(device) for device in reading.devices],
            timeline={name: downsample(samples, TIMELINE_POINTS) for name, samples in reading.timeline.items()},
            metrics=compute_metrics(**numbers.metrics, baseline_power_w=baseline_w, peak_memory_mb=None),
            load_point=numbers.load_point))

    def _prefill_energy(self, meter: EnergyMeter, main: EnergyReading, index: int, of: int, window_s: float,
                        say: Progress, timeline: TimelineRecorder) -> float | None:
        """The energy of one prefill pass over the batches, from a prefill window after the main
        one; None (with a note saying why, where one is due) when it cannot be told apart."""
        run_prefill = getattr(self.backend, "run_prefill", None)
        if run_prefill is None or meter.source == "none" or main.energy_j is None:
            return None
        min_s = min(PREFILL_SENSOR_UPDATES * update_period_s(meter), window_s)
        timeline.pause()
        with say.phase(f"prefill window {index + 1}/{of}{self.name}", batches=True) as bar:
            passes, reading, duration, start = _prefill_window(run_prefill, self.backend.synchronize, meter,
                                                               self.batches, min_s, bar)
        timeline.resume(reading.timeline)
        timeline.add_phase("prefill", start, start + duration, repeat=index, owner=self.owner)
        where = f"the prefill window after repeat {index + 1}"
        why = None
        if reading.energy_j is None:
            why = reading.unavailable_reason or "its meter measured nothing"
        elif reading.suspect:
            why = f"its energy is suspect ({'; '.join(suspect_reasons(reading.warnings)) or 'see the warnings'})"
        elif reading.energy_j / passes > main.energy_j:
            why = (f"one prefill pass measured {reading.energy_j / passes:.4g} J, more than the whole window's "
                   f"{main.energy_j:.4g} J: the decode energy is below what the meter resolves")
        if why is not None:
            self.notes.append(("prefill_unmeasured", f"prefill and decode energy not measured in {where}: {why}"))
            return None
        known = set(main.warnings)  # the meter's standing warnings (persistence, estimate) are said once
        self.notes += [(f"prefill_{code}", f"{where}: {message}") for code, message in reading.warnings
                       if (code, message) not in known]
        return reading.energy_j / passes

    def result(self, started: datetime, environment: Any, intensity: tuple[float, str] | None,
               timeline: TimelineRecorder | None = None) -> ExperimentResult:
        config = self.config
        notes = list(self.notes)
        if timeline is not None and timeline.error is not None:
            notes.append(("timeline_incomplete", (f"the session timeline's sampler stopped early ({timeline.error}); "
                                                  "from there on it holds only the windows' own samples (their "
                                                  "energy is unaffected)")))
        result = result_from_windows(
            self.repeats, self.readings,
            experiment_id=make_experiment_id(config.name or Path(config.model).name, config.config_hash(), started),
            name=config.name or config.model, config=config.model_dump(mode="json"), config_hash=config.config_hash(),
            started=started, environment=environment, warnings=self.plan.warnings, intensity=intensity,
            later_warnings=notes,
        )
        if timeline is not None:
            result.timeline = timeline.timeline(self.owner, TIMELINE_POINTS)  # type: ignore[assignment]
            result.full_session_timeline = timeline.timeline(self.owner)  # type: ignore[assignment]
        return result


def result_from_windows(repeats: list[RepeatResult], readings: list[EnergyReading], *, experiment_id: str, name: str,
                        config: dict[str, Any], config_hash: str, started: datetime, environment: Any,
                        warnings: list[tuple[str, str]], intensity: tuple[float, str] | None,
                        later_warnings: list[tuple[str, str]] | None = None) -> ExperimentResult:
    """The result of measured windows (a repeat and its reading each): the medians and spread,
    how the energy was obtained, every warning (``warnings``: those known before measuring;
    ``later_warnings``: about what was measured beside the windows, after theirs)."""
    result = ExperimentResult.from_repeats(
        repeats,
        experiment_id=experiment_id,
        name=name,
        config=config,
        config_hash=config_hash,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        environment=environment,
        energy_source=readings[0].source,
        estimated=readings[0].estimated,
        energy_suspect=any(reading.suspect for reading in readings),
        energy_unavailable_reason=next((r.unavailable_reason for r in readings if r.unavailable_reason), None),
        measurement_warnings=_warnings(warnings, readings, repeats, later_warnings or []),
        carbon_intensity_g_per_kwh=intensity[0] if intensity else None,
        carbon_intensity_source=intensity[1] if intensity else None,
    )
    result.co2_g = co2_grams(result.metrics.energy_j, result.carbon_intensity_g_per_kwh)
    result.full_timeline = [reading.timeline for reading in readings]
    return result


def _window(
    backend: Backend, meter: EnergyMeter, batches: list[Any], bar: Any, run: Callable[[list[Any], Any], Any] | None = None
) -> tuple[Any, EnergyReading, float, float]:
    """One measurement window over all batches: only inference happens between start and stop.
    (outputs, reading, duration, when it opened as ``time.perf_counter()``). ``run``: what runs
    them, when not ``backend.run`` (a load point's ``run_load``)."""
    backend.reset_peak_memory()
    with open_window(meter, sync=backend.synchronize) as window:
        start = time.perf_counter()
        outputs = (run or backend.run)(batches, bar)
    assert window.reading is not None and window.duration_s is not None
    return outputs, window.reading, window.duration_s, start


def _prefill_window(run_prefill: Callable[[list[Any], Any], Any], sync: Callable[[], None], meter: EnergyMeter,
                    batches: list[Any], min_s: float, bar: Any) -> tuple[int, EnergyReading, float, float]:
    """One window of prefill passes over ``batches``, repeated until it has lasted ``min_s``
    (MAX_PREFILL_PASSES at most): (passes, reading, duration, when it opened)."""
    passes = 0
    with open_window(meter, sync=sync) as window:
        start = time.perf_counter()
        while True:
            run_prefill(batches, bar)  # synchronizes after each batch: the clock below sees the work done
            passes += 1
            if time.perf_counter() - start >= min_s or passes >= MAX_PREFILL_PASSES:
                break
    assert window.reading is not None and window.duration_s is not None
    return passes, window.reading, window.duration_s, start


def repeat_result(
    index: int,
    outputs: list[BatchOutput],
    reading: EnergyReading,
    duration: float,
    n_prompts: int,
    peak_memory_mb: float | None,
    baseline_w: float | None,
    *,
    prefill_energy_j: float | None = None,
) -> RepeatResult:
    """One window's numbers: what ``outputs`` counted, over ``duration``, with ``reading``'s energy
    (and ``prefill_energy_j``, one prefill pass over the same prompts, where it was measured)."""
    latencies = [o.latency_s for o in outputs]
    ttfts = [o.ttft_s for o in outputs if o.ttft_s is not None]
    itls = [gap for o in outputs for gap in o.itls_s]
    output_tokens = sum(o.output_tokens for o in outputs)
    input_tokens = sum(o.input_tokens for o in outputs)
    return RepeatResult(
        index=index,
        n_prompts=n_prompts,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latencies_s=latencies,
        ttfts_s=ttfts,
        devices=[vars(device) for device in reading.devices],
        timeline={name: downsample(samples, TIMELINE_POINTS) for name, samples in reading.timeline.items()},
        metrics=compute_metrics(
            duration_s=duration,
            output_tokens=output_tokens,
            n_prompts=n_prompts,
            latencies_s=latencies,
            ttfts_s=ttfts,
            itls_s=itls,
            energy_j=reading.energy_j,
            gpu_energy_j=reading.gpu_energy_j,
            cpu_energy_j=reading.cpu_energy_j,
            baseline_power_w=baseline_w,
            peak_memory_mb=peak_memory_mb,
            input_tokens=input_tokens,
            prefill_energy_j=prefill_energy_j,
        ),
    )


def _warnings(known: list[tuple[str, str]], readings: list[EnergyReading],
              repeats: list[RepeatResult], later: list[tuple[str, str]]) -> list[MeasurementWarning]:
    seen: dict[tuple[str, str], None] = {}
    for code, message in known:
        seen[(code, message)] = None
    for reading in readings:
        if reading.unavailable_reason:
            seen[("energy_unavailable", f"energy not measured: {reading.unavailable_reason}")] = None
        for code, message in reading.warnings:
            seen[(code, message)] = None
    for code, message in later:
        seen[(code, message)] = None
    values = [r.metrics.joules_per_token for r in repeats]
    if None not in values:
        seen.update(dict.fromkeys(spread_warnings(values)))
    return [MeasurementWarning(code=code, message=message) for code, message in seen]


def _load_label(config: ExperimentConfig, plan: Plan) -> str:
    """What the load phase is called in progress lines."""
    if config.backend == "openai":
        return f"preparing requests to {config.openai.base_url} for {config.model}"
    return f"loading {config.model} on {plan.where}"
