"""Fixtures of the plugin tests: benchmark files in a pytester directory, and a fake-GPU conftest.

Every test runs a real pytest session through ``pytester``: in-process when nothing is loaded
(collection, dry runs), in a subprocess when a model runs. An in-process run unloads the modules
it imported when it ends, and torch's C extension cannot be imported twice into one process
(nor can libyaml's, which is why this module imports yaml up front).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml  # noqa: F401

try:  # libyaml's C extension keeps the yaml.events classes of its first import: keep yaml loaded here,
    import yaml._yaml  # noqa: F401  so an in-process run cannot unload and re-import one without the other
except ImportError:
    pass

REPO = Path(__file__).resolve().parents[2]

# A plugin for pytester sessions (``-p fakegpus``): fake NVML GPUs installed at import time
# through the hardware seam, before xdist's ``-n auto`` hook looks for GPUs, in the controller
# and every worker. Each item records the CUDA_VISIBLE_DEVICES its worker was started with in
# ``<worker>.cvd``.
FAKE_GPUS_PLUGIN = """
import os
from pathlib import Path

from llenergymeasure.energy import hardware
from tests.fakes.pynvml import FakeGpu, FakeNvml

hardware.set_pynvml(FakeNvml([FakeGpu(uuid=uuid, memory_gb={memory_gb}) for uuid in {uuids!r}]))


def pytest_runtest_setup(item):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    Path(str(item.config.rootpath), worker + ".cvd").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", ""))
"""


# A plugin for pytester sessions (``-p fakemeter``): one fake NVML GPU whose energy counter
# advances by exactly JOULES at every read, so each measurement window (a read at each end) is
# JOULES, however long the machine's load made it: joules per token are exact. Items measure it
# with ``energy.source: nvml`` while the model runs on the CPU. Its power reading decays from
# JOULES watts at the last counter read (JOULES x e^-t), so the integrated power of a window is
# at most the counter's difference and within the meter's cross-check tolerance (25% plus one
# second at peak power) for a window of any length.
FAKE_METER_PLUGIN = """
import math

from llenergymeasure.energy import hardware
from tests.fakes.pynvml import FakeGpu, FakeNvml

JOULES = {joules!r}


class WindowGpu(FakeGpu):
    last_read = 0.0  # seconds since creation

    def counter(self):
        self.reads += 1
        self.last_read = self.elapsed()
        return round(self.reads * JOULES * 1000)


gpu = WindowGpu(uuid="GPU-meter-fake", counter_mj=[0])
gpu.power_w = lambda t: JOULES * math.exp(-max(0.0, t - gpu.last_read))
hardware.set_pynvml(FakeNvml([gpu]))
"""


@pytest.fixture
def write_llem(pytester: pytest.Pytester, tiny_model: Path) -> Callable[..., Path]:
    """``write_llem("llem_x.yaml", yaml_text)``: ``MODEL`` in the text becomes the tiny model's path."""

    def write(name: str, text: str) -> Path:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).replace("MODEL", str(tiny_model)), encoding="utf-8")
        return path

    return write


@pytest.fixture
def fake_gpus(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """``fake_gpus(count, memory_gb)``: sessions run as subprocesses with ``-p fakegpus``, and their
    xdist workers, see ``count`` fake GPUs; returns their UUIDs."""

    def install(count: int = 2, memory_gb: float = 80.0) -> list[str]:
        uuids = [f"GPU-{index:04d}-fake" for index in range(count)]
        pytester.makepyfile(fakegpus=FAKE_GPUS_PLUGIN.format(memory_gb=memory_gb, uuids=uuids))
        # tests.fakes and the plugin, for subprocesses and xdist workers
        monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{pytester.path}")
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):  # when this suite runs under xdist
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        return uuids

    return install



@pytest.fixture
def fake_meter(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``fake_meter(joules)``: sessions run as subprocesses with ``-p fakemeter`` measure exactly
    ``joules`` per window on items with ``energy.source: nvml``; call it again to change the GPU."""

    def install(joules: float) -> None:
        pytester.makepyfile(fakemeter=FAKE_METER_PLUGIN.format(joules=float(joules)))
        monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{pytester.path}")
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return install
