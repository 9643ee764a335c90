"""The GPUs NVML measures are the GPUs torch computes on, matched by UUID.

CUDA numbers the devices a process can see from 0, whatever CUDA_VISIBLE_DEVICES selected;
NVML numbers every GPU of the machine. ``visible_devices`` maps one onto the other, and a
mistake there would charge one GPU's work to another GPU's energy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llenergymeasure.energy.nvml import open_nvml
from tests.gpu.gpu_support import as_nvml_uuid

pytestmark = pytest.mark.gpu

# A fresh process, so CUDA_VISIBLE_DEVICES is read by both libraries from the start.
_CHILD = """
import json, torch
from llenergymeasure.energy.nvml import open_nvml
nvml, devices = open_nvml()
nvml.nvmlShutdown()
print(json.dumps({"nvml": [d.uuid for d in devices],
                  "torch": [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]}))
"""


def _torch_uuids() -> list[str]:
    import torch

    properties = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    if not all(hasattr(p, "uuid") for p in properties):
        pytest.skip(f"torch {torch.__version__} does not report device UUIDs")
    return [as_nvml_uuid(p.uuid) for p in properties]


def test_nvml_measures_the_gpus_torch_computes_on():
    nvml, devices = open_nvml()
    nvml.nvmlShutdown()
    assert [device.uuid for device in devices] == _torch_uuids()


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["index", "uuid"])
def test_cuda_visible_devices_selects_the_same_gpu_for_nvml_and_torch(spelling):
    nvml, devices = open_nvml()
    nvml.nvmlShutdown()
    target = devices[-1]  # on a machine with several GPUs, one that is not CUDA's default device 0
    selector = str(target.index) if spelling == "index" else target.uuid
    # NVML indexes in PCI bus order; CUDA does too with this setting (the contract nvml.py states).
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": selector, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["nvml"] == [target.uuid]
    assert [as_nvml_uuid(uuid) for uuid in seen["torch"]] == [target.uuid]
