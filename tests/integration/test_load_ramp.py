"""Load ramps (``openai.load``): one result per load point, counted over its steady window.

Against ``load_stub.LoadStub`` (a server with a known service model) the numbers are compared
with their closed forms: where it saturates, its goodput and SLO attainment, the requests the
steady window keeps, and, with a fake GPU of constant power, the energy of the cut window.
Against a real ``transformers serve`` a ramp runs end to end through ``llem run``, chat included.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from llem_helpers import result_files
from load_stub import LoadStub
from serving import free_port

from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.core.runner import measure
from llenergymeasure.energy import hardware
from llenergymeasure.results.model import ExperimentResult
from tests.fakes.pynvml import FakeGpu, FakeNvml

pytestmark = pytest.mark.slow

WATTS = 250.0


@pytest.fixture
def constant_gpu():
    """One fake GPU drawing WATTS, its energy counter rising with it."""
    hardware.set_pynvml(FakeNvml([FakeGpu("GPU-aaaaaaaa-1", counter_mj=lambda t: int(t * WATTS * 1000),
                                          power_w=lambda t: WATTS)]))
    yield
    hardware.set_pynvml(None)


def ramp_file(path: Path, stub: LoadStub, *, rates: str, duration_s: float, extra: str = "", openai: str = "") -> Path:
    path.write_text(f"""\
