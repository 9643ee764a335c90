"""The steady window of a load point: what its numbers are counted over, ramp-up and drain cut.

The window opens when the first response ends (before that, the in-flight count can only rise)
and lasts ``openai.load.duration_s`` (serving/load.py). Over it, and only over it:

    energy        each device's energy of the whole measured window, shared out by its power
                  samples: E_device x (integral of power over the steady window) / (integral over
                  the whole window). A meter's counter keeps its calibration; the samples only
                  say when the energy was spent. A device without samples is shared by time.
    tokens        each ended request's completion tokens (the server's ``usage``, never counted by
                  us) spread evenly over its streamed pieces of text, and those that came inside
                  the window counted; a request that streamed no text counts them when it ended
    requests      steady requests are those sent inside the window; ramp requests were sent before
                  it, drain requests after it. Latencies, time to first token, inter-token gaps
                  and SLOs are those of the steady requests (each lived its whole life under the load)
    achieved rate requests that ended inside the window per second of it
    in flight     the time average of the requests in flight (sent, not yet ended) over the window
"""

from __future__ import annotations

from dataclasses import dataclass

from llenergymeasure.backends.base import BatchOutput
from llenergymeasure.energy.base import EnergyReading
from llenergymeasure.energy.sampler import trapezoid_energy_j
from llenergymeasure.serving.load import LoadRun


@dataclass
class SteadyWindow:
    """A load point's steady window and what was counted in it; times in ``perf_counter`` seconds."""

    start: float
    end: float
    steady: list[BatchOutput]  # the requests sent inside the window that ended, in sending order
    ramp_requests: int
    steady_requests: int  # sent inside the window (ended, or timed out)
    drain_requests: int
    tokens: float  # output tokens that came inside the window
    completed: int  # requests that ended inside the window
    concurrency_mean: float
    in_flight_start: int
    in_flight_end: int
    steady_timed_out: int

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def achieved_rate(self) -> float:
        return self.completed / self.duration_s


def steady_window(run: LoadRun) -> SteadyWindow:
    """The counts of ``run`` over its steady window (the module text)."""
    start, end = run.steady_start, run.steady_end
    spans = [(o.sent_at, o.done_at) for o in run.outputs]
    spans += list(run.timed_out) + [(sent, run.closed) for sent in run.cancelled]
    sent_times = [sent for sent, _ in spans]
    steady = [o for o in run.outputs if start <= o.sent_at < end]  # type: ignore[operator]
    return SteadyWindow(
        start=start, end=end, steady=steady,
        ramp_requests=sum(1 for sent in sent_times if sent < start),
        steady_requests=sum(1 for sent in sent_times if start <= sent < end),
        drain_requests=sum(1 for sent in sent_times if sent >= end),
        tokens=sum(tokens_between(o, start, end) for o in run.outputs),
        completed=sum(1 for o in run.outputs if start <= o.done_at < end),  # type: ignore[operator]
        concurrency_mean=_mean_in_flight(spans, start, end),  # type: ignore[arg-type]
        in_flight_start=_in_flight(spans, start),  # type: ignore[arg-type]
        in_flight_end=_in_flight(spans, end),  # type: ignore[arg-type]
        steady_timed_out=sum(1 for sent, _ in run.timed_out if start <= sent < end),
    )


def tokens_between(output: BatchOutput, start: float, end: float) -> float:
    """The output tokens of one request that came within [start, end) (the module text)."""
    if not output.token_times:
        return float(output.output_tokens) if output.done_at is not None and start <= output.done_at < end else 0.0
    inside = sum(1 for t in output.token_times if start <= t < end)
    return output.output_tokens * inside / len(output.token_times)


def _in_flight(spans: list[tuple[float, float]], at: float) -> int:
    return sum(1 for sent, ended in spans if sent <= at < ended)


def _mean_in_flight(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Time-averaged requests in flight over [start, end]: the overlap of every request's life with it."""
    busy = sum(max(0.0, min(ended, end) - max(sent, start)) for sent, ended in spans)
    return busy / (end - start)


@dataclass(frozen=True)
class SteadyEnergy:
    energy_j: float | None
    gpu_energy_j: float | None
    cpu_energy_j: float | None
    by_time: list[str]  # devices shared by time (no power samples)


def steady_energy(reading: EnergyReading, opened: float, closed: float, start: float, end: float) -> SteadyEnergy:
    """The energy of [start, end] within a reading of [opened, closed] (the module text)."""
    if reading.energy_j is None:
        return SteadyEnergy(None, None, None, [])
    by_time: list[str] = []
    shares: dict[str, float] = {}
    for device in reading.devices:
        samples = reading.timeline.get(device.device, [])
        whole = trapezoid_energy_j(samples, opened, closed) if samples else 0.0
        if whole > 0:
            shares[device.device] = device.energy_j * trapezoid_energy_j(samples, start, end) / whole
        else:
            by_time.append(device.device)
            shares[device.device] = device.energy_j * (end - start) / (closed - opened)
    if not reading.devices:  # a meter that reports no devices: shared by time
        fraction = (end - start) / (closed - opened)
        return SteadyEnergy(reading.energy_j * fraction,
                            None if reading.gpu_energy_j is None else reading.gpu_energy_j * fraction,
                            None if reading.cpu_energy_j is None else reading.cpu_energy_j * fraction, ["all"])
    gpu = [j for name, j in shares.items() if name.startswith("gpu")]
    cpu = [j for name, j in shares.items() if not name.startswith("gpu")]
    total = sum(shares.values())
    return SteadyEnergy(total, sum(gpu) if reading.gpu_energy_j is not None else None,
                        sum(cpu) if reading.cpu_energy_j is not None else None, by_time)
