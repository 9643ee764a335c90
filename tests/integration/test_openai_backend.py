"""``backend: openai``: ``llem`` measuring a real OpenAI-compatible server, as a user runs it.

The server is ``transformers serve`` on the tiny model (one per module, ``tiny_server``; the test
that kills a server mid-run starts its own). Tokens must be the server's own count (its
``usage``), energy the CPU estimate of the server's processes (this machine has no counters),
and every failure an exit 1 that names the request or the URL, quickly. The stub server
(``serving.StubServer``) stands in only for what a real server will not do on demand: a 500, an
error mid-stream, no usage, a hang, a required API key.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from llem_helpers import LLEM, isolated_env_vars, result_files
from llenergymeasure.datasets import load_prompts
from llenergymeasure.results.model import ExperimentResult
from serving import StubServer, free_port, start_server

pytestmark = pytest.mark.slow

N, MAX_TOKENS = 4, 8


def summary_rows(stdout: str) -> dict[str, str]:
    """``  label<spaces>text`` lines of the summary, keyed by label."""
    return {m.group(1).strip(): m.group(2) for line in stdout.splitlines()
            if (m := re.match(r"^  (\S.{0,18}?)\s{2,}(\S.*)$", line))}


def experiment(path: Path, base_url: str, model: str, *, n: int = N, max_output_tokens: int = MAX_TOKENS,
               openai: str = "", extra: str = "") -> Path:
    """An experiment file measuring the server at ``base_url``."""
    path.write_text(
        f"model: {model}\nbackend: openai\nn: {n}\ndataset: builtin\nmax_output_tokens: {max_output_tokens}\n"
        f"openai:\n  base_url: {base_url}\n{openai}{extra}")
    return path


def replayed_usage(server, prompts: list[str]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) the server reports for ``prompts``, asked again one by one
    without streaming: greedy decoding gives each prompt the same tokens every time."""
    totals = [0, 0]
    for prompt in prompts:
        response = httpx.post(f"{server.base_url}/completions", timeout=60, json={
            "model": server.model_id, "prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0.0})
        response.raise_for_status()
        usage = response.json()["usage"]
        totals[0] += usage["prompt_tokens"]
        totals[1] += usage["completion_tokens"]
    return totals[0], totals[1]


@pytest.fixture(scope="module")
def server_run(tiny_server, tmp_path_factory):
    """One ``llem run`` of 4 prompts against the server, 2 in flight; (process, result)."""
    root = tmp_path_factory.mktemp("server-run")
    env = isolated_env_vars(root)
    config = experiment(root / "exp.yaml", tiny_server.base_url, tiny_server.model_id,
                        openai="  concurrency: 2\n", extra="warmup: {n_warmup: 1}\n")
    out = root / "results"
    proc = subprocess.run([*LLEM, "run", str(config), "-o", str(out)], capture_output=True, text=True, env=env,
                          cwd=root, timeout=240, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\nserver log:\n{tiny_server.log()[-3000:]}"
    [saved] = result_files(out)
    return proc, ExperimentResult.load(saved)


def test_tokens_are_the_servers_usage(server_run, tiny_server):
    _, result = server_run
    prompt_tokens, completion_tokens = replayed_usage(tiny_server, load_prompts("builtin", N))
    assert (result.input_tokens, result.output_tokens) == (prompt_tokens, completion_tokens)
    assert 0 < result.output_tokens <= N * MAX_TOKENS
    assert result.n_prompts == N and len(result.repeats[0].latencies_s) == N  # one latency per request


def test_energy_is_the_labelled_cpu_estimate_of_the_server_processes(server_run):
    proc, result = server_run
    assert result.energy_source == "cpu_estimate" and result.estimated is True
    assert result.metrics.energy_j is not None and result.metrics.energy_j > 0
    assert result.metrics.joules_per_token is not None and result.metrics.joules_per_token > 0
    notes = [w.message for w in result.measurement_warnings if w.code == "energy_estimated"]
    assert notes and "the measured processes' CPU time" in notes[0]
    rows = summary_rows(proc.stdout)
    assert rows["energy"].endswith("J from cpu_estimate (estimated)"), rows
    assert rows["joules per token"].endswith("J/token (estimated)"), rows


def test_time_to_first_token_and_inter_token_latency_are_reported(server_run):
    proc, result = server_run
    m = result.metrics
    assert 0 < m.ttft_s_p50 <= m.ttft_s_p95 <= m.latency_s_p95
    assert m.itl_s_p50 is not None and 0 < m.itl_s_p50 < m.latency_s_p95
    assert len(result.repeats[0].ttfts_s) == N
    rows = summary_rows(proc.stdout)
    assert re.fullmatch(r"[\d.e+-]+ s / [\d.e+-]+ s per request", rows["ttft p50/p95"]), rows
    assert re.fullmatch(r"[\d.e+-]+ s between streamed chunks", rows["itl p50"]), rows
    assert "Traceback" not in proc.stderr


def test_the_result_says_what_was_measured(server_run, tiny_server):
    proc, result = server_run
    env = result.environment.model_dump()
    assert env["backend"] == "openai" and env["server"] == tiny_server.base_url
    assert env["served_model"] == tiny_server.model_id and env["device"] == f"server:{tiny_server.base_url}"
    assert result.config["openai"]["concurrency"] == 2 and "pytorch" not in result.config
    assert f"openai server {tiny_server.base_url}, {N} requests, concurrency 2" in proc.stdout.splitlines()[0]


def test_a_model_the_server_does_not_serve_is_a_preflight_error_naming_what_it_serves(run_llem, tiny_server,
                                                                                      tmp_path):
    config = experiment(tmp_path / "exp.yaml", tiny_server.base_url, "gpt2")
    for args in (["run", str(config)], ["run", "--dry-run", str(config)]):
        proc = run_llem(*args, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert f"model: 'gpt2' is not served at {tiny_server.base_url}; it serves {tiny_server.model_id!r}" \
            in proc.stderr
        assert "Traceback" not in proc.stderr


def test_no_server_at_base_url_fails_fast_and_the_dry_run_notes_it(run_llem, tmp_path):
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    config = experiment(tmp_path / "exp.yaml", base_url, "m")
    started = time.monotonic()
    proc = run_llem("run", str(config), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 15
    assert f"openai.base_url: no server answers at {base_url}" in proc.stderr
    assert "Traceback" not in proc.stderr

    # The dry run checks the file; a server that is not up here may be up where the run happens.
    proc = run_llem("run", "--dry-run", str(config), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"note: no server answers at {base_url}" in proc.stdout
    assert "Dry run: config is valid." in proc.stdout


def test_pytest_dry_run_asks_the_server(tiny_server, tmp_path):
    experiment(tmp_path / "llem_served.yaml", tiny_server.base_url, tiny_server.model_id)
    experiment(tmp_path / "llem_unserved.yaml", tiny_server.base_url, "gpt2")
    proc = subprocess.run([*LLEM[:1], "-m", "pytest", "--llem-dry-run", "-p", "no:cacheprovider", "-q", "."],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout
    assert "model: 'gpt2' is not served at" in proc.stdout


def test_a_server_that_dies_mid_run_ends_the_run_naming_the_request(tiny_model, tmp_path):
    # Deterministic under load: the server is killed only once it has answered a request of the
    # run (so the run is past pre-flight and mid-load), however long that takes to happen; the
    # run must then end on the dead connection, well before its own request timeout would.
    timeout_s = 120
    server = start_server(tiny_model, tmp_path / "server.log")
    config = experiment(tmp_path / "exp.yaml", server.base_url, server.model_id, n=64, max_output_tokens=64,
                        openai=f"  concurrency: 2\n  timeout_s: {timeout_s}\n", extra="warmup: {enabled: false}\n")
    proc = subprocess.Popen([*LLEM, "run", str(config), "-o", str(tmp_path / "out")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    killed_at: list[float] = []
    running_when_killed: list[bool] = []

    def kill_once_a_request_is_served() -> None:
        while proc.poll() is None and "POST /v1/completions" not in server.log():
            time.sleep(0.05)
        running_when_killed.append(proc.poll() is None)
        server.kill()
        killed_at.append(time.monotonic())

    killer = threading.Thread(target=kill_once_a_request_is_served, daemon=True)
    killer.start()
    try:
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        killer.join(30)
        server.stop()
    assert running_when_killed == [True], "the run ended before the server was killed:\n" + stderr
    assert proc.returncode == 1, stderr
    assert time.monotonic() - killed_at[0] < timeout_s
    assert re.search(rf"Error: request \d+ of 64 \(prompt \d+\): POST {re.escape(server.base_url)}/completions: ",
                     stderr), stderr
    assert "Traceback" not in stderr
    assert result_files(tmp_path / "out") == []


# --- what only a stub can be made to do -------------------------------------------------------------------------

STUB = "  concurrency: 1\n  timeout_s: {timeout}\n  api_key_env: LLEM_TEST_KEY\n"
QUIET = "warmup: {enabled: false}\nenergy: {source: none}\n"


def stub_experiment(path: Path, stub: StubServer, timeout: float = 20) -> Path:
    return experiment(path, stub.base_url, stub.model, n=3, openai=STUB.format(timeout=timeout), extra=QUIET)


def test_the_key_named_by_api_key_env_is_sent_and_nothing_without_it(run_llem, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "not-this-one")
    monkeypatch.delenv("LLEM_TEST_KEY", raising=False)
    with StubServer(api_key="sekrit-123") as stub:
        config = stub_experiment(tmp_path / "exp.yaml", stub)
        proc = run_llem("run", str(config), timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "the environment variable LLEM_TEST_KEY (openai.api_key_env) is not set" in proc.stderr
        assert all("Authorization" not in headers for headers in stub.headers), stub.headers

        monkeypatch.setenv("LLEM_TEST_KEY", "sekrit-123")
        stub.headers.clear()
        # The file names the variable; the user names it too (the opt-in: see test_untrusted_servers.py).
        proc = run_llem("run", str(config), "--api-key-env", "LLEM_TEST_KEY", "-o", str(tmp_path / "out"), timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert [h.get("Authorization") for h in stub.headers] == ["Bearer sekrit-123"] * 4  # /models + 3 prompts
    [saved] = result_files(tmp_path / "out")
    result = ExperimentResult.load(saved)
    assert (result.input_tokens, result.output_tokens) == (3 * 5, 3 * 3)  # the stub's usage, per request
    assert "sekrit" not in saved.read_text()


@pytest.mark.parametrize(("behaviour", "message"), [
    ("http_500", "HTTP 500 Internal Server Error: CUDA out of memory (stub)"),
    ("error_chunk", "the server reported an error mid-stream: engine died (stub)"),
    ("no_usage", "the response reported no token usage; llem counts tokens only from the server's usage"),
])
def test_a_failed_response_ends_the_run_naming_the_request(run_llem, tmp_path, behaviour, message):
    with StubServer(behaviour=behaviour) as stub:
        proc = run_llem("run", str(stub_experiment(tmp_path / "exp.yaml", stub)), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"Error: request 1 of 3 (prompt 1): POST {stub.base_url}/completions: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_request_rate_spaces_the_requests_as_poisson_arrivals_from_the_seed(run_llem, tmp_path):
    rate, n = 10.0, 6
    with StubServer() as stub:
        config = experiment(tmp_path / "exp.yaml", stub.base_url, stub.model, n=n,
                            openai=f"  concurrency: 4\n  request_rate: {rate}\n", extra=QUIET + "random_seed: 7\n")
        proc = run_llem("run", str(config), "-o", str(tmp_path / "out"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    [saved] = result_files(tmp_path / "out")
    result = ExperimentResult.load(saved)
    draws = random.Random(7)
    last_arrival = sum(draws.expovariate(rate) for _ in range(n - 1))  # the first request goes at once
    assert last_arrival <= result.metrics.duration_s < last_arrival + 5
    assert "6 requests, concurrency 4, 10 requests/s" in proc.stdout


def test_a_server_that_stops_answering_times_out(run_llem, tmp_path):
    with StubServer(behaviour="hang") as stub:
        started = time.monotonic()
        proc = run_llem("run", str(stub_experiment(tmp_path / "exp.yaml", stub, timeout=2)), timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert f"Error: request 1 of 3 (prompt 1): POST {stub.base_url}/completions: " in proc.stderr
    assert "openai.timeout_s" in proc.stderr
    assert elapsed < 2 + 10  # the limit, plus starting llem
