"""Broken telemetry, through the commands a user types: ``llem run``, ``llem config`` and pytest.

The fake GPUs are a ``pynvml.py`` put first on the subprocess's PYTHONPATH (the same ``import
pynvml`` seam the real driver is reached through); the RAPL tree is a fake powercap directory.
Everything above the seam runs for real, with the tiny model on the CPU. Whatever the fault,
the command ends with a message and the contract's exit code: never a silent number, never a
traceback, never a hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_helpers import isolated_env_vars
from tests.fakes.pynvml import module_source
from tests.unit.test_energy_cpu import make_powercap

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DRIVER_TIMEOUT_S = "1"

# A GPU's energy needs a window of at least 100 ms (the sensor's update period): 4 batches of 48
# tokens take ~0.85 s on a 2-core runner, ~0.45 s on a fast one, well clear of it everywhere.
EXPERIMENT = """\
model: {model}
dataset: builtin
n: 8
precision: fp32
max_output_tokens: 48
decoder: {{ignore_eos: true}}
pytorch: {{batch_size: 2}}
warmup: {{n_warmup: 1}}
baseline: {{enabled: false}}
energy: {{source: {source}}}
expect:
  joules_per_token: {{max: 1000000}}
"""


def fake_gpu_env(tmp_path: Path, setup: str) -> dict[str, str]:
    """An environment whose ``import pynvml`` is a FakeNvml built by ``setup``."""
    shim = tmp_path / "fake-nvml"
    shim.mkdir(exist_ok=True)
    (shim / "pynvml.py").write_text(module_source(str(REPO), setup), encoding="utf-8")
    env = isolated_env_vars(tmp_path)
    env["PYTHONPATH"] = f"{shim}:{REPO}:{REPO / 'tests' / 'integration'}"
    env["LLEM_DRIVER_TIMEOUT_S"] = DRIVER_TIMEOUT_S
    return env


def experiment(tmp_path: Path, model: Path, source: str = "nvml") -> Path:
    path = tmp_path / "llem_faults.yaml"
    path.write_text(EXPERIMENT.format(model=model, source=source), encoding="utf-8")
    return path


def assert_no_crash(done) -> None:
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "Internal error" not in output, output


# reads of the counter in `llem run`: the listing's probe at pre-flight, the window's start, its end
COUNTER_FAULTS = {
    "backwards": ("[9_000_000, 9_000_000, 1_234]", "the energy counter went backwards during the window"),
    "stuck": ("[7_000]", "read 0 J over"),
    "zero": ("[0]", "read 0 J over"),
    "jump-1e12-J": ("[0, 0, 10**15]", "not trusted: energy suspect"),
}


@pytest.mark.parametrize("fault", list(COUNTER_FAULTS))
def test_a_broken_gpu_counter_never_passes_a_gate(fault, tmp_path, tiny_model, run_llem):
    counter, message = COUNTER_FAULTS[fault]
    env = fake_gpu_env(tmp_path, f"fake = FakeNvml([FakeGpu('GPU-a', counter_mj={counter})])")
    done = run_llem("run", str(experiment(tmp_path, tiny_model)), env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stdout + done.stderr
    assert "PASS" not in done.stdout
    assert_no_crash(done)


def test_a_frozen_rapl_tree_fails_the_gate_instead_of_reporting_zero(tmp_path, tiny_model, run_llem):
    env = isolated_env_vars(tmp_path)
    env["LLEM_POWERCAP_ROOT"] = str(make_powercap(tmp_path / "powercap", 1_000_000, 500_000))
    done = run_llem("run", str(experiment(tmp_path, tiny_model, source="rapl")), env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  joules_per_token not measured (package-0 (rapl), dram (rapl) read 0 J over" in done.stdout
    assert "[energy_zero]" in done.stdout
    assert_no_crash(done)


GPU_FAULTS = {
    "lost-at-start-up": ("fake = FakeNvml([FakeGpu('GPU-a', counter_mj=[0])], lost_at_listing=True)",
                         "NVML could not list the GPUs (GPU is lost)"),
    "lost-mid-window": ("fake = FakeNvml([FakeGpu('GPU-a', counter_mj=[0], fail_counter_after=2)])",
                        "NVML failed while reading the GPU energy counter of GPU 0 (NVIDIA H100 80GB HBM3): GPU is lost"),
    "init-blocks": ("fake = FakeNvml([FakeGpu('GPU-a', counter_mj=[0])], init_hangs=True)",
                    f"NVML did not answer (nvmlInit did not return within {DRIVER_TIMEOUT_S} s)"),
    "counter-blocks": ("fake = FakeNvml([FakeGpu('GPU-a', counter_mj=[0], hang_counter_after=2)])",
                       f"reading the GPU energy counters did not return within {DRIVER_TIMEOUT_S} s"),
}


@pytest.mark.parametrize("fault", list(GPU_FAULTS))
def test_llem_run_on_a_failing_gpu_ends_with_a_clear_error(fault, tmp_path, tiny_model, run_llem):
    setup, message = GPU_FAULTS[fault]
    done = run_llem("run", str(experiment(tmp_path, tiny_model)), env=fake_gpu_env(tmp_path, setup), timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr
    assert_no_crash(done)


@pytest.mark.parametrize("fault", ["lost-at-start-up", "init-blocks"])
def test_llem_config_always_answers(fault, tmp_path, run_llem):
    setup, message = GPU_FAULTS[fault]
    done = run_llem("config", env=fake_gpu_env(tmp_path, setup), timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"nvml           unavailable: {message}" in done.stdout
    assert "cpu_estimate" in done.stdout
    assert_no_crash(done)


def pytest_session(tmp_path: Path, tiny_model: Path, setup: str, *args: str):
    import subprocess
    import sys

    bench = tmp_path / "bench"
    bench.mkdir()
    experiment(bench, tiny_model)
    (bench / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = fake_gpu_env(tmp_path, setup)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=bench, env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def test_pytest_dry_run_with_a_blocked_driver_ends_with_the_reason(tmp_path, tiny_model):
    done = pytest_session(tmp_path, tiny_model, GPU_FAULTS["init-blocks"][0], "--llem-dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "energy sources: nvml unavailable" in done.stdout
    assert "INTERNALERROR" not in done.stdout + done.stderr


def test_a_pytest_item_whose_gpu_is_lost_mid_window_fails_with_the_message(tmp_path, tiny_model):
    done = pytest_session(tmp_path, tiny_model, GPU_FAULTS["lost-mid-window"][0], "-q")
    assert done.returncode == 1, done.stdout + done.stderr
    assert GPU_FAULTS["lost-mid-window"][1] in done.stdout
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout
