"""``run_experiment`` on cuda:0 with the tiny GPT-2: the whole protocol, measured by NVML.

One experiment (two repeats, idle baseline on) is run once for the module; each test checks one
promise of the result. A second, deliberately tiny experiment checks that a window shorter than
the sensor can resolve is reported as such, never as a silent 0 J.
"""

from __future__ import annotations

import pytest

from llenergymeasure import run_experiment
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.energy.nvml import SENSOR_PERIOD_S, open_nvml
from tests.gpu.gpu_support import power_limit_w, sampler_threads

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

RUN = {
    "n": 32,
    "dataset": "synthetic",  # exactly max_output_tokens per prompt
    "precision": "fp16",
    "max_input_tokens": 32,
    "max_output_tokens": 64,
    "repeats": 2,
    "pytorch.batch_size": 4,
    "pytorch.device": "cuda:0",
    "energy.source": "nvml",
    "baseline.duration_seconds": 1.0,
}
# Every code the package emits (preflight, nvml, rapl/cpu estimate, runner).
KNOWN_WARNING_CODES = {
    "fp16_on_cpu", "energy_estimated", "energy_unavailable", "sampler_failed", "short_window",
    "few_samples", "throttled", "temperature_drift", "persistence_off", "other_processes",
}
# Codes that would mean the GPU measurement itself failed.
FAILURE_CODES = {"energy_unavailable", "energy_estimated", "sampler_failed"}


def _experiment(model, **overrides):
    config = load_experiment_config(cli_overrides={"model": str(model), **RUN, **overrides}, user_config_defaults={})
    return run_experiment(config)


@pytest.fixture(scope="module")
def result(tiny_model):
    return _experiment(tiny_model)


def test_energy_comes_from_the_nvml_counter_and_is_not_estimated(result):
    assert result.energy_source == "nvml_counter"
    assert result.estimated is False
    assert result.energy_unavailable_reason is None
    assert result.metrics.energy_j > 0
    assert result.metrics.gpu_energy_j == pytest.approx(result.metrics.energy_j)
    assert result.metrics.cpu_energy_j is None
    assert result.metrics.joules_per_token > 0
    assert result.output_tokens == RUN["n"] * RUN["max_output_tokens"]


def test_every_repeat_has_per_device_energy_and_a_timeline(result):
    assert len(result.repeats) == RUN["repeats"] == len(result.full_timeline)
    for repeat, full in zip(result.repeats, result.full_timeline):
        assert repeat.devices, "per-device list"
        for device in repeat.devices:
            assert device["source"] == "nvml_counter"
            assert device["energy_j"] > 0 and device["samples"] > 0
            samples = repeat.timeline[device["device"]]
            assert samples and all(sample["power_w"] > 0 for sample in samples)
            assert len(full[device["device"]]) >= len(samples)  # the result keeps a downsampled copy
        assert sum(d["energy_j"] for d in repeat.devices) == pytest.approx(repeat.metrics.energy_j)
        assert repeat.metrics.joules_per_token == pytest.approx(repeat.metrics.energy_j / repeat.output_tokens)


def test_idle_baseline_is_positive_below_the_power_limit_and_net_energy_is_smaller(result):
    nvml, devices = open_nvml()
    try:
        limit_w = sum(power_limit_w(nvml, device) for device in devices)
    finally:
        nvml.nvmlShutdown()
    assert 0 < result.metrics.baseline_power_w < limit_w
    for repeat in result.repeats:
        assert 0 <= repeat.metrics.net_energy_j < repeat.metrics.energy_j
        assert 0 <= repeat.metrics.net_joules_per_token < repeat.metrics.joules_per_token


def test_warnings_have_known_codes_and_none_says_the_measurement_failed(result):
    codes = {warning.code for warning in result.measurement_warnings}
    messages = [f"[{w.code}] {w.message}" for w in result.measurement_warnings]
    assert codes <= KNOWN_WARNING_CODES, messages
    assert not codes & FAILURE_CODES, messages


def test_no_sampler_thread_outlives_the_run(result):
    assert not sampler_threads()


def test_the_run_happened_on_the_gpu(result):
    assert result.environment.device == "cuda:0"
    assert result.environment.gpus and result.environment.cuda
    assert result.metrics.peak_memory_mb > 0
    assert result.metrics.tokens_per_second > 0


def test_a_run_shorter_than_the_sensor_warns_instead_of_reporting_zero(tiny_model):
    short = _experiment(tiny_model, n=1, max_input_tokens=8, max_output_tokens=1, repeats=1,
                        **{"pytorch.batch_size": 1, "baseline.enabled": False})
    codes = {warning.code for warning in short.measurement_warnings}
    assert short.metrics.energy_j != 0, "0 J must never be reported for an unmeasurable window"
    if short.metrics.energy_j is None:  # the expected case: one token of a 2-layer model takes a few ms
        assert short.metrics.duration_s < 2 * SENSOR_PERIOD_S and short.metrics.joules_per_token is None
        assert "too short" in short.energy_unavailable_reason
        assert "energy_unavailable" in codes
    else:  # generate took longer than the sensor period on this machine: coarse, and flagged so
        assert short.metrics.energy_j > 0 and "short_window" in codes
    assert not sampler_threads()


def test_precision_auto_runs_bf16_on_a_gpu_that_has_it(tiny_model):
    import torch

    done = _experiment(tiny_model, precision="auto", repeats=1, n=4, **{"baseline.enabled": False})
    expected = "bf16" if torch.cuda.get_device_capability(0)[0] >= 8 else "fp16"
    assert (done.config["precision"], done.environment.auto_precision) == (expected, expected)
