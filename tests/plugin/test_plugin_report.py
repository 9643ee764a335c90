"""The plugin's summary rows and baseline selection, on the odd values a record can hold: no
cell fails on None, NaN, zero or a negative number, and only passed items with measured,
undoubted energy are baseline material."""

from __future__ import annotations

import math

import pytest

from llenergymeasure.results.tables import markdown_table, text_table
from pytest_llem.baselines import exclusion as baseline_exclusion, status
from pytest_llem.baselines import left_out
from pytest_llem.report import baseline_cell, dry_run_row, result_row

ODD = [None, math.nan, math.inf, 0.0, -0.25]


def _record(**fields):
    return {"nodeid": "llem_x.yaml::x", "file": "llem_x.yaml", "index": 0, "outcome": "passed",
            "energy_source": "nvml_counter", "baseline_entry": {}, "machine": {}, **fields}


@pytest.mark.parametrize("value", ODD)
def test_rows_and_tables_take_odd_numbers(value):
    regression = {"verdict": "inconclusive", "lines": [],
                  "changes": [{"metric": "joules_per_token", "change": value, "relative": True, "verdict": "inconclusive"},
                              {"metric": "tokens_per_second", "change": value, "relative": False, "verdict": "unchanged"}]}
    record = _record(joules_per_token=value, tokens_per_second=value, regression=regression, vram_estimate_gb=value)
    rows = [result_row(record, compared=True), dry_run_row({**record, "dry_run": True})]
    for row in rows:
        assert text_table([row]) and markdown_table([row])
    cell = rows[0]["vs baseline"]
    if value is None or not math.isfinite(value):
        assert rows[0]["J/token"] == "n/a" and rows[1]["VRAM estimate"] == "unavailable"
        assert cell == "joules_per_token inconclusive; tokens_per_second unchanged"  # no amount for an undefined change
    else:
        assert rows[0]["J/token"] == f"{value:.4g}"  # zero and negative shown as they are
        assert cell == f"joules_per_token {value:+.1%} inconclusive; tokens_per_second {value:+.4g} unchanged"


def test_a_baseline_cell_without_comparisons_says_the_verdict():
    assert baseline_cell(None) == "-"
    assert baseline_cell({"verdict": "unverified", "changes": []}) == "unverified"


def test_a_suspect_reading_is_marked_in_the_table():
    assert result_row(_record(joules_per_token=0.5, energy_suspect=True))["J/token"] == "0.5 (suspect)"


def test_every_item_measured_with_energy_is_baseline_material_with_its_status():
    records = [
        _record(joules_per_token=0.5),
        _record(joules_per_token=0.5, outcome="failed"),
        _record(outcome="skipped"),
        _record(joules_per_token=None),
        _record(joules_per_token=0.5, energy_suspect=True),
        _record(joules_per_token=0.0),  # a zero is the meter's to doubt (energy_suspect), not ours
        _record(joules_per_token=0.5, outcome="failed", regression={"verdict": "regressed"}),
        _record(joules_per_token=0.5, accepted=True),
    ]
    assert [baseline_exclusion(r) for r in records] == [
        None, None, "skipped", "without measured energy", None, None, None, None]
    assert left_out(records) == {"skipped": 1, "without measured energy": 1}
    saved = [r for r in records if baseline_exclusion(r) is None]
    assert [status(r) for r in saved] == ["passed", "failed", "passed", "passed", "regressed", "accepted"]
    dry = {key: value for key, value in _record(joules_per_token=None).items() if key != "baseline_entry"}
    assert baseline_exclusion(dry) == "not measured"
