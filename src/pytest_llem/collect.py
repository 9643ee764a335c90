"""Benchmark files as pytest collectors, their experiments as items.

``LlemFile`` parses and validates the whole file with llenergymeasure's loader at collection;
a config error becomes a collection error whose text is the loader's (file:line, key, the
nearest valid key), without a traceback. Collection reads YAML and nothing else: no model, no
GPU, no network, no torch.

``LlemItem`` is one experiment (a sweep point or an ``experiments:`` entry). Its setup skips
or fails it when the machine lacks what it needs; its run calls the core's ``measure`` (or the
dry-run check) and saves the result where asked, then the file's ``expect:`` gates and, given a
baseline (or a reference to measure beside: ``against:``, ``--llem-against``), its
``regression:`` gates. Failures are short texts: the gate's diff, the regression verdict with
its numbers, or the core's error message; never a traceback of this plugin. Under
``--llem-disable`` an item runs its experiment's work once, unmeasured, as a plain test.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.config.benchmark_file import (
    BenchmarkExperiment,
    BenchmarkFile,
    load_benchmark_file,
)
from llenergymeasure.exceptions import ConfigError, LLEMError
from pytest_llem import needs, progress
from pytest_llem.baselines import locate
from pytest_llem.gating import Judge, LlemFailure, attach, save_result
from pytest_llem.settings import GATING_REPEATS, SETTINGS, Settings
from pytest_llem.workers import LOCK_TIMEOUT_HINT, LockError, measurement_lock


class LlemFile(pytest.File):
    def collect(self) -> list[LlemItem]:
        settings = self.config.stash[SETTINGS]
        try:
            study = load_benchmark_file(self._shown_path(), cli_overrides=settings.overrides,
                                        override_label=settings.overrides_label)
        except ConfigError as exc:
            raise self.CollectError(str(exc)) from None
        unregistered = _unregistered(study.marks, self.config)
        if unregistered:
            raise self.CollectError(
                f"{self._shown_path()}:{study.marks_line}: marks: {', '.join(map(repr, unregistered))} not registered "
                "and --strict-markers is on; add them to 'markers' in your pytest configuration"
            )
        notes = self._references_at(settings.against, study) if settings.against else {}
        for experiment in study.experiments:
            if settings.gating or experiment.reference is not None:
                for config in (experiment.config, experiment.reference):
                    _enough_repeats(config)
        root, key = locate(self.path, self.config)
        items: list[pytest.Item] = []
        self.ramps: dict[str, RampState] = {}
        for index, experiment in enumerate(study.experiments):
            item = LlemItem.from_parent(self, name=experiment.id, experiment=experiment, study=study, index=index)
            item.record.update(root=str(root), baseline_key=f"{key}::{experiment.id}")
            if experiment.id in notes:
                item.record.setdefault("notes", []).append(notes[experiment.id])
            item.add_marker(pytest.mark.llem(**point_keywords(experiment.params)))
            for mark in study.marks:
                item.add_marker(mark)
            if experiment.ramp:  # its points run in order, on one worker (pytest-xdist --dist loadgroup)
                self.ramps.setdefault(experiment.ramp, RampState())
                item.add_marker(pytest.mark.xdist_group(name=f"{self.nodeid}::{experiment.ramp}"))
            items.append(item)
        if any(bound.at == "slo" for bound in study.expect.values()) or study.regression_at_slo:
            for ramp in self.ramps:
                points = [e for e in study.experiments if e.ramp == ramp]
                if not points[0].config.slo:
                    continue
                experiment = slo_experiment(ramp, points)
                item = LlemSloItem.from_parent(self, name=experiment.id, experiment=experiment, study=study,
                                               index=len(items), ramp=ramp)
                item.record.update(root=str(root), baseline_key=f"{key}::{experiment.id}")
                item.add_marker(pytest.mark.xdist_group(name=f"{self.nodeid}::{ramp}"))
                for mark in study.marks:
                    item.add_marker(mark)
                items.append(item)
        return items

    def _references_at(self, ref: str, study: BenchmarkFile) -> dict[str, str]:
        """Make each experiment's config as of git revision ``ref`` its A/B reference (where it
        differs); notes, per experiment id, for those that get none."""
        import subprocess

        try:
            done = subprocess.run(["git", "show", f"{ref}:./{self.path.name}"], cwd=self.path.parent,
                                  capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            return dict.fromkeys((e.id for e in study.experiments), f"--llem-against {ref}: git failed ({exc})")
        if done.returncode != 0:
            why = f"--llem-against {ref}: this file is not in {ref}, so there is nothing to compare with"
            return dict.fromkeys((e.id for e in study.experiments), why)
        settings = self.config.stash[SETTINGS]
        try:
            before = load_benchmark_file(self._shown_path(), cli_overrides=settings.overrides,
                                         override_label=settings.overrides_label, text=done.stdout)
        except ConfigError as exc:
            why = f"--llem-against {ref}: the file at {ref} does not load ({' '.join(str(exc).split())})"
            return dict.fromkeys((e.id for e in study.experiments), why)
        then = {e.id: e.config for e in before.experiments}
        notes = {}
        for experiment in study.experiments:
            reference = then.get(experiment.id)
            _enough_repeats(reference)
            _enough_repeats(experiment.config)  # before comparing: both sides get the same default
            if reference is None:
                notes[experiment.id] = f"--llem-against {ref}: no experiment {experiment.id} at {ref}"
            elif reference.config_hash() == experiment.config.config_hash():
                notes[experiment.id] = f"--llem-against {ref}: unchanged since {ref}, measured alone"
                experiment.reference = None
            else:
                reference.name = f"{experiment.id}@{ref}"
                experiment.reference = reference
        return notes

    def _shown_path(self) -> Path:
        """The path as pytest shows it (relative to where pytest was started), so messages match."""
        try:
            return self.path.relative_to(self.config.invocation_params.dir)
        except ValueError:
            return self.path


def slo_experiment(ramp: str, points: list[BenchmarkExperiment]) -> BenchmarkExperiment:
    """The ramp itself as the experiment its SLO point is judged as: ``<ramp>[slo]``, its config the
    first point's with every rate of the ramp (one identity, whichever point is the SLO point)."""
    config = points[0].config.model_copy(deep=True)
    load = config.openai.load
    assert load is not None
    config.openai.load = load.model_copy(update={"rates": [rate for p in points for rate in p.config.openai.load.rates]})
    config.name = f"{ramp}[slo]"
    return BenchmarkExperiment(config.name, config, {}, points[0].line)


