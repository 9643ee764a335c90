"""The plugin's settings for one session: command-line options over ini values, read once.

Options that name an output are checked here, at configure, before anything is measured: a
``--llem-save-baseline`` PATH that is a benchmark file, a test path or a directory (the space
form ``--llem-save-baseline llem_x.yaml`` takes the next argument as its PATH), or an existing
file (a baseline never overwrites one); and any output path that cannot be written (a file
where a directory is wanted, a directory where a file is wanted, no write permission). Each is
a pytest.UsageError naming the option and the path.

Also holds what the machine offers (GPUs and energy sources), probed through NVML and sysfs
on first use, after an xdist worker has been pinned to its GPU, and never through torch.
"""

from __future__ import annotations

import math
import re
import tempfile
from importlib.util import find_spec
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llem.workers import is_benchmark_file, targets_benchmarks

if TYPE_CHECKING:  # imported where used: this module loads in every pytest session
    from llenergymeasure.energy.sources import Gpu, SourceStatus
    from llenergymeasure.results.baselines import Baseline, MachineHistory


DEFAULT_HISTORY = 10
DEFAULT_CONFIRM = 1  # re-measurements a regressed item gets before it fails
GATING_REPEATS = 5  # repeats of an experiment that sets none, when it is compared: enough for a verdict


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
    disable: bool = False  # items and llem_energy tests run once, unmeasured, as plain tests
    ignored: list[str] = field(default_factory=list)  # options --llem-disable leaves without effect
    output: str | None = None
    repeats: int | None = None
    api_key_env: str | None = None  # the server API key's variable, named by the user (files may not choose it)
    json_path: str | None = None
    benchmark_json: str | None = None  # github-action-benchmark's customSmallerIsBetter
    html: str | None = None  # the llem report of the session
    require_energy: bool = False
    patterns: list[str] = field(default_factory=lambda: ["llem_*.yaml", "llem_*.yml"])
    save_baseline: str | None = None  # a path, or "auto": .llem/baselines/<machine>/<time>.json
    baseline: str | None = None  # a path, or "auto": this machine's latest
    fail_on: list[str] = field(default_factory=list)
    require_baseline: bool = False
    markdown: str | None = None
    lock_timeout: float | None = None  # seconds an item waits for a device lock; None: as long as it takes
    history: int = DEFAULT_HISTORY  # sessions of the current segment whose mean is the reference level
    accept: list[str] = field(default_factory=list)  # --llem-accept patterns ("*": every item)
    confirm: int = DEFAULT_CONFIRM  # re-measurements of a regressed item before it fails (0: none)
    inconclusive: str = "warn"  # what an item that could not be judged does: pass, warn or fail
    against: str | None = None  # a git revision whose benchmark files give each item's A/B reference
    root: Path = Path(".")  # rootdir, or the top of its git work tree: .llem/baselines by default
    reaches_benchmarks: bool = False  # the session's arguments name or hold benchmark files
    _baselines: dict[tuple[Path, str], tuple[Baseline | MachineHistory | None, str]] = field(
        default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        fail_on = config.getoption("llem_fail_on") or []
        for text in fail_on:
            from llenergymeasure.results.compare import Threshold  # pydantic: only when the option is given

            try:
                Threshold.parse(text)
            except ValueError as exc:
                raise pytest.UsageError(f"--llem-fail-on {text}: {exc}") from None
        require = config.getoption("llem_require_energy")
        settings = cls(
            dry_run=config.getoption("llem_dry_run"),
            disable=config.getoption("llem_disable"),
            output=config.getoption("llem_output") or config.getini("llem_output") or None,
            repeats=_repeats(config),
            api_key_env=_api_key_env(config),
            json_path=config.getoption("llem_json"),
            benchmark_json=config.getoption("llem_benchmark_json"),
            html=config.getoption("llem_html"),
            require_energy=bool(config.getini("llem_require_energy") if require is None else require),
            patterns=list(config.getini("llem_files")),
            save_baseline=config.getoption("llem_save_baseline"),
            baseline=config.getoption("llem_baseline"),
            fail_on=fail_on,
            require_baseline=config.getoption("llem_require_baseline"),
            markdown=config.getoption("llem_markdown"),
            lock_timeout=_lock_timeout(config),
            history=_history(config),
            accept=_accept(config),
            confirm=_confirm(config),
            inconclusive=_inconclusive(config),
            against=_against(config),
            root=_project_root(config),
            reaches_benchmarks=targets_benchmarks(config, config.args),
        )
        settings.check_disable()
        if not hasattr(config, "workerinput"):  # the controller checked them; it writes the outputs
            settings.check_outputs()
        return settings

    def check_disable(self) -> None:
        """--llem-disable: a dry run with it is a usage error (neither runs the work); the options that
        compare or save a measurement are left without effect (they may come from ``addopts``), and
        the header says which."""
        if not self.disable:
            return
        if self.dry_run:
            raise pytest.UsageError("--llem-disable with --llem-dry-run: --llem-disable runs each benchmark item and "
                                    "llem_energy test once, unmeasured; --llem-dry-run runs nothing; drop one of them")
        wanting = {"--llem-save-baseline": self.save_baseline, "--llem-baseline": self.baseline,
                   "--llem-against": self.against, "--llem-accept": self.accept,
                   "--llem-require-baseline": self.require_baseline, "--llem-require-energy": self.require_energy}
        self.ignored = [option for option, value in wanting.items() if value]
        self.save_baseline = self.baseline = self.against = None
        self.accept, self.require_baseline, self.require_energy = [], False, False

    def check_outputs(self) -> None:
        """UsageError for an output option that could not be written (paths relative to the current
        directory, which is where pytest was started when plugins are configured)."""
        if self.save_baseline not in (None, "auto"):
            _check_baseline_path(self.save_baseline, self.patterns)
        if self.dry_run and self.save_baseline:
            raise pytest.UsageError("--llem-save-baseline with --llem-dry-run: a dry run measures nothing, "
                                    "so there is no baseline to save; drop one of the two")
        if self.accept and self.save_baseline != "auto":
            raise pytest.UsageError("--llem-accept needs --llem-save-baseline (without a PATH): the accepted "
                                    "measurements become the new level in this machine's history, which later "
                                    "runs are judged against; add --llem-save-baseline")
        files = {"--llem-save-baseline": self.save_baseline if self.save_baseline != "auto" else None,
                 "--llem-json": self.json_path, "--llem-markdown": self.markdown,
                 "--llem-benchmark-json": self.benchmark_json, "--llem-html": self.html}
        for option, value in files.items():
            problem = value and _file_problem(Path(value))
            if problem:
                raise pytest.UsageError(f"{option} {value}: {problem}")
        if self.html and find_spec("matplotlib") is None:
            raise pytest.UsageError(f"--llem-html {self.html}: the HTML report needs matplotlib; "
                                    "pip install 'pytest-llem[report]'")
        problem = self.output and _directory_problem(Path(self.output))
        if problem:
            raise pytest.UsageError(f"--llem-output (ini llem_output) {self.output}: {problem}")
        problem = self.save_baseline == "auto" and _directory_problem(self.root / ".llem" / "baselines")
        if problem:
            raise pytest.UsageError(f"--llem-save-baseline (to .llem/baselines under the rootdir): {problem}")

    @property
    def keeps_results(self) -> bool:
        """Whether item records must carry their whole result (for the session JSON or HTML report)."""
        return bool(self.json_path or self.html)

    @property
    def overrides(self) -> dict[str, Any]:
        """What the options change in every experiment, as config overrides."""
        values = {"repeats": self.repeats, "output_dir": self.output, "openai.api_key_env": self.api_key_env}
        return {key: value for key, value in values.items() if value is not None}

    @property
    def overrides_label(self) -> str:
        """Where ``overrides`` come from, for config errors and ``sources()``."""
        flags = {"repeats": "--llem-repeats", "output_dir": "--llem-output", "openai.api_key_env": "--llem-api-key-env"}
        return "pytest " + "/".join(flags[key] for key in self.overrides)

    @cached_property
    def machine(self) -> Machine:
        return Machine.probe()

    @property
    def gating(self) -> bool:
        """Whether items are compared (or saved to be compared later): they then need repeats."""
        return bool(self.baseline or self.save_baseline or self.against)

    def load_reference(self, root: Path, machine_key: str) -> tuple[Baseline | MachineHistory | None, str]:
        """What to compare with for machine ``machine_key`` under ``root`` (the named file, or the
        machine's history, read as far as items need), and where it is; (None, why there is none).
        Opened once per process."""
        from pytest_llem.baselines import read_reference

        if (root, machine_key) not in self._baselines:
            self._baselines[root, machine_key] = read_reference(self, root, machine_key)
        return self._baselines[root, machine_key]


def _api_key_env(config: pytest.Config) -> str | None:
    name = config.getoption("llem_api_key_env")
    if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
        raise pytest.UsageError(f"--llem-api-key-env {name!r}: not an environment variable name "
                                "(letters, digits and _, not starting with a digit)")
    return name


def _project_root(config: pytest.Config) -> Path:
    """Where ``.llem/baselines`` is, as ``baselines.locate`` finds it for files under the rootdir."""
    from llenergymeasure.results.project import project_root

    return project_root(config.rootpath) or (config.inipath.parent if config.inipath else config.rootpath)


def _inconclusive(config: pytest.Config) -> str:
    value = config.getoption("llem_inconclusive") or config.getini("llem_inconclusive") or "warn"
    if value not in ("pass", "warn", "fail"):
        raise pytest.UsageError(f"ini llem_inconclusive = {value!r}: expected pass, warn or fail")
    return value


def _history(config: pytest.Config) -> int:
    text = config.getoption("llem_history") or config.getini("llem_history") or str(DEFAULT_HISTORY)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise pytest.UsageError(f"--llem-history {text!r}: expected a whole number of saved sessions >= 1 "
                                f"(default {DEFAULT_HISTORY})")
    return value


def _accept(config: pytest.Config) -> list[str]:
    """The --llem-accept patterns; a usage error when the space form took a test path as one, or
    for a -k expression pytest cannot parse."""
    from _pytest.mark import expression

    malformed = (SyntaxError, getattr(expression, "ParseError", SyntaxError))  # pytest 9 / pytest 8
    patterns = config.getoption("llem_accept") or []
    for pattern in patterns:
        if pattern != "*" and "::" not in pattern:
            try:
                expression.Expression.compile(pattern)
            except malformed as exc:
                raise pytest.UsageError(f"--llem-accept={pattern}: not a test id or a -k expression ({exc})") from None
    args = list(config.invocation_params.args)
    for flag, value in zip(args, args[1:]):
        if flag == "--llem-accept" and value in patterns and Path(value.split("::")[0]).exists():
            raise pytest.UsageError(
                f"--llem-accept took {value!r} as its PATTERN, and it is also a path pytest would run. Write "
                f"--llem-accept={value} to accept only those items, or put the bare flag after the test paths "
                "(pytest benchmarks/ --llem-save-baseline --llem-accept) to accept every item")
    return patterns


def _confirm(config: pytest.Config) -> int:
    text = config.getoption("llem_confirm")
    where = "--llem-confirm"
    if text is None:
        text, where = config.getini("llem_confirm") or str(DEFAULT_CONFIRM), "ini llem_confirm ="
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise pytest.UsageError(f"{where} {text!r}: expected a whole number of re-measurements >= 0 (default "
                                f"{DEFAULT_CONFIRM}; 0: a regressed item fails without being measured again)")
    return value


def _against(config: pytest.Config) -> str | None:
    """The git revision of --llem-against, checked to exist before anything is collected."""
    import subprocess

    ref = config.getoption("llem_against")
    if not ref:
        return None
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], capture_output=True,
                              text=True, timeout=30, cwd=config.invocation_params.dir)
    except (OSError, subprocess.SubprocessError) as exc:
        raise pytest.UsageError(f"--llem-against {ref}: git is needed to read the files at a revision ({exc})") from None
    if done.returncode != 0:
        raise pytest.UsageError(f"--llem-against {ref}: not a git revision of {config.invocation_params.dir} "
                                "(a branch, tag or commit, e.g. origin/main)")
    return ref


