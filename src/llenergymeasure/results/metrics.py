"""The metric names used everywhere: results JSON, summaries, gates and baselines.

One table, so a gate in a YAML file, a column in a summary and a key in a result can never
disagree on what ``joules_per_token`` means or on which direction is better.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Better = Literal["lower", "higher"]

# name -> (unit, which direction is better, one-line definition)
METRICS: dict[str, tuple[str, Better, str]] = {
    "energy_j": ("J", "lower", "energy over the measurement window, all measured devices"),
    "gpu_energy_j": ("J", "lower", "GPU energy over the window, summed over measured GPUs"),
    "cpu_energy_j": ("J", "lower", "CPU energy over the window (RAPL or estimate)"),
    "baseline_power_w": ("W", "lower", "idle power measured before the run"),
    "net_energy_j": ("J", "lower", "max(0, energy_j - baseline_power_w * duration_s)"),
    "joules_per_token": ("J/token", "lower", "energy_j / output_tokens"),
    "net_joules_per_token": ("J/token", "lower", "net_energy_j / output_tokens"),
    "tokens_per_second": ("tokens/s", "higher", "output_tokens / duration_s"),
    "wh_per_1000_queries": ("Wh", "lower", "energy_j / n_prompts * 1000 / 3600"),
    "prefill_energy_j": ("J", "lower", "energy of the prompts' prefill alone (a prefill-only window, per pass)"),
    "decode_energy_j": ("J", "lower", "energy_j - prefill_energy_j: the window's energy after each prompt's first token"),
    "prefill_joules_per_input_token": ("J/token", "lower", "prefill_energy_j / input_tokens"),
    "decode_joules_per_token": ("J/token", "lower", "decode_energy_j / (output_tokens - n_prompts): per decoded token"),
    "latency_s_p50": ("s", "lower", "median latency per request (per batch when batching)"),
    "latency_s_p95": ("s", "lower", "95th percentile latency per request (per batch when batching)"),
    "ttft_s_p50": ("s", "lower", "median time to first token per batch (per request on a server)"),
    "ttft_s_p95": ("s", "lower", "95th percentile time to first token per batch (per request on a server)"),
    "ttft_s_p90": ("s", "lower", "90th percentile time to first token per request (server backends)"),
    "ttft_s_p99": ("s", "lower", "99th percentile time to first token per request (server backends)"),
    "itl_s_p50": ("s", "lower", "median inter-token latency: gap between streamed tokens (server backends)"),
    "itl_s_p90": ("s", "lower", "90th percentile inter-token latency (server backends)"),
    "itl_s_p99": ("s", "lower", "99th percentile inter-token latency (server backends)"),
    "slo_attainment": ("share", "higher", "share of a load point's steady requests meeting every bound of slo:"),
    "goodput_requests_per_s": ("requests/s", "higher", "requests meeting every bound of slo: per second (achieved "
                                                       "rate x slo_attainment)"),
    "joules_per_good_token": ("J/token", "lower", "energy_j / the tokens of requests meeting every bound of slo:"),
    "peak_memory_mb": ("MB", "lower", "peak device memory during the window"),
    "duration_s": ("s", "lower", "wall time of the measurement window"),
    "output_tokens": ("tokens", "higher", "tokens generated in the window"),
}

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)

# The metrics read from (or derived from) the energy meter: unmeasured whenever energy is.
ENERGY_METRICS: frozenset[str] = frozenset({
    "energy_j", "gpu_energy_j", "cpu_energy_j", "baseline_power_w", "net_energy_j",
    "joules_per_token", "net_joules_per_token", "wh_per_1000_queries",
    "prefill_energy_j", "decode_energy_j", "prefill_joules_per_input_token", "decode_joules_per_token",
    "joules_per_good_token",
})

# The metrics of a load point judged against ``slo:`` (serving/slo.py): None without one.
SLO_METRICS: frozenset[str] = frozenset({"slo_attainment", "goodput_requests_per_s", "joules_per_good_token"})

# The energy metrics of the prefill and decode phases: measured by backends that can run a
# prefill alone (pytorch), None elsewhere.
PHASE_METRICS: frozenset[str] = frozenset({
    "prefill_energy_j", "decode_energy_j", "prefill_joules_per_input_token", "decode_joules_per_token",
})


class Metrics(BaseModel):
    """The value of every metric in METRICS; None where it could not be measured."""

    model_config = ConfigDict(extra="forbid")

    energy_j: float | None = None
    gpu_energy_j: float | None = None
    cpu_energy_j: float | None = None
    baseline_power_w: float | None = None
    net_energy_j: float | None = None
    joules_per_token: float | None = None
    net_joules_per_token: float | None = None
    tokens_per_second: float | None = None
    wh_per_1000_queries: float | None = None
    prefill_energy_j: float | None = None
    decode_energy_j: float | None = None
    prefill_joules_per_input_token: float | None = None
    decode_joules_per_token: float | None = None
    latency_s_p50: float | None = None
    latency_s_p95: float | None = None
    ttft_s_p50: float | None = None
    ttft_s_p95: float | None = None
    ttft_s_p90: float | None = None
    ttft_s_p99: float | None = None
    itl_s_p50: float | None = None
    itl_s_p90: float | None = None
    itl_s_p99: float | None = None
    slo_attainment: float | None = None
    goodput_requests_per_s: float | None = None
    joules_per_good_token: float | None = None
    peak_memory_mb: float | None = None
    duration_s: float | None = None
    output_tokens: float | None = None


def compute_metrics(
    *,
    duration_s: float,
    output_tokens: int,
    n_prompts: int,
    latencies_s: list[float],
    ttfts_s: list[float],
    energy_j: float | None,
    gpu_energy_j: float | None = None,
    cpu_energy_j: float | None = None,
    baseline_power_w: float | None = None,
    peak_memory_mb: float | None = None,
    itls_s: list[float] | None = None,
    input_tokens: int = 0,
    prefill_energy_j: float | None = None,
    slo_attainment: float | None = None,
    goodput_requests_per_s: float | None = None,
    good_tokens: float | None = None,
) -> Metrics:
    """Derive every metric of one measurement window from what was counted in it.

    ``prefill_energy_j`` is one prefill pass over the window's prompts (a prefill-only window,
    core/runner.py); decode is the rest of the window. The first token of each prompt comes from
    the prefill, so decode made ``output_tokens - n_prompts`` tokens. A prefill that measured
    more than the whole window leaves both unmeasured: the difference is below what the meter
    resolves, and a negative energy is never reported. ``slo_attainment``, ``goodput_requests_per_s``
    and ``good_tokens`` (the tokens of requests meeting the SLO) come from a load point with
    ``slo:`` (serving/slo.py)."""
    per_token = (lambda joules: joules / output_tokens) if output_tokens else (lambda joules: None)
    net = None
    if energy_j is not None and baseline_power_w is not None:
        net = max(0.0, energy_j - baseline_power_w * duration_s)
    prefill = decode = None
    if energy_j is not None and prefill_energy_j is not None and 0 <= prefill_energy_j <= energy_j:
        prefill, decode = prefill_energy_j, energy_j - prefill_energy_j
    decoded_tokens = output_tokens - n_prompts
    return Metrics(
        energy_j=energy_j,
        gpu_energy_j=gpu_energy_j,
        cpu_energy_j=cpu_energy_j,
        baseline_power_w=baseline_power_w,
        net_energy_j=net,
        joules_per_token=per_token(energy_j) if energy_j is not None else None,
        net_joules_per_token=per_token(net) if net is not None else None,
        tokens_per_second=output_tokens / duration_s if duration_s > 0 else None,
        wh_per_1000_queries=energy_j / n_prompts * 1000 / 3600 if energy_j is not None and n_prompts else None,
        prefill_energy_j=prefill,
        decode_energy_j=decode,
        prefill_joules_per_input_token=prefill / input_tokens if prefill is not None and input_tokens > 0 else None,
        decode_joules_per_token=decode / decoded_tokens if decode is not None and decoded_tokens > 0 else None,
        latency_s_p50=percentile(latencies_s, 50),
        latency_s_p95=percentile(latencies_s, 95),
        ttft_s_p50=percentile(ttfts_s, 50),
        ttft_s_p95=percentile(ttfts_s, 95),
        ttft_s_p90=percentile(ttfts_s, 90),
        ttft_s_p99=percentile(ttfts_s, 99),
        itl_s_p50=percentile(itls_s or [], 50),
        itl_s_p90=percentile(itls_s or [], 90),
        itl_s_p99=percentile(itls_s or [], 99),
        slo_attainment=slo_attainment,
        goodput_requests_per_s=goodput_requests_per_s,
        joules_per_good_token=energy_j / good_tokens if energy_j is not None and good_tokens else None,
        peak_memory_mb=peak_memory_mb,
        duration_s=duration_s,
        output_tokens=float(output_tokens),
    )


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
