"""GPU tests: the real NVML, the real CUDA device, no fakes anywhere.

Every test here is marked ``gpu``. At collection, when this machine has no usable GPU (NVML
does not initialise, sees no visible GPU, or torch sees no CUDA device) every ``gpu`` item is
skipped with the reason, so ``pytest`` on a laptop or a CPU-only CI runner reports them as
skipped and nothing else. Run them wherever a GPU is: ``python -m pytest tests/gpu -m gpu``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.energy import hardware
from llenergymeasure.energy.baseline import clear_cache
from llenergymeasure.energy.nvml import NvmlMeter, open_nvml
from tests.gpu.gpu_support import gpu_unavailable_reason


HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items; benchmark files marked gpu skip themselves at setup.
    gpu_items = [item for item in items if item.get_closest_marker("gpu") and HERE in item.path.parents]
    if not gpu_items:
        return
    reason = gpu_unavailable_reason()
    if reason:
        skip = pytest.mark.skip(reason=f"no usable NVIDIA GPU: {reason}")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")
def real_nvml_and_fresh_baseline():
    """The real pynvml (whatever another test installed), and no idle power cached from earlier.

    Module scope, so that it is in place before the module-scoped fixtures that run an experiment.
    """
    hardware.set_pynvml(None)
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def nvml_meter():
    """``nvml_meter(interval_s=0.05)`` -> an NvmlMeter over the visible GPUs, closed after the test."""
    meters: list[NvmlMeter] = []

    def make(interval_s: float = 0.05) -> NvmlMeter:
        meter = NvmlMeter(*open_nvml(), interval_s)
        meters.append(meter)
        return meter

    yield make
    for meter in meters:
        meter.close()
