"""A load ramp in the report without a server: the points grouped into ramps by their name without
``rate=...`` (and where they were read from), in ramp order, the SLO point picked, the rate never a
sweep axis, the steady phase kept on the timeline, and the ramp's section of a whole report."""

from __future__ import annotations

import re

import pytest
from result_builders import make_repeat, make_result

from llenergymeasure.report import write_report
from llenergymeasure.report.inputs import Measured, label_all
from llenergymeasure.report.ramps import find_ramps, ramp_name, rate_of
from llenergymeasure.report.sweeps import find_sweeps
from llenergymeasure.report.timeline import timeline_of


@pytest.mark.parametrize(("name", "ramp"), [
    ("myramp[rate=4]", "myramp"),
    ("myramp[rate=0.5]", "myramp"),
    ("myramp[rate=inf]", "myramp"),
    ("study[batch_size=8,rate=4]", "study[batch_size=8]"),
    ("study[rate=4,batch_size=8]", "study[batch_size=8]"),
    ("benchmarks/llem_serve.yaml::serve[rate=inf]", "benchmarks/llem_serve.yaml::serve"),
    ("a[x=1][rate=2]", "a[x=1]"),
    ("myramp", None),
    ("tiny[batch_size=8]", None),
    ("tiny[generate=1]", None),  # a parameter whose name ends in "rate" is not the ramp's
    ("rate=4", None),
])
def test_the_ramp_name_is_the_name_without_its_rate(name, ramp):
    assert ramp_name(name) == ramp


def test_the_rate_is_read_from_the_name():
    assert rate_of("myramp[rate=4]") == "4"
    assert rate_of("study[batch_size=8,rate=inf]") == "inf"
    assert rate_of("tiny[batch_size=8]") is None and rate_of("tiny") is None


def point(rate, achieved, *, saturated=False, slo_met=None, energy=10.0, origin="results/p.json", name="ramp",
          batch_size=None, goodput=None):
    """A load point's result, as the runner leaves it (its ``load_point`` and its config)."""
    load_point = {"offered_rate": None if rate == "inf" else float(rate), "concurrency": 8 if rate == "inf" else None,
                  "achieved_rate": achieved, "concurrency_mean": None if achieved is None else achieved * 1.5,
                  "saturated": saturated,
                  "saturation": "the server served fewer requests than were offered" if saturated else None,
                  "steady_start_s": 2.0, "steady_end_s": 12.0, "window_s": 14.0,
                  "requests": {"ramp": 2, "steady": 20, "drain": 3, "timed_out": 0}}
    if slo_met is not None:
        load_point |= {"slo_met": slo_met, "slo_missed": [] if slo_met else ["ttft_s_p99 3 s > 2 s"]}
    params = ([f"batch_size={batch_size}"] if batch_size is not None else []) + [f"rate={rate}"]
    point_id = f"{name}[{','.join(params)}]"
    config = {"name": point_id, "model": "m", "backend": "openai",
              "openai": {"load": {"rates": [rate if rate == "inf" else float(rate)]}, "batch_size": batch_size}}
    result = make_result([make_repeat(0, energy_j=energy)], name=point_id, config=config, load_point=load_point)
    if goodput is not None:
        result.metrics.goodput_requests_per_s = goodput
    return Measured(point_id, origin, result)


def test_load_points_are_grouped_by_ramp_name_and_folder_and_put_in_ramp_order():
    items = [point("inf", 5.0, saturated=True), point(1, 1.0), point(4, 3.8),  # the order of files read
             point(1, 1.0, name="other"), point(4, 3.9, name="other", origin="elsewhere/p.json"),
             Measured("tiny", "results/t.json", make_result([make_repeat(0, energy_j=1.0)]))]  # not a load point
    label_all(items)
    ramps = find_ramps(items)
    assert [(r.name, [p.rate for p in r.points]) for r in ramps] == [
        ("ramp", ["1", "4", "inf"]), ("other", ["1"]), ("other", ["4"])]
    first = ramps[0]
    assert [p.offered for p in first.points] == [1.0, 4.0, None]
    assert [p.saturated for p in first.points] == [False, False, True]
    assert not first.has_slo and first.slo_point is None


