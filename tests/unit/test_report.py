"""The report's parts without a model run: input kinds, timelines (session and per-repeat), sweeps,
labels, the SVG made fit for a page, and a whole report from an in-memory session document
(``write_report_from_session``, what ``pytest --llem-html`` calls)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from llenergymeasure.exceptions import ConfigError
from llenergymeasure.report import write_report, write_report_from_session
from llenergymeasure.report.inputs import Measured, kind_of, label_all
from llenergymeasure.report.sweeps import find_sweeps
from llenergymeasure.report.timeline import timeline_of
from llenergymeasure.results.model import ExperimentResult, MeasurementWarning
from result_builders import make_repeat, make_result

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def result(energies=(10.0, 10.5, 9.5), name="tiny", **config):
    base = {"model": "tiny", "precision": "fp32", "pytorch": {"batch_size": 2}}
    for key, value in config.items():
        if key == "batch_size":
            base["pytorch"] = {"batch_size": value}
        else:
            base[key] = value
    return make_result([make_repeat(i, energy_j=e) for i, e in enumerate(energies)], name=name, config=base)


def test_kinds_are_told_by_content():
    assert kind_of({"kind": "llem-baseline", "schema_version": 1}) == "baseline"
    assert kind_of({"experiment_id": "x", "schema_version": 1}) == "result"
    assert kind_of({"experiment_id": "x", "repeats": []}) == "timeline"
    assert kind_of({"llem_version": "0.1", "items": []}) == "session"
    assert kind_of({"items": []}) is None and kind_of([1]) is None and kind_of("x") is None


def test_session_timeline_has_a_trace_per_device_and_the_phases():
    r = result()
    r.timeline = {
        "devices": {
            "gpu0": [{"t": 0.0, "power_w": 100.0}, {"t": 0.5, "power_w": math.nan}, {"t": 1.0, "power_w": 250.0}],
            "cpu": [{"t": 0.0, "power_w": 20.0, "estimated": True}, {"t": 1.0, "power_w": 30.0, "estimated": True}],
        },
        "phases": [{"name": "baseline", "start": 0.0, "end": 0.4, "repeat": None},
                   {"name": "window", "start": 0.5, "end": 1.0, "repeat": 0}],
    }
    timeline = timeline_of(r)
    assert not timeline.per_repeat
    gpu, cpu = timeline.traces
    assert (gpu.device, gpu.t, gpu.power_w, gpu.estimated) == ("gpu0", [0.0, 1.0], [100.0, 250.0], False)
    assert cpu.estimated
    assert [(p.name, p.start, p.end, p.repeat) for p in timeline.phases] == [("baseline", 0.0, 0.4, None),
                                                                            ("window", 0.5, 1.0, 0)]


def test_without_a_session_timeline_the_repeats_samples_are_drawn_with_a_gap_between_windows():
    r = result()
    r.repeats[0].timeline = {"gpu0": [{"t": 5000.0, "power_w": 100.0}, {"t": 5001.0, "power_w": 110.0}]}
    r.repeats[1].timeline = {"gpu0": [{"t": 5003.0, "power_w": 120.0}, {"t": 5004.0, "power_w": 130.0}]}
    timeline = timeline_of(r)
    assert timeline.per_repeat
    [trace] = timeline.traces
    assert trace.t[:2] == [0.0, 1.0] and math.isnan(trace.t[2]) and trace.t[3:] == [3.0, 4.0]
    assert [(p.name, p.start, p.end, p.repeat) for p in timeline.phases] == [("window", 0.0, 1.0, 0),
                                                                            ("window", 3.0, 4.0, 1)]


def test_a_result_without_samples_has_no_timeline():
    assert timeline_of(result()) is None


def test_a_two_key_sweep_gives_a_chart_per_key_with_a_line_per_value_of_the_other():
    items = [Measured("s", "f", result(precision=p, batch_size=b)) for p in ("fp16", "fp32") for b in (8, 1)]
    label_all(items)
    sweeps = {s.key: s for s in find_sweeps(items)}
    assert set(sweeps) == {"precision", "pytorch.batch_size"}
    batch = sweeps["pytorch.batch_size"]
    assert batch.numeric and [s.label for s in batch.series] == ["precision=fp16", "precision=fp32"]
    assert [v for v, _ in batch.series[0].points] == [1, 8]  # in axis order
    assert not sweeps["precision"].numeric and len(sweeps["precision"].series) == 2


def test_nothing_swept_gives_no_sweep_and_same_names_get_distinct_labels():
    items = [Measured("tiny", "a.json", result()), Measured("tiny", "b.json", result())]
    label_all(items)
    assert find_sweeps(items) == []
    assert [m.label for m in items] == ["tiny #1", "tiny #2"]
    swept = [Measured("tiny", "a.json", result(batch_size=1)), Measured("tiny", "b.json", result(batch_size=4))]
    label_all(swept)
    assert [m.label for m in swept] == ["tiny [batch_size=1]", "tiny [batch_size=4]"]


def test_the_svg_of_a_chart_references_nothing_outside_itself():
    pytest.importorskip("matplotlib")
    from llenergymeasure.report.charts import joules_per_token_chart, render

    item = Measured(HOSTILE + " $\\frac{", "f", result(name=HOSTILE))  # not math text: no error
    item.label = item.name
    chart = render(joules_per_token_chart([item]), "c1", "joules_per_token", "t", png=True)
    assert chart.svg.startswith("<svg") and chart.png.startswith(b"\x89PNG")
    assert "http" not in chart.svg and "<!--" not in chart.svg and "<script" not in chart.svg
    ids = re.findall(r'\bid="([^"]+)"', chart.svg)
    assert ids and all(i.startswith("c1-") for i in ids)
    assert all(ref.startswith("c1-") for ref in re.findall(r'href="#([^"]+)"', chart.svg))


def session_document(items):
    return {"llem_version": "0.1", "written_at": "2026-01-01T00:00:00+00:00", "dry_run": False, "machine": {},
            "items": items}


def test_a_session_document_gives_the_verdicts_the_warnings_and_the_items_without_result(tmp_path):
    pytest.importorskip("matplotlib")
    measured = result(energies=(20.0, 20.5, 19.5), name=HOSTILE)
    measured.measurement_warnings = [MeasurementWarning(code="short_window", message=f"window too short {HOSTILE}")]
    regressed = {"nodeid": f"llem_x.yaml::{HOSTILE}", "outcome": "failed", "result": measured.model_dump(mode="json"),
                 "regression": {"verdict": "regressed", "against": "base.json",
                                "lines": [f"joules_per_token 0.2 vs 0.1 (+100.0%) {HOSTILE}"],
                                "changes": [{"metric": "joules_per_token", "change": 1.0, "relative": True,
                                             "ci_low": 0.9, "ci_high": 1.1, "verdict": "regressed"}]}}
    skipped = {"nodeid": "llem_x.yaml::gpu", "outcome": "skipped", "error": f"needs a GPU {HOSTILE}"}
    path = write_report_from_session(session_document([regressed, skipped]), tmp_path / "r.html")
    page = path.read_text()
    assert path == tmp_path / "r.html"
    assert "<script" not in page and "<img" not in page
    assert page.count('data-kind="comparison"') == 1 and page.count('data-kind="joules_per_token"') == 1
    row = re.search(r"<td>joules_per_token</td>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", row)[:5] == ["0.1", "0.2", "+100.0%", "+90.0%..+110.0%", "regressed"]
    words = re.sub(r'<span class="w">|</span>', "", page)  # words a browser could break inside are kept whole
    assert "short_window" in page and "window too short &lt;script&gt;" in words
    assert "Items without a result" in page and "needs a GPU &lt;script&gt;" in words


def test_a_bad_input_is_a_config_error_naming_it_and_writes_nothing(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        write_report([missing], tmp_path / "r.html")
    other = tmp_path / "package.json"
    other.write_text('{"name": "x"}')
    with pytest.raises(ConfigError, match="not an llem file"):
        write_report([other], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    saved = result().save(tmp_path / "results")
    with pytest.raises(ConfigError, match="is one of the inputs"):
        write_report([saved], saved)
    assert ExperimentResult.load(saved).name == "tiny"  # not written over


def test_two_baseline_files_are_a_history_chart_and_results_not_in_them_are_named(tmp_path):
    pytest.importorskip("matplotlib")
    from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo

    machine = MachineInfo(cpu="Some CPU", energy_source="rapl")
    paths = []
    for number, center in enumerate((0.10, 0.12), 1):
        entry = BaselineEntry(experiment="serving", config_hash="0" * 16, config={"model": "tiny"},
                              repeats=[{"joules_per_token": center * f} for f in (0.99, 1.0, 1.01)])
        paths.append(Baseline.from_entries({"llem_x.yaml::serving": entry}, machine, None)
                     .save(tmp_path / f"b{number}.json"))
    other = result(name="elsewhere").save(tmp_path / "results")
    page = write_report([*paths, other], tmp_path / "r.html")[0].read_text()
    assert page.count('data-kind="history"') == 1
    assert page.count("llem_x.yaml::serving") >= 2  # a row per baseline file
    assert "Not in the baseline files, so not compared: elsewhere" in page
    assert 'data-kind="comparison"' not in page


def test_a_machine_history_is_drawn_per_experiment_with_its_segments_steps_and_red_sessions(tmp_path):
    pytest.importorskip("matplotlib")
    from datetime import datetime, timedelta, timezone

    from llenergymeasure.report.histories import histories
    from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo

    machine = MachineInfo(cpu="Some CPU", energy_source="rapl")
    nights = [(0.10, "passed")] * 4 + [(0.125, "regressed")] * 2 + [(0.125, "accepted"), (0.126, "passed")]
    baselines = []
    for night, (level, status) in enumerate(nights):
        entry = BaselineEntry(experiment="serving", config_hash="0" * 16, config={"model": "tiny"}, status=status,
                              repeats=[{"joules_per_token": level * f} for f in (0.99, 1.0, 1.01)])
        baselines.append(Baseline(created_at=datetime(2026, 12, 1, tzinfo=timezone.utc) + timedelta(days=night),
                                  machine=machine, entries={"llem_x.yaml::serving": entry}))
    paths = [b.save(tmp_path / ".llem" / "baselines" / machine.key / f"2026120{n + 1}T030000Z.json")
             for n, b in enumerate(baselines)]
    [history] = histories([(str(p), b) for p, b in zip(paths, baselines)], [])
    assert history.label == "llem_x.yaml::serving"
    assert [p.kind for p in history.flagged] == ["regressed", "regressed"]
    assert [p.saved_at.day for p in history.steps] == [7]
    assert [p.segment for p in history.points] == [0, 0, 0, 0, None, None, 1, 1]
    assert history.pins == [pytest.approx(0.10), pytest.approx(math.sqrt(0.125 * 0.126))]
    page = write_report([tmp_path / ".llem" / "baselines" / machine.key], tmp_path / "r.html")[0].read_text()
    assert page.count('data-kind="history"') == 1
    assert "History of llem_x.yaml::serving: J/token per saved session, the pinned level of each segment" in page


# --- the evidence a verdict rests on, and paths -------------------------------------------------


def test_paths_are_shown_from_the_project_the_home_directory_or_by_their_last_parts(tmp_path, monkeypatch):
    from llenergymeasure.results.display_paths import Paths

    root, home = tmp_path / "work" / "repo", tmp_path / "home" / "someone"
    monkeypatch.setenv("HOME", str(home))
    paths = Paths(root)
    assert paths.shown(root / "results" / "x.json") == "results/x.json"
    assert paths.shown(home / ".cache" / "hf" / "model") == "~/.cache/hf/model"
    assert paths.shown("/opt/ci/runner/models/tiny") == "…/models/tiny" and paths.shown("/srv/model") == "…/model"
    assert paths.shown("/dev/nvidia0") == "/dev/nvidia0" and paths.shown("/sys/class/powercap") == "/sys/class/powercap"
    monkeypatch.chdir(tmp_path)
    assert paths.shown("work/repo/a/../b.json") == "b.json"  # relative to the current directory, normalised
    text = (f"tiny [model={root}/models/m,n=4] read {home}/x.json and /var/lib/ci/w/r/a.json. J/token, "
            f"tokens/s, +/-5%, https://example.org/a/b, ./rel/x, </td> (/srv/data/deep/f.txt) /s")
    assert paths.text(text) == ("tiny [model=models/m,n=4] read ~/x.json and …/r/a.json. J/token, tokens/s, +/-5%, "
                                "https://example.org/a/b, ./rel/x, </td> (…/deep/f.txt) /s")
    page = f'<p class="x">{root}/r.json</p><svg id="a"><path d="M 0 0"/><text>/abs/olute/p</text></svg>'
    assert paths.page(page) == '<p class="x">r.json</p><svg id="a"><path d="M 0 0"/><text>/abs/olute/p</text></svg>'


def test_a_recorded_verdict_gives_its_threshold_from_its_line():
    from llenergymeasure.report.verdicts import threshold_in

    lines = ["joules_per_token 0.2 vs 0.1 (+100.0%, 95% CI +90.0%..+110.0%) > 10% threshold: regressed",
             "tokens_per_second 9 vs 10 (-1, 95% CI -2..0) within ±2.5 tokens/s threshold: unchanged",
             "joules_per_token_x 1 vs 1 (+0.0%) within ±7% threshold: unchanged"]
    assert threshold_in(lines, "joules_per_token", True) == pytest.approx(0.10)
    assert threshold_in(lines, "tokens_per_second", False) == 2.5
    assert threshold_in(lines, "tokens_per_second", True) is None
    assert threshold_in(["wh_per_1000_queries 1 vs 2 (-50.0%) < -5% threshold: improved"],
                        "wh_per_1000_queries", True) == pytest.approx(0.05)
    assert threshold_in([], "joules_per_token", True) is None


def ab_pair(a_energies, b_energies, order, seed=7):
    """The two results ``llem ab`` writes: one window per repeat, ``ab`` recording the session."""
    sides = []
    for load, (side, energies, batch) in enumerate((("A", a_energies, 1), ("B", b_energies, 4))):
        r = result(energies=energies, batch_size=batch)
        r.ab = {"side": side, "order": order, "settling": ["A", "B"], "seed": seed}
        r.timeline = {"devices": {"gpu0": [{"t": float(t), "power_w": 100.0} for t in range(12)]},
                      "phases": [{"name": "baseline", "start": 0.0, "end": 0.5, "repeat": None},  # the session's
                                 {"name": "load", "start": 0.5 + load / 2, "end": 1.0 + load / 2, "repeat": None}]}
        sides.append(r)
    a, b = sides
    starts = {"A": 0, "B": 0}
    for position, side in enumerate(order):
        owner = a if side == "A" else b
        owner.timeline["phases"].append({"name": "window", "start": 2.0 + position, "end": 2.5 + position,
                                         "repeat": starts[side]})
        starts[side] += 1
    return a, b


def test_the_two_results_of_an_ab_session_are_one_comparison_judged_as_llem_ab_judges(tmp_path):
    from llenergymeasure.core.ab import AbRun, judge_ab
    from llenergymeasure.report.ab import ab_sessions
    from llenergymeasure.report.timeline import ab_timeline
    from llenergymeasure.results.regression import thresholds

    order = ["B", "A", "A", "B", "B", "A"]
    a, b = ab_pair((10.0, 10.4, 9.8), (12.0, 12.6, 11.9), order)
    items = [Measured("tiny", "a.json", a), Measured("tiny", "b.json", b), Measured("other", "c.json", result())]
    label_all(items)
    [session], alone = ab_sessions(items)
    assert alone == [] and (session.a.result, session.b.result) == (a, b)
    expected = judge_ab(AbRun(a, b, order, ["A", "B"], 7), thresholds({}, []))
    [metric] = session.verdict.metrics
    assert (session.verdict.verdict, metric.change, metric.ci_low, metric.threshold) == (
        expected.verdict, expected.comparisons[0].change, expected.comparisons[0].ci_low, 0.05)
    assert session.verdict.paired and session.verdict.lines == expected.lines()
    assert [label for label, _ in session.windows()] == ["B1", "A1", "A2", "B2", "B3", "A3"]
    assert session.pair_changes() == pytest.approx([0.2, 12.6 / 10.4 - 1, 11.9 / 9.8 - 1])
    timeline = ab_timeline(a, b)
    assert [w.label for w in timeline.windows] == ["B1", "A1", "A2", "B2", "B3", "A3"]
    names = [p.name for p in timeline.phases]
    assert (names.count("load"), names.count("baseline"), len(timeline.traces)) == (2, 1, 1)

    b.ab["gates"] = ["joules_per_token:10%"]  # what llem ab was given, where the results record it
    [gated], _ = ab_sessions(items)
    assert (gated.verdict.metrics[0].threshold, gated.gates) == (pytest.approx(0.10), "joules_per_token:10%")
    b.ab["order"] = ["A", "B"] * 3  # the two sides no longer agree: not paired, and said so
    assert ab_sessions(items) == ([], items[:2])
    b.ab["order"], b.ab["gates"] = order, []

    only_b = [Measured("tiny", "b.json", b)]
    label_all(only_b)
    assert ab_sessions(only_b) == ([], only_b)  # its A is not given: said, not judged

    page = write_report([a.save(tmp_path / "ab"), b.save(tmp_path / "ab")], tmp_path / "r.html")[0].read_text()
    assert page.count('data-kind="ab"') == 1 and page.count('data-kind="timeline"') == 1
    assert page.count('class="verdict ab-verdict') == 1 and "(A/B, paired)" not in page  # drawn, not written
    assert page.count('id="comparison-threshold-band-0"') == 1 and 'id="comparison-threshold-band-1"' not in page


def test_every_window_is_drawn_and_numbered():
    pytest.importorskip("matplotlib")
    from llenergymeasure.report.charts import (
        joules_per_token_chart,
        render,
        timeline_chart,
    )

    r = result(energies=(10.0, 10.5, 9.5, 11.0))
    r.timeline = {"devices": {"gpu0": [{"t": float(t), "power_w": 50.0} for t in range(10)]},
                  "phases": [{"name": "window", "start": 1.0 + 2 * k, "end": 3.0 + 2 * k, "repeat": k}
                             for k in range(4)]}  # back to back: one band unless numbered
    item = Measured("tiny", "f", r)
    item.label = "tiny"
    jpt = render(joules_per_token_chart([item]), "j", "joules_per_token", "t", png=False).svg
    ticks = re.search(r'<g id="j-repeats-0">(.*?)</g>', jpt, re.DOTALL)
    assert ticks and ticks.group(1).count("<use ") == 4
    timeline = timeline_of(r)
    assert [w.label for w in timeline.windows] == ["1", "2", "3", "4"]
    svg = render(timeline_chart(item, timeline), "t", "timeline", "t", png=False).svg
    assert re.findall(r'id="t-window-label-(\d+)"', svg) == ["1", "2", "3", "4"]
    assert len(re.findall(r'id="t-window-\d+"', svg)) == 4


def test_a_history_draws_each_session_once_not_the_entries_carried_over(tmp_path):
    """Schema-1 files copied the previous file's entry of every experiment their session did not
    run: night 2 and 3 ran only "other", so "serving" has 2 sessions, not 4 (nor 5 with a file
    given twice)."""
    from datetime import datetime, timedelta, timezone

    from llenergymeasure.report.histories import carried_over, histories
    from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo

    machine = MachineInfo(cpu="Some CPU", energy_source="rapl")

    def entry(level):
        return BaselineEntry(experiment="x", config_hash="0" * 16, config={"model": "tiny"},
                             repeats=[{"joules_per_token": level * f} for f in (0.99, 1.0, 1.01)])

    first, second = entry(0.10), entry(0.11)
    nights = [{"serving": first, "other": entry(1.0)}, {"serving": first, "other": entry(1.1)},
              {"serving": first, "other": entry(1.2)}, {"serving": second, "other": entry(1.2)}]
    baselines = []
    for night, entries in enumerate(nights):
        baseline = Baseline(schema_version=1, created_at=datetime(2026, 3, 1, tzinfo=timezone.utc)
                            + timedelta(days=night), machine=machine, entries=entries)
        path = baseline.save(tmp_path / f"night{night}.json")
        baselines.append((str(path), Baseline.load(path)))
    drawn = {h.label: h for h in histories([*baselines, baselines[-1]], [])}
    assert [p.value for p in drawn["serving"].points] == [pytest.approx(0.10), pytest.approx(0.11)]
    assert [p.saved_at.day for p in drawn["serving"].points] == [1, 4]
    assert len(drawn["other"].points) == 3  # night 4 carried night 3's "other"
    assert carried_over(baselines) == {(1, "serving"): baselines[0][0], (2, "serving"): baselines[0][0],
                                       (3, "other"): baselines[2][0]}
    page = write_report([Path(p) for p, _ in baselines], tmp_path / "r.html")[0].read_text()
    assert page.count("not a session of its own") == 3