def _enough_repeats(config: Any) -> None:
    """A compared experiment that sets no ``repeats`` gets enough for a verdict."""
    if config is not None:
        config.set_if_default("repeats", GATING_REPEATS, "pytest: enough repeats for a verdict")


def point_keywords(params: dict[str, Any]) -> dict[str, Any]:
    """A sweep point's values as keyword arguments of its item's ``llem`` mark, named as in its id
    (``batch_size``, or ``pytorch_batch_size`` where two short names would collide), so that
    ``-m "llem(precision='fp16', batch_size=8)"`` selects by value. pytest matches strings,
    integers, booleans and None; any other value is given as its id text."""
    shorts = [key.rsplit(".", 1)[-1] for key in params]
    keywords = {}
    for key, short, value in zip(params, shorts, params.values()):
        name = short if shorts.count(short) == 1 else key.replace(".", "_")
        keywords[name] = value if value is None or isinstance(value, (bool, int, str)) else str(value)
    return keywords


def _unregistered(marks: list[str], config: pytest.Config) -> list[str]:
    """The marks pytest would reject (with --strict-markers) without saying which file asked for them."""
    strict = config.getini("strict_markers")  # set by --strict-markers too; None: follow --strict
    if not (config.getini("strict") if strict is None else strict):
        return []
    known = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    return [mark for mark in marks if mark not in known]


class RampState:
    """What the points of one load ramp have measured so far in this session, in order."""

    def __init__(self) -> None:
        self.points: list[tuple[str, Any]] = []  # (point id, its result, or None when it failed to run)
        self.stopped_at: str | None = None  # the saturated point it stopped at (until: saturation)
        self.skipped: list[str] = []