MAX_REPEATS = 1000  # config/models.py ExperimentConfig.repeats (not imported here: pydantic stays unloaded)


def _repeats(config: pytest.Config) -> int | None:
    repeats = config.getoption("llem_repeats")
    if repeats is None and config.getini("llem_repeats"):
        try:
            repeats = int(config.getini("llem_repeats"))
        except ValueError:
            raise pytest.UsageError(
                f"ini llem_repeats = {config.getini('llem_repeats')!r}: expected a whole number of repeats"
            ) from None
    if repeats is not None and not 1 <= repeats <= MAX_REPEATS:
        raise pytest.UsageError(f"--llem-repeats {repeats}: a whole number of measurement windows, 1 to "
                                f"{MAX_REPEATS} (as a benchmark file's repeats)")
    return repeats


def _lock_timeout(config: pytest.Config) -> float | None:
    """Seconds from --llem-lock-timeout, else ini llem_lock_timeout; None (no option): wait as long as it takes."""
    text = config.getoption("llem_lock_timeout")
    where = "--llem-lock-timeout"
    if text is None:
        text, where = config.getini("llem_lock_timeout"), "ini llem_lock_timeout ="
    if text in (None, ""):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise pytest.UsageError(f"{where} {text!r}: expected a number of seconds >= 0 "
                                "(how long an item waits for a busy device before it fails)")
    return seconds


