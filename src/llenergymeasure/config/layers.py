"""Merging config layers into one validated ExperimentConfig, remembering where each value came from.

A layer is a nested dict of values plus a label for each leaf ("llem_x.yaml:12", "CLI").
Layers are merged lowest first; the last one to set a leaf owns it. Validation errors are
mapped back through those labels, so every message names the file, the line and the key,
and an unknown key comes with the nearest valid one.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from llenergymeasure.config.models import ExperimentConfig, leaf_paths
from llenergymeasure.config.yaml_source import KeyPath, YamlDocument
from llenergymeasure.exceptions import ConfigError


# The flag of `llem run` that sets each field, for messages and provenance.
CLI_FLAGS = {
    "model": "--model",
    "backend": "--backend",
    "dataset": "--dataset",
    "n": "-n",
    "precision": "--precision",
    "output_dir": "--output",
    "pytorch.batch_size": "--batch-size",
    "repeats": "--repeats",
}


@dataclass
class Layer:
    """Values from one source. ``origins`` maps dotted leaf paths to a human label."""

    values: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)

    @classmethod
    def uniform(cls, values: dict[str, Any], label: str) -> Layer:
        """A layer whose every value has the same label (the CLI, a Python call)."""
        return cls(values, {path: label for path in leaf_paths(values)})

    @classmethod
    def from_cli(cls, overrides: dict[str, Any]) -> Layer:
        """Command-line overrides (dotted keys), each labelled with the flag that sets it."""
        return cls(unflatten(overrides), {key: f"CLI {CLI_FLAGS.get(key, '--' + key)}" for key in overrides})


def unflatten(values: dict[str, Any]) -> dict[str, Any]:
    """Turn dotted keys into nested dicts: ``{"pytorch.batch_size": 4}`` -> ``{"pytorch": {"batch_size": 4}}``."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = unflatten(value)
        *parents, leaf = str(key).split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"'{key}': '{part}' is a value, not a section")
        if isinstance(value, dict) and isinstance(target.get(leaf), dict):
            target[leaf] = _deep_merge(target[leaf], value)
        else:
            target[leaf] = value
    return nested


def yaml_layer(doc: YamlDocument, values: dict[str, Any], prefix: KeyPath, label: str = "") -> Layer:
    """A layer of ``values`` found under ``prefix`` in ``doc``, each leaf labelled ``[label ]file:line``."""
    origins: dict[str, str] = {}

    def walk(node: dict[str, Any], raw_path: KeyPath) -> None:
        for key, value in node.items():
            # Sections get a label too, so an unknown section points at its own line.
            dotted = ".".join(str(k) for k in raw_path[len(prefix) :] + (key,))
            origins[dotted] = f"{label} {doc.where(raw_path + (key,))}".lstrip()
            if isinstance(value, dict) and value:
                walk(value, raw_path + (key,))

    walk(values, prefix)
    return Layer(unflatten(values), origins)


def resolve(layers: list[Layer], *, extra_keys: tuple[str, ...] = ()) -> ExperimentConfig:
    """Merge ``layers`` (lowest precedence first) and validate.

    ``extra_keys`` are other valid top-level keys of the surrounding file, offered in
    did-you-mean hints. Raises ConfigError listing every problem.
    """
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        leaves = leaf_paths(layer.values)
        for path in leaves:
            # A value replacing a whole section (or the other way round) drops stale labels.
            for stale in [p for p in origins if p.startswith(path + ".") or path.startswith(p + ".")]:
                del origins[stale]
            origins[path] = layer.origins.get(path, "config")
        origins.update({path: label for path, label in layer.origins.items() if path not in leaves})
        merged = _deep_merge(merged, layer.values)

    try:
        config = ExperimentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError([_describe(err, origins, extra_keys) for err in exc.errors()]) from None
    config._sources = origins
    return config


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(err: dict[str, Any], origins: dict[str, str], extra_keys: tuple[str, ...]) -> str:
    loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
    key = ".".join(loc) or "(top level)"
    where = _origin_of(key, origins)
    kind = err["type"]

    if kind == "extra_forbidden":
        valid = _field_names(loc[:-1]) + (list(extra_keys) if len(loc) == 1 else [])
        prefix = ".".join(loc[:-1])
        return f"{where}: unknown key '{key}'{_hint(loc[-1], valid, prefix)}"
    if kind == "missing":
        return f"{where}: '{key}' is required; set it in the config file or on the command line"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        got = err.get("input")
        hint = _hint(str(got), choices, "", list_choices=False) if isinstance(got, str) else ""
        return f"{where}: {key}: {got!r} is not one of {', '.join(choices)}{hint}"
    return f"{where}: {key}: {err['msg']} (got {err.get('input')!r})"


def _origin_of(key: str, origins: dict[str, str]) -> str:
    if key in origins:
        return origins[key]
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:end])
        if parent in origins:
            return origins[parent]
    # A missing or nested key: point at any value set beneath it, else at the config as a whole.
    below = [label for path, label in origins.items() if path.startswith(key + ".")]
    return below[0] if below else "config"


def _hint(word: str, choices: list[str], prefix: str, *, list_choices: bool = True) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
    if choices and list_choices:
        return f"; valid keys here: {', '.join(sorted(choices))}"
    return ""


def _field_names(loc: list[str]) -> list[str]:
    """The field names of the model section at ``loc`` (``[]`` is the top level)."""
    model: type[BaseModel] = ExperimentConfig
    for part in loc:
        info = model.model_fields.get(part)
        if info is None:
            return []
        candidates = [info.annotation, *typing.get_args(info.annotation)]
        sub = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)