model: {stub.model}
backend: openai
n: 8
dataset: builtin
warmup: {{enabled: false}}
baseline: {{enabled: false}}
openai:
  base_url: {stub.base_url}
  load: {{rates: {rates}, duration_s: {duration_s}}}
{openai}{extra}""")
    return path


def saved(directory: Path) -> dict[str, ExperimentResult]:
    results = [ExperimentResult.load(path) for path in result_files(directory)]
    return {result.name: result for result in results}


def test_saturation_is_found_at_the_first_rate_past_the_servers_capacity(run_llem, tmp_path):
    # One request at a time, 0.02 s prefill and 7 gaps of 0.01 s: a capacity of 11 requests/s.
    with LoadStub(workers=1, prefill_s=0.02, token_s=0.01, tokens=8) as stub:
        assert 1 / stub.service_s == pytest.approx(11.1, abs=0.1)
        path = ramp_file(tmp_path / "llem_ramp.yaml", stub, rates="[2.5, 5, 20, 40]", duration_s=3,
                         extra="energy: {source: none}\n")
        done = run_llem("run", str(path), "-o", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    results = saved(tmp_path / "out")
    assert sorted(results) == sorted(["ramp[rate=2.5]", "ramp[rate=5]", "ramp[rate=20]"])
    assert not results["ramp[rate=2.5]"].load_point["saturated"]
    assert not results["ramp[rate=5]"].load_point["saturated"]
    saturated = results["ramp[rate=20]"].load_point
    assert saturated["saturated"] and saturated["saturation"]
    assert saturated["achieved_rate"] < 0.8 * 20  # it served what it could, not what was offered
    assert "skipped: the ramp stopped at ramp[rate=20] (saturated; until: saturation)" in done.stdout
    assert "20/s offered" in done.stdout and "saturated" in done.stdout


def test_the_steady_window_keeps_the_steady_requests_and_its_energy_is_watts_times_seconds(tmp_path, constant_gpu):
    with LoadStub(prefill_s=0.05, token_s=0.02, tokens=6) as stub:
        path = ramp_file(tmp_path / "llem_ramp.yaml", stub, rates="[8]", duration_s=3,
                         openai="  gpus: [0]\nenergy: {source: nvml}\n")
        (point,) = load_benchmark_file(path).experiments
        result = measure(point.config)
        arrivals = len(stub.arrivals)
    load = result.load_point
    requests = load["requests"]
    # Every ramp and steady request reached the server and ended; a drain request may have been cancelled
    # before it got there. The numbers are the steady requests'.
    assert requests["ramp"] + requests["steady"] <= arrivals <= requests["ramp"] + requests["steady"] + requests["drain"]
    assert requests["ramp"] >= 1 and requests["steady"] >= 10 and requests["timed_out"] == 0
    assert len(result.repeats[0].latencies_s) == requests["steady"]
    assert 0 < load["steady_start_s"] < load["steady_end_s"] <= load["window_s"]
    assert load["steady_end_s"] - load["steady_start_s"] == pytest.approx(3.0)
    # The cut window's energy: the GPU's watts times the window's seconds.
    assert result.metrics.energy_j == pytest.approx(WATTS * 3.0, rel=0.01)
    assert result.metrics.duration_s == pytest.approx(3.0)
    # The timeline marks the steady window inside the measured one, at the cut points.
    phases = result.timeline["phases"]
    window = next(p for p in phases if p["name"] == "window")
    steady = next(p for p in phases if p["name"] == "steady")
    assert steady["start"] - window["start"] == pytest.approx(load["steady_start_s"], abs=1e-3)
    assert steady["end"] - window["start"] == pytest.approx(load["steady_end_s"], abs=1e-3)
    assert not load["saturated"]


def test_a_servers_own_prometheus_counts_are_recorded_beside_ours(tmp_path):
    with LoadStub(prefill_s=0.05, token_s=0.02, tokens=6, metrics=True) as stub:
        path = ramp_file(tmp_path / "llem_ramp.yaml", stub, rates="[inf]", duration_s=6,
                         openai="  concurrency: 3\nenergy: {source: none}\n")
        (point,) = load_benchmark_file(path).experiments
        result = measure(point.config)
    server = result.load_point["server"]
    assert server["software"] == "vllm"
    # The stub counts a request as running while it streams: 0.1 s of its 0.15 s, for each of the 3 slots.
    assert server["running_mean"] == pytest.approx(3 * 0.1 / 0.15, abs=0.4)
    # Each end of the window is read between two polls 0.5 s apart (more on a loaded machine): close, not exact.
    assert server["generated_tokens"] == pytest.approx(server["our_tokens"], rel=0.25)
    assert server["our_tokens"] == pytest.approx(result.output_tokens, abs=1)
    assert not any(w.code == "server_tokens_disagree" for w in result.measurement_warnings)


def test_goodput_and_slo_attainment_match_the_closed_form(tmp_path):
    # Every 4th prompt streams slowly (0.12 s a token) and misses itl_s_p99 <= 0.06 s; the others
    # stream at 0.02 s. A closed loop of 4 sends the prompts in order, so 3 in 4 requests meet the
    # SLO, and each of the 4 slots serves 1 / (mean latency) requests a second.
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": f"prompt {i}{' SLOW' if i % 4 == 3 else ''}"}) + "\n"
                               for i in range(8)))
    with LoadStub(prefill_s=0.1, token_s=0.02, tokens=10, slow_token_s=0.12) as stub:
        path = ramp_file(tmp_path / "llem_ramp.yaml", stub, rates="[inf]", duration_s=10,
                         openai="  concurrency: 4\nenergy: {source: none}\nslo: {itl_s_p99: 0.06}\n")
        text = path.read_text().replace("dataset: builtin", f"dataset: {dataset}")
        path.write_text(text)
        (point,) = load_benchmark_file(path).experiments
        result = measure(point.config)
        fast, slow = 0.1 + 9 * 0.02, 0.1 + 9 * 0.12
    throughput = 4 / (0.75 * fast + 0.25 * slow)
    metrics = result.metrics
    assert metrics.slo_attainment == pytest.approx(0.75, rel=0.05)
    assert result.load_point["achieved_rate"] == pytest.approx(throughput, rel=0.05)
    assert metrics.goodput_requests_per_s == pytest.approx(0.75 * throughput, rel=0.05)
    assert result.load_point["concurrency_mean"] == pytest.approx(4, rel=0.05)
    assert result.load_point["offered_rate"] is None and result.load_point["concurrency"] == 4
    assert result.load_point["slo_met"] is False  # a quarter of the requests miss it: so does its p99
    assert any("itl_s_p99" in missed for missed in result.load_point["slo_missed"])


def test_a_request_over_the_timeout_is_a_timed_out_request_of_the_point_not_an_error(tmp_path):
    # One at a time, 0.3 s each, offered 10 a second: the queue grows past openai.timeout_s.
    with LoadStub(workers=1, prefill_s=0.3, token_s=0.001, tokens=2) as stub:
        path = ramp_file(tmp_path / "llem_ramp.yaml", stub, rates="[10]", duration_s=2,
                         openai="  timeout_s: 1.5\nenergy: {source: none}\nslo: {ttft_s_p99: 1.0}\n")
        (point,) = load_benchmark_file(path).experiments
        result = measure(point.config)
    load = result.load_point
    assert load["saturated"] and load["requests"]["timed_out"] > 0
    assert load["slo_met"] is False and result.metrics.slo_attainment < 1
    assert any(w.code == "requests_timed_out" for w in result.measurement_warnings)


# --- the gate at the SLO point, through pytest ---------------------------------------------------------------------

CONSTANT_POWER_PLUGIN = """
from llenergymeasure.energy import hardware
from tests.fakes.pynvml import FakeGpu, FakeNvml

