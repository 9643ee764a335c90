"""Property: whatever a benchmark file, a result file or a baseline file holds, reading it (and
``llem compare`` of it) ends in a value or in one of our errors naming the file: never another
exception ("Internal error" to a user).

The files are made by mutating valid ones: any value anywhere replaced by what an attacker or a
broken disk would write (huge and tiny numbers, inf and NaN spelled as JSON allows, strings with
control characters, deep nesting, wrong types). Seeded (``derandomize``), so the suite stays
deterministic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from llenergymeasure.cli import app
from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.exceptions import LLEMError
from llenergymeasure.results.baselines import Baseline
from llenergymeasure.results.model import ExperimentResult
from result_builders import make_repeat, make_result

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HOSTILE_NUMBERS = st.sampled_from([0, -1, 1e308, -1e308, 1.7976931348623157e308, 5e-324, 10**400, -(10**30),
                                   2**63, 2**64 + 1, 0.0, -0.0, 1e-300, 123456789.123456789])
HOSTILE_TEXT = st.sampled_from(["", "\x1b[2J", "\x00", "a" * 10_000, "NaN", "Infinity", "1e999", "\u202e",
                                "../../etc/passwd", "{}", "null"])
LEAVES = st.one_of(HOSTILE_NUMBERS, HOSTILE_TEXT, st.booleans(), st.none(), st.integers(), st.floats(),
                   st.text(max_size=20))
VALUES = st.recursive(LEAVES, lambda children: st.one_of(st.lists(children, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), children, max_size=4)),
                      max_leaves=12)


def paths_of(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``data`` (dict keys and list indices)."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths_of(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data[:3]):
            found += paths_of(value, prefix + (index,))
    return found


def mutated(data: Any, draw: Any) -> Any:
    """``data`` (a JSON-like tree) with a few values replaced by hostile ones."""
    data = json.loads(json.dumps(data))
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        depth = draw(st.sampled_from([0, 0, 0, 50, 5000]))  # drawn as a number: hypothesis prints what it draws
        value = f"__DEEP{depth}__" if depth else draw(VALUES)  # write_json nests it: too deep for json.dumps
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return data


def write_json(path: Path, data: Any) -> Path:
    text = json.dumps(data, allow_nan=True)  # NaN and Infinity, as some writers emit them
    path.write_text(re.sub(r'"__DEEP(\d+)__"', lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text))
    return path


def assert_ours(exc: BaseException, path: Path) -> None:
    assert isinstance(exc, LLEMError), f"{exc.__class__.__name__}: {exc}"
    assert path.name in str(exc), str(exc)


def seed_result() -> dict[str, Any]:
    result = make_result([make_repeat(i, energy_j=10.0 + i) for i in range(3)])
    return json.loads(result.model_dump_json())


@pytest.fixture(scope="module")
def seed_baseline(tmp_path_factory) -> dict[str, Any]:
    result = make_result([make_repeat(i, energy_j=10.0 + i) for i in range(3)])
    path = Baseline.from_results([result]).save(tmp_path_factory.mktemp("seed") / "baseline.json")
    return json.loads(path.read_text())


@SETTINGS
@given(data=st.data())
def test_any_result_file_loads_or_is_an_error_naming_it(tmp_path_factory, data):
    path = write_json(tmp_path_factory.mktemp("r") / "result.json", mutated(seed_result(), data.draw))
    try:
        ExperimentResult.load(path)
    except Exception as exc:  # noqa: BLE001 - the property is about which exceptions escape
        assert_ours(exc, path)


@SETTINGS
@given(data=st.data())
def test_any_baseline_file_loads_or_is_an_error_naming_it(tmp_path_factory, seed_baseline, data):
    path = write_json(tmp_path_factory.mktemp("b") / "baseline.json", mutated(seed_baseline, data.draw))
    try:
        Baseline.load(path)
    except Exception as exc:  # noqa: BLE001
        assert_ours(exc, path)


BENCHMARK_SEED = {
    "model": "gpt2", "n": 4, "dataset": "builtin", "repeats": 3, "max_output_tokens": 8,
    "pytorch": {"batch_size": 2}, "energy": {"source": "auto"},
    "sweep": {"precision": ["fp16", "bf16"]},
    "expect": {"energy_per_token_j": {"max": 0.5}},
    "regression": {"energy_per_token_j": "5%"},
    "against": {"pytorch": {"batch_size": 1}},
}


@SETTINGS
@given(data=st.data())
def test_any_benchmark_file_loads_or_is_a_config_error_naming_it(tmp_path_factory, data):
    import yaml

    path = tmp_path_factory.mktemp("f") / "llem_x.yaml"
    tree = mutated(BENCHMARK_SEED, data.draw)
    try:
        text = yaml.safe_dump(tree, allow_unicode=False, width=10_000)
    except (yaml.YAMLError, RecursionError):
        return  # PyYAML cannot write it: no user can hand it to us either
    path.write_text(text)
    try:
        load_benchmark_file(path)
    except Exception as exc:  # noqa: BLE001
        assert_ours(exc, path)


@SETTINGS
@given(data=st.data())
def test_llem_compare_of_any_two_results_exits_0_1_or_2(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("c")
    base = write_json(directory / "base.json", seed_result())
    candidate = write_json(directory / "candidate.json", mutated(seed_result(), data.draw))
    outcome = CliRunner().invoke(app, ["compare", str(base), str(candidate)])
    output = outcome.output + (outcome.stderr if outcome.stderr_bytes is not None else "")
    assert outcome.exit_code in (0, 1, 2), output
    assert "Internal error" not in output, output
    assert not isinstance(outcome.exception, Exception) or isinstance(outcome.exception, SystemExit), output
