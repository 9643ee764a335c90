"""Results (metrics, medians, atomic save/load), gates, datasets and the VRAM estimate."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from llenergymeasure.config.benchmark_file import Bound
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.core.vram import estimate_vram
from llenergymeasure.datasets import load_prompts
from llenergymeasure.exceptions import ConfigError, PreFlightError
from llenergymeasure.results.gates import check_expect
from llenergymeasure.results.metrics import METRIC_NAMES, Metrics, compute_metrics
from llenergymeasure.results.model import EnvironmentSnapshot, ExperimentResult, RepeatResult


def repeat(index: int, energy: float | None, duration: float = 2.0, tokens: int = 100) -> RepeatResult:
    metrics = compute_metrics(duration_s=duration, output_tokens=tokens, n_prompts=10, latencies_s=[1.0, 3.0],
                              ttfts_s=[0.1], energy_j=energy, baseline_power_w=20.0 if energy else None)
    return RepeatResult(index=index, n_prompts=10, input_tokens=50, output_tokens=tokens,
                        latencies_s=[1.0, 3.0], ttfts_s=[0.1], metrics=metrics)


def result(repeats: list[RepeatResult]) -> ExperimentResult:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return ExperimentResult.from_repeats(
        repeats, experiment_id="x-1234abcd-20260101T000000", name="x", config={"model": "m"}, config_hash="1234abcd",
        started_at=now, finished_at=now, environment=EnvironmentSnapshot(llem_version="0", python="3", platform="p",
                                                                           device="cpu"),
        energy_source="nvml_counter",
    )


def test_metric_definitions():
    m = repeat(0, energy=50.0).metrics
    assert m.joules_per_token == 0.5
    assert m.net_energy_j == 10.0 and m.net_joules_per_token == 0.1  # 50 J - 20 W x 2 s
    assert m.tokens_per_second == 50.0
    assert m.wh_per_1000_queries == pytest.approx(50 / 10 * 1000 / 3600)
    assert m.latency_s_p50 == 2.0 and m.latency_s_p95 == pytest.approx(2.9)
    assert repeat(0, energy=30.0).metrics.net_energy_j == 0.0  # clamped
    assert repeat(0, energy=None).metrics.joules_per_token is None
    assert list(Metrics.model_fields) == list(METRIC_NAMES)


def test_headline_is_the_median_and_stats_need_several_repeats():
    r = result([repeat(0, 40.0), repeat(1, 50.0), repeat(2, 90.0)])
    assert r.metrics.energy_j == 50.0
    assert r.stats["energy_j"].n == 3 and r.stats["energy_j"].ci95_low < 60.0 < r.stats["energy_j"].ci95_high
    assert result([repeat(0, 40.0)]).stats == {}


def test_save_is_atomic_and_load_round_trips(tmp_path):
    original = result([repeat(0, 40.0)])
    path = original.save(tmp_path)
    assert path.name == "x-1234abcd-20260101T000000.json"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    assert ExperimentResult.load(path) == original
    original.save(tmp_path)  # never replaces: the second save is numbered
    assert {p.name for p in tmp_path.iterdir()} == {path.name, "x-1234abcd-20260101T000000-2.json"}


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not a readable result file"),
    (json.dumps({"schema_version": 99}), "schema_version 99 is not 1"),
    (json.dumps({"schema_version": 1}), "not a valid result"),
])
def test_load_rejects_bad_files_naming_them(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        ExperimentResult.load(path)
    assert str(path) in str(info.value)


def test_expect_gates():
    r = result([repeat(0, 41.2)])  # 0.412 J/token
    [fail] = check_expect(r, {"joules_per_token": Bound(max=0.4)})
    assert not fail.passed and fail.text == "joules_per_token 0.412 > max 0.4 (+3.0%)"
    [ok] = check_expect(r, {"tokens_per_second": Bound(min=10)})
    assert ok.passed
    [unmeasured] = check_expect(result([repeat(0, None)]), {"joules_per_token": Bound(max=1)})
    assert not unmeasured.passed and "not measured" in unmeasured.text


def test_datasets(tmp_path):
    assert len(load_prompts("builtin", 100)) == 100
    assert load_prompts("synthetic", 3, seed=1, input_tokens=7) == load_prompts("synthetic", 3, seed=1, input_tokens=7)
    assert load_prompts("synthetic", 3, seed=1, input_tokens=7) != load_prompts("synthetic", 3, seed=2, input_tokens=7)
    assert all(len(p.split()) == 7 for p in load_prompts("synthetic", 3, seed=1, input_tokens=7))
    (tmp_path / "q.jsonl").write_text('{"question": "a?", "id": 1}\n\n{"question": "b?", "id": 2}\n')
    assert load_prompts(str(tmp_path / "q.jsonl"), 2) == ["a?", "b?"]
    (tmp_path / "bad.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(PreFlightError, match="no prompt column found .* the file has body"):
        load_prompts(str(tmp_path / "bad.jsonl"), 1)


def test_aienergyscore_from_the_hf_cache_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    repo = tmp_path / "cache" / "datasets--AIEnergyScore--text_generation"
    snapshot = repo / "snapshots" / ("c" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c" * 40)
    (snapshot / "text_generation.csv").write_text("text,source\nfirst prompt,wiki\nsecond prompt,oscar\n")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    assert load_prompts("aienergyscore", 2) == ["first prompt", "second prompt"]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(PreFlightError, match="use 'dataset: builtin'"):
        load_prompts("aienergyscore", 2)


def test_vram_estimate_counts_parameters_from_safetensors(tiny_model):
    from safetensors import safe_open

    with safe_open(tiny_model / "model.safetensors", "np") as f:
        expected = sum(f.get_slice(k).get_shape()[0] * (f.get_slice(k).get_shape() + [1])[1] for k in f.keys())
    fp32 = estimate_vram(load_experiment_config(cli_overrides={"model": str(tiny_model), "precision": "fp32"},
                                                user_config_defaults={}))
    fp16 = estimate_vram(load_experiment_config(cli_overrides={"model": str(tiny_model), "precision": "fp16"},
                                                user_config_defaults={}))
    assert fp32.basis == "safetensors" and fp32.params == expected
    assert fp32.weights_gb == pytest.approx(2 * fp16.weights_gb)
    batch4 = estimate_vram(load_experiment_config(cli_overrides={"model": str(tiny_model), "pytorch.batch_size": 4},
                                                  user_config_defaults={}))
    batch1 = estimate_vram(load_experiment_config(cli_overrides={"model": str(tiny_model)}, user_config_defaults={}))
    assert batch4.kv_cache_gb == pytest.approx(4 * batch1.kv_cache_gb)
    assert estimate_vram(load_experiment_config(cli_overrides={"model": "nobody/uncached"},
                                                user_config_defaults={})) is None
