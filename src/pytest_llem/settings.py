"""The plugin's settings for one session: command-line options over ini values, read once.

Also holds what the machine offers (GPUs and energy sources), probed through NVML and sysfs
on first use, after an xdist worker has been pinned to its GPU, and never through torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llem.workers import targets_benchmarks

if TYPE_CHECKING:  # imported where used: this module loads in every pytest session
    from llenergymeasure.energy.sources import Gpu, SourceStatus
    from llenergymeasure.results.baselines import Baseline


@dataclass(frozen=True)
class Machine:
    nvml: SourceStatus
    rapl: SourceStatus
    gpus: list[Gpu]
    driver: str | None

    @classmethod
    def probe(cls) -> Machine:
        from llenergymeasure.energy.sources import nvml_status, rapl_status

        nvml, gpus, driver = nvml_status()
        return cls(nvml, rapl_status(), gpus, driver)

    def describe(self) -> str:
        """One line for the report header."""
        sources = [s.name + ("" if s.available else " unavailable") for s in (self.nvml, self.rapl)]
        gpus = ", ".join(f"{g.name} ({g.memory_gb:.0f} GB)" for g in self.gpus) or "none visible"
        return f"energy sources: {', '.join(sources)}, cpu_estimate; GPUs: {gpus}"


@dataclass
class Settings:
    dry_run: bool = False
    output: str | None = None
    repeats: int | None = None
    json_path: str | None = None
    require_energy: bool = False
    patterns: list[str] = field(default_factory=lambda: ["llem_*.yaml", "llem_*.yml"])
    save_baseline: str | None = None  # a path, or "auto": .llem/baselines/<machine>/<time>.json
    baseline: str | None = None  # a path, or "auto": this machine's latest
    fail_on: list[str] = field(default_factory=list)
    require_baseline: bool = False
    markdown: str | None = None
    root: Path = Path(".")  # where .llem/baselines lives: pytest's rootdir
    reaches_benchmarks: bool = False  # the session's arguments name or hold benchmark files
    _baselines: dict[str, tuple[Baseline | None, str | None]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        from llenergymeasure.results.compare import Threshold

        repeats = config.getoption("llem_repeats")
        if repeats is None and config.getini("llem_repeats"):
            try:
                repeats = int(config.getini("llem_repeats"))
            except ValueError:
                raise pytest.UsageError(
                    f"ini llem_repeats = {config.getini('llem_repeats')!r}: expected a whole number of repeats"
                ) from None
        if repeats is not None and repeats < 1:
            raise pytest.UsageError(f"--llem-repeats {repeats}: need at least 1 measurement window")
        require = config.getoption("llem_require_energy")
        fail_on = config.getoption("llem_fail_on") or []
        for text in fail_on:
            try:
                Threshold.parse(text)
            except ValueError as exc:
                raise pytest.UsageError(f"--llem-fail-on {text}: {exc}") from None
        return cls(
            dry_run=config.getoption("llem_dry_run"),
            output=config.getoption("llem_output") or config.getini("llem_output") or None,
            repeats=repeats,
            json_path=config.getoption("llem_json"),
            require_energy=bool(config.getini("llem_require_energy") if require is None else require),
            patterns=list(config.getini("llem_files")),
            save_baseline=config.getoption("llem_save_baseline"),
            baseline=config.getoption("llem_baseline"),
            fail_on=fail_on,
            require_baseline=config.getoption("llem_require_baseline"),
            markdown=config.getoption("llem_markdown"),
            root=config.rootpath,
            reaches_benchmarks=targets_benchmarks(config, config.args),
        )

    @property
    def overrides(self) -> dict[str, Any]:
        """What the options change in every experiment, as config overrides."""
        values = {"repeats": self.repeats, "output_dir": self.output}
        return {key: value for key, value in values.items() if value is not None}

    @property
    def overrides_label(self) -> str:
        """Where ``overrides`` come from, for config errors and ``sources()``."""
        flags = {"repeats": "--llem-repeats", "output_dir": "--llem-output"}
        return "pytest " + "/".join(flags[key] for key in self.overrides)

    @cached_property
    def machine(self) -> Machine:
        return Machine.probe()

    def load_baseline(self, machine_key: str) -> tuple[Baseline | None, str | None]:
        """(the baseline to compare with for machine ``machine_key``, its path), or (None, why there
        is none); read once per process."""
        if machine_key not in self._baselines:
            self._baselines[machine_key] = self._read_baseline(machine_key)
        return self._baselines[machine_key]

    def _read_baseline(self, machine_key: str) -> tuple[Baseline | None, str | None]:
        from llenergymeasure.exceptions import ConfigError
        from llenergymeasure.results.baselines import Baseline, latest

        path = Path(self.baseline) if self.baseline != "auto" else latest(self.root, machine_key)
        if path is None:
            return None, (f"no baseline saved for this machine ({machine_key}) under {self.root}/.llem/baselines; "
                          "save one with --llem-save-baseline")
        try:
            return Baseline.load(path), str(path)
        except ConfigError as exc:
            return None, str(exc)


SETTINGS = pytest.StashKey[Settings]()
