"""A model spread over GPUs: placement planned by accelerate, measured on exactly those GPUs.

Three fake GPUs at the hardware seam (pynvml); the tiny model's real config; accelerate's own
``infer_auto_device_map`` plans where each module goes. This machine's torch has no CUDA, so
the model is never put on the (fake) GPUs: the run's pre-flight says so, after checking
everything else, and the measurement of the planned GPUs goes through the meter the run would
use. ``tests/gpu`` loads a model spread over real GPUs.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.core.placement import gpus_needed, plan_placement
from llenergymeasure.core.runner import run_experiment
from llenergymeasure.energy import hardware
from llenergymeasure.energy.meters import create_meter
from llenergymeasure.exceptions import ConfigError, PreFlightError
from tests.fakes.pynvml import FakeGpu, FakeNvml

pytestmark = pytest.mark.slow

WATTS = {"GPU-0000-aaaa": 100.0, "GPU-1111-bbbb": 999.0, "GPU-2222-cccc": 300.0}


@pytest.fixture
def three_gpus():
    def install(memory_gb: float = 1.0) -> list[FakeGpu]:
        gpus = [FakeGpu(uuid, counter_mj=lambda t, w=watts: int(t * w * 1000), power_w=lambda t, w=watts: w,
                        memory_gb=memory_gb) for uuid, watts in WATTS.items()]
        hardware.set_pynvml(FakeNvml(gpus))
        return gpus

    yield install
    hardware.set_pynvml(None)


def config(tiny_model, **pytorch):
    return load_experiment_config(cli_overrides={
        "model": str(tiny_model), "dataset": "builtin", "n": 4, "precision": "fp32", "max_output_tokens": 8,
        "energy.source": "nvml", "baseline.enabled": False, **{f"pytorch.{k}": v for k, v in pytorch.items()}},
        user_config_defaults={})


def test_a_model_spread_over_two_of_three_gpus_is_measured_on_exactly_those_two(three_gpus, tiny_model):
    three_gpus()
    spread = config(tiny_model, device_map="auto", gpus=[0, "GPU-2222"])  # an index and a UUID prefix
    problems: list[str] = []
    placement = plan_placement(spread, problems)
    assert problems == [] and placement is not None
    assert [gpu.uuid for gpu in placement.gpus] == ["GPU-0000-aaaa", "GPU-2222-cccc"]
    assert set(placement.device_map.values()) == {0, 2}  # accelerate balanced it over both
    assert placement.device == "cuda:0" and gpus_needed(spread) == 2

    meter = create_meter(spread.energy, placement.device, gpus=[gpu.uuid for gpu in placement.gpus])
    try:
        meter.start()
        time.sleep(0.5)
        reading = meter.stop()
    finally:
        meter.close()
    by_device = {d.device: d.energy_j for d in reading.devices}
    assert list(by_device) == ["gpu0", "gpu2"]  # the idle 999 W GPU 1 is not counted
    assert reading.energy_j == pytest.approx(sum(by_device.values()), rel=1e-12)
    assert by_device["gpu2"] / by_device["gpu0"] == pytest.approx(3.0, rel=0.05)


def test_a_run_checks_the_gpus_memory_together_and_says_what_else_is_missing(three_gpus, tiny_model):
    three_gpus(memory_gb=0.45)  # the estimate is ~0.4 GB on each GPU (a CUDA context each): it fits
    with pytest.raises(PreFlightError) as fits:
        run_experiment(model=str(tiny_model), **{"dataset": "builtin", "n": 4, "energy.source": "nvml",
                                                 "pytorch.device_map": "auto", "pytorch.gpus": [0, 2],
                                                 "precision": "fp32"})
    problems = fits.value.problems
    assert not any(p.startswith("VRAM") for p in problems), problems
    assert any("torch" in p and "sees no CUDA GPU" in p for p in problems), problems  # this machine's torch

    three_gpus(memory_gb=0.35)
    with pytest.raises(PreFlightError) as too_small:
        run_experiment(model=str(tiny_model), **{"dataset": "builtin", "n": 4, "energy.source": "nvml",
                                                 "pytorch.device_map": "auto", "pytorch.gpus": [0, 2],
                                                 "precision": "fp32"})
    [vram] = [p for p in too_small.value.problems if p.startswith("VRAM")]
    assert "GPU 0 + GPU 2 (2 GPUs together) has 0.7 GB" in vram, vram


def test_an_explicit_map_names_its_gpus_and_a_gpu_that_is_not_there_is_named(three_gpus, tiny_model):
    three_gpus()
    explicit = config(tiny_model, device_map={"transformer.wte": 1, "transformer.wpe": 1, "transformer.h": 2,
                                              "transformer.ln_f": 2, "lm_head": 2})
    problems: list[str] = []
    placement = plan_placement(explicit, problems)
    assert placement is not None and [g.uuid for g in placement.gpus] == ["GPU-1111-bbbb", "GPU-2222-cccc"]
    assert gpus_needed(explicit) == 2

    problems = []
    assert plan_placement(config(tiny_model, device_map="auto", gpus=[0, "GPU-9999-dddd"]), problems) is None
    assert problems == [f"pytorch.gpus: GPU 'GPU-9999-dddd' is not visible to this process (visible: "
                        f"{', '.join(f'{n} ({uuid})' for n, uuid in enumerate(WATTS))})"]


@pytest.mark.parametrize("pytorch, message", [
    ({"device_map": "auto", "device": "cpu"}, "pytorch.device_map chooses the GPUs itself"),
    ({"gpus": [0, 1]}, "set pytorch.device_map: auto to spread it over them"),
    ({"device_map": {"lm_head": 0}, "gpus": [0]}, "not both"),
    ({"device_map": "everywhere"}, "'everywhere' is not a device map; use one of auto, balanced"),
    ({"device_map": {"lm_head": "gpu"}}, "lm_head: 'gpu' is not a place for a module"),
])
def test_placement_config_errors_name_the_key(tiny_model, pytorch, message):
    with pytest.raises(ConfigError) as error:
        config(tiny_model, **pytorch)
    assert message in str(error.value) and "pytorch" in str(error.value)


def test_llem_run_says_a_spread_model_needs_cuda_with_exit_1(tiny_model, tmp_path):
    experiment = tmp_path / "spread.yaml"
    experiment.write_text(f"model: {tiny_model}\ndataset: builtin\nn: 4\nprecision: fp32\n"
                          "pytorch: {device_map: auto}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "llenergymeasure.cli", "run", str(experiment)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pytorch.device_map:" in done.stderr and "Traceback" not in done.stderr


def test_an_explicit_map_in_yaml_keeps_dotted_module_names_whole(tiny_model, tmp_path):
    experiment = tmp_path / "explicit.yaml"
    experiment.write_text(f"model: {tiny_model}\ndataset: builtin\nn: 4\nprecision: fp32\n"
                          "pytorch:\n  device_map: {transformer.h.0: 0, transformer.h.1: 1, lm_head: cpu}\n",
                          encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "llenergymeasure.cli", "run", "--dry-run", "-v", str(experiment)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [line for line in done.stdout.splitlines() if "pytorch.device_map" in line and "{" in line]
    assert "note: pytorch.device_map: no GPU visible here; the placement is checked where it runs" in done.stdout
    assert "'transformer.h.0': 0" in line and "'lm_head': 'cpu'" in line and "explicit.yaml:6" in line, line


def test_the_dry_run_checks_a_spread_model_against_its_gpus_together(three_gpus, tiny_model):
    from llenergymeasure.core.dry_run import dry_run

    spread = config(tiny_model, device_map="auto", gpus=[0, 2])
    three_gpus(memory_gb=0.45)
    assert dry_run(spread, 0.45).problems == []  # not against one GPU's memory
    three_gpus(memory_gb=0.35)
    [problem] = dry_run(spread, 0.35).problems
    assert problem.startswith("VRAM:") and "GPU 0 + GPU 2 (2 GPUs together) has 0.7 GB" in problem
    assert dry_run(config(tiny_model, gpus=["GPU-9999-dddd"]), 0.35).problems[0].startswith(
        "pytorch.gpus: GPU 'GPU-9999-dddd' is not visible")

    hardware.set_pynvml(FakeNvml([]))  # a push-CI machine: no GPU here, so nothing to check it against
    report = dry_run(spread, None)
    assert report.problems == [] and "pytorch.gpus: no GPU visible here" in " ".join(report.notes)
