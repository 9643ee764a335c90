"""The user config: personal defaults for every experiment, below the file and the CLI.

Lives at ``$LLEM_CONFIG`` if set, else ``$XDG_CONFIG_HOME/llenergymeasure/config.yaml``
(``~/.config/llenergymeasure/config.yaml``). It holds one section, ``defaults:``, with any
experiment fields::

    defaults:
      precision: fp16
      output_dir: ~/llem-results
      energy: {source: nvml}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llenergymeasure.config.layers import Layer, unflatten, yaml_layer
from llenergymeasure.config.yaml_source import read_yaml
from llenergymeasure.exceptions import ConfigError


def user_config_path() -> Path:
    explicit = os.environ.get("LLEM_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "llenergymeasure" / "config.yaml"


def user_config_layer(defaults: dict[str, Any] | None = None) -> Layer:
    """The user-config layer: ``defaults`` when given (a Python caller's choice), else the file's."""
    if defaults is not None:
        return Layer.uniform(unflatten(defaults), "user config")
    path = user_config_path()
    if not path.is_file():
        return Layer({})
    doc = read_yaml(path)
    if doc.data is None:
        return Layer({})
    if not isinstance(doc.data, dict) or set(doc.data) - {"defaults"}:
        extra = sorted(set(doc.data) - {"defaults"}) if isinstance(doc.data, dict) else []
        raise ConfigError(
            f"{doc.where((extra[0],) if extra else ())}: the user config holds one section, 'defaults:', "
            "with experiment fields under it"
        )
    values = doc.data.get("defaults") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{doc.where(('defaults',))}: 'defaults' must be a mapping of experiment fields")
    return yaml_layer(doc, values, ("defaults",), label="user config", from_file=False)  # the user's own
