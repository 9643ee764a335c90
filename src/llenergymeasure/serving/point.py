"""A load point's numbers: its steady window's counts and energy, its saturation and its SLO.

``point_numbers`` turns what one load point sent and got back (serving/load.py) and the meter's
reading of the whole window into what a result holds: the inputs of ``compute_metrics`` (over
the steady window only) and ``load_point``, the record of where on the load curve the numbers
were taken:

    offered_rate       requests/s offered (null: a closed loop of ``concurrency`` requests)
    achieved_rate      requests that ended in the steady window, per second
    concurrency_mean   requests in flight, time-averaged over the steady window
    saturated, saturation   whether the server kept up, and if not, why (serving/load.py)
    steady_start_s, steady_end_s, window_s   the cut points, in seconds since the window opened
    requests           {ramp, steady, drain, timed_out}: how many were sent in each phase
    slo_met, slo_missed     with ``slo:``, whether the point meets it, and what missed
    server             where the server publishes Prometheus /metrics (vLLM, SGLang, TGI): its own
                       running batch and generated tokens over the window, beside ours
                       (serving/server_metrics.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.energy.base import EnergyReading
from llenergymeasure.serving.load import LoadRun, saturation
from llenergymeasure.serving.server_metrics import server_counts
from llenergymeasure.serving.slo import judge_point, request_meets
from llenergymeasure.serving.steady_state import SteadyWindow, steady_energy, steady_window, tokens_between


@dataclass
class PointNumbers:
    window: SteadyWindow
    metrics: dict[str, Any]  # compute_metrics' inputs but baseline and memory
    load_point: dict[str, Any]
    warnings: list[tuple[str, str]] = field(default_factory=list)


def point_numbers(config: ExperimentConfig, run: LoadRun, reading: EnergyReading, opened: float,
                  closed: float) -> PointNumbers:
    """The steady window's numbers of one load point (the module text)."""
    window = steady_window(run)
    energy = steady_energy(reading, opened, closed, window.start, window.end)
    rate = run.rate
    state = saturation(rate, window.steady, window.in_flight_start, window.in_flight_end, window.concurrency_mean,
                       window.steady_timed_out, window.start, window.end)
    warnings = []
    if energy.by_time:
        warnings.append(("steady_energy_by_time", f"{', '.join(energy.by_time)}: no power samples in the window, so "
                                                  "the steady window's energy is its share of the time"))
    if run.timed_out:
        warnings.append(("requests_timed_out", f"{len(run.timed_out)} request(s) did not end within "
                                               f"openai.timeout_s = {config.openai.timeout_s:g} s: their tokens are "
                                               "not counted, and they meet no SLO"))
    slo_inputs: dict[str, Any] = {}
    slo_fields: dict[str, Any] = {}
    if config.slo is not None:
        judged = judge_point(window.steady, window.steady_timed_out, config.slo)
        # Every request that streamed inside the window is judged for its tokens, ramp ones too:
        # the energy of the window paid for all of them.
        good_tokens = sum(tokens_between(o, window.start, window.end) for o in run.outputs
                          if request_meets(o, config.slo))
        attainment = judged.attainment
        slo_inputs = {"slo_attainment": attainment, "good_tokens": good_tokens,
                      "goodput_requests_per_s": None if attainment is None else window.achieved_rate * attainment}
        slo_fields = {"slo_met": judged.met, "slo_missed": judged.missed}
    steady = window.steady
    metrics = {
        "duration_s": window.duration_s,
        "output_tokens": round(window.tokens),
        "n_prompts": window.steady_requests,
        "latencies_s": [o.latency_s for o in steady],
        "ttfts_s": [o.ttft_s for o in steady if o.ttft_s is not None],
        "itls_s": [gap for o in steady for gap in o.itls_s],
        "input_tokens": sum(o.input_tokens for o in steady),
        "energy_j": energy.energy_j,
        "gpu_energy_j": energy.gpu_energy_j,
        "cpu_energy_j": energy.cpu_energy_j,
        **slo_inputs,
    }
    server, said = server_counts(run.server_polls, window.start, window.end, window.tokens)
    warnings += said
    load_point = {
        "offered_rate": None if rate == "inf" else float(rate),
        "concurrency": run.concurrency if rate == "inf" else None,
        "achieved_rate": window.achieved_rate,
        "concurrency_mean": window.concurrency_mean,
        "saturated": state.saturated,
        "saturation": state.why,
        "steady_start_s": window.start - opened,
        "steady_end_s": window.end - opened,
        "window_s": closed - opened,
        "requests": {"ramp": window.ramp_requests, "steady": window.steady_requests, "drain": window.drain_requests,
                     "timed_out": len(run.timed_out)},
        **slo_fields,
        **({"server": server} if server else {}),
    }
    return PointNumbers(window, metrics, load_point, warnings)


def merged_load_point(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A result's ``load_point`` over its repeats: the first repeat's, with the achieved rate and
    mean in flight as medians, saturated if any repeat was, the SLO met only if every one met it."""
    import statistics

    if not points or any(point is None for point in points):
        return None
    merged = dict(points[0])
    for key in ("achieved_rate", "concurrency_mean"):
        merged[key] = statistics.median(point[key] for point in points)
    merged["saturated"] = any(point["saturated"] for point in points)
    merged["saturation"] = next((point["saturation"] for point in points if point["saturation"]), None)
    if "slo_met" in merged:
        merged["slo_met"] = all(point["slo_met"] for point in points)
        merged["slo_missed"] = next((point["slo_missed"] for point in points if point["slo_missed"]), [])
    return merged
