"""The openai backend: an OpenAI-compatible server (vLLM, TGI, ``transformers serve``, ...) is what is measured.

Each prompt is one streamed request to ``{openai.base_url}/completions`` (``openai.endpoint:
chat``: the prompt as the user's message to ``/chat/completions``). ``openai.concurrency``
requests are in flight at once, sent as fast as that allows or, with ``openai.request_rate``, at
Poisson arrival times (exponential gaps drawn from ``random_seed``: the same schedule every run).
A load point of a ramp (``openai.load``) is driven by serving/load.py through ``run_load``.

What is counted, and from where:
- tokens: only the server's ``usage`` (prompt_tokens, completion_tokens), never a tokenizer of
  ours; a response without it is an error (vLLM reports it in a stream only when asked through
  ``stream_options.include_usage``, which is always sent);
- latency: from sending the request to the end of its stream; time to first token: to the first
  chunk with text (``choices[].text``, or ``choices[].delta.content`` of a chat stream);
  inter-token latency: the gaps between chunks with text (a server may put several tokens in one
  chunk, so these are gaps between deliveries).

Any failure (a refused or reset connection, an HTTP error status, a malformed stream, a request
longer than ``openai.timeout_s``) is an ExperimentError naming the request, and the requests in
flight are cancelled: a run ends, it never hangs. The energy is not measured here: pre-flight
chose the meter of the devices the server runs on (core/preflight.py, core/server.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from llenergymeasure.backends.base import BatchOutput
from llenergymeasure.backends.credentials import request_headers, server_text
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.exceptions import BackendError, ExperimentError

MAX_CONNECT_TIMEOUT_S = 10.0
PROMPT_SPECIAL_TOKENS = 64  # BOS/EOS and a chat template's markers, beyond the prompt's own tokens
ERROR_TEXT_CHARS = 500  # of a server's error body, in a message
ENDPOINT_PATHS = {"completions": "completions", "chat": "chat/completions"}


@dataclass(frozen=True)
class Request:
    """One prompt to send; ``index`` is its place in the dataset (from 0)."""

    index: int
    prompt: str


class _BadResponse(Exception):
    """The server answered, but not with a usable stream."""


class OpenAIBackend:
    name = "openai"

    def __init__(self) -> None:
        self.device = "server"
        self._config: ExperimentConfig | None = None
        self._url = ""
        self._headers: dict[str, str] = {}
        self._server_software: str | None = None

    def load(self, config: ExperimentConfig, device: str, device_map: dict[str, int | str] | None = None) -> None:
        """Nothing is loaded: the server holds the model (pre-flight checked that it serves it)."""
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise BackendError("backend: 'openai' needs httpx; install it with: pip install 'pytest-llem[openai]'") \
                from None
        self._config, self.device = config, device
        self._url = f"{config.openai.base_url}/{ENDPOINT_PATHS[config.openai.endpoint]}"
        self._headers = request_headers(config)

    def prepare(self, prompts: list[str]) -> list[Request]:
        return [Request(index, prompt) for index, prompt in enumerate(prompts)]

    def run(self, batches: list[Request], bar: Any) -> list[BatchOutput]:
        return self._in_a_loop(self._run_all(batches, bar))

    def run_load(self, requests: list[Request], bar: Any) -> Any:
        """One load point of ``openai.load`` (its one rate) over ``requests``, cycled: a
        serving.load.LoadRun."""
        return self._in_a_loop(self._run_load(requests, bar))

    async def _run_load(self, requests: list[Request], bar: Any) -> Any:
        import httpx

        from llenergymeasure.serving.load import MAX_IN_FLIGHT, drive

        assert self._config is not None, "load() first"
        server, load = self._config.openai, self._config.openai.load
        assert load is not None and len(load.rates) == 1, "a load point has one rate"
        rate = load.rates[0]
        width = server.concurrency if rate == "inf" else MAX_IN_FLIGHT
        timeout = httpx.Timeout(None, connect=min(server.timeout_s, MAX_CONNECT_TIMEOUT_S))
        limits = httpx.Limits(max_connections=width, max_keepalive_connections=min(width, 256))
        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=self._headers) as client, \
                httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as watcher:

            async def send(position: int, prompt: int) -> BatchOutput:
                return await self._request(client, requests[prompt], position, None, None)

            polls: list[tuple[float, dict[str, float]]] = []
            poller = asyncio.create_task(_poll_metrics(watcher, server.base_url, polls))
            try:
                run = await drive(send, n_prompts=len(requests), rate=rate, concurrency=server.concurrency,
                                  duration_s=load.duration_s, seed=self._config.random_seed,
                                  timeout_s=server.timeout_s, on_done=lambda: bar.update(1))
            finally:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
            if polls:  # one more, so the window's end has a poll on each side
                await _poll_once(watcher, server.base_url, polls)
            run.server_polls = polls
            return run

    def _in_a_loop(self, work: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work)
        # Called from inside an event loop (a notebook): the requests get a loop of their own.
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llem-openai") as pool:
            return pool.submit(asyncio.run, work).result()

    async def _run_all(self, requests: list[Request], bar: Any) -> list[BatchOutput]:
        """Every request, at most ``concurrency`` in flight; the first failure cancels the rest."""
        import httpx

        assert self._config is not None, "load() first"
        server = self._config.openai
        outputs: list[BatchOutput | None] = [None] * len(requests)
        slots = asyncio.Semaphore(server.concurrency)
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        in_flight: set[asyncio.Task[None]] = set()
        gaps = random.Random(self._config.random_seed)
        timeout = httpx.Timeout(server.timeout_s, connect=min(server.timeout_s, MAX_CONNECT_TIMEOUT_S))
        limits = httpx.Limits(max_connections=server.concurrency, max_keepalive_connections=server.concurrency)

        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=self._headers) as client:

            async def one(position: int, request: Request) -> None:
                try:
                    outputs[position] = await self._request(client, request, position, len(requests), server.timeout_s)
                    bar.update(1)
                except Exception as exc:  # an ExperimentError naming the request (or a bug of ours)
                    if not failed.done():
                        failed.set_exception(exc)
                finally:
                    slots.release()

            async def dispatch() -> None:
                due = time.perf_counter()
                for position, request in enumerate(requests):
                    if server.request_rate is not None and position:  # the first one goes at once
                        due += gaps.expovariate(server.request_rate)
                        await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    await slots.acquire()
                    task = asyncio.create_task(one(position, request))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                while in_flight:
                    await asyncio.wait(set(in_flight))

            dispatcher = asyncio.create_task(dispatch())
            try:
                await asyncio.wait({dispatcher, failed}, return_when=asyncio.FIRST_COMPLETED)
                if failed.done():
                    failed.result()  # raises the first failure
                dispatcher.result()
            finally:
                for task in (dispatcher, *in_flight):
                    task.cancel()
                await asyncio.gather(dispatcher, *in_flight, return_exceptions=True)
        assert all(output is not None for output in outputs)
        return outputs  # type: ignore[return-value]

    async def _request(self, client: Any, request: Request, position: int, total: int | None,
                       limit: float | None) -> BatchOutput:
        """One request, its failures as an ExperimentError that names it. ``limit``: seconds for the
        whole request (openai.timeout_s); None: the caller bounds it (a load point, where a timeout
        is a result: serving/load.py), and a timeout raises RequestTimedOut."""
        import httpx

        from llenergymeasure.serving.load import RequestTimedOut

        assert self._config is not None
        of = f" of {total}" if total is not None else ""
        what = f"request {position + 1}{of} (prompt {request.index + 1}): POST {self._url}"
        try:
            if limit is None:
                return await self._stream(client, request)
            return await asyncio.wait_for(self._stream(client, request), limit)
        except httpx.TimeoutException as exc:
            if limit is None:
                raise RequestTimedOut(what) from None
            problem = f"timed out ({describe_error(exc)}); openai.timeout_s is {limit:g} s"
        except asyncio.TimeoutError:
            problem = f"no complete response within openai.timeout_s = {limit:g} s"
        except httpx.ConnectError as exc:
            problem = f"cannot connect ({describe_error(exc)}); is the server still running?"
        except httpx.RemoteProtocolError as exc:
            problem = f"the server broke off the response ({describe_error(exc)})"
        except httpx.HTTPError as exc:
            problem = describe_error(exc)
        except _BadResponse as exc:
            problem = str(exc)
        raise ExperimentError(f"{what}: {server_text(problem, self._config)}")

    async def _stream(self, client: Any, request: Request) -> BatchOutput:
        body = request_body(self._config, request.prompt)  # type: ignore[arg-type]
        start = time.perf_counter()
        times: list[float] = []  # when each piece of text came
        usage: Any = None
        async with client.stream("POST", self._url, json=body) as response:
            if not self._server_software and response.headers.get("server"):
                self._server_software = server_text(response.headers["server"], None)[:200]
            if 300 <= response.status_code < 400:
                raise _BadResponse(redirect_text(response))
            if response.status_code >= 400:
                raise _BadResponse(f"HTTP {response.status_code} {response.reason_phrase}: "
                                   f"{error_text(await response.aread())}")
            kind = response.headers.get("content-type", "")
            if "text/event-stream" not in kind:
                raise _BadResponse(f"expected a stream (text/event-stream), got {kind or 'no content type'}: "
                                   f"{error_text(await response.aread())}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):  # blank separators, ": comments", "event:" fields
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = _chunk(data)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                if any(_has_text(choice) for choice in chunk.get("choices") or ()):
                    times.append(time.perf_counter())
        done = time.perf_counter()
        latency = done - start
        if not isinstance(usage, dict):
            raise _BadResponse("the response reported no token usage; llem counts tokens only from the server's "
                               "usage (vLLM sends it when asked with stream_options.include_usage, which llem does); "
                               "this server does not report it")
        prompt_tokens, completion_tokens = checked_usage(usage, request.prompt, body["max_tokens"])
        return BatchOutput(input_tokens=prompt_tokens, output_tokens=completion_tokens, latency_s=latency,
                           ttft_s=times[0] - start if times else None,
                           itls_s=[later - earlier for earlier, later in itertools.pairwise(times)], sent_at=start,
                           token_times=times, done_at=done)

    def synchronize(self) -> None:
        """Nothing to wait for: every response has ended when ``run`` returns."""

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory_mb(self) -> float | None:
        return None  # the server's memory is not ours to read

    def environment(self) -> dict[str, Any]:
        import httpx

        from llenergymeasure.core.server import server_gpus
        from llenergymeasure.energy.sources import nvml_status

        assert self._config is not None, "load() first"
        server = self._config.openai
        gpus = server_gpus(self._config)
        driver = nvml_status()[2] if gpus else None
        return {
            "backend": "openai",
            "device": self.device,
            "server": server.base_url,
            "served_model": self._config.model,
            "server_software": self._server_software,
            "concurrency": server.concurrency,
            "request_rate": server.request_rate,
            "httpx": httpx.__version__,
            "gpus": [gpu.name for gpu in gpus],
            "gpu_driver": driver,
            "gpu_power_limits_w": [gpu.power_limit_w for gpu in gpus if gpu.power_limit_w],
        }

    def unload(self) -> None:
        pass


async def _poll_metrics(client: Any, base_url: str, polls: list[tuple[float, dict[str, float]]]) -> None:
    """The server's /metrics every POLL_S seconds into ``polls``, for as long as it publishes any
    (serving/server_metrics.py); a server without them is asked once."""
    from llenergymeasure.serving.server_metrics import POLL_S

    if not await _poll_once(client, base_url, polls):
        return
    while True:
        await asyncio.sleep(POLL_S)
        await _poll_once(client, base_url, polls)


async def _poll_once(client: Any, base_url: str, polls: list[tuple[float, dict[str, float]]]) -> bool:
    from llenergymeasure.serving.server_metrics import metrics_url, scrape

    found = await scrape(client, metrics_url(base_url))
    if found is not None:
        polls.append((time.perf_counter(), found))
    return found is not None


def request_body(config: ExperimentConfig, prompt: str) -> dict[str, Any]:
    """The /completions request for ``prompt`` (/chat/completions: ``prompt`` as the one user
    message). Only what the OpenAI API defines is sent, so any compatible server takes it, except
    ``ignore_eos`` (a vLLM extension) when the config asks for it. ``max_tokens`` is sent to chat
    too: vLLM, TGI, SGLang and ``transformers serve`` read it there (OpenAI's own API calls it
    max_completion_tokens)."""
    decoder = config.decoder
    text: dict[str, Any] = {"prompt": prompt}
    if config.openai.endpoint == "chat":
        text = {"messages": [{"role": "user", "content": prompt}]}
    body: dict[str, Any] = {
        "model": config.model,
        **text,
        "max_tokens": config.max_output_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if decoder.do_sample:
        body.update(temperature=decoder.temperature, top_p=decoder.top_p, seed=config.random_seed)
    else:
        body["temperature"] = 0.0
    if decoder.ignore_eos:
        body["ignore_eos"] = True
    return body


def error_text(body: bytes) -> str:
    """What a server's error body says: the message of an OpenAI-style or FastAPI error, else the text."""
    text = body[:64_000].decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        found = data.get("error", data.get("detail", data.get("message")))
        if isinstance(found, dict):
            found = found.get("message", found)
        if found:
            text = found if isinstance(found, str) else json.dumps(found)
    text = " ".join(text.split())
    if not text:
        return "(no error text)"
    return text if len(text) <= ERROR_TEXT_CHARS else text[:ERROR_TEXT_CHARS] + "..."


