"""Merging config layers into one validated ExperimentConfig, remembering where each value came from.

A layer is a nested dict of values plus a label for each leaf ("llem_x.yaml:12", "CLI").
Layers are merged lowest first; the last one to set a leaf owns it. Validation errors are
mapped back through those labels, so every message names the file, the line and the key,
and an unknown key comes with the nearest valid one.

A ``model`` or ``dataset`` value in a YAML file that starts with "./" or "../" is a path
relative to that file's directory (as in docker-compose or GitHub Actions), so a benchmark
file works from any working directory. Values from the CLI or a Python call stay relative
to the working directory.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from llenergymeasure.config.models import DECODER_PRESETS, MAP_FIELDS, REFUSED_KEY_HINTS, ExperimentConfig, leaf_paths
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
    "max_output_tokens": "--max-output-tokens",
    "max_input_tokens": "--max-input-tokens",
    "random_seed": "--seed",
    "pytorch.device": "--device",
    "openai.api_key_env": "--api-key-env",
}

# Fields naming a file or directory; "./x" in a YAML file means "x beside that file".
PATH_FIELDS = ("model", "dataset")


@dataclass
class Layer:
    """Values from one source. ``origins`` maps dotted leaf paths to a human label.

    ``key_origins`` labels a key written elsewhere than its value (a block-style sweep list),
    so an unknown key is reported once, at the key.
    """

    values: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)
    key_origins: dict[str, str] = field(default_factory=dict)
    from_file: bool = False  # an experiment or benchmark file: untrusted (it may come in a pull request)

    @classmethod
    def uniform(cls, values: dict[str, Any], label: str) -> Layer:
        """A layer whose every value has the same label (the CLI, a Python call)."""
        return cls(values, {path: label for path in leaf_paths(values)})

    @classmethod
    def from_cli(cls, overrides: dict[str, Any], label: str | None = None) -> Layer:
        """Overrides (dotted keys or nested dicts), each leaf labelled ``label``, or by default
        with the command-line flag that sets it."""
        values = unflatten(overrides)
        return cls(values, {path: label or f"CLI {CLI_FLAGS.get(path, '--' + path)}" for path in leaf_paths(values)})


class _NotASection(ConfigError):
    """A dotted key reaching into a value (``n: 1`` beside ``n.x: 2``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"{problem}; remove one of them")


def unflatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Turn dotted keys into nested dicts: ``{"pytorch.batch_size": 4}`` -> ``{"pytorch": {"batch_size": 4}}``.
    The value of a MAP_FIELDS field is a leaf: its keys are names (``transformer.h.0``), not paths."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and f"{prefix}{key}" not in MAP_FIELDS:
            value = unflatten(value, f"{prefix}{key}.")
        *parents, leaf = str(key).split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                problem = f"'{key}' sets a field inside '{part}', which is a value here, not a section"
                raise _NotASection(str(key), problem)
        if isinstance(target.get(leaf), dict) and not isinstance(value, dict):
            raise _NotASection(str(key), f"'{key}' is given a value, but another key sets fields inside it")
        if isinstance(value, dict) and isinstance(target.get(leaf), dict) and f"{prefix}{key}" not in MAP_FIELDS:
            target[leaf] = _deep_merge(target[leaf], value, f"{prefix}{key}.")
        else:
            target[leaf] = value
    return nested


def yaml_layer(
    doc: YamlDocument, values: dict[str, Any], prefix: KeyPath, label: str = "", *, picks: dict[str, int] | None = None,
    from_file: bool = True,
) -> Layer:
    """A layer of ``values`` found under ``prefix`` in ``doc``, each leaf labelled ``[label ]file:line``.

    ``picks`` is for a sweep point: the value of top-level key ``k`` is item ``picks[k]`` of the
    list under that key.
    """
    origins: dict[str, str] = {}
    key_origins: dict[str, str] = {}

    def at(path: KeyPath) -> str:
        return f"{label} {doc.where(path)}".lstrip()

    def walk(node: dict[str, Any], raw_path: KeyPath, dotted_prefix: str) -> None:
        for key, value in node.items():
            # Sections get a label too, so an unknown section points at its own line.
            dotted = f"{dotted_prefix}{key}"
            value_path = raw_path + (key,)
            if picks and not dotted_prefix and key in picks:
                value_path += (picks[key],)
                key_origins[dotted] = at(raw_path + (key,))
            origins[dotted] = at(value_path)
            if isinstance(value, dict) and value:
                walk(value, value_path, dotted + ".")

    walk(values, prefix, "")
    try:
        nested = unflatten(_beside(doc, values))
    except _NotASection as exc:
        where = next((label for path, label in origins.items() if path == exc.key or path.endswith("." + exc.key)),
                     at(prefix))
        raise ConfigError(f"{where}: {exc.problems[0]}") from None
    return Layer(nested, origins, key_origins, from_file)


