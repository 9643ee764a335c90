"""The report's charts, drawn with matplotlib (Agg, no display) as inline SVG, and PNG on request.

Figures are made from ``matplotlib.figure.Figure`` directly (never pyplot), so no GUI backend
is ever chosen. Text is drawn as paths (no font needed in the browser) with math text off (a ``$``
in an experiment name is a dollar). The SVG is cut down to be inlined in HTML: no XML prolog,
no metadata or comments, no namespace URLs, ids prefixed per chart so that charts do not share
them. Only this module imports matplotlib.

What a verdict rests on is drawn, not only its summary: every measured window's J/token beside
the median and its CI, each window numbered on the power timeline (a load point's steady window
shaded and labelled "steady" inside it), the +-threshold band of the gate around the baseline on
the comparison charts, an A/B session's windows and pairs, and a load ramp's points with its SLO
point and its saturated points marked. Those artists carry SVG ids (``gid``: ``repeats-3``,
``threshold-band-0``, ``window-B2``, ``jpt-points``, ``slo-label``...), prefixed per chart like every
id, so that a page (and its tests) can find them.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from llenergymeasure.report.ab import AbSession
from llenergymeasure.report.histories import History
from llenergymeasure.report.inputs import Measured
from llenergymeasure.report.ramps import Ramp, RampPoint
from llenergymeasure.report.sweeps import Sweep
from llenergymeasure.report.timeline import Timeline
from llenergymeasure.report.verdicts import ExperimentVerdict
from llenergymeasure.results.segments import Point

MAX_LABEL = 60  # characters of a name on an axis; the tables have it whole
WIDTH_IN = 9.0
PHASE_COLORS = {"baseline": "#9e9e9e", "load": "#bcaaa4", "warmup": "#ffcc80", "window": "#90caf9",
                "prefill": "#ce93d8", "decode": "#a5d6a7", "steady": "#43a047"}
STEADY_TEXT = "#1b5e20"  # the "steady" label over a load point's steady window
VERDICT_COLORS = {"regressed": "#c62828", "improved": "#2e7d32", "unchanged": "#546e7a", "inconclusive": "#f9a825"}
MEASURED, ESTIMATED, SUSPECT = "#1565c0", "#ef6c00", "#c62828"
SIDE_COLORS = {"A": "#546e7a", "B": "#6a1b9a"}
BAND = "#78909c"  # the +-threshold band
RC = {"svg.fonttype": "path", "text.parse_math": False, "font.size": 9, "axes.titlesize": 10,
      "axes.spines.top": False, "axes.spines.right": False}


@dataclass
class Chart:
    slug: str  # unique in the report: the element id and the PNG's name
    kind: str  # timeline, joules_per_token, sweep, comparison, history
    title: str
    svg: str
    png: bytes | None


def render(figure: Figure, slug: str, kind: str, title: str, png: bool) -> Chart:
    with _style(slug):
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
        image = None
        if png:
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=110)
            image = buffer.getvalue()
    return Chart(slug, kind, title, inline_svg(out.getvalue(), slug), image)


def inline_svg(svg: str, prefix: str) -> str:
    """matplotlib's SVG document as an element for an HTML page (see the module docstring)."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.DOTALL)  # matplotlib escapes "--" inside them
    head_end = svg.index(">")
    head = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg[:head_end])
    svg = head + svg[head_end:]
    svg = svg.replace("xlink:href=", "href=")
    return re.sub(r'(\bid="|href="#|url\(#)', lambda m: f"{m.group(1)}{prefix}-", svg)


@contextmanager
def _style(slug: str) -> Iterator[None]:
    with matplotlib.rc_context({**RC, "svg.hashsalt": slug}):
        yield


def short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def energy_label(item: Measured) -> str:
    marks = [" (estimated)" if item.estimated else "", " suspect" if item.suspect else ""]
    return short(item.label) + "".join(marks)