def _has_text(choice: Any) -> bool:
    """Whether a streamed choice carries text: ``text`` (completions) or ``delta.content`` (chat)."""
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    return bool(choice.get("text")) or (isinstance(delta, dict) and bool(delta.get("content")))


def _chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise _BadResponse(f"malformed stream: {data[:200]!r} is not JSON") from None
    if not isinstance(chunk, dict):
        raise _BadResponse(f"malformed stream: {data[:200]!r} is not a JSON object")
    if chunk.get("error"):
        raise _BadResponse(f"the server reported an error mid-stream: {error_text(json.dumps(chunk).encode())}")
    return chunk


def checked_usage(usage: dict[str, Any], prompt: str, max_tokens: int) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) of a response, each within what the request allows.

    A server that reports more tokens than it could have produced would divide the energy by them:
    a completion above ``max_tokens`` or a prompt above its UTF-8 length (no tokenizer makes more
    than a token a byte) plus room for special tokens is an error, never a smaller J/token."""
    prompt_tokens = _count(usage, "prompt_tokens", len(prompt.encode()) + PROMPT_SPECIAL_TOKENS,
                           f"the prompt's length in bytes plus {PROMPT_SPECIAL_TOKENS} special tokens")
    completion_tokens = _count(usage, "completion_tokens", max_tokens, "the request's max_tokens")
    return prompt_tokens, completion_tokens


def _count(usage: dict[str, Any], key: str, bound: int, what: str) -> int:
    value = usage.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _BadResponse(f"usage.{key} is {_short(value)}, not a token count")
    if value > bound:
        raise _BadResponse(f"usage.{key} is {_short(value)}, more than {what} ({bound}) allows; the server's token "
                           "count cannot be trusted")
    return value


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or value < 10**30 else f"a {len(str(value))}-digit number"
    return text if len(text) <= 60 else text[:60] + "..."


def redirect_text(response: Any) -> str:
    """A redirect, said as one: llem does not follow it (a key must not go where the server points)."""
    location = response.headers.get("location") or "no Location given"
    return (f"the server answered a redirect (HTTP {response.status_code} to {location[:300]}); llem does not "
            "follow redirects: set openai.base_url to where the server really is")


def describe_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
