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
                              timeout=900, stdin=subprocess.DEVNULL)

    saved = session(1.0, f"--llem-save-baseline={inputs.baseline}")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    regressed = session(2.0, f"--llem-baseline={inputs.baseline}", f"--llem-json={inputs.session}")
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr  # the item regressed: +100%
    assert "regressed" in regressed.stdout