def _figure(height: float) -> Figure:
    with _style("figure"):
        return Figure(figsize=(WIDTH_IN, height), layout="constrained")


def timeline_chart(item: Measured, timeline: Timeline, title: str = "") -> Figure:
    """Power per device over time, the phases shaded behind, each measurement window numbered
    above the plot (and shaded a little darker or lighter than the one before it, so that windows
    run back to back are still told apart)."""
    figure = _figure(3.4)
    with _style("timeline"):
        ax = figure.subplots()
        shaded: set[str] = set()
        steady = 0
        numbers = {id(span): number for number, span in enumerate(timeline.windows, 1)}
        rows = _label_rows(timeline)
        for span in timeline.phases:
            label = span.name if span.name not in shaded else None
            shaded.add(span.name)
            number = numbers.get(id(span))
            alpha = 0.22 if span.name == "steady" else 0.35 if number is None else 0.5 if number % 2 else 0.28
            patch = ax.axvspan(span.start, span.end, color=PHASE_COLORS.get(span.name, "#e0e0e0"), alpha=alpha, lw=0,
                               label=label)
            if number is not None:
                name = span.label or str(number)
                patch.set_gid(f"window-{name}")
                _number_window(ax, span.start, span.end, name, rows.get(id(span), 0))
            elif span.name == "steady":
                steady += 1
                patch.set_gid(f"steady-{steady}")
                _label_steady(ax, span.start, span.end, steady)
        for trace in timeline.traces:
            name = f"{trace.device} (estimated)" if trace.estimated else trace.device
            ax.plot(trace.t, trace.power_w, lw=1.3, ls="--" if trace.estimated else "-", label=name)
        ax.set_xlabel("seconds since the start" + (" of the first window (per-repeat samples)"
                                                   if timeline.per_repeat else " of the timeline"))
        ax.set_ylabel("power (W)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Power timeline: {short(title or item.label)}",
                     pad=6 + 9 * (max(rows.values(), default=-1) + 1))
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
    return figure


LABEL_GAP = 0.03  # of the time axis: closer window numbers go on a second line above the plot


def _label_rows(timeline: Timeline) -> dict[int, int]:
    """The line (0, 1) each window's number is written on, so that short windows run back to back
    (an A/B session's) do not write their numbers over each other."""
    times = [t for trace in timeline.traces for t in trace.t if math.isfinite(t)] + \
        [edge for span in timeline.phases for edge in (span.start, span.end)]
    gap = LABEL_GAP * ((max(times) - min(times)) if times else 1.0)
    rows: dict[int, int] = {}
    last = [-math.inf, -math.inf]
    for span in sorted(timeline.windows, key=lambda s: s.start):
        middle = (span.start + span.end) / 2
        row = 0 if middle - last[0] >= gap else 1 if middle - last[1] >= gap else 0
        rows[id(span)] = row
        last[row] = middle
    return rows


def _number_window(ax: Any, start: float, end: float, label: str, row: int = 0) -> None:
    from matplotlib.transforms import blended_transform_factory, offset_copy

    ax.axvline(start, color="#1e88e5", lw=0.5, alpha=0.7)
    where = offset_copy(blended_transform_factory(ax.transData, ax.transAxes), fig=ax.figure, y=2 + 9 * row,
                        units="points")
    text = ax.text((start + end) / 2, 1.0, label, transform=where, ha="center", va="bottom", fontsize=7,
                   color="#0d47a1", clip_on=False)
    text.set_gid(f"window-label-{label}")


