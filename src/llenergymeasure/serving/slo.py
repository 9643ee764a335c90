"""Latency objectives of a load point: which requests meet them, goodput, and the SLO point.

``slo:`` names bounds such as ``ttft_s_p99: 2.0`` (config/models.py SLOConfig). Two readings of
one bound, both used:

    a request meets the SLO     its time to first token and its latency are within every ttft_s
                                and latency_s bound, and its own inter-token gaps, at the key's
                                percentile, within every itl_s bound (a timed-out request meets
                                none); the ``good`` requests
    a load point meets the SLO  each bound holds as a percentile over the point's steady
                                requests: ttft_s_p99 <= 2.0 means the 99th percentile of their
                                times to first token is at most 2.0 s

    slo_attainment            good steady requests / steady requests
    goodput_requests_per_s    achieved rate x slo_attainment
    joules_per_good_token     steady energy / the steady window's tokens of good requests (every
                              request that streamed in the window is judged, ramp ones too): the
                              energy of the tokens that served a user in time

The SLO point of a ramp is its highest load point that meets the SLO (by achieved rate, as the
ramp runs from light to heavy); a gate ``at: slo`` reads the metric there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llenergymeasure.backends.base import BatchOutput
from llenergymeasure.config.models import SLOConfig
from llenergymeasure.results.metrics import percentile


def request_meets(output: BatchOutput, slo: SLOConfig) -> bool:
    """Whether one ended request meets every bound of ``slo`` (the module text)."""
    for quantity, percent, bound in slo.bounds():
        if quantity == "ttft_s":
            value = output.ttft_s
        elif quantity == "latency_s":
            value = output.latency_s
        else:
            value = percentile(output.itls_s, percent) if output.itls_s else 0.0
        if value is None or value > bound:
            return False
    return True


@dataclass(frozen=True)
class PointSLO:
    """A load point against ``slo``: ``met`` and, when not, ``missed`` (what exceeded which bound)."""

    met: bool
    missed: list[str]
    attainment: float | None
    good: list[bool]  # per steady request that ended


def judge_point(steady: list[BatchOutput], timed_out: int, slo: SLOConfig) -> PointSLO:
    """The point's percentiles against every bound, and which steady requests meet the SLO."""
    good = [request_meets(output, slo) for output in steady]
    total = len(steady) + timed_out
    values: dict[str, list[float]] = {
        "ttft_s": [o.ttft_s for o in steady if o.ttft_s is not None],
        "latency_s": [o.latency_s for o in steady],
        "itl_s": [gap for o in steady for gap in o.itls_s],
    }
    missed = []
    if timed_out:
        missed.append(f"{timed_out} request(s) timed out")
    for quantity, percent, bound in slo.bounds():
        found = percentile(values[quantity], percent)
        if found is None and quantity == "itl_s":
            continue  # no request streamed two pieces of text: no gap to bound
        if found is None or found > bound:
            shown = "no value" if found is None else f"{found:.3g} s"
            missed.append(f"{quantity}_p{percent} {shown} > {bound:g} s")
    return PointSLO(not missed and total > 0, missed, sum(good) / total if total else None, good)


def slo_point(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest load point that meets the SLO, of ``points`` (each a result's ``load_point``
    with ``slo_met``), by achieved rate; None when none meets it."""
    met = [point for point in points if point.get("slo_met")]
    return max(met, key=lambda point: point.get("achieved_rate") or 0.0) if met else None