def _check_baseline_path(value: str, patterns: list[str]) -> None:
    """UsageError when the PATH of ``--llem-save-baseline`` is not a new baseline file: most often the
    space form (``--llem-save-baseline llem_x.yaml``) has taken the next argument as its PATH."""
    why = _not_a_new_baseline(value, Path(value.split("::")[0]), patterns)
    if why:
        raise pytest.UsageError(
            f"--llem-save-baseline took {value!r} as its PATH, but it {why}. Write an explicit PATH as "
            "--llem-save-baseline=PATH.json (a new file), or put the bare flag after the test paths "
            "(pytest benchmarks/ --llem-save-baseline) to save under .llem/baselines/<machine>/"
        )


def _not_a_new_baseline(value: str, path: Path, patterns: list[str]) -> str | None:
    if "::" in value:
        return "is a test id"
    if path.is_dir():
        return "is a directory"
    if is_benchmark_file(path.name, patterns):
        return "is a benchmark file" if path.exists() else "is named like a benchmark file (ini llem_files)"
    if path.suffix in (".yaml", ".yml", ".py"):
        return f"is a {path.suffix} file, and a baseline is JSON"
    if path.exists():
        return "already exists, and a baseline never overwrites a file"
    return None


def _file_problem(path: Path) -> str | None:
    """Why a file could not be written at ``path`` (as given: relative to the current directory),
    or None; creates nothing."""
    if path.is_dir():
        return "is a directory; give a file path"
    return _directory_problem(path.parent)


def _directory_problem(path: Path) -> str | None:
    """Why files could not be written into directory ``path`` (created if missing), or None."""
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a directory"
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{path} cannot be created: {ancestor} is a file, not a directory"
    try:
        with tempfile.TemporaryFile(dir=ancestor):  # a real write: a read-only mount fails here, even for root
            pass
    except OSError as exc:
        return f"cannot write in {ancestor}{'' if ancestor == path else f' (to create {path})'}: {exc.strerror or exc}"
    return None


SETTINGS = pytest.StashKey[Settings]()