hardware.set_pynvml(FakeNvml([FakeGpu("GPU-aaaaaaaa-1", counter_mj=lambda t: int(t * 100_000),
                                      power_w=lambda t: 100.0)]))
"""

SLO_RAMP = """\
name: ramp
model: stub-model
backend: openai
n: 8
dataset: builtin
warmup: {{enabled: false}}
baseline: {{enabled: false}}
energy: {{source: nvml}}
openai:
  base_url: {base_url}
  gpus: [0]
  load: {{rates: [0.6, 1.8, 8], until: all, duration_s: 8}}
slo: {{itl_s_p50: 0.08}}
expect:
  joules_per_token: {{max: 10, at: slo}}
"""


def test_a_gate_at_the_slo_point_fails_when_the_server_gets_20_percent_slower_per_token(pytester, monkeypatch):
    """Each token takes token_s x (1 + 0.3 x the other requests streaming). At 1.8 requests/s a
    request streams beside one or two others: about 0.066 s a token, within itl_s_p50 0.08 s; at
    0.6/s mostly alone. 20% slower (0.06 s), 1.8/s gives about 0.096 s and 0.6/s 0.072 s: the SLO
    point falls to 0.6/s, where the fake GPU's 100 W are spread over a third of the tokens: J/token
    there is past 10."""
    from tests.plugin.conftest import REPO

    pytester.makepyfile(constpower=CONSTANT_POWER_PLUGIN)
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{pytester.path}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    outcomes = {}
    for token_s in (0.05, 0.06):
        with LoadStub(prefill_s=0.05, token_s=token_s, tokens=10, contention=0.3) as stub:
            (pytester.path / "llem_ramp.yaml").write_text(SLO_RAMP.format(base_url=stub.base_url))
            outcomes[token_s] = pytester.runpytest_subprocess("-p", "constpower", "-p", "no:cacheprovider", "-rA",
                                                              "llem_ramp.yaml", timeout=300)
    fast, slow = outcomes[0.05], outcomes[0.06]
    fast.assert_outcomes(passed=4)
    fast.stdout.fnmatch_lines(["*PASSED*ramp?slo?*"])
    fast.stdout.fnmatch_lines(["*ramp?rate=1.8?*1.8/s offered, * served, * in flight*"])  # the results table
    slow.assert_outcomes(passed=3, failed=1)
    text = slow.stdout.str()
    assert "at the SLO point ramp[rate=0.6]" in text
    assert "ramp[rate=1.8] missed itl_s_p50" in text
    assert re.search(r"joules_per_token \d+(\.\d+)? > max 10", text), text


def test_a_ramp_against_transformers_serve_gives_a_result_per_point_over_chat(run_llem, tiny_server, tmp_path):
    path = tmp_path / "llem_serve.yaml"
    path.write_text(f"""\
