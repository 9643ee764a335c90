"""expect: gates — absolute bounds on a result's headline metrics, and the text a user reads."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from llenergymeasure.config.benchmark_file import Bound, load_benchmark_file
from llenergymeasure.results.gates import check_expect
from llenergymeasure.results.metrics import ENERGY_METRICS, METRIC_NAMES, SLO_METRICS, compute_metrics
from llenergymeasure.results.model import EnvironmentSnapshot, ExperimentResult, RepeatResult

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def result_with(*, energy_j: float | None, output_tokens: int = 1000, duration_s: float = 10.0,
                n_prompts: int = 10, reason: str | None = None) -> ExperimentResult:
    metrics = compute_metrics(duration_s=duration_s, output_tokens=output_tokens, n_prompts=n_prompts,
                              latencies_s=[0.2, 0.4], ttfts_s=[0.01], energy_j=energy_j)
    repeat = RepeatResult(index=0, n_prompts=n_prompts, input_tokens=10, output_tokens=output_tokens,
                          latencies_s=[0.2, 0.4], ttfts_s=[0.01], metrics=metrics)
    return ExperimentResult.from_repeats(
        [repeat], experiment_id="g-00000000-20260101T000000", name="g", config={}, config_hash="0" * 16,
        started_at=NOW, finished_at=NOW,
        environment=EnvironmentSnapshot(llem_version="0", python="3", platform="p", device="cpu"),
        energy_source="none" if energy_j is None else "nvml_counter",
        energy_unavailable_reason=reason,
    )


def test_max_gate_fails_with_value_limit_and_percentage():
    result = result_with(energy_j=412.0)  # 0.412 J/token
    [verdict] = check_expect(result, {"joules_per_token": Bound(max=0.4)})
    assert verdict.passed is False
    assert verdict.metric == "joules_per_token"
    assert verdict.value == pytest.approx(0.412)
    assert verdict.text == "joules_per_token 0.412 > max 0.4 (+3.0%)"


def test_max_gate_passes_within():
    [verdict] = check_expect(result_with(energy_j=300.0), {"joules_per_token": Bound(max=0.4)})
    assert verdict.passed is True
    assert verdict.text == "joules_per_token 0.3 within max 0.4"


def test_value_equal_to_the_max_passes():
    [verdict] = check_expect(result_with(energy_j=400.0), {"joules_per_token": Bound(max=0.4)})
    assert verdict.passed is True


def test_min_gate_fails_with_negative_percentage():
    result = result_with(energy_j=1.0, output_tokens=400, duration_s=10.0)  # 40 tokens/s
    [verdict] = check_expect(result, {"tokens_per_second": Bound(min=50)})
    assert verdict.passed is False
    assert verdict.text == "tokens_per_second 40 < min 50 (-20.0%)"


def test_min_gate_passes():
    [verdict] = check_expect(result_with(energy_j=1.0, output_tokens=600), {"tokens_per_second": Bound(min=50)})
    assert verdict.passed is True
    assert verdict.text == "tokens_per_second 60 within min 50"


def test_min_and_max_together():
    bound = Bound(min=0.1, max=0.5)
    [ok] = check_expect(result_with(energy_j=300.0), {"joules_per_token": bound})
    assert ok.passed and ok.text == "joules_per_token 0.3 within min 0.1 max 0.5"
    [low] = check_expect(result_with(energy_j=50.0), {"joules_per_token": bound})
    assert not low.passed and low.text == "joules_per_token 0.05 < min 0.1 (-50.0%)"
    [high] = check_expect(result_with(energy_j=600.0), {"joules_per_token": bound})
    assert not high.passed and high.text == "joules_per_token 0.6 > max 0.5 (+20.0%)"


def test_zero_limit_has_no_percentage():
    [verdict] = check_expect(result_with(energy_j=5.0), {"energy_j": Bound(max=0)})
    assert not verdict.passed
    assert verdict.text == "energy_j 5 > max 0"


def test_one_verdict_per_gate_in_order():
    gates = {"tokens_per_second": Bound(min=1), "joules_per_token": Bound(max=0.001), "energy_j": Bound(max=1e6)}
    verdicts = check_expect(result_with(energy_j=100.0), gates)
    assert [v.metric for v in verdicts] == list(gates)
    assert [v.passed for v in verdicts] == [True, False, True]
    assert check_expect(result_with(energy_j=100.0), {}) == []


def test_unmeasured_energy_metric_fails_with_the_reason():
    result = result_with(energy_j=None, reason="no NVML and no RAPL on this machine")
    [verdict] = check_expect(result, {"joules_per_token": Bound(max=0.4)})
    assert verdict.passed is False
    assert verdict.value is None
    assert verdict.text == "joules_per_token not measured (no NVML and no RAPL on this machine)"


def test_unmeasured_metric_without_reason():
    [verdict] = check_expect(result_with(energy_j=100.0), {"peak_memory_mb": Bound(max=100)})
    assert verdict.passed is False
    assert verdict.text == "peak_memory_mb not measured"


def test_unmeasured_non_energy_metric_does_not_borrow_the_energy_reason():
    result = result_with(energy_j=None, reason="no energy source")
    [verdict] = check_expect(result, {"peak_memory_mb": Bound(max=100)})
    assert verdict.text == "peak_memory_mb not measured"


def test_unmeasured_wh_per_1000_queries_gives_the_energy_reason():
    result = result_with(energy_j=None, reason="no energy source")
    [verdict] = check_expect(result, {"wh_per_1000_queries": Bound(max=1)})
    assert verdict.passed is False
    assert verdict.text == "wh_per_1000_queries not measured (no energy source)"


def test_every_energy_metric_is_a_metric_and_is_unmeasured_without_energy():
    assert ENERGY_METRICS <= set(METRIC_NAMES)
    metrics = compute_metrics(duration_s=1.0, output_tokens=10, n_prompts=2, latencies_s=[1.0], ttfts_s=[0.1], itls_s=[0.01],
                              energy_j=None)
    unmeasured = {name for name in METRIC_NAMES if getattr(metrics, name) is None}
    assert unmeasured == ENERGY_METRICS | SLO_METRICS | {"peak_memory_mb"}


def test_gates_from_a_benchmark_file(tmp_path):
    path = tmp_path / "llem_g.yaml"
    path.write_text("model: gpt2\nexpect:\n  joules_per_token: {max: 0.4}\n  tokens_per_second: {min: 50}\n")
    study = load_benchmark_file(path, user_config_defaults={})
    verdicts = check_expect(result_with(energy_j=412.0, output_tokens=1000, duration_s=10.0), study.expect)
    assert [(v.metric, v.passed) for v in verdicts] == [("joules_per_token", False), ("tokens_per_second", True)]


def test_suspect_energy_fails_every_energy_gate_with_the_reason_but_not_the_others():
    from llenergymeasure.results.model import MeasurementWarning

    result = result_with(energy_j=100.0).model_copy(update={
        "energy_suspect": True,
        "measurement_warnings": [MeasurementWarning(code="energy_disagrees", message="GPU 0 (H100): counter vs power")],
    })
    verdicts = check_expect(result, {"joules_per_token": Bound(max=1.0), "tokens_per_second": Bound(min=1)})
    assert [v.passed for v in verdicts] == [False, True]
    assert verdicts[0].text == "joules_per_token 0.1 not trusted: energy suspect (GPU 0 (H100): counter vs power)"
