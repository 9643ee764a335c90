"""How often a load point is called saturated, below and above the server's capacity.

The verdict is the load ramp's own (serving/point.py ``point_numbers``, which runs
serving/steady_state.py and serving/load.py ``saturation``), fed simulated load points: one
server serving one request at a time, first come first served (an M/D/1 queue, or M/M/1 with
``--exponential``), service time S = prefill + (tokens - 1) x time per token, Poisson arrivals at
rho / S requests per second. The simulated client behaves as serving/load.py does: the steady
window opens at the first response's end and lasts ``--duration``; requests keep arriving until
every request sent before the window closed has ended; the rest are cancelled.

Below capacity (rho < 1) a "saturated" verdict is a false alarm (it stops a ramp early); above it,
a missed one lets the ramp run on into a point that measures a queue, not the server. Near rho = 1
either answer is defensible. Each cell is seeded on its own; intervals are Wilson 95%.

    python benchmarks/saturation_detection.py [--trials 400] [--duration 60] [--service 0.09]
                                              [--rhos 0.5,0.7,0.85,0.95,1.05,1.2,1.5,2] [--seed 0] [--exponential]

A second table runs doubling ramps (rates capacity x 2^k, k from -3, with a random phase) and
counts where the first saturated point falls: at the first rate above capacity ("one step"), the
next one, or earlier (a false alarm below capacity).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics

from nights import rate

from llenergymeasure.backends.base import BatchOutput
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.energy.base import EnergyReading
from llenergymeasure.serving.load import LoadRun
from llenergymeasure.serving.point import point_numbers

PREFILL_SHARE = 0.2  # of the service time, before the first token
TOKENS = 8


def simulate(arrivals_per_s: float, service: float, duration: float, rng: random.Random, exponential: bool) -> LoadRun:
    """One load point against a single FIFO server, as serving/load.py would have driven it: the
    window opens when the first request ends, and the point closes when every request sent before
    the window closed has ended (or at the window's end, if later); requests keep arriving until then."""
    sends: list[float] = []
    starts: list[float] = []
    dones: list[float] = []
    now, free_at = 0.0, 0.0
    window_end = closed = math.inf
    while now < closed:
        took = rng.expovariate(1 / service) if exponential else service
        start = max(now, free_at)
        free_at = start + took
        sends.append(now)
        starts.append(start)
        dones.append(free_at)
        if len(sends) == 1:
            window_end = free_at + duration  # FIFO: the first request sent is the first to end
        if now < window_end:
            closed = max(window_end, free_at)  # the last request sent before the window closed ends last
        now += rng.expovariate(arrivals_per_s)
    outputs, cancelled = [], []
    for sent, start, done in zip(sends, starts, dones):
        if done > closed:
            cancelled.append(sent)
            continue
        first = start + PREFILL_SHARE * (done - start)
        times = [first + (done - first) * i / (TOKENS - 1) for i in range(TOKENS)]
        outputs.append(BatchOutput(input_tokens=3, output_tokens=TOKENS, latency_s=done - sent, ttft_s=first - sent,
                                   itls_s=[b - a for a, b in zip(times, times[1:])], sent_at=sent, token_times=times,
                                   done_at=done))
    return LoadRun(rate=arrivals_per_s, concurrency=1, opened=0.0, steady_start=dones[0], steady_end=window_end, closed=closed,
                   outputs=outputs, cancelled=cancelled)


def saturated(config, run: LoadRun) -> bool:
    reading = EnergyReading(source="none", unavailable_reason="simulated")
    return point_numbers(config, run, reading, run.opened, run.closed).load_point["saturated"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--duration", type=float, default=60.0, help="steady window per point, seconds")
    parser.add_argument("--service", type=float, default=0.09, help="service time of one request, seconds")
    parser.add_argument("--rhos", default="0.5,0.7,0.85,0.95,1.05,1.2,1.5,2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exponential", action="store_true", help="exponential service times (M/M/1)")
    args = parser.parse_args()
    config = load_experiment_config(cli_overrides={"model": "m", "backend": "openai", "energy.source": "none"},
                                    user_config_defaults={})
    queue = "M/M/1" if args.exponential else "M/D/1"
    print(f"{queue}, service {args.service:g} s (capacity {1 / args.service:.3g} requests/s), steady window "
          f"{args.duration:g} s, {args.trials} trials per cell, seed {args.seed}")
    print(f"{'rho':>5}  {'offered/s':>9}  {'called saturated (95% CI)':<28}  median steady requests")
    for index, rho in enumerate(float(r) for r in args.rhos.split(",")):
        rng = random.Random(f"{args.seed}:{index}:{rho}")
        offered = rho / args.service
        hits, counts = 0, []
        for _ in range(args.trials):
            run = simulate(offered, args.service, args.duration, rng, args.exponential)
            hits += saturated(config, run)
            counts.append(sum(1 for o in run.outputs if run.steady_start <= o.sent_at < run.steady_end))
        kind = "false alarm" if rho < 1 else "detected"
        print(f"{rho:5.2f}  {offered:9.3g}  {rate(hits, args.trials):<28}  {statistics.median(counts):.0f}  ({kind})")

    print("\ndoubling ramps (rates = capacity x 2^k x phase, phase uniform in [1, 2), k = -3, -2, ...): "
          "where the first saturated point falls")
    rng = random.Random(f"{args.seed}:ramps")
    outcomes = {"below capacity (false alarm)": 0, "first rate above capacity": 0, "second rate above": 0,
                "later": 0}
    ramps = max(args.trials // 4, 50)
    for _ in range(ramps):
        phase = rng.uniform(1, 2)
        above = 0
        for k in range(-3, 4):
            rho = phase * 2 ** k
            if saturated(config, simulate(rho / args.service, args.service, args.duration, rng, args.exponential)):
                break
            above += rho > 1
        if rho < 1:
            outcomes["below capacity (false alarm)"] += 1
        elif above == 0:
            outcomes["first rate above capacity"] += 1
        elif above == 1:
            outcomes["second rate above"] += 1
        else:
            outcomes["later"] += 1
    for what, hits in outcomes.items():
        print(f"  {what:<30} {rate(hits, ramps)}")


if __name__ == "__main__":
    main()
