"""Plain-text output of ``llem``: result summaries and tables on stdout, dry-run reports.

Every energy figure is printed with its source, an estimate always says "(estimated)", and a
figure the meter's sanity checks doubted says "(suspect)"; a study table's verdict names every
doubt its result's warnings carry (results/doubts.py), never a bare "ok" beside them. Nothing
here fails on a missing or odd number (None, NaN, zero, negative): it is shown as "n/a" or as it is.
"""

from __future__ import annotations

from llenergymeasure.config.models import ExperimentConfig, flatten
from llenergymeasure.core.vram import VramEstimate
from llenergymeasure.results.doubts import doubts, with_doubts
from llenergymeasure.results.gates import GateVerdict
from llenergymeasure.results.model import ExperimentResult
from llenergymeasure.results.tables import fmt, is_number, load_point_text, text_table


def energy_label(result: ExperimentResult) -> str:
    return result.energy_source + _qualifiers(result)


def joules_per_token(result: ExperimentResult) -> str:
    value = result.metrics.joules_per_token
    if not is_number(value):
        return "unavailable"
    return f"{value:.4g} J/token" + _qualifiers(result)


def prefill_decode(result: ExperimentResult) -> str:
    """``0.31 J (0.0006 J/input token) / 15.3 J (0.015 J/token)``, with the energy's qualifiers."""
    m = result.metrics
    return (f"{fmt(m.prefill_energy_j)} J ({fmt(m.prefill_joules_per_input_token)} J/input token) / "
            f"{fmt(m.decode_energy_j)} J ({fmt(m.decode_joules_per_token)} J/token)" + _qualifiers(result))


def _qualifiers(result: ExperimentResult) -> str:
    """The marks every energy figure of ``result`` carries: " (estimated)", " (suspect)"."""
    return (" (estimated)" if result.estimated else "") + (" (suspect)" if result.energy_suspect else "")


def print_result(result: ExperimentResult, verdicts: list[GateVerdict], saved_to: str | None) -> None:
    """The detailed summary of one experiment."""
    config = result.config
    m = result.metrics
    server = config.get("backend") == "openai"
    unit = "request" if server else "batch"
    spread = result.stats.get("joules_per_token") or result.stats.get("tokens_per_second")
    rows: list[tuple[str, str]] = [
        ("tokens", f"{result.output_tokens} generated from {result.input_tokens} input tokens"),
        ("duration", f"{fmt(m.duration_s)} s" + (f" (median of {len(result.repeats)} repeats)" if len(result.repeats) > 1 else "")),
        ("throughput", f"{fmt(m.tokens_per_second)} tokens/s"),
        ("latency p50/p95", f"{fmt(m.latency_s_p50)} s / {fmt(m.latency_s_p95)} s per {unit}"),
    ]
    if m.ttft_s_p95 is not None:
        rows.append(("ttft p50/p95", f"{fmt(m.ttft_s_p50)} s / {fmt(m.ttft_s_p95)} s per {unit}"))
    else:
        rows.append(("ttft p50", f"{fmt(m.ttft_s_p50)} s"))
    if m.itl_s_p50 is not None:
        rows.append(("itl p50", f"{fmt(m.itl_s_p50)} s between streamed chunks"))
    if result.load_point:
        rows.extend(load_point_rows(result))
    if not is_number(m.energy_j):
        rows.append(("energy", f"unavailable: {result.energy_unavailable_reason or 'not measured'}"))
    else:
        rows.append(("energy", f"{fmt(m.energy_j)} J from {energy_label(result)}"))
    rows.append(("joules per token", joules_per_token(result)))
    if m.prefill_energy_j is not None or m.decode_energy_j is not None:
        rows.append(("prefill / decode", prefill_decode(result)))
    if m.net_joules_per_token is not None:
        rows.append(("net J/token", f"{fmt(m.net_joules_per_token)} (idle {fmt(m.baseline_power_w)} W subtracted)"))
    if m.wh_per_1000_queries is not None:
        rows.append(("Wh per 1000 queries", fmt(m.wh_per_1000_queries)))
    if result.co2_g is not None:
        rows.append(("CO2", f"{fmt(result.co2_g)} g (estimated from {result.carbon_intensity_source})"))
    if spread is not None and is_number(spread.cv):
        rows.append(("spread", f"CV {spread.cv:.1%} over {spread.n} repeats"))
    no_memory = "n/a (the server's own)" if server else "n/a on CPU"
    rows.append(("peak memory", f"{fmt(m.peak_memory_mb, 5)} MB" if m.peak_memory_mb is not None else no_memory))
    for verdict in verdicts:
        rows.append(("expect", ("PASS  " if verdict.passed else "FAIL  ") + verdict.text))
    if saved_to:
        rows.append(("result", saved_to))

    print(f"{result.name}  ({_workload(result)})")
    for label, text in rows:
        print(f"  {label:<20}{text}")
    for warning in result.measurement_warnings:
        print(f"  warning: [{warning.code}] {warning.message}")


