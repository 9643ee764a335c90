"""A server with a known service model, for the load ramp's tests: saturation, goodput, steady window.

``LoadStub`` speaks the OpenAI streaming wire format (``/v1/completions`` and
``/v1/chat/completions``) from a thread of the test process, on 127.0.0.1. Every request waits
``prefill_s``, then streams ``tokens`` pieces of text, one every ``token_s`` seconds, then its
usage. Its knobs, each with a closed form the tests compare against:

    workers       None: every request is served at once (no queueing); k: at most k at a time,
                  first come first served, so the capacity is k / service time
    slow_marker, slow_token_s   prompts holding the marker stream at ``slow_token_s`` instead
    contention    each token of a request takes token_s x (1 + contention x others), ``others``
                  being how many other requests are streaming at that moment (a batch slows its
                  members down, as continuous batching does)

With ``metrics``, ``GET /metrics`` publishes vLLM's Prometheus series: the requests streaming now
(``vllm:num_requests_running``) and the tokens streamed so far (``vllm:generation_tokens_total``).
A client that goes away is noticed before the request is served, as real servers abort it.
``arrivals`` holds the ``time.perf_counter()`` of every POST received. ``port``: 0 for a free one. It fakes a third-party
server, nothing of ours.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoadStub:
    def __init__(self, *, prefill_s: float = 0.02, token_s: float = 0.01, tokens: int = 8, workers: int | None = None,
                 slow_marker: str = "SLOW", slow_token_s: float | None = None, contention: float = 0.0,
                 model: str = "stub-model", metrics: bool = False, port: int = 0) -> None:
        self.prefill_s, self.token_s, self.tokens = prefill_s, token_s, tokens
        self.slow_marker, self.slow_token_s, self.contention = slow_marker, slow_token_s, contention
        self.model, self.metrics = model, metrics
        self.generated = 0
        self.gate = threading.Semaphore(workers) if workers else None
        self.arrivals: list[float] = []
        self.streaming = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="load-stub", daemon=True)

    @property
    def service_s(self) -> float:
        """The time one request takes, alone: its prefill and the gaps between its tokens."""
        return self.prefill_s + (self.tokens - 1) * self.token_s

    def __enter__(self) -> LoadStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/metrics":
                    self._metrics()
                    return
                data = json.dumps({"object": "list", "data": [{"id": stub.model, "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _metrics(self) -> None:
                if not stub.metrics:
                    self.send_error(404)
                    return
                with stub.lock:
                    running, generated = stub.streaming, stub.generated
                labels = f'{{model_name="{stub.model}"}}'
                data = (f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{labels} {running}.0\n"
                        f"# TYPE vllm:generation_tokens_total counter\n"
                        f"vllm:generation_tokens_total{labels} {generated}.0\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                stub.arrivals.append(time.perf_counter())
                chat = "messages" in body
                prompt = body["messages"][0]["content"] if chat else body["prompt"]
                per_token = stub.slow_token_s if stub.slow_token_s and stub.slow_marker in prompt else stub.token_s
                if stub.gate is not None:
                    stub.gate.acquire()
                try:
                    if self._client_gone():
                        return
                    self._serve(chat, per_token)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client cancelled it
                finally:
                    if stub.gate is not None:
                        stub.gate.release()

            def _serve(self, chat: bool, per_token: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                time.sleep(stub.prefill_s)
                with stub.lock:
                    stub.streaming += 1
                try:
                    for index in range(stub.tokens):
                        if index:
                            with stub.lock:
                                others = stub.streaming - 1
                            time.sleep(per_token * (1 + stub.contention * others))
                        piece = {"delta": {"content": " w"}} if chat else {"text": " w"}
                        self._event({"choices": [{"index": 0, **piece}]})
                        with stub.lock:
                            stub.generated += 1
                finally:
                    with stub.lock:
                        stub.streaming -= 1
                self._event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": stub.tokens,
                                                      "total_tokens": 3 + stub.tokens}})
                self._event("[DONE]")

            def _client_gone(self) -> bool:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def _event(self, payload: Any) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                self.wfile.write(f"data: {text}\n\n".encode())
                self.wfile.flush()

        return Handler