class LlemItem(pytest.Item):
    def __init__(self, *, experiment: BenchmarkExperiment, study: BenchmarkFile, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment = experiment
        self.study = study
        self.record: dict[str, Any] = {
            "nodeid": self.nodeid,
            "experiment": experiment.id,
            "file": self.parent.nodeid,
            "index": index,
            "line": experiment.line,
        }

    @property
    def settings(self) -> Settings:
        return self.config.stash[SETTINGS]

    def _ramp(self) -> RampState | None:
        """The state of the load ramp this item is a point of, or None."""
        ramp = self.experiment.ramp
        return getattr(self.parent, "ramps", {}).get(ramp) if ramp else None

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.experiment.line - 1, self.experiment.id

    def setup(self) -> None:
        """Skip (or with --llem-require-energy fail) what this machine cannot measure; a dry run
        measures nothing, so there it is only noted."""
        machine, config = self.settings.machine, self.experiment.config
        ramp = self._ramp()
        if ramp is not None and ramp.stopped_at and not self.settings.dry_run:
            ramp.skipped.append(self.experiment.id)
            pytest.skip(f"the ramp stopped at {ramp.stopped_at} (saturated; until: saturation)")
        reason = needs.missing(config, machine)
        if self.settings.require_energy:
            reason = reason or needs.unmeasured(config, machine)
        if reason and self.settings.dry_run:
            self.record.setdefault("notes", []).append(f"on this machine: {reason}")
        elif reason and self.settings.require_energy:
            self.record["error"] = reason
            pytest.fail(f"{reason} (--llem-require-energy)", pytrace=False)
        elif reason:
            self.record["error"] = reason
            pytest.skip(reason)

    def runtest(self) -> None:
        if self.settings.dry_run:
            self._dry_run()
        elif self.settings.disable:
            self._run_once()
        else:
            self._measure()

    def _run_once(self) -> None:
        """--llem-disable: the experiment's work once (no warmup, idle baseline or meter), so a
        broken model, dataset or server still fails; no result, gate or baseline."""
        from llenergymeasure.core.runner import measure

        config = self.experiment.config
        once = config.model_copy(update={
            "repeats": 1, "output_dir": None,
            "warmup": config.warmup.model_copy(update={"enabled": False}),
            "baseline": config.baseline.model_copy(update={"enabled": False}),
            "energy": config.energy.model_copy(update={"source": "none"}),
        })
        with self._devices_held():  # unmeasured, this work would still disturb another process's measurement
            measure(once, progress=progress.for_item(self))

    def _devices_held(self) -> Any:
        """The lock of the devices this item's experiment runs on, held while it runs."""
        return measurement_lock(needs.gpus_to_lock(self.experiment.config, self.settings.machine),
                                holder=self.nodeid, timeout=self.settings.lock_timeout, timeout_hint=LOCK_TIMEOUT_HINT,
                                notify=lambda text: progress.say_line(self, text))

    def _dry_run(self) -> None:
        from llenergymeasure.core.dry_run import dry_run

        machine = self.settings.machine
        gpu_gb = machine.gpus[0].memory_gb if machine.gpus else None
        report = dry_run(self.experiment.config, gpu_gb)
        problems, notes = list(report.problems), list(report.notes)
        reference = self.experiment.reference
        if reference is not None:  # measured beside the experiment: pre-flight checks it too
            checked = dry_run(reference, gpu_gb)
            where = f"against ({reference.name})"
            problems += [f"{where}: {problem}" for problem in checked.problems if problem not in report.problems]
            notes += [f"{where}: {note}" for note in checked.notes if note not in report.notes]
        vram = round(report.vram.total_gb, 3) if report.vram else None
        self.record.update(dry_run=True, vram_estimate_gb=vram, notes=[*notes, *self.record.get("notes", [])])
        if vram is not None:
            self.user_properties.append(("vram_estimate_gb", vram))
        if problems:
            raise LlemFailure(problems)

    def _measure(self) -> None:
        config = self.experiment.config
        failures: list[str] = []
        reference = self.experiment.reference
        judge = Judge(self, self.record, self.settings, self.study.regression)

        def measured(confirming: bool = False) -> tuple[Any, Any, str | None]:
            from llenergymeasure.results.regression import CONFIRM_CONFIDENCE

            result, ab_check = self._run(config, CONFIRM_CONFIDENCE if confirming else 0.95)
            return result, ab_check, save_result(result, config.output_dir, failures)

        started = time.perf_counter()
        if progress.enabled(self):
            beside = f", each beside one of {reference.name}" if reference is not None else ""
            progress.say_line(self, f"start: {config.repeats} window{'s' * (config.repeats != 1)}{beside}")
        ramp = self._ramp()
        if ramp is not None:
            ramp.points.append((self.experiment.id, None))  # until it has a result
        with self._devices_held():
            result, ab_check, saved = measured()
            if ramp is not None:
                ramp.points[-1] = (self.experiment.id, result)
                load = config.openai.load
                if result.load_point and result.load_point.get("saturated") and load.until == "saturation":
                    ramp.stopped_at = self.experiment.id
            failures += judge.failures(result, self.study.expect, saved=saved, ab_check=ab_check,
                                       reference=reference.name if reference is not None else None,
                                       remeasure=lambda: measured(confirming=True))
        if progress.enabled(self):
            progress.say_line(self, f"done in {time.perf_counter() - started:.1f} s")
        if failures:
            raise LlemFailure(failures)

    def _run(self, config: Any, confidence: float = 0.95) -> tuple[Any, Any]:
        """(the result, the A/B check when the experiment has a reference to be measured beside)."""
        from llenergymeasure.core.runner import measure

        reference = self.experiment.reference
        if reference is None:
            return measure(config, progress=progress.for_item(self)), None
        from llenergymeasure.core.ab import judge_ab, run_ab
        from llenergymeasure.results.regression import thresholds

        run = run_ab(reference, config, pairs=config.repeats, progress=progress.for_item(self))
        return run.candidate, judge_ab(run, thresholds(self.study.regression, self.settings.fail_on),
                                       confidence=confidence)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (LlemFailure, LLEMError, LockError)):
            text = str(excinfo.value)
            self.record.setdefault("error", text)
            return text
        return super().repr_failure(excinfo, style)

    def annotate(self, report: pytest.TestReport) -> None:
        """Attach this item's record to the report that decides its outcome (it travels under xdist);
        an unmeasured item (--llem-disable) has none."""
        decides = (report.when == "call" or not report.passed) if self.settings.disable else attach(self.record, report)
        if decides and report.skipped and isinstance(report.longrepr, tuple):
            report.longrepr = (str(self.path), self.experiment.line, report.longrepr[2])  # the YAML, not this module