def _label_steady(ax: Any, start: float, end: float, number: int) -> None:
    """A load point's steady window: its edges drawn and "steady" written inside the plot, at its top."""
    from matplotlib.transforms import blended_transform_factory

    for edge in (start, end):
        ax.axvline(edge, color=STEADY_TEXT, lw=0.8, ls="--", alpha=0.8)
    text = ax.text((start + end) / 2, 0.88, "steady", transform=blended_transform_factory(ax.transData, ax.transAxes),
                   ha="center", va="top", fontsize=7, color=STEADY_TEXT, clip_on=False,
                   bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    text.set_gid(f"steady-label-{number}")


def joules_per_token_chart(items: list[Measured]) -> Figure:
    """J/token per experiment: the median (a dot), the 95% CI over the repeats (a bar), and each
    measured window's own value (a tick below the bar), so the spread the CI comes from shows."""
    shown = [item for item in items if item.joules_per_token is not None]
    figure = _figure(1.3 + 0.42 * len(shown))
    with _style("jpt"):
        ax = figure.subplots()
        for row, item in enumerate(shown):
            color = SUSPECT if item.suspect else ESTIMATED if item.estimated else MEASURED
            ci = item.ci
            if ci is not None:
                ax.plot(list(ci), [row, row], color=color, lw=2, alpha=0.6, solid_capstyle="butt")
            windows = repeat_values(item)
            if windows:
                ticks, = ax.plot(windows, [row + 0.24] * len(windows), "|", color=color, ms=7, mew=1.3, alpha=0.85)
                ticks.set_gid(f"repeats-{row}")
            ax.plot([item.joules_per_token], [row], "o", color=color, mfc="white" if item.estimated else color)
        ax.set_yticks(range(len(shown)), [energy_label(item) for item in shown])
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_xlabel("J/token (dot: median; bar: 95% CI over repeats; ticks: each measured window)")
        ax.set_title("Energy per token")
        ax.grid(axis="x", alpha=0.3)
    return figure


def repeat_values(item: Measured) -> list[float]:
    """J/token of each of the result's measured windows (repeats) that measured it."""
    if item.result is None:
        return []
    values = [r.metrics.joules_per_token for r in item.result.repeats]
    return [v for v in values if v is not None and math.isfinite(v)]


def sweep_chart(sweep: Sweep) -> Figure:
    """J/token against the swept value, a line per combination of the other keys."""
    figure = _figure(3.6)
    with _style("sweep"):
        ax = figure.subplots()
        categories = list(dict.fromkeys(str(v) for s in sweep.series for v, _ in s.points))
        for series in sweep.series:
            xs = [v if sweep.numeric else categories.index(str(v)) for v, _ in series.points]
            ys = [m.joules_per_token for _, m in series.points]
            low = [y - m.ci[0] if m.ci else 0.0 for y, (_, m) in zip(ys, series.points)]
            high = [m.ci[1] - y if m.ci else 0.0 for y, (_, m) in zip(ys, series.points)]
            estimated = any(m.estimated for _, m in series.points)
            suspect = any(m.suspect for _, m in series.points)
            label = short(series.label or "J/token") + (" (estimated)" if estimated else "") \
                + (" suspect" if suspect else "")
            ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, mfc="white" if estimated else None,
                        label=label)
        if sweep.numeric:
            values = [v for s in sweep.series for v, _ in s.points]
            if min(values) > 0 and max(values) / min(values) >= 16:
                ax.set_xscale("log", base=2)
            distinct = sorted(set(values))
            if len(distinct) <= 12:
                ax.set_xticks(distinct, [f"{v:g}" for v in distinct])
        else:
            ax.set_xticks(range(len(categories)), [short(c, 24) for c in categories])
        ax.set_xlabel(sweep.key)
        ax.set_ylabel("J/token (median, 95% CI)")
        ax.set_title(f"Sweep: J/token against {sweep.key}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def comparison_chart(verdicts: list[ExperimentVerdict]) -> Figure | None:
    """The relative change of every compared metric with its 95% CI, coloured by verdict, over the
    band of +-the gate's threshold around the baseline (0): a CI inside the band is "unchanged", a
    point past it with the CI clear of 0 a regression or an improvement."""
    rows = [(f"{short(v.experiment, 48)}: {m.metric}" + (" (A/B, paired)" if v.paired else ""), m)
            for v in verdicts for m in v.metrics if m.relative and m.change is not None]
    if not rows:
        return None
    figure = _figure(1.3 + 0.36 * len(rows))
    with _style("comparison"):
        ax = figure.subplots()
        ax.axvline(0, color="#444444", lw=0.8)
        banded = False
        for row, (_, metric) in enumerate(rows):
            if metric.threshold is not None and metric.threshold > 0:
                band = ax.fill_betweenx([row - 0.42, row + 0.42], -metric.threshold * 100, metric.threshold * 100,
                                        color=BAND, alpha=0.28, lw=0,
                                        label=None if banded else "±threshold (the gate) around the baseline")
                band.set_gid(f"threshold-band-{row}")
                banded = True
        for row, (_, metric) in enumerate(rows):
            color = VERDICT_COLORS.get(metric.verdict, "#757575")
            if metric.ci_low is not None and metric.ci_high is not None:
                ax.plot([metric.ci_low * 100, metric.ci_high * 100], [row, row], color=color, lw=2, alpha=0.6)
            ax.plot([(metric.change or 0.0) * 100], [row], "o", color=color)
            ax.annotate(metric.verdict, ((metric.change or 0.0) * 100, row), xytext=(6, 4),
                        textcoords="offset points", fontsize=8, color=color)
        ax.set_yticks(range(len(rows)), [label for label, _ in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.margins(x=0.15)
        ax.set_xlabel("change against the baseline (%), 95% CI" + ("; shaded: ±the gate's threshold" if banded else ""))
        ax.set_title("Candidate against baseline")
        ax.grid(axis="x", alpha=0.3)
        if banded:
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def ab_chart(session: AbSession) -> Figure:
    """An A/B session's evidence: left, J/token of every window in the order they ran (the two
    windows of each pair joined); right, B against A per pair, the paired estimate with its 95% CI,
    and the +-threshold band of the gate."""
    figure = _figure(3.2)
    with _style("ab"):
        left, right = figure.subplots(1, 2, width_ratios=[3, 2])
        windows = session.windows()
        for block in range(0, len(windows), 2):
            pair = [(x, v) for x, (_, v) in enumerate(windows[block:block + 2], block) if v is not None]
            if len(pair) == 2:
                left.plot([x for x, _ in pair], [v for _, v in pair], color="#b0bec5", lw=1, zorder=1)
        for side in ("A", "B"):
            points = [(x, v) for x, (label, v) in enumerate(windows) if label.startswith(side) and v is not None]
            if points:
                line, = left.plot([x for x, _ in points], [v for _, v in points], "o" if side == "A" else "s",
                                  color=SIDE_COLORS[side], ms=6, zorder=2,
                                  label=f"{side}: {short(getattr(session, side.lower()).label, 40)}")
                line.set_gid(f"ab-windows-{side}")
        left.set_xticks(range(len(windows)), [label for label, _ in windows], fontsize=7)
        left.set_ylabel("J/token")
        left.set_title("Each window, in the order they ran")
        left.grid(axis="y", alpha=0.3)
        left.legend(fontsize=7, frameon=False, loc="best")

        metric = next((m for m in session.verdict.metrics if m.metric == "joules_per_token"), None)
        if metric is not None and metric.relative and metric.threshold:
            band = right.axvspan(-metric.threshold * 100, metric.threshold * 100, color=BAND, alpha=0.28, lw=0,
                                 label=f"±{metric.threshold * 100:g}% (the gate)")
            band.set_gid("threshold-band-ab")
        right.axvline(0, color="#444444", lw=0.8)
        changes = session.pair_changes()
        rows = [(k, c * 100) for k, c in enumerate(changes) if c is not None]
        if rows:
            pairs, = right.plot([c for _, c in rows], [k for k, _ in rows], "o", color="#78909c", ms=5,
                                label="one pair (B/A - 1)")
            pairs.set_gid("ab-pairs")
        summary = len(changes)
        labels = [f"pair {k + 1}" for k in range(len(changes))]
        if metric is not None and metric.change is not None and metric.relative:  # an absolute gate's is in J/token
            color = VERDICT_COLORS.get(metric.verdict, "#757575")
            if metric.ci_low is not None and metric.ci_high is not None:
                right.plot([metric.ci_low * 100, metric.ci_high * 100], [summary, summary], color=color, lw=2.5)
            estimate, = right.plot([metric.change * 100], [summary], "D", color=color, ms=7,
                                   label=f"paired estimate, 95% CI: {metric.verdict}")
            estimate.set_gid("ab-estimate")
            labels.append("paired")
        right.set_yticks(range(len(labels)), labels, fontsize=7)
        right.set_ylim(len(labels) - 0.5, -0.5)
        right.margins(x=0.15)
        right.set_xlabel("B against A (%)")
        right.set_title(f"Paired verdict: {session.verdict.verdict}")
        right.grid(axis="x", alpha=0.3)
        right.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0.0, -0.28), ncols=2)
    return figure


def history_chart(history: History) -> Figure:
    """One experiment's sessions over time: each session's median J/token, the pinned level of each
    segment (a line across it), accepted sessions (a step: a new level) and red ones marked."""
    figure = _figure(2.8)
    with _style("history"):
        ax = figure.subplots()
        segments: dict[int, list[Point]] = {}
        for point in history.points:
            if point.segment is not None and point.value is not None:
                segments.setdefault(point.segment, []).append(point)
        for number, points in segments.items():
            first = number == min(segments)
            ax.plot([p.saved_at for p in points], [p.value for p in points], marker="o", markersize=4,
                    color=MEASURED, linewidth=0.8, label="session (median)" if first else None)
            pin = history.pins[number] if number < len(history.pins) else None
            if pin is not None:
                ax.hlines(pin, points[0].saved_at, points[-1].saved_at, colors="#37474f", linestyles="dashed",
                          linewidth=1, label="pinned level" if first else None)
        steps = [p for p in history.steps if p.value is not None]
        if steps:
            ax.scatter([p.saved_at for p in steps], [p.value for p in steps], marker="D", s=40, color="#2e7d32",
                       zorder=3, label="accepted (a new level)")
            for step in steps:
                ax.axvline(step.saved_at, color="#2e7d32", alpha=0.3, linewidth=1)
        for kind, marker, color in (("regressed", "x", SUSPECT), ("failed", "x", "#6d4c41"),
                                    ("suspect", "^", ESTIMATED)):
            red = [p for p in history.flagged if p.kind == kind and p.value is not None]
            if red:
                ax.scatter([p.saved_at for p in red], [p.value for p in red], marker=marker, s=36, color=color,
                           zorder=3, label=f"{kind} (never a reference)")
        ax.set_ylabel("J/token")
        ax.set_title(f"History of {short(history.label)}")
        ax.grid(alpha=0.3)
        figure.autofmt_xdate()
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


JGT = "#6a1b9a"  # J/good token
GOODPUT = "#2e7d32"
SLO_MARK = "#f9a825"


def ramp_chart(ramp: Ramp) -> Figure | None:
    """A load ramp's Pareto view (as vLLM's plot_pareto): against the throughput each load point
    served (requests/s in its steady window), left its J/token (and J/good token with ``slo:``),
    right its goodput (requests/s meeting the SLO, beside the served rate: every request good);
    one point per load point in ramp order, joined; the SLO point starred and labelled, saturated
    points hollow red and labelled "saturated", each point's offered rate written by it. None when
    no point says what it served."""
    drawn = [p for p in ramp.points if p.achieved is not None]
    if not drawn:
        return None
    good = any(p.metrics.goodput_requests_per_s is not None for p in drawn)
    slo = ramp.slo_point
    figure = _figure(3.8)
    with _style("ramp"):
        axes = figure.subplots(1, 2 if good else 1, squeeze=False)[0]
        energy = axes[0]
        doubts = (" (estimated)" if any(p.item.estimated for p in drawn) else "") + (
            " suspect" if any(p.item.suspect for p in drawn) else "")
        lines = [(energy, "jpt", _ramp_line(energy, drawn, lambda p: p.metrics.joules_per_token, "jpt", MEASURED,
                                             "o-", f"J/token{doubts}", zorder=2.2))]
        if any(p.metrics.joules_per_good_token is not None for p in drawn):
            lines.append((energy, "jgt", _ramp_line(energy, drawn, lambda p: p.metrics.joules_per_good_token, "jgt",
                                                     JGT, "s--", f"J/good token{doubts}", zorder=2.0)))
        energy.set_ylabel("J/token")
        energy.set_title(f"Energy per token: {short(ramp.name, 48)}")
        if good:
            right = axes[1]
            top = max(p.achieved or 0.0 for p in drawn)
            right.plot([0, top], [0, top], ":", color="#90a4ae", lw=1, label="served (every request good)")
            lines.append((right, "goodput", _ramp_line(right, drawn, lambda p: p.metrics.goodput_requests_per_s,
                                                       "goodput", GOODPUT, "o-", "goodput", zorder=2.2)))
            right.set_ylabel("goodput (requests/s meeting the SLO)")
            right.set_title("Goodput")
        for ax, name, shown in lines:
            _ramp_marks(ax, shown, name, slo, labels=name != "jgt")
        for ax in axes:
            ax.set_xlabel("achieved throughput (requests/s served, steady window)")
            ax.margins(0.12)
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, frameon=False, loc="best")
    return figure


