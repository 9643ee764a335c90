"""pytest_llem: ``llem_*.yaml`` benchmark files as pytest items, gated on joules per token.

Registered through the ``pytest11`` entry point as ``llem``; ``-p no:llem`` turns it off.
The hooks here are thin: collection lives in ``collect``, what an item needs from the machine
in ``needs``, xdist worker pinning and device locks in ``workers``, summaries in ``report``.
Nothing in this package measures anything: items call llenergymeasure's run core.

Options (command line, or the ini key in brackets):

    --llem-dry-run          validate and estimate VRAM; load no model, measure nothing
    --llem-disable          run items and llem_energy tests once, unmeasured, as plain tests
    --llem-output DIR       a result JSON per item                               [llem_output]
    --llem-repeats N        measurement windows per experiment                   [llem_repeats]
    --llem-api-key-env NAME the environment variable holding a server's API key (a variable a
                            benchmark file names is read only when named here too)
    --llem-json PATH        every item's result in one JSON file
    --llem-require-energy   fail, instead of skip or estimate, without a measured energy source
                                                                                 [llem_require_energy]
    --llem-save-baseline    save every passed item with measured, unsuspected energy as a baseline,
                            to .llem/baselines/<machine>/<time>.json
    --llem-save-baseline=PATH     ... to PATH, a new .json file (the "=" form: the space form would
                                  take a test path; a benchmark file, test path, directory or existing
                                  file as PATH is a usage error)
    --llem-baseline PATH|auto     compare each item with a baseline file, or this machine's history
    --llem-history K              sessions of the history's current segment that make its level
                                  (default 10)                                         [llem_history]
    --llem-accept[=PATTERN]       with --llem-save-baseline: the session's measurements of every item
                                  (or those matching PATTERN: a test id or a -k expression) become
                                  the new level of their history; repeatable
    --llem-confirm N              re-measurements of a regressed item, in the session, before it
                                  fails (default 1; 0: none)                           [llem_confirm]
    --llem-inconclusive pass|warn|fail   what an item that cannot be judged does (warn)  [llem_inconclusive]
    --llem-against REF            A/B: each item beside its config at git REF, in one session
    --llem-fail-on METRIC:THRESHOLD   a regression gate for every item (repeatable)
    --llem-require-baseline       fail, instead of warn, when an item could not be compared
    --llem-markdown PATH          the results table as markdown (and $GITHUB_STEP_SUMMARY)
    --llem-benchmark-json PATH    J/token and Wh/1000 queries in github-action-benchmark's format
    --llem-html PATH              the session as a self-contained HTML report (llem report)
    --llem-lock-timeout SECONDS   fail an item that waited this long for a busy device
                                  (default: wait as long as it takes)           [llem_lock_timeout]
    ini llem_files          file patterns to collect (default: llem_*.yaml llem_*.yml)

While a measuring item runs it says so on stderr (start, each phase, its end, with durations;
pytest_llem.progress); ``-q`` silences that.

An output path that cannot be written is a usage error at start-up, and so is one that names a
file llem must not replace: an input of the session, or an existing file that is not that output
as llem writes it (a result, a baseline, anyone else's file). An output that still fails at the
end of the session (a full disk) fails the session (exit 1, like a failed item); Ctrl-C or SIGTERM
while outputs are written leaves no partial or temp file and exits 130 or 143.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llem import workers
from pytest_llem.report import LlemReporter, check_replaced_outputs
from pytest_llem.settings import SETTINGS, Settings

if TYPE_CHECKING:
    from pytest_llem.collect import LlemFile
    from pytest_llem.fixture import EnergyFixture

# This module is loaded by every pytest session of the environment, so the rest is imported only
# when needed: pytest_llem.collect (and with it the config loader and pydantic) once a benchmark
# file is found, pytest_llem.fixture once a test asks for llem_energy or sets llem gates.
COLLECT = "pytest_llem.collect"
FIXTURE = "pytest_llem.fixture"


@pytest.fixture
def llem_energy(request: pytest.FixtureRequest) -> Generator[EnergyFixture, None, None]:
    """Measure the energy of code in this test (see ``pytest_llem.fixture``)."""
    from pytest_llem.fixture import energy_fixture

    yield from energy_fixture(request)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llem", "llenergymeasure energy benchmarks (llem_*.yaml)")
    group.addoption("--llem-dry-run", action="store_true", default=False,
                    help="Validate every experiment and estimate its VRAM; load no model, measure nothing.")
    group.addoption("--llem-disable", action="store_true", default=False,
                    help="Run each benchmark item and llem_energy test once, unmeasured, as a plain test: no "
                         "windows, gates or baselines (a quick check that the code runs, as pytest-benchmark's "
                         "--benchmark-disable).")
    group.addoption("--llem-output", metavar="DIR", default=None,
                    help="Write each item's result JSON into DIR (ini: llem_output).")
    group.addoption("--llem-repeats", metavar="N", type=int, default=None,
                    help="Measurement windows per experiment, overriding the files (ini: llem_repeats).")
    group.addoption("--llem-api-key-env", metavar="NAME", default=None,
                    help="The environment variable holding an OpenAI-compatible server's API key (default "
                         "OPENAI_API_KEY). A variable a benchmark file names is read only when named here too.")
    group.addoption("--llem-json", metavar="PATH", default=None,
                    help="Write the results of every llem item of the session to PATH.")
    group.addoption("--llem-require-energy", action="store_true", default=None,
                    help="Fail items that would be skipped for want of a GPU or energy source, or whose energy "
                         "would only be estimated (ini: llem_require_energy).")
    group.addoption("--llem-save-baseline", metavar="PATH", nargs="?", const="auto", default=None,
                    help="Save the repeats of every passed item with measured energy as a baseline, to "
                         ".llem/baselines/<machine>/<time>.json under the rootdir; or with "
                         "--llem-save-baseline=PATH to PATH (a new .json file).")
    group.addoption("--llem-baseline", metavar="PATH", default=None,
                    help="Compare each item with this baseline file; 'auto' takes this machine's history "
                         "(its last --llem-history saved sessions).")
    group.addoption("--llem-history", metavar="K", default=None,
                    help="Sessions of the history's current segment whose mean is the level an item is judged "
                         "against with --llem-baseline auto (default 10; ini: llem_history).")
    group.addoption("--llem-accept", metavar="PATTERN", nargs="?", const="*", action="append", default=None,
                    help="With --llem-save-baseline: accept this session's measurements as the new level of each "
                         "item's history (an intended change); --llem-accept=PATTERN for the items matching a test "
                         "id or a -k expression. A regressed item that is accepted passes. Repeatable.")
    group.addoption("--llem-confirm", metavar="N", default=None,
                    help="Re-measure a regressed item N times in the session before it fails; it passes, 'not "
                         "confirmed (noise)', unless every re-measurement regressed too (default 1; 0: fail at "
                         "once; ini: llem_confirm).")
    group.addoption("--llem-inconclusive", choices=("pass", "warn", "fail"), default=None,
                    help="What an item that could not be judged against its baseline does: pass quietly, warn "
                         "(default: a warning and a summary line with what to do), or fail (ini: llem_inconclusive).")
    group.addoption("--llem-against", metavar="REF", default=None,
                    help="Measure each item beside its own config as of git revision REF (read from the benchmark "
                         "file at REF), in one session, and gate the change with its regression: thresholds.")
    group.addoption("--llem-fail-on", metavar="METRIC:THRESHOLD", action="append", default=[],
                    help="Fail an item whose METRIC regressed past THRESHOLD against the baseline "
                         "(e.g. joules_per_token:5%% or joules_per_token:0.01); repeatable; added to each "
                         "file's regression: gates (default joules_per_token:5%%), winning per metric.")
    group.addoption("--llem-require-baseline", action="store_true", default=False,
                    help="Fail items that could not be compared (no baseline, another machine) instead of warning.")
    group.addoption("--llem-markdown", metavar="PATH", default=None,
                    help="Write the results table as markdown to PATH (also appended to $GITHUB_STEP_SUMMARY "
                         "when that is set).")
    group.addoption("--llem-benchmark-json", metavar="PATH", default=None,
                    help="Write J/token and Wh per 1000 queries of every measured item to PATH in "
                         "github-action-benchmark's customSmallerIsBetter format.")
    group.addoption("--llem-html", metavar="PATH", default=None,
                    help="Write the session as a self-contained HTML report to PATH (power timelines, J/token "
                         "with its CI, sweeps, verdicts, warnings; as llem report).")
    group.addoption("--llem-lock-timeout", metavar="SECONDS", default=None,
                    help="Fail an item that waited SECONDS for a device another measurement holds; the "
                         "default waits as long as it takes (ini: llem_lock_timeout).")
    parser.addini("llem_files", type="linelist", default=["llem_*.yaml", "llem_*.yml"],
                  help="Glob patterns of benchmark files collected by pytest_llem.")
    parser.addini("llem_output", type="string", default="", help="Default for --llem-output.")
    parser.addini("llem_repeats", type="string", default="", help="Default for --llem-repeats.")
    parser.addini("llem_require_energy", type="bool", default=False, help="Default for --llem-require-energy.")
    parser.addini("llem_lock_timeout", type="string", default="", help="Default for --llem-lock-timeout.")
    parser.addini("llem_history", type="string", default="", help="Default for --llem-history.")
    parser.addini("llem_inconclusive", type="string", default="", help="Default for --llem-inconclusive.")
    parser.addini("llem_confirm", type="string", default="", help="Default for --llem-confirm.")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` on a benchmark run: one worker per visible GPU (one in all on a CPU-only machine)."""
    return workers.auto_num_workers(config)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llem(expect=None, regression=None, source='auto', devices=None): energy "
                                       "gates of a test that measures with the llem_energy fixture (every item of "
                                       "a llem_*.yaml file has this mark too)")
    config.addinivalue_line("markers", "xdist_group(name): the points of a llem load ramp run in order on one "
                                       "pytest-xdist worker (with --dist loadgroup)")
    settings = Settings.from_config(config)
    if not hasattr(config, "workerinput"):  # the controller writes the outputs
        check_replaced_outputs(settings)
    config.stash[SETTINGS] = settings
    workers.pin_worker_gpus(config, settings.reaches_benchmarks)
    config.pluginmanager.register(LlemReporter(config, settings), "llem-reporter")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> LlemFile | None:
    if not workers.is_benchmark_file(file_path.name, parent.config.stash[SETTINGS].patterns):
        return None
    from pytest_llem.collect import LlemFile

    return LlemFile.from_parent(parent, path=file_path)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if any(mark.args or mark.kwargs for mark in item.iter_markers("llem")):
        from pytest_llem.fixture import check_marker_use

        check_marker_use(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test that measured with ``llem_energy`` and whose body passed is judged by its gates."""
    result = yield
    fixture = sys.modules.get(FIXTURE)  # no test measured before it is imported
    if fixture is not None:
        fixture.judge(item)
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    collect = sys.modules.get(COLLECT)  # no llem item can exist before it is imported
    fixture = sys.modules.get(FIXTURE)
    if collect is not None and isinstance(item, collect.LlemItem):
        item.annotate(outcome.get_result())
    elif fixture is not None:
        fixture.annotate(item, outcome.get_result())
    record = getattr(outcome.get_result(), "llem", None)
    if record is not None and record.get("regression"):
        from pytest_llem.baselines import note_unreadable

        note_unreadable(item, record)
