"""Load ramps without a server: the config keys, a ramp as a study of load points, ``at: slo``
gates, the steady window's arithmetic, the SLO point, and chat datasets."""

from __future__ import annotations

import pytest

from llenergymeasure.backends.base import BatchOutput
from llenergymeasure.backends.openai import request_body
from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.datasets.jsonl import prompts_from_rows
from llenergymeasure.exceptions import ConfigError
from llenergymeasure.serving.load import LoadRun, saturation
from llenergymeasure.serving.slo import slo_point
from llenergymeasure.serving.steady_state import steady_window, tokens_between

RAMP = """\
model: m
backend: openai
openai:
  load: {rates: [0.5, 2, inf], duration_s: 30}
slo: {ttft_s_p99: 2.0, itl_s_p99: 0.2}
"""


def write(tmp_path, text, name="llem_ramp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_ramp_is_a_study_of_one_load_point_per_rate_in_order(tmp_path):
    study = load_benchmark_file(write(tmp_path, RAMP))
    assert [e.id for e in study.experiments] == ["ramp[rate=0.5]", "ramp[rate=2]", "ramp[rate=inf]"]
    assert {e.ramp for e in study.experiments} == {"ramp"}
    assert [e.config.openai.load.rates for e in study.experiments] == [[0.5], [2.0], ["inf"]]
    assert len({e.config.config_hash() for e in study.experiments}) == 3
    assert study.experiments[0].config.slo.bounds() == [("ttft_s", 99, 2.0), ("itl_s", 99, 0.2)]


def test_a_config_without_a_ramp_keeps_its_hash():
    plain = load_experiment_config(cli_overrides={"model": "m", "backend": "openai"}, user_config_defaults={})
    dumped = plain.model_dump(mode="json")
    assert "slo" not in dumped and "load" not in dumped["openai"] and "endpoint" not in dumped["openai"]


@pytest.mark.parametrize(("text", "message"), [
    ("openai: {load: {rates: [4, 1]}}", "rates must rise (a ramp, lightest load first): 1 comes after 4"),
    ("openai: {load: {rates: []}}", "openai.load.rates"),
    ("openai: {load: {rates: [-1]}}", "greater than 0"),
    ("openai: {load: {rates: [1], until: never}}", "openai.load.until"),
    ("openai: {load: {rates: [1]}, request_rate: 2}", "remove openai.request_rate"),
    ("openai: {endpoint: chats}", "openai.endpoint"),
    ("slo: {}", "give at least one bound"),
    ("slo: {ttft_s_p95: 1}", "unknown key 'slo.ttft_s_p95'"),
])
def test_a_bad_ramp_or_slo_is_a_config_error_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=None) as caught:
        load_benchmark_file(write(tmp_path, f"model: m\nbackend: openai\n{text}\n"))
    assert message in str(caught.value)


def test_slo_needs_a_served_model(tmp_path):
    with pytest.raises(ConfigError, match="slo: latency objectives are for a served model"):
        load_benchmark_file(write(tmp_path, "model: m\nslo: {ttft_s_p99: 1}\n"))


def test_an_at_slo_gate_needs_a_ramp_with_an_slo(tmp_path):
    with pytest.raises(ConfigError, match=r"expect.joules_per_token.at: slo reads the metric at a load ramp's SLO"):
        load_benchmark_file(write(tmp_path, "model: m\nexpect: {joules_per_token: {max: 1, at: slo}}\n"))
    with pytest.raises(ConfigError, match="must be 'slo'"):
        load_benchmark_file(write(tmp_path, RAMP + "expect: {joules_per_token: {max: 1, at: best}}\n"))
    study = load_benchmark_file(write(tmp_path, RAMP + "expect: {joules_per_token: {max: 1, at: slo}}\n"))
    assert study.expect["joules_per_token"].at == "slo"


def test_chat_sends_the_prompt_as_the_users_message():
    config = load_experiment_config(cli_overrides={"model": "m", "backend": "openai", "openai.endpoint": "chat"},
                                    user_config_defaults={})
    body = request_body(config, "hello")
    assert body["messages"] == [{"role": "user", "content": "hello"}] and "prompt" not in body


def test_a_chat_dataset_gives_its_first_user_turn():
    rows = [{"conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "hi there"},
                               {"from": "gpt", "value": "hello"}]},
            {"messages": [{"role": "user", "content": "second"}]},
            {"conversations": [{"from": "gpt", "value": "no user turn"}]}]
    assert prompts_from_rows(rows[:1] + rows[2:], "d.jsonl") == ["hi there"]
    assert prompts_from_rows(rows[1:2], "d.jsonl") == ["second"]


def output(sent, done, tokens=4, ttft=0.1):
    times = [sent + ttft + (done - sent - ttft) * i / max(tokens - 1, 1) for i in range(tokens)]
    return BatchOutput(input_tokens=1, output_tokens=tokens, latency_s=done - sent, ttft_s=ttft, sent_at=sent,
                       token_times=times, done_at=done)


