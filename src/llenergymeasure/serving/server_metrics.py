"""A server's own counts from its Prometheus ``/metrics``, beside ours during a load point.

vLLM, SGLang and TGI publish how many requests they are running and how many tokens they have
generated. Read every POLL_S seconds through a load point, they say what the server saw: its
running batch (the mean over the steady window of the gauge's readings) and the tokens it
generated in the window (the counter's rise, each end read between the two polls around it; a
difference from ours is said only past 10% plus the rise between those polls, which the
interpolation cannot tell apart). They
are shown beside ours and never replace them: J/token is always our energy over the ``usage``
tokens. A server's metrics are untrusted input like the rest of its answers: a scrape is bounded
in size and time, a value that is not a finite number from 0 to MAX_VALUE is dropped, and a
server without ``/metrics`` (or without any series below) simply has no ``server`` record.

    FAMILIES       the series read, per server software (the first whose series are present)
    scrape()       one GET of {scheme://host:port}/metrics, parsed (prometheus_client)
    server_counts  the record of a load point from its polls, or None
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

POLL_S = 0.5
SCRAPE_TIMEOUT_S = 2.0
MAX_SCRAPE_BYTES = 8 * 2**20  # vLLM's page with every histogram is a few hundred KiB
MAX_VALUE = 1e15
DISAGREE_SHARE = 0.1  # the server's token count and ours differ by more than this: said as a warning


@dataclass(frozen=True)
class Family:
    server: str
    running: str  # a gauge: requests running now
    generated: str  # a counter: tokens generated so far


FAMILIES = (
    Family("vllm", "vllm:num_requests_running", "vllm:generation_tokens_total"),
    Family("sglang", "sglang:num_running_reqs", "sglang:generation_tokens_total"),
    Family("tgi", "tgi_batch_current_size", "tgi_request_generated_tokens_sum"),
)


def metrics_url(base_url: str) -> str:
    """``http://host:port/metrics`` for ``http://host:port/v1``: servers publish it at the root."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/metrics"


async def scrape(client: Any, url: str) -> dict[str, float] | None:
    """The sums over each series name of FAMILIES (labels added up), or None when the server has
    no such page or no such series (or answers with something else)."""
    try:
        async with client.stream("GET", url, timeout=SCRAPE_TIMEOUT_S) as response:
            if response.status_code != 200:
                return None
            body = bytearray()
            async for part in response.aiter_bytes():
                body += part
                if len(body) > MAX_SCRAPE_BYTES:
                    return None
    except Exception:  # noqa: BLE001 - any failure of an optional read means: no server counts
        return None
    return parse(body.decode("utf-8", errors="replace"))


def parse(text: str) -> dict[str, float] | None:
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {name for family in FAMILIES for name in (family.running, family.generated)}
    sums: dict[str, float] = {}
    try:
        for metric in text_string_to_metric_families(text):
            for sample in metric.samples:
                value = sample.value
                if sample.name in wanted and isinstance(value, (int, float)) and math.isfinite(value) \
                        and 0 <= value <= MAX_VALUE:
                    sums[sample.name] = sums.get(sample.name, 0.0) + float(value)
    except Exception:  # noqa: BLE001 - not the Prometheus text format: no server counts
        return None
    return sums or None


def server_counts(polls: list[tuple[float, dict[str, float]]], start: float, end: float,
                  our_tokens: float) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """(the ``server`` record of a load point, warnings) from ``polls`` ((time, scrape) pairs) over
    the steady window [start, end); None where the server published none of FAMILIES."""
    family = next((f for f in FAMILIES if any(f.running in p or f.generated in p for _, p in polls)), None)
    if family is None:
        return None, []
    record: dict[str, Any] = {"software": family.server}
    running = [p[family.running] for t, p in polls if start <= t < end and family.running in p]
    record["running_mean"] = sum(running) / len(running) if running else None
    counter = [(t, p[family.generated]) for t, p in polls if family.generated in p]
    rise, slack = _counter_rise(counter, start, end)
    record["generated_tokens"] = rise
    record["our_tokens"] = our_tokens
    warnings = []
    if rise is not None and abs(rise - our_tokens) > DISAGREE_SHARE * max(our_tokens, 1) + slack:
        warnings.append(("server_tokens_disagree", f"the server's {family.generated} rose by {rise:.0f} in the "
                                                   f"steady window, the usage llem counted {our_tokens:.0f}: J/token "
                                                   "uses the usage; is another client sending to this server?"))
    return record, warnings


def _counter_rise(counter: list[tuple[float, float]], start: float, end: float) -> tuple[float | None, float]:
    """(the counter's rise over [start, end], each end interpolated between the polls around it;
    how far off that can be: the rise between those polls, at each end). None without polls on
    both sides of both ends, or if it fell (a restart)."""
    at_start, at_end = _at(counter, start), _at(counter, end)
    if at_start is None or at_end is None or at_end[0] < at_start[0]:
        return None, 0.0
    return at_end[0] - at_start[0], at_start[1] + at_end[1]


def _at(counter: list[tuple[float, float]], when: float) -> tuple[float, float] | None:
    """(the counter at ``when``, interpolated, and its rise between the polls around it)."""
    before = [(t, v) for t, v in counter if t <= when]
    after = [(t, v) for t, v in counter if t >= when]
    if not before or not after:
        return None
    (t0, v0), (t1, v1) = before[-1], after[0]
    return (v0 if t1 == t0 else v0 + (v1 - v0) * (when - t0) / (t1 - t0)), abs(v1 - v0)
