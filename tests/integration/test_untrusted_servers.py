"""A benchmark file and the server it names are untrusted: no secret leaves, no number escapes.

A pull request can add a ``llem_*.yaml`` that names any URL and any environment variable; the
server at that URL says what it likes (escape codes, the key echoed back, token counts it never
produced, redirects). Each test runs ``llem`` or ``pytest`` as a real process against
``serving.StubServer``, a stand-in for somebody else's server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llem_helpers import result_files
from serving import StubServer

SECRET = "deploy-token-0xDEADBEEF"
QUIET = "warmup: {enabled: false}\nenergy: {source: none}\n"


def hostile_file(path: Path, stub: StubServer, *, n: int = 3, max_output_tokens: int = 8, openai: str = "") -> Path:
    """A benchmark file, as a pull request could write it: it names the CI's secret as its key."""
    path.write_text(
        f"model: {stub.model}\nbackend: openai\nn: {n}\ndataset: builtin\nmax_output_tokens: {max_output_tokens}\n"
        f"openai:\n  base_url: {stub.base_url}\n  api_key_env: MY_CI_DEPLOY_TOKEN\n  timeout_s: 20\n{openai}{QUIET}")
    return path


def sent_keys(stub: StubServer) -> list[str | None]:
    return [headers.get("Authorization") for headers in stub.headers]