model: {tiny_server.model_id}
backend: openai
n: 4
dataset: builtin
max_output_tokens: 8
warmup: {{n_warmup: 1}}
openai:
  base_url: {tiny_server.base_url}
  endpoint: chat
  concurrency: 2
  load: {{rates: [1, 4, inf], until: saturation, duration_s: 3}}
""")
    done = run_llem("run", str(path), "-o", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    results = saved(tmp_path / "out")
    order = ["serve[rate=1]", "serve[rate=4]", "serve[rate=inf]"]
    ran = [name for name in order if name in results]
    first_saturated = next((name for name in ran if results[name].load_point["saturated"]), None)
    assert ran == order[: order.index(first_saturated) + 1] if first_saturated else ran == order
    for name in ran:
        result = results[name]
        load = result.load_point
        assert 0 < load["steady_start_s"] < load["steady_end_s"] <= load["window_s"]
        assert load["achieved_rate"] > 0 and load["concurrency_mean"] > 0
        assert result.output_tokens > 0 and result.config["openai"]["endpoint"] == "chat"
        assert result.metrics.ttft_s_p99 is not None
    assert math.isclose(results["serve[rate=1]"].load_point["offered_rate"], 1.0)
    assert "1/s offered" in done.stdout


def test_a_regression_gate_at_the_slo_point_judges_j_per_token_where_the_slo_point_falls(pytester, monkeypatch):
    """``regression: {joules_per_token: {threshold: 20%, at: slo}}``: the ramp's ``[slo]`` item keeps a
    history of J/token at its SLO point, whichever rate that is; when the SLO point falls from 1.8 to
    0.6 requests/s (each token 20% slower), J/token there is about three times the history's."""
    from tests.plugin.conftest import REPO

    pytester.makepyfile(constpower=CONSTANT_POWER_PLUGIN)
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{pytester.path}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ramp = (SLO_RAMP.replace("rates: [0.6, 1.8, 8]", "rates: [0.6, 1.8]")
            .replace("expect:\n  joules_per_token: {{max: 10, at: slo}}\n",
                     "repeats: 2\nregression:\n  joules_per_token: {{threshold: 20%, at: slo}}\n"))
    sessions = [(0.05, ["--llem-save-baseline"]), (0.05, ["--llem-baseline", "auto", "--llem-save-baseline"]),
                (0.06, ["--llem-baseline", "auto"])]
    outcomes = []
    port = free_port()  # the same server URL every session: the same config, so one history
    for token_s, options in sessions:
        with LoadStub(prefill_s=0.05, token_s=token_s, tokens=10, contention=0.3, port=port) as stub:
            (pytester.path / "llem_ramp.yaml").write_text(ramp.format(base_url=stub.base_url))
            outcomes.append(pytester.runpytest_subprocess("-p", "constpower", "-p", "no:cacheprovider",
                                                          "llem_ramp.yaml", *options, timeout=300))
    saved, second, slower = outcomes
    saved.assert_outcomes(passed=3)
    saved.stdout.fnmatch_lines(["llem: baseline of 3 item(s) (3 passed) saved to *"])
    second.assert_outcomes(passed=3)
    slower.assert_outcomes(passed=2, failed=1)
    text = slower.stdout.str()
    assert "at the SLO point ramp[rate=0.6]" in text and "ramp[rate=1.8] missed itl_s_p50" in text
    assert re.search(r"joules_per_token \S+ vs \S+ \(\+\d+\.\d%.*> 20% threshold: regressed", text), text
    slower.stdout.fnmatch_lines(["FAILED llem_ramp.yaml::ramp[[]slo[]]*"])
