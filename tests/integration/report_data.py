"""Real inputs for the ``llem report`` tests, measured once per test session (per xdist worker).

- ``results``: a directory of two results of ``llem run`` on the tiny model (CPU estimate), a
  study swept over ``pytorch.batch_size`` whose name is hostile HTML.
- ``session``: a ``pytest --llem-json`` file whose item regressed against ``baseline``, the file
  an earlier session saved. Both sessions measure the fake GPU of the plugin tests (the hardware
  seam): exactly 1 J, then 2 J per window, so the verdict is "regressed" whatever the machine's
  load, and the results carry a GPU power timeline.
- ``ab``: a directory of the two results of ``llem ab`` (batch 1 as A, batch 4 as B, 5 pairs, the
  CPU estimate, on one thread as in test_ab_cli), and ``ab_stdout``, what it printed: the paired
  verdict the report must show again. Its default gate (joules_per_token:5%) is the report's.

- ``ramp_results``: a directory of the three results of a load ramp (``backend: openai``,
  ``openai.load.rates: [1, 4, inf]`` with ``slo:``), one per load point, built as the runner builds
  them (tests/unit/result_builders) with their ``load_point``, SLO metrics and a session timeline
  whose window holds a "steady" phase: the middle point is the SLO point, the last saturated.

``docs/report.png`` is the screenshot of the report of ``ab``, ``session`` and ``baseline``
(tests/integration/test_report_browser.py writes it there with LLEM_DOCS_SCREENSHOT=docs/report.png).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from llem_helpers import isolated_env_vars, llem_process, result_files

from llenergymeasure.results.metrics import compute_metrics
from llenergymeasure.results.model import RepeatResult, make_experiment_id

REPO = Path(__file__).resolve().parents[2]
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> --> </svg> $x$'

STUDY = """\
name: {name}
model: {model}
dataset: builtin
n: 4
max_input_tokens: 32
max_output_tokens: 16
precision: fp32
repeats: 3
warmup: {{n_warmup: 1}}
baseline: {{enabled: false}}
sweep:
  pytorch.batch_size: [1, 2]
"""

AB_STUDY = """\
name: tiny
model: {model}
dataset: builtin
n: 8
precision: fp32
max_input_tokens: 32
max_output_tokens: 32
warmup: {{n_warmup: 1}}
sweep:
  pytorch.batch_size: [1, 4]
"""
AB_SIDES = ("tiny[batch_size=1]", "tiny[batch_size=4]")

# One prompt at a time, 8 x 32 tokens: windows well above the 0.1 s the NVML meter needs.
METERED = """\
name: metered
model: {model}
dataset: builtin
n: 8
max_input_tokens: 32
max_output_tokens: 32
precision: fp32
repeats: 3
warmup: {{n_warmup: 1}}
baseline: {{enabled: false}}
energy: {{source: nvml}}
pytorch: {{batch_size: 1, device: cpu}}
regression:
  joules_per_token: 10%
