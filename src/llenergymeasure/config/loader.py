"""Load one ExperimentConfig from a file, the CLI and the user config, in that precedence.

    CLI flag  >  YAML file  >  user config (~/.config/llenergymeasure/config.yaml)  >  defaults

Every resolved value remembers its source: ``config.sources()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.config.layers import Layer, resolve
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.config.user_config import user_config_layer
from llenergymeasure.energy.carbon import env_carbon_intensity
from llenergymeasure.exceptions import ConfigError


def load_experiment_config(
    path: str | Path | None = None,
    cli_overrides: dict[str, Any] | None = None,
    user_config_defaults: dict[str, Any] | None = None,
    *,
    override_label: str | None = None,
) -> ExperimentConfig:
    """Resolve one experiment. ``cli_overrides`` may use dotted keys (``pytorch.batch_size``).

    ``user_config_defaults`` replaces the user config file when given (pass ``{}`` to ignore it).
    ``override_label`` names the source of ``cli_overrides`` in messages and ``sources()``
    (default: the command-line flag of each key).
    A file that defines several experiments is an error here: use ``load_benchmark_file``.
    """
    if path is not None:
        study = load_benchmark_file(path, cli_overrides, user_config_defaults, override_label=override_label)
        if len(study.experiments) != 1:
            ids = ", ".join(e.id for e in study.experiments)
            raise ConfigError(
                f"{study.path}: defines {len(study.experiments)} experiments ({ids}); "
                "load it with load_benchmark_file() or run it with 'llem run FILE'"
            )
        return study.experiments[0].config

    env_carbon_intensity()  # as load_benchmark_file does: a broken variable stops the run before it starts
    layers = [user_config_layer(user_config_defaults), Layer.from_cli(cli_overrides or {}, override_label)]
    if not any("model" in layer.values for layer in layers):
        raise ConfigError(
            "no model given: pass --model NAME_OR_PATH, or a config file: llem run experiment.yaml "
            "(or set 'model' under 'defaults:' in the user config)"
        )
    return resolve(layers)
