"""``llem``'s summaries never fail on a number: None, NaN, infinity, zero and negative values
print as "n/a" or as they are, whatever a result file holds."""

from __future__ import annotations

import math

import pytest

from llenergymeasure.cli.display import joules_per_token, print_result, summary_row, vram_text
from llenergymeasure.core.vram import VramEstimate
from llenergymeasure.results.metrics import METRIC_NAMES, Metrics
from llenergymeasure.results.stats import MetricStats
from llenergymeasure.results.tables import fmt
from tests.unit.result_builders import make_repeat, make_result

ODD = [None, math.nan, math.inf, -math.inf, 0.0, -0.25]


@pytest.mark.parametrize(("value", "text"), [
    (None, "n/a"), (math.nan, "n/a"), (math.inf, "n/a"), (-math.inf, "n/a"), (True, "n/a"), ("1", "n/a"),
    (0, "0"), (0.0, "0"), (-0.25, "-0.25"), (1234.5678, "1235"), (2, "2"),
])
def test_fmt(value, text):
    assert fmt(value) == text


def test_fmt_keeps_the_unit_of_a_number():
    assert fmt(0.5, unit="W") == "0.5 W"
    assert fmt(math.nan, unit="W") == "n/a"


@pytest.mark.parametrize("value", ODD)
def test_a_result_with_odd_numbers_prints(value, capsys):
    result = make_result([make_repeat(0, energy_j=1.0), make_repeat(1, energy_j=1.0)], co2_g=value,
                         config={"model": "tiny", "pytorch": {"batch_size": 0}})
    odd = Metrics(**{name: value for name in METRIC_NAMES})
    spread = MetricStats(n=2, median=0, mean=0, std=0, iqr=0, cv=value, ci95_low=0, ci95_high=0)
    result = result.model_copy(update={"metrics": odd, "stats": {"joules_per_token": spread}, "energy_suspect": True})

    print_result(result, [], None)
    row = summary_row("tiny", result, [], None)

    out = capsys.readouterr().out
    assert "joules per token" in out and "nan" not in out.lower().replace("n/a", "")
    if value is None or not math.isfinite(value):
        assert joules_per_token(result) == "unavailable" and row["J/token"].startswith("n/a")
    else:
        assert joules_per_token(result) == f"{value:.4g} J/token (suspect)"
        assert row["J/token"] == f"{value:.4g} (suspect)"


@pytest.mark.parametrize("value", ODD)
def test_a_vram_estimate_with_odd_numbers_prints(value):
    """The estimate's own numbers are floats (None is not one); the GPU's memory may be unknown."""
    weights = 1.0 if value is None else value
    estimate = VramEstimate(params=1_000_000, weights_gb=weights, kv_cache_gb=0.5, overhead_gb=0.1, basis="config.json")
    assert "GB" in vram_text(estimate, value)
    assert "GB" in vram_text(estimate, 80.0)