def test_a_study_swept_over_another_key_gives_a_ramp_per_value_and_no_sweep_over_the_rate():
    items = [point(rate, achieved, batch_size=b, energy=e)
             for b in (1, 8) for rate, achieved, e in ((1, 1.0, 10.0), (4, 3.9, 12.0), ("inf", 5.0, 15.0))]
    label_all(items)
    assert [(r.name, len(r.points)) for r in find_ramps(items)] == [("ramp[batch_size=1]", 3),
                                                                     ("ramp[batch_size=8]", 3)]
    sweeps = find_sweeps(items)
    assert [s.key for s in sweeps] == ["openai.batch_size"]  # a line per rate, the rate no axis
    assert len(sweeps[0].series) == 3


def test_session_items_are_one_ramp_per_session_file():
    items = [point(r, a, origin=origin) for origin in ("a.json", "b.json") for r, a in ((1, 1.0), (4, 3.9))]
    for item in items:
        item.record = {"nodeid": item.name}
    assert [len(r.points) for r in find_ramps(items)] == [2, 2]


def test_the_slo_point_is_the_highest_served_point_that_meets_the_slo():
    items = [point(1, 1.0, slo_met=True), point(2, 2.0, slo_met=True), point(4, 3.0, slo_met=False),
             point(8, 2.5, slo_met=True, saturated=True)]  # served less than rate=4, but met it: the most served
    [ramp] = find_ramps(items)
    assert ramp.has_slo and ramp.slo_point is ramp.points[3]
    items[3].result.load_point["slo_met"] = False
    [ramp] = find_ramps(items)
    assert ramp.slo_point is ramp.points[1]
    for item in items:
        item.result.load_point["slo_met"] = False
    assert find_ramps(items)[0].slo_point is None


def test_the_steady_phase_stays_on_the_timeline_and_is_no_window():
    item = point(4, 3.9)
    item.result.timeline = {"devices": {"gpu0": [{"t": 0.0, "power_w": 80.0}, {"t": 10.0, "power_w": 90.0}]},
                            "phases": [{"name": "window", "start": 1.0, "end": 9.0, "repeat": 0},
                                       {"name": "steady", "start": 2.0, "end": 8.0, "repeat": 0}]}
    timeline = timeline_of(item.result)
    assert [(p.name, p.label) for p in timeline.phases] == [("window", "1"), ("steady", "")]
    assert [w.name for w in timeline.windows] == ["window"]


def test_a_report_has_a_section_per_ramp_with_its_chart_and_table(tmp_path):
    ramp = [point(1, 1.0, slo_met=True, goodput=1.0), point(4, 3.9, slo_met=True, goodput=3.7),
            point("inf", 5.0, slo_met=False, saturated=True, goodput=2.0)]
    plain = [point(1, 1.0, name="plain"), point(2, 1.9, name="plain")]  # no slo: no goodput
    files = [item.result.save(tmp_path / ("slo" if item in ramp else "plain")) for item in ramp + plain]
    page = write_report(files, tmp_path / "report.html")[0].read_text(encoding="utf-8")
    section = page[page.index('<section id="ramps">'):]
    section = section[:section.index("</section>")]
    assert re.findall(r"<h3>(.*?)</h3>", section) == ["Load ramp: ramp", "Load ramp: plain"]
    assert section.count('data-kind="ramp"') == 2
    assert 'id="ramp-1-ramp-goodput-points"' in section and "goodput-points" not in section.split("ramp-2-")[1]
    assert 'id="ramp-1-ramp-jpt-slo-label"' in section and 'id="ramp-1-ramp-jpt-saturated-label-2"' in section
    assert "SLO point: ramp[rate=4] (3.9 requests/s served)" in section
    first, second = section.split('<article class="ramp" id="ramp-2-plain">')
    assert re.findall(r"<tr><td>(.*?)</td>", first) == ["ramp[rate=1]", "ramp[rate=4]", "ramp[rate=inf]"]
    assert "met (the SLO point)" in first and "missed: ttft_s_p99 3 s &gt; 2 s" in first
    assert "closed loop of 8" in first and "saturated: the server served fewer" in first
    assert "SLO" not in second and "goodput" not in second and second.count("<tr><td>") == 2


def test_a_ramp_whose_points_say_nothing_served_is_listed_without_a_chart(tmp_path):
    items = [point(1, None), point(4, None)]
    for item in items:
        item.result.metrics.joules_per_token = None
    files = [item.result.save(tmp_path / "r") for item in items]
    page = write_report(files, tmp_path / "report.html")[0].read_text(encoding="utf-8")
    section = page[page.index('<section id="ramps">'):]
    assert 'data-kind="ramp"' not in section and section.count("<tr><td>ramp[rate=") == 2