class LlemSloItem(LlemItem):
    """A load ramp at its SLO point (serving/slo.py), judged once its points have run: the file's
    ``expect:`` and ``regression:`` gates written ``at: slo``. Its result is the SLO point's, under
    the ramp's own identity (``experiment``: the ramp with every rate, named ``<ramp>[slo]``), so its
    baseline is J/token at the SLO point session after session, wherever that point falls. It fails
    naming the point and what the next one missed, or that no point met the SLO."""

    def __init__(self, *, ramp: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ramp = ramp

    def runtest(self) -> None:
        from llenergymeasure.results.gates import at_slo_bounds, find_slo_point

        if self.settings.dry_run:
            self.record.update(dry_run=True, notes=["judged at the SLO point once the load points have run"])
            return
        if self.settings.disable:
            pytest.skip("--llem-disable: nothing measured, no SLO point")
        state = self.parent.ramps[self.ramp]  # type: ignore[attr-defined]
        if not any(result is not None for _, result in state.points):
            pytest.skip(f"no load point of {self.ramp} was measured in this session (deselected, failed, or run on "
                        "another worker: use pytest-xdist's --dist loadgroup)")
        found = find_slo_point(state.points, state.skipped)
        gated = [*at_slo_bounds(self.study.expect), *self.study.regression_at_slo]
        if found.result is None:
            raise LlemFailure([f"{metric} at the SLO point: {found.where}" for metric in gated])
        config = self.experiment.config
        result = found.result.model_copy(update={"name": self.experiment.id, "config": config.model_dump(mode="json"),
                                                 "config_hash": config.config_hash()})
        self.record.setdefault("notes", []).append(found.where)
        failures = Judge(self, self.record, self.settings, self.study.regression_at_slo).failures(
            result, at_slo_bounds(self.study.expect))
        if failures:
            raise LlemFailure([found.where, *failures])

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.experiment.line - 1, f"{self.experiment.id}: {self.ramp} at its SLO point"
