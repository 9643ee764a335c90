"""A model spread over devices by ``pytorch.device_map``, on real GPUs: the run measures exactly
the GPUs the model is on.

With two GPUs or more the tiny GPT-2 is balanced over the first two; with one, ``pytorch.gpus``
names GPU 0 by its UUID and the model is loaded there through a device map.
"""

from __future__ import annotations

import pytest
import torch

from llenergymeasure import run_experiment
from llenergymeasure.config.loader import load_experiment_config

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

RUN = {"n": 16, "dataset": "synthetic", "precision": "fp16", "max_input_tokens": 32, "max_output_tokens": 64,
       "pytorch.batch_size": 4, "energy.source": "nvml", "baseline.enabled": False}


def test_a_spread_model_is_measured_on_the_gpus_it_occupies(tiny_model):
    if torch.cuda.device_count() >= 2:
        placement, expected = {"pytorch.device_map": "auto", "pytorch.gpus": [0, 1]}, ["gpu0", "gpu1"]
    else:
        from llenergymeasure.energy.sources import nvml_status

        _, gpus, _ = nvml_status()
        placement, expected = {"pytorch.gpus": [gpus[0].uuid]}, [f"gpu{gpus[0].index}"]
    config = load_experiment_config(cli_overrides={"model": str(tiny_model), **RUN, **placement},
                                    user_config_defaults={})
    result = run_experiment(config)
    [repeat] = result.repeats
    assert [device["device"] for device in repeat.devices] == expected
    assert result.metrics.energy_j == pytest.approx(sum(device["energy_j"] for device in repeat.devices))
    assert result.output_tokens == RUN["n"] * RUN["max_output_tokens"]
    assert result.metrics.peak_memory_mb and result.metrics.peak_memory_mb > 0