def _beside(doc: YamlDocument, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with "./x" and "../x" paths made absolute against the directory of ``doc``."""
    out = dict(values)
    for key in PATH_FIELDS:
        value = out.get(key)
        if isinstance(value, str) and value.startswith(("./", "../")):
            out[key] = os.path.normpath(doc.path.parent.absolute() / value)
    return out


def resolve(layers: list[Layer], *, extra_keys: tuple[str, ...] = (), where: str = "config") -> ExperimentConfig:
    """Merge ``layers`` (lowest precedence first) and validate.

    ``extra_keys`` are other valid top-level keys of the surrounding file, offered in
    did-you-mean hints. ``where`` names the config as a whole (its file), for a required
    key that no layer sets. Raises ConfigError listing every problem.
    """
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    key_origins: dict[str, str] = {}
    from_files: set[str] = set()
    for layer in layers:
        leaves = dict.fromkeys(leaf_paths(layer.values))  # ordered, and a set for the lookups
        _drop_stale(origins, leaves.keys())
        from_files = from_files | set(leaves) if layer.from_file else from_files - set(leaves)
        for path in leaves:
            origins[path] = layer.origins.get(path, "config")
            key_origins.pop(path, None)
        origins.update({path: label for path, label in layer.origins.items() if path not in leaves})
        key_origins.update(layer.key_origins)
        merged = _deep_merge(merged, layer.values)
    _label_preset_values(merged, origins)

    try:
        config = ExperimentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe_all(exc.errors(), origins, key_origins, extra_keys, where)) from None
    config._sources = origins
    config._from_files = frozenset(from_files)
    return config


def _drop_stale(origins: dict[str, str], leaves: typing.AbstractSet[str]) -> None:
    """A value replacing a whole section (or the other way round) drops the labels beneath (or above) it.

    Linear in the labels: a path is stale when one of its parents is a new leaf, or when it is
    itself the parent of one.
    """
    parents_of_leaves = {parent for leaf in leaves for parent in _parents(leaf)}
    stale = [p for p in origins if p in parents_of_leaves or any(parent in leaves for parent in _parents(p))]
    for path in stale:
        del origins[path]


def _parents(path: str) -> list[str]:
    """``"a.b.c"`` -> ``["a", "a.b"]``."""
    parts = path.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


MAX_PROBLEMS = 50  # per config: past this, more lines help no one (and each costs a did-you-mean search)


def _describe_all(
    errors: list[dict[str, Any]], origins: dict[str, str], key_origins: dict[str, str], extra_keys: tuple[str, ...],
    where: str,
) -> list[str]:
    labels = {**origins, **key_origins}
    problems = [_describe(err, origins, labels, extra_keys, where) for err in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"{where}: ... and {len(errors) - MAX_PROBLEMS:,} more problems like these")
    return problems


def _label_preset_values(merged: dict[str, Any], origins: dict[str, str]) -> None:
    """Label the decoder fields a preset fills in (the model expands the preset when it validates)."""
    decoder = merged.get("decoder")
    preset = decoder.get("preset") if isinstance(decoder, dict) else None
    if not isinstance(preset, str) or preset not in DECODER_PRESETS:
        return
    for key in DECODER_PRESETS[preset]:
        if key not in decoder:
            origins[f"decoder.{key}"] = f"{origins.get('decoder.preset', 'config')} (decoder.preset: {preset})"


def _deep_merge(base: dict[str, Any], override: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and f"{prefix}{key}" not in MAP_FIELDS:
            out[key] = _deep_merge(out[key], value, f"{prefix}{key}.")
        else:
            out[key] = value
    return out


def _describe(
    err: dict[str, Any], origins: dict[str, str], labels: dict[str, str], extra_keys: tuple[str, ...], config: str
) -> str:
    """One problem; ``labels`` is ``origins`` plus the labels of keys written apart from their values."""
    loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
    key = ".".join(loc) if loc else "(top level)"  # an empty key ('': 1) is still a key
    kind = err["type"]
    where = _origin_of(key, labels if kind == "extra_forbidden" else origins, config)

    if kind == "extra_forbidden" and key in REFUSED_KEY_HINTS:
        return f"{where}: '{key}' is not allowed: {REFUSED_KEY_HINTS[key]}"
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
    return f"{where}: {key}: {err['msg']} (got {_short(err.get('input'))})"


def _short(value: Any) -> str:
    """``repr(value)``, cut to a length a message line can carry."""
    text = re.sub(r"(://)[^/@\s]*@", r"\1***@", repr(value))  # never echo a password written into a URL
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"


def _origin_of(key: str, origins: dict[str, str], config: str) -> str:
    if key in origins:
        return origins[key]
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:end])
        if parent in origins:
            return origins[parent]
    # A missing or nested key: point at any value set beneath it, else at the config as a whole.
    below = [label for path, label in origins.items() if path.startswith(key + ".")]
    return below[0] if below else config


def _hint(word: str, choices: list[str], prefix: str, *, list_choices: bool = True) -> str:
    close = _closest(word, tuple(choices))
    if close:
        return f"; did you mean '{prefix + '.' if prefix else ''}{close}'?"
    if choices and list_choices:
        return f"; valid keys here: {', '.join(sorted(choices))}"
    return ""


@functools.lru_cache(maxsize=1024)
def _closest(word: str, choices: tuple[str, ...]) -> str | None:
    """The nearest choice; cached, as every point of a sweep repeats the same typo."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


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
