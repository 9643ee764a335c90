"""llenergymeasure: how much energy an LLM spends per generated token.

The public API is imported lazily so that ``import llenergymeasure`` (and with it
``llem --help`` and ``llem run --dry-run``) never pulls in torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "run_experiment": "llenergymeasure.core.runner",
    "load_experiment_config": "llenergymeasure.config.loader",
    "load_benchmark_file": "llenergymeasure.config.benchmark_file",
    "ExperimentConfig": "llenergymeasure.config.models",
    "ExperimentResult": "llenergymeasure.results.model",
    "compare": "llenergymeasure.results.regression",
    "Baseline": "llenergymeasure.results.baselines",
    "measure_energy": "llenergymeasure.energy.window",
    "EnergyMonitor": "llenergymeasure.energy.window",
    "EnergyWindow": "llenergymeasure.energy.window",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from llenergymeasure.config.benchmark_file import load_benchmark_file
    from llenergymeasure.config.loader import load_experiment_config
    from llenergymeasure.config.models import ExperimentConfig
    from llenergymeasure.core.runner import run_experiment
    from llenergymeasure.energy.window import EnergyMonitor, EnergyWindow, measure_energy
    from llenergymeasure.results.baselines import Baseline
    from llenergymeasure.results.model import ExperimentResult
    from llenergymeasure.results.regression import compare


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llenergymeasure' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
