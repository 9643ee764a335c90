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


def _study_row(energies: list[float], *, codes: tuple[str, ...] = (), suspect: bool = False, verdicts=()) -> str:
    """The study table's verdict cell for a result whose windows measured ``energies`` (J over 100
    tokens each), with the spread warnings the runner derives from them and any other ``codes``."""
    from llenergymeasure.results.model import MeasurementWarning
    from llenergymeasure.results.spread import spread_warnings

    repeats = [make_repeat(i, energy_j=joules) for i, joules in enumerate(energies)]
    warnings = [*spread_warnings([r.metrics.joules_per_token for r in repeats]),
                *((code, f"{code} happened") for code in codes)]
    result = make_result(repeats, measurement_warnings=[MeasurementWarning(code=c, message=m) for c, m in warnings],
                         energy_suspect=suspect)
    return summary_row("tiny[batch_size=4]", result, list(verdicts), None)["verdict"]


def test_the_study_table_names_what_puts_a_result_in_doubt_instead_of_ok():
    assert _study_row([10.0, 10.0, 10.0]) == "ok"
    assert _study_row([10.0, 35.0, 12.0, 30.0]) == "doubtful: high_variance"  # CV far past 5%
    assert _study_row([10.0, 10.0, 10.0], suspect=True, codes=("energy_zero",)) == "doubtful: suspect"
    assert _study_row([10.0, 10.0, 10.0], codes=("persistence_off", "throttled")) == "doubtful: throttled"
    assert _study_row([10.0, 10.0, 10.0], codes=("persistence_off", "counter_wrapped")) == "ok"  # said, not doubted


def test_a_gate_verdict_keeps_its_words_and_names_the_doubts():
    from llenergymeasure.config.benchmark_file import Bound
    from llenergymeasure.results.gates import check_expect

    result = make_result([make_repeat(i, energy_j=10.0) for i in range(3)])  # 0.1 J/token
    passed = check_expect(result, {"joules_per_token": Bound(max=1.0)})
    failed = check_expect(result, {"joules_per_token": Bound(max=0.01)})
    assert _study_row([10.0, 35.0, 12.0], verdicts=passed) == "PASS; doubtful: high_variance"
    row = _study_row([10.0, 35.0, 12.0], verdicts=failed)
    assert row.startswith("FAIL: joules_per_token ") and row.endswith("; doubtful: high_variance")
