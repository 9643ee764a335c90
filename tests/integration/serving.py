"""Servers for the openai backend's tests.

``start_server`` runs the real thing: ``transformers serve`` on the tiny model, on the CPU, in a
subprocess, until ``stop()``. It loads in 10-15 s; the tests share one per module.

``StubServer`` is a few lines of stdlib HTTP speaking the OpenAI wire format, for what a real
server cannot be made to do on demand: fail with a 500, report an error mid-stream, leave usage
out, hang, or insist on an API key. It fakes a third-party server, nothing of ours.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

START_DEADLINE_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A ``transformers serve`` process; ``model_id`` is the id it lists in /v1/models."""

    def __init__(self, process: subprocess.Popen, port: int, model_id: str, log_path: Path) -> None:
        self.process, self.port, self.model_id, self.log_path = process, port, model_id, log_path
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(model_dir: Path, log_path: Path) -> Server:
    """``transformers serve MODEL_DIR`` on a free port of 127.0.0.1, answering /v1/models (or an
    error with its log)."""
    command = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    assert command, "the transformers CLI is not installed: pip install 'transformers[serving]'"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}  # the log is read while it runs
    log = log_path.open("w")
    process = subprocess.Popen(
        [command, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    log.close()
    server = Server(process, port, str(model_dir), log_path)
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/models", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"transformers serve did not answer within {START_DEADLINE_S:g} s:\n{server.log()}")


class StubServer:
    """An OpenAI-style server in a thread. ``behaviour`` picks what POST /v1/completions does:

        ok            three text chunks, then a chunk with usage, then [DONE]
        no_usage      the chunks and [DONE], no usage anywhere
        http_500      HTTP 500 with an OpenAI error body
        error_chunk   one text chunk, then ``data: {"error": ...}`` (how vLLM reports a failure mid-stream)
        hang          one text chunk, then nothing until the stub stops
        redirect      every request (GET too) answered 307 to ``http://elsewhere.invalid/v1``

    With ``api_key`` set, every request without ``Authorization: Bearer <api_key>`` gets 401.
    ``headers`` keeps the headers of every request received. ``usage`` replaces the usage an ok
    stream reports, ``error`` the message of http_500 (a hostile server says what it likes).
    """

    def __init__(self, model: str = "stub-model", behaviour: str = "ok", api_key: str | None = None,
                 usage: dict[str, Any] | None = None, error: str = "CUDA out of memory (stub)") -> None:
        self.model, self.behaviour, self.api_key = model, behaviour, api_key
        self.usage = usage or {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        self.error = error
        self.headers: list[dict[str, str]] = []
        self.released = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="stub-openai-server", daemon=True)

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _authorized(self) -> bool:
                stub.headers.append(dict(self.headers))
                if stub.behaviour == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "http://elsewhere.invalid/v1" + self.path.removeprefix("/v1"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                if stub.api_key and self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                    self._json(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
                    return False
                return True

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _event(self, payload: Any) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                self.wfile.write(f"data: {text}\n\n".encode())
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self._authorized():
                    self._json(200, {"object": "list", "data": [{"id": stub.model, "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if not self._authorized():
                    return
                if stub.behaviour == "http_500":
                    self._json(500, {"error": {"message": stub.error, "code": 500}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                chunk = {"object": "text_completion", "choices": [{"index": 0, "text": " word"}]}
                for _ in range(1 if stub.behaviour in ("error_chunk", "hang") else 3):
                    self._event(chunk)
                if stub.behaviour == "error_chunk":
                    self._event({"error": {"message": "engine died (stub)", "code": 500}})
                elif stub.behaviour == "hang":
                    stub.released.wait(120)
                elif stub.behaviour == "ok":
                    self._event(json.dumps({"choices": [], "usage": stub.usage}) if isinstance(stub.usage, dict)
                                else stub.usage)
                self._event("[DONE]")

        return Handler
