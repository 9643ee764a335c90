"""No network, or offline, and the model or dataset not cached: the run fails in seconds, naming
the cause and the fix, through ``llem run`` and through the pytest plugin alike.

The hub is made unreachable deterministically with HF_ENDPOINT: a closed port on 127.0.0.1
(refused at once), or a black hole (a socket that listens but never answers, so only a timeout
ends the request). These tests unset HF_HUB_OFFLINE where the hub is what they are about.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from llem_helpers import llem_process

BOUND_S = 15.0  # generous: huggingface_hub's own retries took ~25 s; the probe takes at most 3 s


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An endpoint that accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class NoSuchRepo(BaseHTTPRequestHandler):
    """A hub that answers every request as the real one answers for a repo that does not exist."""

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("X-Error-Message", "Repository not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def empty_hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoSuchRepo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def online_env(endpoint: str) -> dict[str, str]:
    # huggingface_hub is offline under TRANSFORMERS_OFFLINE too (CI sets both)
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_ENDPOINT"] = endpoint
    env.pop("HF_HUB_ETAG_TIMEOUT", None)
    return env


def timed_llem(*args: str, env: dict[str, str], cwd: Path | None = None) -> tuple[float, object]:
    started = time.monotonic()
    proc = llem_process(*args, env=env, cwd=cwd, timeout=120)
    return time.monotonic() - started, proc


def problems(stderr: str) -> list[str]:
    return [line[4:] for line in stderr.splitlines() if line.startswith("  - ")]


def test_hub_unreachable_fails_fast_naming_the_network(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    took, proc = timed_llem("run", "--model", "gpt2", "-d", "builtin", "-n", "2", env=online_env(endpoint), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert took < BOUND_S, f"took {took:.1f} s"
    [problem] = problems(proc.stderr)
    assert problem.startswith(f"model: 'gpt2' is not a directory in {tmp_path} and not in the Hugging Face cache (")
    assert f"the Hugging Face hub at {endpoint} cannot be reached (" in problem
    assert "hf download gpt2" in problem and "give a local directory" in problem
    assert "Retrying" not in proc.stderr and "Traceback" not in proc.stderr
    print(f"hub unreachable (closed port): llem answered in {took:.2f} s")


def test_a_black_holed_hub_does_not_hang(tmp_path, black_hole):
    took, proc = timed_llem("run", "--model", "gpt2", "-d", "builtin", "-n", "2", env=online_env(black_hole),
                            cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert took < BOUND_S, f"took {took:.1f} s"
    [problem] = problems(proc.stderr)
    assert f"the Hugging Face hub at {black_hole} cannot be reached (no answer within 3 s; " in problem
    assert "HF_HUB_ETAG_TIMEOUT" in problem
    print(f"hub black-holed: llem answered in {took:.2f} s")


def test_a_model_the_hub_does_not_have_is_named_as_such(tmp_path, empty_hub):
    took, proc = timed_llem("run", "--model", "acme/no-such-model", "-d", "builtin", "-n", "2",
                            env=online_env(empty_hub), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert took < BOUND_S, f"took {took:.1f} s"
    assert problems(proc.stderr) == [(
        f"model: 'acme/no-such-model' is not a directory in {tmp_path} and not a model on the Hugging Face hub at "
        f"{empty_hub} (a private one needs hf auth login or HF_TOKEN); check the spelling or the path"
    )]


# The dataset on its own (a real run would go on to import torch for its device check, which
# takes as long as the machine is busy): load_prompts in a fresh process, as pre-flight calls it.
LOAD_AIENERGYSCORE = """
from llenergymeasure.datasets import load_prompts
from llenergymeasure.exceptions import PreFlightError
try:
    load_prompts("aienergyscore", 2)
except PreFlightError as exc:
    print(exc.problems[0])
"""


def test_the_dataset_download_fails_fast_too(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", LOAD_AIENERGYSCORE], capture_output=True, text=True, cwd=tmp_path,
                          env=online_env(endpoint), timeout=120, stdin=subprocess.DEVNULL, check=False)
    took = time.monotonic() - started
    assert took < BOUND_S, f"took {took:.1f} s"
    problem = proc.stdout.strip()
    assert problem.startswith("dataset: 'AIEnergyScore/text_generation' is not in the Hugging Face cache ("), proc
    assert f"the Hugging Face hub at {endpoint} cannot be reached (" in problem
    assert "hf download AIEnergyScore/text_generation --repo-type dataset" in problem
    assert "use 'dataset: builtin' or a .jsonl file" in problem
    assert "Retrying" not in proc.stderr


def test_offline_and_not_cached_names_the_offline_mode_and_the_way_out(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TRANSFORMERS_OFFLINE"}
    took, proc = timed_llem("run", "--model", "gpt2", "-d", "builtin", "-n", "2", env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert took < BOUND_S, f"took {took:.1f} s"
    assert problems(proc.stderr) == [(
        f"model: 'gpt2' is not a directory in {tmp_path} and not in the Hugging Face cache "
        f"({os.environ['HF_HUB_CACHE']}), and HF_HUB_OFFLINE=1 forbids downloading it; download it once where "
        "there is network (hf download gpt2, into the same HF_HUB_CACHE), unset HF_HUB_OFFLINE to download it "
        "now, or give a local directory"
    )]


def test_a_relative_path_from_the_wrong_directory_is_a_missing_path(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    took, proc = timed_llem("run", "--model", "./models/tiny-gpt2", "-d", "builtin", "-n", "2",
                            env=dict(os.environ), cwd=elsewhere)
    assert proc.returncode == 1, proc.stderr
    assert took < BOUND_S, f"took {took:.1f} s"
    assert problems(proc.stderr) == [(
        f"model: path './models/tiny-gpt2' does not exist (looked for in {elsewhere}; run from the directory it "
        "is relative to, or give an absolute path)"
    )]
    assert "HF_HUB_OFFLINE" not in proc.stderr


def test_an_org_name_looking_path_from_the_wrong_directory_names_the_directory(tmp_path):
    # 'models/tiny-gpt2' may be a hub id (org/name) or a relative path: the answer covers both.
    took, proc = timed_llem("run", "--model", "models/tiny-gpt2", "-d", "builtin", "-n", "2",
                            env=dict(os.environ), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert took < BOUND_S, f"took {took:.1f} s"
    [problem] = problems(proc.stderr)
    assert problem.startswith(f"model: 'models/tiny-gpt2' is not a directory in {tmp_path} and not in the "
                              "Hugging Face cache")


def test_the_plugin_says_the_same_when_the_hub_is_unreachable(pytester, monkeypatch):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    for key, value in online_env(endpoint).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    pytester.makefile(".yaml", llem_hub="name: hub\nmodel: gpt2\ndataset: builtin\nn: 2\nprecision: fp32\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    took = time.monotonic() - started
    result.assert_outcomes(failed=1)
    assert took < BOUND_S + 10, f"took {took:.1f} s"  # a pytest session starts slower than llem
    proc = llem_process("run", str(pytester.path / "llem_hub.yaml"), cwd=pytester.path,
                        env=online_env(endpoint), timeout=120)
    [problem] = problems(proc.stderr)
    assert f"the Hugging Face hub at {endpoint} cannot be reached (" in problem
    assert f"  - {problem}" in result.outlines, result.stdout.str()  # the real run's PreFlightError, as llem prints it