"""


@dataclass
class ReportInputs:
    results: Path
    session: Path
    baseline: Path
    ab: Path

    @property
    def result_files(self) -> list[Path]:
        return result_files(self.results)

    @property
    def ab_stdout(self) -> str:
        return (self.ab.parent / "ab.stdout").read_text(encoding="utf-8")

    def ab_row(self) -> dict[str, str]:
        """The joules_per_token row of the table ``llem ab`` printed: change, 95% CI, verdict."""
        for line in self.ab_stdout.splitlines():
            cells = line.split()
            if cells and cells[0] == "joules_per_token" and len(cells) == 6:
                return dict(zip(("metric", "a", "b", "change", "ci", "verdict"), cells))
        raise AssertionError(f"no joules_per_token row in:\n{self.ab_stdout}")


def report_inputs(root: Path, tiny_model: Path) -> ReportInputs:
    """Measure the inputs under ``root``, or find them there from an earlier call."""
    inputs = ReportInputs(root / "results", root / "session" / "session.json", root / "session" / "baseline.json",
                          root / "ab" / "results")
    if (root / "done").exists():
        return inputs
    root.mkdir(parents=True, exist_ok=True)
    env = isolated_env_vars(root)
    env.pop("GITHUB_STEP_SUMMARY", None)

    study = root / "llem_study.yaml"
    study.write_text(STUDY.format(name=json.dumps(HOSTILE), model=tiny_model), encoding="utf-8")
    done = llem_process("run", str(study), "-o", str(inputs.results), env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    assert len(inputs.result_files) == 2, done.stdout

    _sessions(root / "session", tiny_model, env, inputs)
    _ab(root / "ab", tiny_model, env, inputs)
    (root / "done").write_text("")
    return inputs


def _ab(directory: Path, tiny_model: Path, env: dict[str, str], inputs: ReportInputs) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    study = directory / "llem_ab.yaml"
    study.write_text(AB_STUDY.format(model=tiny_model), encoding="utf-8")
    done = llem_process("ab", *(f"{study}::{side}" for side in AB_SIDES), "-o", str(inputs.ab), "-q",
                        env={**env, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: it regressed, which the report shows too
    assert len(result_files(inputs.ab)) == 2, done.stdout + done.stderr
    (directory / "ab.stdout").write_text(done.stdout, encoding="utf-8")


def _sessions(directory: Path, tiny_model: Path, env: dict[str, str], inputs: ReportInputs) -> None:
    sys.path.insert(0, str(REPO))
    try:
        from tests.plugin.conftest import FAKE_METER_PLUGIN
    finally:
        sys.path.remove(str(REPO))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "llem_metered.yaml").write_text(METERED.format(model=tiny_model), encoding="utf-8")
    env = {**env, "PYTHONPATH": f"{REPO}{os.pathsep}{directory}"}
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "CUDA_VISIBLE_DEVICES", "PYTEST_ADDOPTS"):
        env.pop(name, None)

    def session(joules: float, *args: str) -> subprocess.CompletedProcess:
        (directory / "fakemeter.py").write_text(FAKE_METER_PLUGIN.format(joules=joules), encoding="utf-8")
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "fakemeter", "-p", "no:cacheprovider", "-q",
                               "llem_metered.yaml", *args], cwd=directory, env=env, capture_output=True, text=True,
                              timeout=900, stdin=subprocess.DEVNULL, check=False)

    saved = session(1.0, f"--llem-save-baseline={inputs.baseline}")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    regressed = session(2.0, f"--llem-baseline={inputs.baseline}", f"--llem-json={inputs.session}")
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr  # the item regressed: +100%
    assert "regressed" in regressed.stdout


RAMP = "myramp"


@dataclass(frozen=True)
class RampPoint:
    rate: float | str  # as in openai.load.rates
    achieved: float  # requests/s served in the steady window
    in_flight: float
    joules: float  # energy of the steady window
    attainment: float  # share of the steady requests meeting the SLO
    saturation: str | None = None  # why the server did not keep up
    missed: tuple[str, ...] = ()  # what missed the SLO

    @property
    def id(self) -> str:
        return f"{RAMP}[rate={'inf' if self.rate == 'inf' else f'{float(self.rate):g}'}]"


# J/token falls as the server batches more, until it saturates; the SLO holds up to rate=4.
RAMP_POINTS = (
    RampPoint(1.0, achieved=0.98, in_flight=1.3, joules=420.0, attainment=1.0),
    RampPoint(4.0, achieved=3.9, in_flight=5.2, joules=1100.0, attainment=0.97),
    RampPoint("inf", achieved=5.1, in_flight=16.0, joules=1900.0, attainment=0.41,
              saturation="time to first token grew through the window", missed=("ttft_s_p99 3.4 s > 2 s",)),
)
RAMP_STEADY_S = 30.0
RAMP_TOKENS = 64  # per request


def ramp_results(directory: Path) -> list[Path]:
    """The three results of the load ramp ``myramp`` (the module text), saved in ``directory``."""
    from tests.unit.result_builders import STARTED, make_result

    paths = []
    for number, point in enumerate(RAMP_POINTS):
        requests = round(point.achieved * RAMP_STEADY_S)
        tokens = requests * RAMP_TOKENS
        ttft = 0.2 if point.saturation is None else 3.0
        metrics = compute_metrics(duration_s=RAMP_STEADY_S, output_tokens=tokens, n_prompts=requests,
                                  latencies_s=[ttft + 1.0] * requests, ttfts_s=[ttft] * requests,
                                  itls_s=[0.015] * requests, energy_j=point.joules, gpu_energy_j=point.joules,
                                  slo_attainment=point.attainment,
                                  goodput_requests_per_s=point.achieved * point.attainment,
                                  good_tokens=tokens * point.attainment)
        window_s, start, end = RAMP_STEADY_S + 8.0, 3.0, 3.0 + RAMP_STEADY_S
        load_point = {
            "offered_rate": None if point.rate == "inf" else float(point.rate),
            "concurrency": 16 if point.rate == "inf" else None,
            "achieved_rate": point.achieved, "concurrency_mean": point.in_flight,
            "saturated": point.saturation is not None, "saturation": point.saturation,
            "steady_start_s": start, "steady_end_s": end, "window_s": window_s,
            "requests": {"ramp": 3, "steady": requests, "drain": 4, "timed_out": 0},
            "slo_met": not point.missed, "slo_missed": list(point.missed),
        }
        repeat = RepeatResult(index=0, n_prompts=requests, input_tokens=requests * 32, output_tokens=tokens,
                              latencies_s=[ttft + 1.0] * requests, ttfts_s=[ttft] * requests, metrics=metrics,
                              load_point=load_point)
        opened = 2.0  # the window opens after the idle baseline
        power = 80.0 + point.joules / RAMP_STEADY_S  # idle 60 W
        samples = [{"t": t / 2, "power_w": power if opened <= t / 2 <= opened + window_s else 60.0}
                   for t in range(int(2 * (opened + window_s + 2)))]
        timeline = {"devices": {"gpu0": samples},
                    "phases": [{"name": "baseline", "start": 0.0, "end": 1.5, "repeat": None},
                               {"name": "window", "start": opened, "end": opened + window_s, "repeat": 0},
                               {"name": "steady", "start": opened + start, "end": opened + end, "repeat": 0}]}
        config = {"name": point.id, "model": "stub-model", "backend": "openai", "n": 200, "max_output_tokens": 64,
                  "openai": {"base_url": "http://127.0.0.1:8000/v1", "concurrency": 16,
                             "load": {"rates": [point.rate], "until": "all", "duration_s": RAMP_STEADY_S}},
                  "slo": {"ttft_s_p99": 2.0}}
        config_hash = f"{number:x}" * 16
        result = make_result([repeat], name=point.id, config=config, config_hash=config_hash,
                             experiment_id=make_experiment_id(point.id, config_hash, STARTED),
                             energy_source="nvml_counter", timeline=timeline)
        assert result.load_point == load_point
        paths.append(result.save(directory))
    return paths
