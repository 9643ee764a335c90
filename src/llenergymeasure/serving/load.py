"""One load point of a ramp: requests at an offered rate until a steady window has been served.

    run = await drive(send, n_prompts=50, rate=4.0, concurrency=8, duration_s=60, seed=42)

``rate`` is requests per second as Poisson arrivals (exponential gaps drawn from ``seed``: the
same schedule every run), or "inf": a closed loop that keeps ``concurrency`` requests in flight.
Request ``i`` sends prompt ``i mod n_prompts``. The point has three phases:

    ramp     from the first request sent to the first response ended; until then the in-flight
             count can only rise
    steady   the next ``duration_s``: every number of the point is counted over it
    drain    requests keep arriving at the same rate until every request sent before the steady
             window closed has ended (so each of them lived its whole life under the load); the
             ones still in flight then were sent after it closed: they are cancelled, not counted

A finite rate is an open loop (a request is sent when it is due, however many are in flight, up
to MAX_IN_FLIGHT), as a server's users send them. A request that has not ended within
``openai.timeout_s`` is a timed-out request of the point (it saturates the point and misses every
SLO), not an error: a ramp is meant to pass the server's capacity. Any other failure of a request
ends the run, as in backends/openai.py.

Whether a point is saturated is decided from what was served (``saturation``):

    the in-flight count grew through the steady window by more than it fluctuates (3 standard
        deviations of the difference of two in-flight counts, sqrt(2 x mean in flight) as for
        Poisson arrivals, plus 5% of the requests sent): requests arrive faster than they end,
        so the server serves less than is offered;
    time to first token grew through the window, the over-saturation check of guidellm: the
        window cut into TREND_BLOCKS spans by sending time, the median time to first token of
        each, and their least-squares slope with t > 3 and a rise over the window larger than the
        median itself. Medians of spans, not every request: a queue's waits are correlated from
        one request to the next, and a slope over single requests calls a stable queue saturated
        (41% of the time at 85% of capacity: benchmarks/saturation_detection.py);
    a request timed out.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.backends.base import BatchOutput
from llenergymeasure.exceptions import ExperimentError

MAX_IN_FLIGHT = 4096  # an open loop's requests in flight at once; far past what one server batches
TREND_BLOCKS = 6  # spans of the steady window whose median times to first token are compared
MIN_TREND_REQUESTS = 2 * TREND_BLOCKS  # fewer steady requests than this cannot show a trend
TREND_T = 3.0  # t statistic of the slope of the spans' medians that counts as growing
TREND_GROWTH = 1.0  # ... and its rise over the window, as a share of the median time to first token
SHORTFALL_SHARE = 0.05  # in-flight growth, as a share of the requests sent, that counts as a shortfall


class RequestTimedOut(Exception):
    """A request of a load point did not end within openai.timeout_s."""


@dataclass
class LoadRun:
    """What one load point sent and got back; times are ``time.perf_counter()`` readings."""

    rate: float | str
    concurrency: int
    opened: float  # the first request was sent
    steady_start: float = 0.0  # the first response ended
    steady_end: float = 0.0  # steady_start + duration_s
    closed: float = 0.0  # every counted request had ended, the rest were cancelled
    outputs: list[BatchOutput] = field(default_factory=list)  # every request that ended, by sending order
    cancelled: list[float] = field(default_factory=list)  # when each drain request cut off was sent
    timed_out: list[tuple[float, float]] = field(default_factory=list)  # (sent, given up) of each timed-out one
    server_polls: list[tuple[float, dict[str, float]]] = field(default_factory=list)  # serving/server_metrics.py


async def drive(send: Callable[[int, int], Awaitable[BatchOutput]], *, n_prompts: int, rate: float | str,
                concurrency: int, duration_s: float, seed: int, timeout_s: float,
                on_done: Callable[[], Any] = lambda: None, clock: Callable[[], float] = time.perf_counter) -> LoadRun:
    """Run one load point (the module text): ``send(position, prompt_index)`` sends one request and
    returns its output with its clock (``sent_at``, ``token_times``, ``done_at``), raising
    RequestTimedOut when it gives up; ``on_done`` is called as each one ends."""
    closed_loop = rate == "inf"
    limit = concurrency if closed_loop else MAX_IN_FLIGHT
    gaps = random.Random(seed)
    run = LoadRun(rate, concurrency, opened=clock())
    sent: dict[int, float] = {}
    results: dict[int, BatchOutput] = {}
    in_flight: dict[int, asyncio.Task[None]] = {}
    wake = asyncio.Event()
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    steady: list[float] = []  # [start] once the first response ended

    async def one(position: int) -> None:
        try:
            output = await asyncio.wait_for(send(position, position % n_prompts), timeout_s)
        except (RequestTimedOut, asyncio.TimeoutError):
            run.timed_out.append((sent[position], clock()))
            if not steady and not failed.done():
                failed.set_exception(ExperimentError(
                    f"load point {_rate_text(rate)}: request {position + 1} did not end within openai.timeout_s = "
                    f"{timeout_s:g} s before any response had ended; the server is not serving (or raise "
                    "openai.timeout_s)"))
        except Exception as exc:  # an ExperimentError naming the request (or a bug of ours)
            if not failed.done():
                failed.set_exception(exc)
        else:
            results[position] = output
            if not steady:
                steady.append(output.done_at if output.done_at is not None else clock())
            on_done()
        finally:
            in_flight.pop(position, None)
            wake.set()

    def finished() -> bool:
        if not steady or clock() < steady[0] + duration_s:
            return False
        end = steady[0] + duration_s
        return all(sent[position] >= end for position in in_flight)

    async def pause(seconds: float) -> None:
        """Until a request ends, or ``seconds`` have passed."""
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), max(0.0, seconds))
        except asyncio.TimeoutError:
            pass

    async def dispatch() -> None:
        due = run.opened
        position = 0
        while not finished():
            now = clock()
            # Until the window closes, wake at its end to see whether the point is done; after it,
            # only a request ending can make it so.
            check_at = steady[0] + duration_s - now if steady and now < steady[0] + duration_s else math.inf
            if len(in_flight) >= limit:
                await pause(min(check_at, 1.0))
                continue
            if not closed_loop and now < due:
                await pause(min(due - now, check_at))
                continue
            sent[position] = clock()
            in_flight[position] = asyncio.create_task(one(position))
            position += 1
            if not closed_loop:
                due += gaps.expovariate(float(rate))

    dispatcher = asyncio.create_task(dispatch())
    try:
        await asyncio.wait({dispatcher, failed}, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            failed.result()  # raises the first failure
        dispatcher.result()
    finally:
        cut = list(in_flight.items())
        for task in (dispatcher, *(task for _, task in cut)):
            task.cancel()
        await asyncio.gather(dispatcher, *(task for _, task in cut), return_exceptions=True)
    run.closed = clock()
    run.steady_start = steady[0]
    run.steady_end = steady[0] + duration_s
    run.cancelled = sorted(sent[position] for position, _ in cut if position not in results)
    run.outputs = [results[position] for position in sorted(results)]
    for output in run.outputs:
        assert output.sent_at is not None
    return run


@dataclass(frozen=True)
class Saturation:
    saturated: bool
    why: str | None  # the first reason, as a sentence


def saturation(rate: float | str, steady: list[BatchOutput], in_flight_start: int, in_flight_end: int,
               concurrency_mean: float, timed_out: int, start: float, end: float) -> Saturation:
    """Whether a load point is saturated (the module text), from its steady window [start, end) and
    the requests sent in it."""
    if timed_out:
        return Saturation(True, f"{timed_out} request(s) did not end within openai.timeout_s")
    growth = in_flight_end - in_flight_start
    spread = 3 * math.sqrt(2 * max(concurrency_mean, 0.0)) + SHORTFALL_SHARE * len(steady)
    if rate != "inf" and growth > max(spread, 1):
        return Saturation(True, f"requests arrived faster than they ended: {growth} more in flight at the end of the "
                                f"steady window than at its start (more than the {spread:.1f} the load's own "
                                "fluctuation explains)")
    trend = ttft_trend(steady, start, end)
    if trend is not None:
        rise, t, median = trend
        if t > TREND_T and rise > TREND_GROWTH * median:
            return Saturation(True, f"time to first token grew through the steady window: its median rose by "
                                    f"{rise:.3g} s over {end - start:.3g} s (overall median {median:.3g} s; t = {t:.1f})")
    return Saturation(False, None)


def ttft_trend(steady: list[BatchOutput], start: float, end: float) -> tuple[float, float, float] | None:
    """(the rise of the median time to first token over [start, end), the t statistic of its slope,
    the median over all of ``steady``), from the medians of TREND_BLOCKS equal spans by sending
    time; None with too few requests or a span without any."""
    points = [(o.sent_at, o.ttft_s) for o in steady if o.sent_at is not None and o.ttft_s is not None]
    if len(points) < MIN_TREND_REQUESTS or end <= start:
        return None
    width = (end - start) / TREND_BLOCKS
    spans: list[list[float]] = [[] for _ in range(TREND_BLOCKS)]
    for sent, ttft in points:
        spans[min(TREND_BLOCKS - 1, max(0, int((sent - start) / width)))].append(ttft)
    if not all(spans):
        return None
    medians = [statistics.median(span) for span in spans]
    xs = range(TREND_BLOCKS)
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(medians)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, medians)) / sxx
    residual = sum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in zip(xs, medians))
    error = math.sqrt(residual / (TREND_BLOCKS - 2) / sxx)
    t = (math.inf if slope > 0 else 0.0) if error == 0 else slope / error
    return slope * TREND_BLOCKS, t, statistics.median(ttft for _, ttft in points)


def _rate_text(rate: float | str) -> str:
    return "closed loop" if rate == "inf" else f"{float(rate):g} requests/s"
