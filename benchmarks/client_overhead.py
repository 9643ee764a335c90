"""Client overhead of a load point: llem's load client against a minimal reference client, as a ratio measured in one run.

Both drive the same server at the same offered rate, with the same Poisson arrival schedule
(exponential gaps from ``random.Random(seed)``), the same prompts (the builtin dataset, request
``i`` sending prompt ``i mod n``) and the same request (a streamed POST /completions, greedy,
``max_tokens``). Each counts its achieved rate as llem defines it (serving/steady_state.py): the
steady window opens when the first response ends and lasts ``--duration`` seconds; achieved =
responses that ended inside it / its length.

    llem        one load point through the public API: measure(config) with openai.load at one
                rate, result.load_point["achieved_rate"] (serving/load.py via OpenAIBackend.run_load)
    reference   ~40 lines below: asyncio + httpx.AsyncClient, a request sent when it is due,
                its stream read to [DONE]

The two alternate (ABAB..., the order flipping every pair) so that drift of the machine falls on
both. Prints each run's achieved rate and the median over pairs of llem / reference; the target
is >= 0.98 (llem's client loses under 2% of what the server serves at a load it sustains).

Without ``--base-url`` it starts ``transformers serve`` on the tiny offline GPT-2 (CPU, a free
port; tests/integration/serving.py); with it, it measures an already running server.

    python benchmarks/client_overhead.py [--rate 4] [--duration 15] [--pairs 3]
    python benchmarks/client_overhead.py --base-url http://127.0.0.1:8000/v1 --model ID [--rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.integration.serving

TARGET = 0.98
N_PROMPTS = 20
SEED = 42  # llem's default random_seed, given to both


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", help="an OpenAI-compatible server already running (e.g. http://HOST:PORT/v1); "
                                           "default: start transformers serve on the tiny model")
    parser.add_argument("--model", help="the model id the server serves (with --base-url)")
    parser.add_argument("--rate", type=float, default=4.0, help="offered requests/s (default 4: the tiny CPU server "
                                                                "answers one 16-token request in ~0.12 s)")
    parser.add_argument("--duration", type=float, default=15.0, help="steady window per run, seconds")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a request may take (openai.timeout_s)")
    args = parser.parse_args()
    if bool(args.base_url) != bool(args.model):
        parser.error("--base-url and --model go together")

    from llenergymeasure.datasets import load_prompts

    prompts = load_prompts("builtin", N_PROMPTS)
    server = None
    if args.base_url:
        base_url, model = args.base_url.rstrip("/"), args.model
    else:
        from llenergymeasure.testing.tiny_model import build_tiny_gpt2
        from tests.integration.serving import start_server

        work = Path(tempfile.mkdtemp(prefix="llem-client-overhead-"))
        started = time.perf_counter()
        server = start_server(build_tiny_gpt2(work / "tiny-gpt2"), work / "server.log")
        base_url, model = server.base_url, server.model_id
        print(f"transformers serve on the tiny model: {base_url} (up in {time.perf_counter() - started:.1f} s; "
              f"log {work / 'server.log'})")
    try:
        latency = asyncio.run(warm_up(base_url, model, prompts, args.max_tokens, args.timeout))
        print(f"one request alone: {latency * 1000:.0f} ms (median of 5, after warm-up); offered "
              f"{args.rate:g} requests/s keeps the server busy ~{min(1.0, args.rate * latency):.0%} of the time")
        print(f"{args.pairs} pairs, {args.duration:g} s steady window each, {args.max_tokens} tokens a request, "
              f"seed {SEED}; one response more or less in a window is {1 / (args.rate * args.duration):.1%}")
        ratios = []
        for pair in range(args.pairs):
            order = ("llem", "reference") if pair % 2 == 0 else ("reference", "llem")
            rates = {}
            for client in order:
                if client == "llem":
                    rates[client], completed = llem_point(base_url, model, args)
                else:
                    rates[client], completed = asyncio.run(reference_point(base_url, model, prompts, args))
                print(f"  pair {pair + 1} {client:9s} achieved {rates[client]:.3f} requests/s ({completed} responses "
                      f"in the window; offered {args.rate:g})")
            ratios.append(rates["llem"] / rates["reference"])
            print(f"  pair {pair + 1} ratio llem/reference {ratios[-1]:.4f}")
    finally:
        if server is not None:
            server.stop()
    ratio = statistics.median(ratios)
    print(f"achieved-rate ratio llem/reference: median {ratio:.4f} over {args.pairs} pairs "
          f"(min {min(ratios):.4f}, max {max(ratios):.4f})")
    print(f"target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'}")


def llem_point(base_url: str, model: str, args: argparse.Namespace) -> tuple[float, int]:
    """(achieved rate, responses in the window) of one load point measured by llem."""
    from llenergymeasure.config.loader import load_experiment_config
    from llenergymeasure.core.runner import measure

    config = load_experiment_config(cli_overrides={
        "model": model, "backend": "openai", "n": N_PROMPTS, "dataset": "builtin", "random_seed": SEED,
        "max_output_tokens": args.max_tokens, "warmup.enabled": False, "baseline.enabled": False,
        "energy.source": "none", "openai.base_url": base_url, "openai.timeout_s": args.timeout,
        "openai.load": {"rates": [args.rate], "duration_s": args.duration},
    }, user_config_defaults={})
    point = measure(config).load_point
    assert point is not None, "measure() returned no load point"
    achieved = point["achieved_rate"]
    return achieved, round(achieved * args.duration)


async def reference_point(base_url: str, model: str, prompts: list[str],
                          args: argparse.Namespace) -> tuple[float, int]:
    """(achieved rate, responses in the window) of the same load point by a minimal client."""
    import httpx

    gaps = random.Random(SEED)
    url = f"{base_url}/completions"
    ended: list[float] = []
    first = asyncio.Event()
    timeout = httpx.Timeout(args.timeout, connect=10.0)
    async with httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=None)) as client:

        async def one(position: int) -> None:
            body = {"model": model, "prompt": prompts[position % len(prompts)], "max_tokens": args.max_tokens,
                    "stream": True, "stream_options": {"include_usage": True}, "temperature": 0}
            usage = None
            async with client.stream("POST", url, json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    usage = json.loads(data).get("usage") or usage
            ended.append(time.perf_counter())
            if usage is None:
                raise RuntimeError(f"request {position + 1}: the server reported no usage")
            first.set()

        tasks: set[asyncio.Task[None]] = set()
        due = time.perf_counter()
        position = 0
        try:
            while not first.is_set() or time.perf_counter() < ended[0] + args.duration:
                for task in tasks:
                    if task.done() and task.exception():
                        raise task.exception()  # type: ignore[misc]
                now = time.perf_counter()
                if now < due:
                    until = due - now if not first.is_set() else min(due - now, ended[0] + args.duration - now)
                    await asyncio.sleep(max(0.0, until))
                    continue
                tasks.add(asyncio.create_task(one(position)))
                position += 1
                due += gaps.expovariate(args.rate)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    start = ended[0]
    completed = sum(1 for t in ended if start <= t < start + args.duration)
    return completed / args.duration, completed


async def warm_up(base_url: str, model: str, prompts: list[str], max_tokens: int, timeout: float) -> float:
    """Sequential requests until the server has seen every prompt; the median latency of the last 5."""
    import httpx

    latencies = []
    async with httpx.AsyncClient(timeout=timeout) as client:
        for prompt in prompts + prompts[:5]:
            body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
                    "stream_options": {"include_usage": True}, "temperature": 0}
            sent = time.perf_counter()
            async with client.stream("POST", f"{base_url}/completions", json=body) as response:
                response.raise_for_status()
                async for _ in response.aiter_lines():
                    pass
            latencies.append(time.perf_counter() - sent)
    return statistics.median(latencies[-5:])


if __name__ == "__main__":
    main()
