"""``llem config``: what this machine offers: versions, GPUs, energy sources, the user config."""

from __future__ import annotations

from typing import Annotated

import typer

from llenergymeasure.cli.errors import exit_codes


def config(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
) -> None:
    with exit_codes(verbose):
        _show()


def _show() -> None:
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from llenergymeasure import __version__
    from llenergymeasure.config.user_config import user_config_path
    from llenergymeasure.energy.hardware import cpu_model
    from llenergymeasure.energy.cpu_estimate import CpuEstimateMeter
    from llenergymeasure.energy.sources import nvml_status, rapl_status

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    nvml, gpus, driver = nvml_status()
    rapl = rapl_status()
    path = user_config_path()
    rows = [
        ("llenergymeasure", __version__),
        ("python", f"{sys.version.split()[0]} ({sys.executable})"),
        ("platform", platform.platform()),
        ("cpu", cpu_model() or "unknown"),
        ("torch", installed("torch") + _torch_cuda()),
        ("transformers", installed("transformers")),
        ("GPUs", ", ".join(f"[{g.index}] {g.name} ({g.memory_gb:.0f} GB)" for g in gpus) or "none"),
        ("NVIDIA driver", driver or "none"),
        ("user config", f"{path} ({'found' if path.is_file() else 'not found'})"),
    ]
    for label, text in rows:
        print(f"{label:<17}{text}")
    print("energy sources")
    for status in (nvml, rapl):
        print(f"  {status.name:<15}{'available' if status.available else 'unavailable'}: {status.detail}")
    estimate = CpuEstimateMeter(cpu_model())
    print(f"  {'cpu_estimate':<15}available (an estimate, not a measurement): {estimate.watts_per_cpu_second:.3g} W "
          f"per CPU-second, {'TDP of ' + estimate.matched if estimate.matched else 'CPU not in codecarbon table'}")


def _torch_cuda() -> str:
    """torch's CUDA build, read from its version module without importing torch itself."""
    from importlib.util import find_spec

    spec = find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return ""
    from pathlib import Path

    version_file = Path(list(spec.submodule_search_locations)[0]) / "version.py"
    try:
        text = version_file.read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("cuda"):
            value = line.split("=", 1)[1].strip().strip("'\"")
            return f" (CUDA {value})" if value not in ("None", "") else " (CPU build)"
    return ""