def test_the_steady_window_counts_ramp_steady_and_drain_requests_and_the_tokens_inside_it():
    outputs = [output(0.0, 1.0), output(0.5, 1.5), output(1.2, 2.2), output(2.0, 3.0), output(2.9, 3.9)]
    run = LoadRun(rate=2.0, concurrency=1, opened=0.0, steady_start=1.0, steady_end=3.0, closed=4.0,
                  outputs=outputs, cancelled=[3.5], timed_out=[])
    window = steady_window(run)
    assert (window.ramp_requests, window.steady_requests, window.drain_requests) == (2, 3, 1)
    assert [o.sent_at for o in window.steady] == [1.2, 2.0, 2.9]
    assert window.completed == 3  # ended in [1, 3): at 1.0, 1.5 and 2.2
    assert window.achieved_rate == pytest.approx(1.5)
    # Tokens: each request's usage spread over its pieces of text, those inside [1, 3) counted.
    assert window.tokens == pytest.approx(sum(tokens_between(o, 1.0, 3.0) for o in outputs))
    assert tokens_between(outputs[2], 1.0, 3.0) == 4 and tokens_between(outputs[4], 1.0, 3.0) == 0
    assert window.concurrency_mean == pytest.approx((0.5 + 1.0 + 1.0 + 0.1) / 2.0)  # each life inside [1, 3]


def test_a_point_whose_in_flight_count_grows_past_its_fluctuation_is_saturated():
    steady = [output(i * 0.1, i * 0.1 + 0.5) for i in range(40)]
    assert saturation(10.0, steady, 5, 5, 5.0, 0, 0.0, 4.0).saturated is False
    grown = saturation(10.0, steady, 5, 40, 20.0, 0, 0.0, 4.0)
    assert grown.saturated and "arrived faster than they ended" in grown.why
    rising = [output(i * 0.1, i * 0.1 + 1, ttft=0.1 + i * 0.05) for i in range(40)]
    assert "time to first token grew" in saturation("inf", rising, 4, 4, 4.0, 0, 0.0, 4.0).why
    noisy = [output(i * 0.1, i * 0.1 + 1, ttft=0.1 + 0.05 * (i % 7)) for i in range(40)]  # no trend
    assert saturation("inf", noisy, 4, 4, 4.0, 0, 0.0, 4.0).saturated is False
    assert "did not end within" in saturation(1.0, steady, 0, 0, 1.0, 2, 0.0, 4.0).why


def test_the_slo_point_is_the_highest_point_that_meets_the_slo():
    points = [{"achieved_rate": 1, "slo_met": True}, {"achieved_rate": 4, "slo_met": True},
              {"achieved_rate": 6, "slo_met": False}]
    assert slo_point(points) is points[1]
    assert slo_point([{"achieved_rate": 1, "slo_met": False}]) is None


def test_a_servers_metrics_are_read_as_sums_of_their_series_and_odd_values_dropped():
    from llenergymeasure.serving.server_metrics import metrics_url, parse, server_counts

    assert metrics_url("https://llm.example.com:8443/v1") == "https://llm.example.com:8443/metrics"
    text = ("# TYPE vllm:num_requests_running gauge\n"
            'vllm:num_requests_running{engine="0"} 3\nvllm:num_requests_running{engine="1"} 2\n'
            "# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total 100\n"
            "# TYPE other gauge\nother NaN\n")
    assert parse(text) == {"vllm:num_requests_running": 5.0, "vllm:generation_tokens_total": 100.0}
    assert parse("vllm:num_requests_running -4\nvllm:generation_tokens_total 1e300\n") is None
    assert parse("<html>not metrics</html>") is None
    polls = [(t, {"vllm:num_requests_running": 4.0 if 0.5 <= t < 1.5 else 2.0, "vllm:generation_tokens_total": 100 * t})
             for t in (0.4, 0.6, 1.4, 1.6)]
    record, warnings = server_counts(polls, 0.5, 1.5, 100.0)
    assert record == {"software": "vllm", "running_mean": 4.0, "generated_tokens": pytest.approx(100.0),
                      "our_tokens": 100.0}
    assert warnings == []
    # 50 counted against 100 generated: past 10% plus the 20 + 20 tokens the polls around each end leave open.
    _, warnings = server_counts(polls, 0.5, 1.5, 50.0)
    assert [code for code, _ in warnings] == ["server_tokens_disagree"]
    _, warnings = server_counts(polls, 0.5, 1.5, 60.0)
    assert warnings == []
    assert server_counts([], 0.0, 1.0, 10.0) == (None, [])


def test_the_drain_waits_for_the_steady_requests_without_spinning():
    """After the window closes only a request ending can finish the point: the dispatcher sleeps
    until one does (it once polled with no timeout and burned a core through the drain)."""
    import asyncio
    import time

    from llenergymeasure.serving.load import drive

    async def send(position: int, prompt: int) -> BatchOutput:
        start = time.perf_counter()
        await asyncio.sleep(0.3 if position == 0 else 2.0)  # the first ends soon, the rest drain for long
        end = time.perf_counter()
        return BatchOutput(1, 1, end - start, 0.01, sent_at=start, token_times=[end], done_at=end)

    cpu = time.process_time()
    run = asyncio.run(drive(send, n_prompts=4, rate=4.0, concurrency=1, duration_s=0.5, seed=1, timeout_s=30))
    cpu = time.process_time() - cpu
    assert run.closed - run.steady_end > 1.0  # it did wait for the steady requests
    assert all(o.done_at <= run.closed for o in run.outputs)
    assert cpu < 0.25, f"{cpu:.2f} s of CPU in a {run.closed - run.opened:.1f} s load point"