def test_a_file_named_variable_never_reaches_the_server_it_names(run_llem, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_CI_DEPLOY_TOKEN", SECRET)
    with StubServer(api_key=SECRET) as stub:
        path = hostile_file(tmp_path / "llem_pr.yaml", stub)

        # pytest --llem-dry-run on the pull request's file: the server is asked, with no key.
        dry = subprocess.run([sys.executable, "-m", "pytest", "--llem-dry-run", "-p", "no:cacheprovider",
                              str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                             stdin=subprocess.DEVNULL)
        assert stub.headers, dry.stdout  # it did ask
        assert sent_keys(stub) == [None] * len(stub.headers)
        assert SECRET not in dry.stdout + dry.stderr

        # llem run: refused at pre-flight, naming the variable, the line and the opt-in; still no key sent.
        stub.headers.clear()
        proc = run_llem("run", str(path), timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "openai.api_key_env: " in proc.stderr and "llem_pr.yaml:" in proc.stderr
        assert "cannot choose which secret goes to the server it names" in proc.stderr
        assert "llem run --api-key-env MY_CI_DEPLOY_TOKEN" in proc.stderr
        assert SECRET not in proc.stdout + proc.stderr
        assert all(key is None for key in sent_keys(stub))

        # The user names it: the opt-in. Now, and only now, the key goes.
        stub.headers.clear()
        proc = run_llem("run", str(path), "--api-key-env", "MY_CI_DEPLOY_TOKEN", timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert sent_keys(stub) == [f"Bearer {SECRET}"] * 4  # /models and 3 prompts


def test_a_dry_run_says_a_server_that_wants_a_key_is_reachable(run_llem, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with StubServer(api_key=SECRET) as stub:
        path = tmp_path / "exp.yaml"
        path.write_text(f"model: {stub.model}\nbackend: openai\nn: 3\ndataset: builtin\n"
                        f"openai:\n  base_url: {stub.base_url}\n{QUIET}")
        proc = run_llem("run", str(path), "--dry-run", timeout=60)
        assert sent_keys(stub) == [None]
    assert proc.returncode == 0, proc.stderr
    assert "wants an API key (HTTP 401); a dry run sends none" in proc.stdout + proc.stderr


def test_server_text_is_printed_without_escape_codes_or_the_key(run_llem, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_CI_DEPLOY_TOKEN", SECRET)
    # OSC 52 writes the terminal's clipboard; ESC[2J clears the screen; the key is echoed back.
    hostile = f"bad key {SECRET}\x1b]52;c;ZWNobyBwd25lZA==\x07 \x1b[2J\u202egnp.exe done"
    with StubServer(behaviour="http_500", error=hostile) as stub:
        path = hostile_file(tmp_path / "exp.yaml", stub)
        proc = run_llem("run", str(path), "--api-key-env", "MY_CI_DEPLOY_TOKEN", "--verbose", timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "HTTP 500 Internal Server Error: bad key ***" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stderr and "\u202e" not in proc.stderr


@pytest.mark.parametrize(("usage", "said"), [
    ({"prompt_tokens": 5, "completion_tokens": 50_000}, "usage.completion_tokens is 50000, more than the request's "
                                                         "max_tokens (8) allows"),
    ({"prompt_tokens": 10**9, "completion_tokens": 3}, "usage.prompt_tokens is 1000000000, more than the prompt's "
                                                       "length in bytes plus 64 special tokens"),
    ({"prompt_tokens": 5, "completion_tokens": 10**400}, "usage.completion_tokens is a 401-digit number, more than"),
    ({"prompt_tokens": 5, "completion_tokens": 2.5}, "usage.completion_tokens is 2.5, not a token count"),
    ({"prompt_tokens": -5, "completion_tokens": 3}, "usage.prompt_tokens is -5, not a token count"),
], ids=["completion-above-max-tokens", "prompt-above-its-length", "absurd", "fraction", "negative"])
def test_token_counts_past_what_the_request_allows_are_an_error_naming_it(run_llem, tmp_path, usage, said):
    with StubServer(usage=usage) as stub:
        path = hostile_file(tmp_path / "exp.yaml", stub)
        proc = run_llem("run", str(path), "-o", str(tmp_path / "out"), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"Error: request 1 of 3 (prompt 1): POST {stub.base_url}/completions: {said}" in proc.stderr
    assert "Internal error" not in proc.stderr
    assert result_files(tmp_path / "out") == []  # no J/token from a count the server made up


def test_a_redirect_is_said_as_a_redirect_with_its_location(run_llem, tmp_path):
    with StubServer(behaviour="redirect") as stub:
        path = hostile_file(tmp_path / "exp.yaml", stub)
        proc = run_llem("run", str(path), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "the server answered a redirect (HTTP 307 to http://elsewhere.invalid/v1/models)" in proc.stderr
    assert "llem does not follow redirects" in proc.stderr


def test_a_request_rate_that_would_take_days_is_refused_with_its_duration(run_llem, tmp_path):
    with StubServer() as stub:
        slow = hostile_file(tmp_path / "slow.yaml", stub, n=100, openai="  request_rate: 0.0001\n")
        dry = run_llem("run", str(slow), "--dry-run", timeout=60)
        proc = run_llem("run", str(slow), timeout=60)
        long = hostile_file(tmp_path / "long.yaml", stub, n=100, openai="  request_rate: 0.1\n")
        noted = run_llem("run", str(long), "--dry-run", timeout=60)
    for refused in (dry, proc):
        assert refused.returncode == 1, refused.stderr
        assert "openai.request_rate: 0.0001 requests/s for n = 100 prompts arrive over about 11.5 days" \
               in refused.stdout + refused.stderr
    assert noted.returncode == 0, noted.stderr
    assert "the 100 requests arrive over about 16 min per window" in noted.stdout + noted.stderr


def test_server_pid_must_be_the_process_listening_on_the_port(run_llem, tmp_path):
    """Else a file could point the CPU estimate at an idle process and make a server look cheap."""
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], stdin=subprocess.DEVNULL)
    try:
        with StubServer() as stub:  # it listens in this process
            def run(pid: int) -> subprocess.CompletedProcess:
                path = tmp_path / f"exp-{pid}.yaml"
                path.write_text(f"model: {stub.model}\nbackend: openai\nn: 3\ndataset: builtin\n"
                                f"openai:\n  base_url: {stub.base_url}\n  server_pid: {pid}\n"
                                "warmup: {enabled: false}\nbaseline: {enabled: false}\nenergy: {source: cpu_estimate}\n")
                return run_llem("run", str(path), timeout=60)

            refused, measured = run(idle.pid), run(os.getpid())
    finally:
        idle.kill()
        idle.wait()
    assert refused.returncode == 1, refused.stderr
    assert f"openai.server_pid: process {idle.pid} (python" in refused.stderr
    assert f"is not the server at port {stub.base_url.split(':')[2].split('/')[0]}: process {os.getpid()}" \
           in refused.stderr
    assert measured.returncode == 0, measured.stderr


@pytest.mark.parametrize("where", ["defaults/llem_pr.yaml", "CLI --x/llem_pr.yaml", "user config/llem_pr.yaml"])
def test_no_file_path_makes_a_file_named_variable_the_users(run_llem, tmp_path, monkeypatch, where):
    """Who chose a value is recorded as such, never read from the text of its origin's label."""
    monkeypatch.setenv("MY_CI_DEPLOY_TOKEN", SECRET)
    with StubServer(api_key=SECRET) as stub:
        path = tmp_path / where
        path.parent.mkdir(parents=True)
        hostile_file(path, stub)
        proc = run_llem("run", where, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "cannot choose which secret goes to the server it names" in proc.stderr
    assert all(key is None for key in sent_keys(stub))