def load_point_rows(result: ExperimentResult) -> list[tuple[str, str]]:
    """The summary's rows of a load point: where on the load curve, its steady window, its SLO."""
    point, m = result.load_point or {}, result.metrics
    requests = point.get("requests") or {}
    rows = [("load point", load_point_text(point))]
    if point.get("saturated"):
        rows.append(("saturated", str(point.get("saturation") or "yes")))
    rows.append(("steady window", f"{fmt(point.get('steady_start_s'), 3)} s to {fmt(point.get('steady_end_s'), 3)} s "
                                  f"of {fmt(point.get('window_s'), 3)} s (requests: {requests.get('ramp', '?')} ramp, "
                                  f"{requests.get('steady', '?')} steady, {requests.get('drain', '?')} drain cut)"))
    server = point.get("server")
    if isinstance(server, dict):
        rows.append(("server's counts", f"{server.get('software')} /metrics: {fmt(server.get('running_mean'), 3)} "
                                        f"running (mean), {_whole(server.get('generated_tokens'))} tokens generated "
                                        f"(llem counted {_whole(server.get('our_tokens'))})"))
    rows.append(("ttft p90/p99", f"{fmt(m.ttft_s_p90)} s / {fmt(m.ttft_s_p99)} s"))
    if m.itl_s_p99 is not None:
        rows.append(("itl p90/p99", f"{fmt(m.itl_s_p90)} s / {fmt(m.itl_s_p99)} s"))
    if "slo_met" in point:
        missed = "; ".join(point.get("slo_missed") or [])
        rows.append(("slo", "met" if point["slo_met"] else f"missed: {missed}"))
        rows.append(("goodput", f"{fmt(m.goodput_requests_per_s, 3)} requests/s ({fmt(_percent(m.slo_attainment), 3)}% "
                                f"of requests meet the SLO), {fmt(m.joules_per_good_token)} J/good token"
                                + _qualifiers(result)))
    return rows


def _whole(count: float | None) -> str:
    return f"{count:.0f}" if is_number(count) else "n/a"


def _percent(share: float | None) -> float | None:
    return None if share is None else share * 100


def _workload(result: ExperimentResult) -> str:
    """What ran where, for the summary's first line."""
    config, device = result.config, result.environment.device
    if config.get("backend") == "openai" and result.load_point:
        server = config.get("openai") or {}
        return f"openai server {server.get('base_url', '?')}, {server.get('endpoint', 'completions')}, load point"
    if config.get("backend") == "openai":
        server = config.get("openai") or {}
        rate = server.get("request_rate")
        pace = f"{rate:g} requests/s" if is_number(rate) else "as fast as allowed"
        return (f"openai server {server.get('base_url', '?')}, {result.n_prompts} requests, concurrency "
                f"{server.get('concurrency', '?')}, {pace}")
    batch = (config.get("pytorch") or {}).get("batch_size")
    batch = batch if isinstance(batch, int) and batch > 0 else 1
    batches = -(-result.n_prompts // batch)
    precision = config.get("precision", "?")
    if result.environment.auto_precision:
        precision = f"{precision} (precision auto)"
    return (f"{config.get('backend', '?')} on {device}, {precision}, "
            f"{result.n_prompts} prompts in {batches} batch{'es' if batches != 1 else ''} of {batch}")


def print_table(rows: list[dict[str, str]]) -> None:
    """A plain aligned table; rows share their keys."""
    for line in text_table(rows):
        print(line)


def one_line(error: Exception) -> str:
    """An error as one table cell: every problem it lists, joined with '; '."""
    problems = getattr(error, "problems", None)
    return "; ".join(problems) if problems else " ".join(str(error).split())


def summary_row(exp_id: str, result: ExperimentResult | None, verdicts: list[GateVerdict], error: str | None) -> dict[str, str]:
    if result is None:
        return {"experiment": exp_id, "J/token": "-", "tokens/s": "-", "energy source": "-", "verdict": f"ERROR: {error}"}
    failed = [v.text for v in verdicts if not v.passed]
    verdict = "FAIL: " + "; ".join(failed) if failed else ("PASS" if verdicts else "ok")
    flags = doubts((w.code for w in result.measurement_warnings), result.energy_suspect)
    load = {"load": load_point_text(result.load_point)} if result.load_point else {}
    return {
        "experiment": exp_id,
        **load,
        "J/token": fmt(result.metrics.joules_per_token) + (" (est.)" if result.estimated else "")
                   + (" (suspect)" if result.energy_suspect else ""),
        "tokens/s": fmt(result.metrics.tokens_per_second),
        "energy source": result.energy_source,
        "verdict": with_doubts(verdict, flags),  # never a bare "ok" for a number its own warnings doubt
    }


def vram_text(estimate: VramEstimate | None, gpu_gb: float | None, why_not: str | None = None) -> str:
    if estimate is None and why_not:
        return f"unavailable ({why_not.removeprefix('no VRAM estimate: ')})"
    if estimate is None:
        return "unavailable (the model's config.json is not on this machine; it is read from a local or cached model)"
    text = (f"{_fixed(estimate.total_gb, 2)} GB = weights {_fixed(estimate.weights_gb, 2)} + KV cache "
            f"{_fixed(estimate.kv_cache_gb, 2)} + overhead {_fixed(estimate.overhead_gb, 2)}  "
            f"({_fixed(estimate.params / 1e6 if is_number(estimate.params) else None, 1)}M parameters, from {estimate.basis})")
    if not is_number(gpu_gb):
        return text + "; no GPU visible"
    verdict = "fits" if estimate.total_gb <= gpu_gb else "DOES NOT FIT"
    return text + f"; {verdict} in {_fixed(gpu_gb, 1)} GB of GPU memory"


def _fixed(value: float | None, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, "n/a" when it is no finite number."""
    return f"{value:.{decimals}f}" if is_number(value) else "n/a"


def print_config(config: ExperimentConfig, verbose: bool) -> None:
    """The resolved config, one dotted key per line; with ``verbose`` where each value came from."""
    values = flatten(config.model_dump(mode="json"))
    sources = config.sources() if verbose else {}
    width = max(len(k) for k in values)
    for key, value in values.items():
        line = f"  {key:<{width}}  {value!s}" if value is not None else f"  {key:<{width}}  -"
        if verbose:
            line = f"{line:<60}  # {sources.get(key, 'default')}"
        print(line)