def _ramp_line(ax: Any, points: list[RampPoint], value: Any, name: str, color: str, style: str, label: str,
               zorder: float) -> list[tuple[RampPoint, float, float]]:
    """One quantity of a ramp's points against their achieved rate, in ramp order, joined (a marker
    per point); the points drawn, with their x and y."""
    shown = [(p, p.achieved, float(value(p))) for p in points
             if p.achieved is not None and value(p) is not None and math.isfinite(value(p))]
    if shown:
        line, = ax.plot([x for _, x, _ in shown], [y for _, _, y in shown], style, color=color, ms=5, lw=1.3,
                        label=label, zorder=zorder)
        line.set_gid(f"{name}-points")
    return shown


def _ramp_marks(ax: Any, shown: list[tuple[RampPoint, float, float]], name: str, slo: RampPoint | None,
                labels: bool) -> None:
    """The saturated points (hollow red) and the SLO point (a star) over a line of ``_ramp_line``;
    with ``labels``, each named ("saturated", "SLO point") and every point's rate written by it."""
    hollow = [(x, y) for p, x, y in shown if p.saturated]
    if hollow:
        marks, = ax.plot([x for x, _ in hollow], [y for _, y in hollow], "o", ms=9, mfc="white", mec=SUSPECT,
                         mew=1.6, zorder=3, label="saturated" if labels else None)
        marks.set_gid(f"{name}-saturated")
    for number, (p, x, y) in enumerate(shown):
        if p is slo:
            star, = ax.plot([x], [y], "*", ms=14, color=SLO_MARK, mec="#5d4037", mew=0.8, zorder=4,
                            label="SLO point" if labels else None)
            star.set_gid(f"{name}-slo-point")
        if not labels:
            continue
        ax.annotate(f"rate={p.rate}", (x, y), xytext=(-6, 6), textcoords="offset points", ha="right", fontsize=7,
                    color="#52606d").set_gid(f"{name}-rate-label-{number}")
        if p is slo:
            ax.annotate("SLO point", (x, y), xytext=(8, 6), textcoords="offset points", ha="left", fontsize=8,
                        fontweight="bold", color="#5d4037").set_gid(f"{name}-slo-label")
        if p.saturated:
            ax.annotate("saturated", (x, y), xytext=(8, -12), textcoords="offset points", ha="left", fontsize=8,
                        color=SUSPECT).set_gid(f"{name}-saturated-label-{number}")
