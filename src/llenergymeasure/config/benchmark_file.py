"""The benchmark file (``llem_*.yaml``): one experiment, or a study of many, plus its gates.

Shared by ``llem run FILE`` and the pytest plugin, so both see the same experiments with the
same ids. A file holds ExperimentConfig fields at top level, and optionally:

    sweep:        cartesian product of values; dotted keys reach nested fields
    experiments:  explicit extra experiments, appended after the sweep
    expect:       absolute gates per metric ({max: ..., min: ...}; at: slo: at a load ramp's SLO point)
    regression:   relative gates against a baseline ("5%") or absolute (0.01); for a load ramp,
                  {threshold: 5%, at: slo} judges the metric at its SLO point instead
    against:      a reference config, as changes to each experiment ({precision: bf16}),
                  measured beside it in one session (ABBA windows) and gated by ``regression:``
    marks:        pytest marks for every experiment of the file

Numbers that cannot mean anything are refused here, not at gate time: a bound or threshold
that is NaN, infinite or negative, or a ``min`` above its ``max``, would make a gate that
always passes (or never can). A sweep is counted before it is expanded: more than
MAX_EXPERIMENTS is refused without building a single one of them.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.config.layers import Layer, resolve, yaml_layer
from llenergymeasure.config.models import ExperimentConfig, flatten, rate_label
from llenergymeasure.config.user_config import user_config_layer
from llenergymeasure.config.yaml_source import YamlDocument, read_yaml
from llenergymeasure.energy.carbon import env_carbon_intensity
from llenergymeasure.exceptions import ConfigError
from llenergymeasure.results.metrics import METRIC_NAMES

FILE_KEYS = ("sweep", "experiments", "expect", "regression", "against", "marks")
_FILE_LEVEL = "sweep, experiments, expect, regression, against and marks"
_THRESHOLD = re.compile(r"^\s*(\d+(\.\d+)?)\s*%\s*$")

MAX_EXPERIMENTS = 10_000
"""Experiments in one file, sweep points and ``experiments:`` entries together."""

# (params, layer, line, explicit name) of one experiment before it is resolved.
_Variant = tuple[dict[str, Any], Layer | None, int, str | None]


@dataclass(frozen=True)
class Bound:
    """An ``expect`` gate: the metric must stay within [min, max]; ``at: slo``: checked once per load
    ramp, at its SLO point (the highest load point meeting ``slo:``), instead of at every experiment."""

    min: float | None = None
    max: float | None = None
    at: str | None = None


@dataclass
class BenchmarkExperiment:
    """One experiment of a file, with the id pytest and the summaries show for it."""

    id: str
    config: ExperimentConfig
    params: dict[str, Any]
    line: int
    reference: ExperimentConfig | None = None  # ``against:``: what it is measured beside, when that differs
    ramp: str | None = None  # a load point of a ramp (``openai.load``): the ramp's id, shared by its points


@dataclass
class BenchmarkFile:
    path: Path
    name: str
    experiments: list[BenchmarkExperiment]
    expect: dict[str, Bound] = field(default_factory=dict)
    regression: dict[str, str | float] = field(default_factory=dict)
    marks: list[str] = field(default_factory=list)
    marks_line: int = 1
    regression_at_slo: dict[str, str | float] = field(default_factory=dict)  # {threshold, at: slo} gates


def load_benchmark_file(
    path: str | Path,
    cli_overrides: dict[str, Any] | None = None,
    user_config_defaults: dict[str, Any] | None = None,
    *,
    override_label: str | None = None,
    text: str | None = None,
) -> BenchmarkFile:
    """Parse and validate every experiment of ``path``; all problems come in one ConfigError.

    ``override_label`` names the source of ``cli_overrides`` in messages and sources()
    (default: the command-line flag of each key). ``text`` is the file's content read from
    elsewhere (a git revision); relative paths in it are still relative to ``path``.
    """
    doc = read_yaml(path, text)
    env_carbon_intensity()  # a broken LLEM_CARBON_INTENSITY stops the run here, not after measuring
    if doc.data is None:
        raise ConfigError(f"{doc.path}: the file is empty; it needs at least 'model: <name or path>'")
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{doc.path}:1: expected a mapping of config keys at the top level")

    shared = {k: v for k, v in doc.data.items() if k not in FILE_KEYS}
    base_name = _base(doc)
    problems: list[str] = []

    expect = _parse_expect(doc, problems)
    regression_at_slo: dict[str, str | float] = {}
    regression = _parse_regression(doc, problems, regression_at_slo)
    marks = _parse_marks(doc, problems)
    variants = _variants(doc, problems)  # (params, layer, line) per experiment

    bottom = user_config_layer(user_config_defaults)
    top = Layer.from_cli(cli_overrides or {}, override_label)
    problems.extend(_overridden_sweep_keys(doc, top))
    shared_layer = yaml_layer(doc, shared, ())

    against = _parse_against(doc, problems)
    experiments = _build(doc, variants, [bottom, shared_layer], top, base_name, problems)
    if against is not None and any(e.ramp for e in experiments):
        problems.append(f"{doc.where(('against',))}: 'against' measures two configs in one session, window by "
                        "window; a load ramp (openai.load) runs its points one after another: compare two ramps "
                        "with llem compare, or remove one of the keys")
    elif against is not None:
        _add_references(doc, experiments, variants, [bottom, shared_layer], against, top, problems)
    at_slo = [("expect", metric) for metric, bound in expect.items() if bound.at == "slo"]
    at_slo += [("regression", metric) for metric in regression_at_slo]
    if at_slo and experiments and not any(e.ramp and e.config.slo for e in experiments):
        section, metric = at_slo[0]
        problems.append(f"{doc.where((section, metric))}: {section}.{metric} at: slo reads the metric at a "
                        "load ramp's SLO point: give the file a ramp (backend: openai, openai.load.rates) and slo:")
    if problems:
        raise ConfigError(problems)
    return BenchmarkFile(doc.path, base_name, experiments, expect, regression, marks, doc.line_of(("marks",)) or 1,
                         regression_at_slo)


def parse_gates(data: dict[str, Any], where: Callable[[tuple[Any, ...]], str]) -> tuple[dict[str, Bound], dict[str, str | float]]:
    """The ``expect`` and ``regression`` gates of ``data`` (the keys of a file, or of a pytest
    marker) with the file's rules; one ConfigError lists every problem, each placed by ``where``
    (a key path -> "where: ")."""
    doc = _Located(data, where)
    problems: list[str] = []
    expect, regression = _parse_expect(doc, problems), _parse_regression(doc, problems)  # type: ignore[arg-type]
    if problems:
        raise ConfigError(problems)
    return expect, regression


@dataclass
class _Located:
    """Gate keys that come from somewhere other than a YAML file, with how to name their place."""

    data: dict[str, Any]
    locate: Callable[[tuple[Any, ...]], str]

    def where(self, key_path: tuple[Any, ...] = ()) -> str:
        return self.locate(key_path)


def _build(
    doc: YamlDocument, variants: list[_Variant], below: list[Layer], top: Layer, base_name: str, problems: list[str]
) -> list[BenchmarkExperiment]:
    """Resolve every variant between the layers ``below`` it and ``top``; problems go to ``problems``."""
    experiments: list[BenchmarkExperiment] = []
    seen_ids: dict[str, int] = {}
    found = dict.fromkeys(problems)  # ordered, each problem once however many sweep points share it
    for params, variant_layer, line, explicit_name in variants:
        layers = below + ([variant_layer] if variant_layer else []) + [top]
        try:
            config = resolve(layers, extra_keys=FILE_KEYS, where=str(doc.path))
        except ConfigError as exc:
            found.update(dict.fromkeys(exc.problems))
            continue
        exp_id = explicit_name or _experiment_id(base_name, params)
        if "\n" in exp_id or "\r" in exp_id:  # an id heads a line of every summary: one line, or it forges others
            found[f"{doc.path}:{line}: the experiment's name {exp_id!r} holds a line break; a name is one line"] = None
            continue
        if exp_id in seen_ids:
            found[
                f"{doc.path}:{line}: experiment '{exp_id}' is defined twice (first at line {seen_ids[exp_id]}); "
                "give one of them a distinct 'name'"
            ] = None
            continue
        seen_ids[exp_id] = line
        config.name = exp_id
        experiments.extend(_load_points(BenchmarkExperiment(exp_id, config, params, line)))
    problems[:] = found
    return experiments


def _load_points(experiment: BenchmarkExperiment) -> list[BenchmarkExperiment]:
    """A load ramp (``openai.load.rates``) as one experiment per rate, in order: ``id[rate=4]``,
    each with its one rate; any other experiment as it is."""
    config = experiment.config
    load = config.openai.load
    if config.backend != "openai" or load is None:
        return [experiment]
    points = []
    for rate in load.rates:
        label = rate_label(rate)
        point_id = (f"{experiment.id[:-1]},rate={label}]" if experiment.id.endswith("]")
                    else f"{experiment.id}[rate={label}]")
        point = config.model_copy(deep=True)
        point.openai.load = load.model_copy(update={"rates": [rate]})
        point.name = point_id
        points.append(BenchmarkExperiment(point_id, point, {**experiment.params, "rate": label}, experiment.line,
                                          ramp=experiment.id))
    return points


def _parse_against(doc: YamlDocument, problems: list[str]) -> Layer | None:
    raw = doc.data.get("against")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        problems.append(f"{doc.where(('against',))}: 'against' must map config keys to the reference's values, "
                        "e.g. 'against: {precision: bf16}'")
        return None
    misplaced = [k for k in raw if k in FILE_KEYS]
    problems.extend(_misplaced(doc, ("against", k)) for k in misplaced)
    unmeasured = [k for k in raw if k in ("name", "output_dir")]
    problems.extend(f"{doc.where(('against', k))}: '{k}' in 'against' changes nothing that is measured; 'against' "
                    "holds only how the reference differs in what is measured (llem names it <experiment>~against)"
                    for k in unmeasured)
    if misplaced or unmeasured:
        return None
    return yaml_layer(doc, raw, ("against",))


def _add_references(doc: YamlDocument, experiments: list[BenchmarkExperiment], variants: list[_Variant],
                    below: list[Layer], against: Layer, top: Layer, problems: list[str]) -> None:
    """Each experiment's reference: its own layers with ``against`` over them (flags still win).
    An experiment that already is its reference (a sweep point with the reference's values) has none."""
    layers_of = {(explicit or _experiment_id(_base(doc), params)): layer
                 for params, layer, _, explicit in variants}
    found = dict.fromkeys(problems)
    for experiment in experiments:
        layer = layers_of.get(experiment.id)
        try:
            reference = resolve(below + ([layer] if layer else []) + [against, top], extra_keys=FILE_KEYS,
                                where=str(doc.path))
        except ConfigError as exc:
            found.update(dict.fromkeys(exc.problems))
            continue
        reference.name = f"{experiment.id}~against"
        if reference.config_hash() != experiment.config.config_hash():
            experiment.reference = reference
    problems[:] = found


def _base(doc: YamlDocument) -> str:
    return str(doc.data.get("name") or _name_from_path(doc.path))


def _name_from_path(path: Path) -> str:
    stem = path.stem
    return stem[len("llem_") :] if stem.startswith("llem_") and len(stem) > 5 else stem


def _variants(doc: YamlDocument, problems: list[str]) -> list[_Variant]:
    """(params, layer, line, explicit name) for each experiment: sweep points, then extras."""
    sweep = doc.data.get("sweep")
    extras = doc.data.get("experiments")
    if sweep is None and extras is None:
        return [({}, None, 1, None)]
    keys = _sweep_keys(doc, sweep, problems) if sweep is not None else []
    entries = _extra_entries(doc, extras, problems) if extras is not None else []
    points = math.prod(len(sweep[k]) for k in keys) if keys else 0
    if points + len(entries) > MAX_EXPERIMENTS:
        problems.append(_too_many(doc, points, len(entries)))
        return []
    return _sweep_points(doc, sweep, keys) + [_extra(doc, index, entry, problems) for index, entry in entries]


def _sweep_keys(doc: YamlDocument, sweep: Any, problems: list[str]) -> list[Any]:
    """The keys of a well-formed sweep, in order; [] (and problems) when it is not one."""
    if not isinstance(sweep, dict) or not sweep:
        problems.append(f"{doc.where(('sweep',))}: 'sweep' must map keys to lists of values, e.g. 'precision: [fp16, bf16]'")
        return []
    keys = list(sweep)
    misplaced = [k for k in keys if k in FILE_KEYS]
    problems.extend(_misplaced(doc, ("sweep", k)) for k in misplaced)
    bad = [k for k in keys if k not in misplaced and (not isinstance(sweep[k], list) or not sweep[k])]
    for k in bad:
        problems.append(
            f"{doc.where(('sweep', k))}: sweep.{k} must be a non-empty list of values "
            f"(got {sweep[k]!r}); write '{k}: [{sweep[k]!r}]' for a single value"
        )
    return [] if bad or misplaced else keys


def _sweep_points(doc: YamlDocument, sweep: dict[str, Any], keys: list[Any]) -> list[_Variant]:
    if not keys:
        return []
    line = doc.line_of(("sweep",)) or 1
    variants: list[_Variant] = []
    for combo in itertools.product(*(range(len(sweep[k])) for k in keys)):
        params = {k: sweep[k][i] for k, i in zip(keys, combo)}
        layer = yaml_layer(doc, params, ("sweep",), picks=dict(zip(keys, combo)))
        variants.append((params, layer, line, None))
    return variants


def _extra_entries(doc: YamlDocument, extras: Any, problems: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """(index, mapping) of each well-formed entry of ``experiments:``."""
    if not isinstance(extras, list) or not extras:
        problems.append(
            f"{doc.where(('experiments',))}: 'experiments' must be a non-empty list of mappings, "
            "e.g. '- {precision: fp32, n: 20}'; remove the key if there are none"
        )
        return []
    entries = []
    for index, entry in enumerate(extras):
        if isinstance(entry, dict):
            entries.append((index, entry))
        else:
            problems.append(f"{doc.where(('experiments', index))}: each entry of 'experiments' must be a mapping")
    return entries


def _extra(doc: YamlDocument, index: int, entry: dict[str, Any], problems: list[str]) -> _Variant:
    values = dict(entry)
    name = values.pop("name", None)
    if name is not None and (isinstance(name, bool) or not isinstance(name, (str, int))):
        problems.append(f"{doc.where(('experiments', index, 'name'))}: name: must be text (got {name!r})")
        name = None
    for key in [k for k in values if k in FILE_KEYS]:
        problems.append(_misplaced(doc, ("experiments", index, key)))
        del values[key]
    params = flatten(values)
    layer = yaml_layer(doc, values, ("experiments", index))
    line = doc.line_of(("experiments", index)) or 1
    return params, layer, line, str(name) if name is not None else None


def _too_many(doc: YamlDocument, points: int, extras: int) -> str:
    counted = f"its sweep expands to {points:,}" + (f" plus {extras:,} in 'experiments'" if extras else "")
    where = doc.where(("sweep",)) if points else doc.where(("experiments",))
    return (
        f"{where}: {counted} experiments, more than the cap of {MAX_EXPERIMENTS:,} per file; "
        "sweep fewer values, or split the study into several files"
    )


def _misplaced(doc: YamlDocument, key_path: tuple[Any, ...]) -> str:
    """A file-level key written inside a sweep, an experiments entry or ``against``."""
    where = {"sweep": "'sweep'", "against": "'against'"}.get(key_path[0], "an entry of 'experiments'")
    return (
        f"{doc.where(key_path)}: unknown key '{key_path[-1]}' in {where}; {_FILE_LEVEL} are file-level keys: "
        "move it to the top level of the file"
    )


def _overridden_sweep_keys(doc: YamlDocument, overrides: Layer) -> list[str]:
    """A flag that sets a swept key would run every point of the sweep alike, under ids that differ."""
    sweep = doc.data.get("sweep")
    if not isinstance(sweep, dict):
        return []
    problems = []
    for key in sweep:
        label = next(
            (label for path, label in overrides.origins.items()
             if path == key or path.startswith(f"{key}.") or str(key).startswith(f"{path}.")),
            None,
        )
        if label is not None:
            what = "flag" if label.startswith("CLI") else "override"
            problems.append(
                f"{doc.where(('sweep', key))}: sweep.{key} is overridden by {label}, so every experiment would run "
                f"with the same value while its id says otherwise; remove the {what} or the sweep key"
            )
    return problems


def _experiment_id(base: str, params: dict[str, Any]) -> str:
    """``base[precision=fp16,batch_size=8]``: short keys unless two would collide."""
    if not params:
        return base
    shorts = [key.rsplit(".", 1)[-1] for key in params]
    uses = Counter(shorts)
    labels = [
        f"{short if uses[short] == 1 else key}={_label(value)}"
        for key, short, value in zip(params, shorts, params.values())
    ]
    return f"{base}[{','.join(labels)}]"


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _metric_problem(doc: YamlDocument, section: str, metric: Any) -> str | None:
    if metric in METRIC_NAMES:
        return None
    close = difflib.get_close_matches(str(metric), METRIC_NAMES, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known metrics: {', '.join(METRIC_NAMES)}"
    return f"{doc.where((section, metric))}: unknown metric '{section}.{metric}'{hint}"


def _parse_expect(doc: YamlDocument, problems: list[str]) -> dict[str, Bound]:
    raw = doc.data.get("expect")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{doc.where(('expect',))}: 'expect' must map metrics to bounds, e.g. 'joules_per_token: {{max: 0.4}}'")
        return {}
    gates: dict[str, Bound] = {}
    for metric, bound in raw.items():
        problem = _metric_problem(doc, "expect", metric)
        if problem:
            problems.append(problem)
            continue
        where = doc.where(("expect", metric))
        if not isinstance(bound, dict) or not set(bound) - {"at"} or set(bound) - {"min", "max", "at"}:
            problems.append(f"{where}: expect.{metric} must be a mapping with 'min' and/or 'max' (and 'at: slo' for a "
                            "load ramp's SLO point), e.g. {max: 0.4}")
            continue
        if "at" in bound and bound["at"] != "slo":
            problems.append(f"{doc.where(('expect', metric, 'at'))}: expect.{metric}.at must be 'slo' (the load "
                            f"ramp's SLO point; got {bound['at']!r}), or left out to check every experiment")
            continue
        problem = _bound_problem(where, metric, {k: v for k, v in bound.items() if k != "at"})
        if problem:
            problems.append(problem)
            continue
        gates[metric] = Bound(min=_number(bound.get("min")), max=_number(bound.get("max")), at=bound.get("at"))
    return gates


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not one (bool, text, NaN, inf, 1e400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _bound_problem(where: str, metric: str, bound: dict[str, Any]) -> str | None:
    """Why ``bound`` cannot be a gate: not a finite number, negative, or min above max."""
    for side, value in bound.items():
        number = _number(value)
        if number is None:
            return f"{where}: expect.{metric}.{side} must be a finite number (got {value!r})"
        if number < 0:
            return f"{where}: expect.{metric}.{side} is {value!r}, but no metric is ever negative; use 0 or more"
    low, high = bound.get("min"), bound.get("max")
    if low is not None and high is not None and low > high:
        return f"{where}: expect.{metric} has min {low!r} above max {high!r}, so it can never pass; swap them"
    return None


def _parse_regression(doc: YamlDocument, problems: list[str], at_slo: dict[str, str | float] | None = None
                      ) -> dict[str, str | float]:
    """The per-experiment thresholds; those written ``{threshold: 5%, at: slo}`` go to ``at_slo``
    (a problem where there is no such place: a pytest marker)."""
    raw = doc.data.get("regression")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{doc.where(('regression',))}: 'regression' must map metrics to thresholds, e.g. 'joules_per_token: 5%'")
        return {}
    thresholds: dict[str, str | float] = {}
    for metric, threshold in raw.items():
        problem = _metric_problem(doc, "regression", metric)
        if problem:
            problems.append(problem)
            continue
        target = thresholds
        if isinstance(threshold, dict):
            if set(threshold) != {"threshold", "at"} or threshold["at"] != "slo" or at_slo is None:
                where = "a load ramp's SLO point" if at_slo is not None else "a load ramp in a benchmark file"
                problems.append(f"{doc.where(('regression', metric))}: regression.{metric} as a mapping must be "
                                f"{{threshold: 5%, at: slo}} ({where}); got {threshold!r}")
                continue
            target, threshold = at_slo, threshold["threshold"]
        parsed = _threshold(threshold)
        if parsed is not None:
            target[metric] = parsed
        else:
            problems.append(
                f"{doc.where(('regression', metric))}: regression.{metric} must be a percentage like '5%' "
                f"or a finite, non-negative absolute change like 0.01 (got {threshold!r})"
            )
    return thresholds


def _threshold(value: Any) -> str | float | None:
    """A regression threshold as the gate takes it ("5%" or a float), or None when it is not one."""
    if isinstance(value, str):
        matched = _THRESHOLD.match(value)
        return value.strip() if matched and math.isfinite(float(matched.group(1))) else None
    number = _number(value)
    return number if number is not None and number >= 0 else None


def _parse_marks(doc: YamlDocument, problems: list[str]) -> list[str]:
    raw = doc.data.get("marks")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(m, str) and m.isidentifier() for m in raw):
        problems.append(f"{doc.where(('marks',))}: 'marks' must be a list of mark names, e.g. [slow, gpu]")
        return []
    return list(raw)
