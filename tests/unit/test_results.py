"""ExperimentResult: metrics per repeat, headline medians, spread, and atomic save/load that never
overwrites (nor does a baseline's save); where a result goes when its directory fails."""

from __future__ import annotations

import errno
import json
import os
import statistics
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from llenergymeasure.exceptions import ConfigError, ExperimentError
from llenergymeasure.results.baselines import Baseline, latest, new_baseline_path
from llenergymeasure.results.io import NotSaved, create_new, output_dir_problem
from llenergymeasure.results.metrics import METRIC_NAMES, METRICS, Metrics
from llenergymeasure.results.model import (SCHEMA_VERSION, ExperimentResult, longest_file_name,
                                           make_experiment_id)
from result_builders import EXPERIMENT_ID, STARTED, make_repeat, make_result

# --- metric definitions --------------------------------------------------------------------------


def test_metrics_model_fields_are_exactly_the_metric_names():
    assert tuple(Metrics.model_fields) == METRIC_NAMES
    assert set(METRICS) == set(METRIC_NAMES)


def test_metrics_rejects_unknown_fields():
    with pytest.raises(ValidationError, match="joules_per_tokens"):
        Metrics(joules_per_tokens=1.0)


def test_joules_per_token_is_energy_over_output_tokens():
    m = make_repeat(0, energy_j=41.0, output_tokens=200).metrics
    assert m.joules_per_token == pytest.approx(41.0 / 200)
    assert m.energy_j == 41.0
    assert m.output_tokens == 200.0


def test_tokens_per_second_is_output_tokens_over_duration():
    assert make_repeat(0, energy_j=1.0, duration_s=4.0, output_tokens=100).metrics.tokens_per_second == 25.0


def test_net_energy_subtracts_baseline_power_times_duration():
    m = make_repeat(0, energy_j=100.0, duration_s=2.0, output_tokens=50, baseline_power_w=30.0).metrics
    assert m.net_energy_j == pytest.approx(40.0)
    assert m.net_joules_per_token == pytest.approx(40.0 / 50)
    assert m.baseline_power_w == 30.0


def test_net_energy_clamps_at_zero():
    m = make_repeat(0, energy_j=10.0, duration_s=2.0, baseline_power_w=30.0).metrics
    assert m.net_energy_j == 0.0
    assert m.net_joules_per_token == 0.0


def test_net_energy_needs_a_baseline():
    m = make_repeat(0, energy_j=10.0, baseline_power_w=None).metrics
    assert m.net_energy_j is None
    assert m.net_joules_per_token is None


def test_wh_per_1000_queries_formula():
    m = make_repeat(0, energy_j=720.0, n_prompts=20).metrics
    # 720 J / 20 prompts = 36 J per query; x1000 = 36 kJ = 10 Wh
    assert m.wh_per_1000_queries == pytest.approx(10.0)


def test_no_energy_gives_no_energy_derived_metrics_but_keeps_the_rest():
    m = make_repeat(0, energy_j=None, baseline_power_w=25.0, duration_s=2.0, output_tokens=100).metrics
    assert m.energy_j is None
    assert m.joules_per_token is None
    assert m.net_energy_j is None
    assert m.net_joules_per_token is None
    assert m.wh_per_1000_queries is None
    assert m.tokens_per_second == 50.0
    assert m.latency_s_p50 == 1.0


def test_zero_output_tokens_gives_no_per_token_metric():
    m = make_repeat(0, energy_j=10.0, output_tokens=0).metrics
    assert m.joules_per_token is None
    assert m.tokens_per_second == 0.0


def test_latency_percentiles_and_ttft():
    m = make_repeat(0, energy_j=1.0, latencies_s=[4.0, 1.0, 3.0, 2.0]).metrics
    assert m.latency_s_p50 == pytest.approx(2.5)
    assert m.latency_s_p95 == pytest.approx(3.85)
    assert m.ttft_s_p50 == pytest.approx(0.06)


def test_no_latencies_gives_none():
    assert make_repeat(0, energy_j=1.0, latencies_s=[]).metrics.latency_s_p50 is None


# --- from_repeats: headline and stats ------------------------------------------------------------


def test_headline_is_the_median_over_repeats():
    repeats = [make_repeat(0, energy_j=90.0), make_repeat(1, energy_j=40.0), make_repeat(2, energy_j=50.0)]
    result = make_result(repeats)
    assert result.metrics.energy_j == 50.0
    assert result.metrics.joules_per_token == pytest.approx(0.5)
    for name in METRIC_NAMES:
        values = [getattr(r.metrics, name) for r in repeats if getattr(r.metrics, name) is not None]
        expected = statistics.median(values) if values else None
        assert getattr(result.metrics, name) == expected, name


def test_headline_with_an_even_number_of_repeats_averages_the_middle_two():
    result = make_result([make_repeat(i, energy_j=e) for i, e in enumerate([10.0, 40.0, 20.0, 30.0])])
    assert result.metrics.energy_j == 25.0


def test_stats_present_only_with_more_than_one_repeat():
    single = make_result([make_repeat(0, energy_j=40.0)])
    assert single.stats == {}
    assert single.metrics.energy_j == 40.0

    several = make_result([make_repeat(0, energy_j=40.0), make_repeat(1, energy_j=60.0)])
    assert set(several.stats) >= {"energy_j", "joules_per_token", "tokens_per_second"}
    assert several.stats["energy_j"].n == 2
    assert several.stats["energy_j"].median == 50.0
    # metrics that were never measured have no stats
    assert "peak_memory_mb" not in several.stats
    assert several.metrics.peak_memory_mb is None


def test_stats_and_median_skip_repeats_where_a_metric_is_missing():
    result = make_result([make_repeat(0, energy_j=None), make_repeat(1, energy_j=40.0), make_repeat(2, energy_j=60.0)])
    assert result.metrics.energy_j == 50.0
    assert result.stats["energy_j"].n == 2
    assert result.stats["tokens_per_second"].n == 3


def test_counts_come_from_the_repeats():
    result = make_result([make_repeat(0, energy_j=1.0, n_prompts=7, output_tokens=33)])
    assert (result.n_prompts, result.input_tokens, result.output_tokens) == (7, 40, 33)
    assert result.schema_version == SCHEMA_VERSION
    assert len(result.repeats) == 1


# --- save / load ---------------------------------------------------------------------------------


def test_save_writes_experiment_id_json_and_load_round_trips(tmp_path):
    result = make_result([make_repeat(0, energy_j=40.0), make_repeat(1, energy_j=44.0, baseline_power_w=5.0)],
                         estimated=True, co2_g=1.5)
    path = result.save(tmp_path / "results")
    assert path == tmp_path / "results" / f"{EXPERIMENT_ID}.json"
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["metrics"]["energy_j"] == 42.0
    assert data["estimated"] is True
    loaded = ExperimentResult.load(path)
    assert loaded == result
    assert loaded.started_at == STARTED


def test_save_leaves_no_temp_files(tmp_path):
    result = make_result([make_repeat(0, energy_j=40.0)])
    result.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{EXPERIMENT_ID}.json"]


def test_two_saves_of_one_result_in_one_second_keep_two_files(tmp_path):
    result = make_result([make_repeat(0, energy_j=40.0)])
    first, second, third = result.save(tmp_path), result.save(tmp_path), result.save(tmp_path)
    assert [first.name, second.name, third.name] == [f"{EXPERIMENT_ID}.json", f"{EXPERIMENT_ID}-2.json",
                                                     f"{EXPERIMENT_ID}-3.json"]
    assert sorted(tmp_path.iterdir()) == sorted([first, second, third])  # and no temp file
    assert all(ExperimentResult.load(p) == result for p in (first, second, third))


def test_save_never_replaces_an_existing_file(tmp_path):
    target = tmp_path / f"{EXPERIMENT_ID}.json"
    target.write_text('{"someone else\'s": "measurement"}')
    result = make_result([make_repeat(0, energy_j=40.0)])
    path = result.save(tmp_path)
    assert path == tmp_path / f"{EXPERIMENT_ID}-2.json"
    assert target.read_text() == '{"someone else\'s": "measurement"}'
    assert ExperimentResult.load(path) == result


def test_save_writes_the_timeline_sidecar_only_when_there_is_one(tmp_path):
    result = make_result([make_repeat(0, energy_j=40.0)])
    result.save(tmp_path)
    assert not (tmp_path / f"{EXPERIMENT_ID}.timeline.json").exists()

    timeline = [{"gpu0": [{"t": 0.0, "power_w": 50.0}, {"t": 0.1, "power_w": 55.0}]}]
    with_timeline = result.model_copy(update={"full_timeline": timeline})
    path = with_timeline.save(tmp_path)
    assert path.name == f"{EXPERIMENT_ID}-2.json"  # the first name is taken; the sidecar follows its result
    sidecar = json.loads((tmp_path / f"{EXPERIMENT_ID}-2.timeline.json").read_text())
    assert sidecar == {"experiment_id": EXPERIMENT_ID, "repeats": timeline, "session": {}}
    assert "full_timeline" not in json.loads(path.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{EXPERIMENT_ID}-2.json", f"{EXPERIMENT_ID}-2.timeline.json", f"{EXPERIMENT_ID}.json"]


def test_the_session_timeline_is_downsampled_in_the_result_and_whole_in_the_sidecar(tmp_path):
    full = {"devices": {"cpu": [{"t": i / 10, "power_w": 2.0, "estimated": True} for i in range(50)]},
            "phases": [{"name": "window", "start": 0.5, "end": 4.0, "repeat": 0}]}
    short = {"devices": {"cpu": full["devices"]["cpu"][::10]}, "phases": full["phases"]}
    result = make_result([make_repeat(0, energy_j=40.0)], timeline=short, full_session_timeline=full)
    path = result.save(tmp_path)
    saved = json.loads(path.read_text())
    assert saved["timeline"] == short and "full_session_timeline" not in saved
    sidecar = json.loads(path.with_name(f"{EXPERIMENT_ID}.timeline.json").read_text())
    assert sidecar == {"experiment_id": EXPERIMENT_ID, "repeats": [], "session": full}
    assert ExperimentResult.load(path).timeline == short


def test_a_result_written_before_timelines_existed_still_loads(tmp_path):
    document = json.loads(make_result([make_repeat(0, energy_j=40.0)]).model_dump_json())
    del document["timeline"]
    (tmp_path / "old.json").write_text(json.dumps(document))
    assert ExperimentResult.load(tmp_path / "old.json").timeline == {}


def test_a_name_whose_sidecar_is_taken_is_skipped_whole(tmp_path):
    (tmp_path / f"{EXPERIMENT_ID}.timeline.json").write_text("{}")  # an orphan from a killed process
    with_timeline = make_result([make_repeat(0, energy_j=40.0)], full_timeline=[{"gpu0": [{"t": 0.0}]}])
    assert with_timeline.save(tmp_path).name == f"{EXPERIMENT_ID}-2.json"
    assert (tmp_path / f"{EXPERIMENT_ID}.timeline.json").read_text() == "{}"


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    """``$XDG_CACHE_HOME``, where a result goes when its own directory fails."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_result_that_cannot_be_saved_is_kept_in_the_cache_and_the_error_says_where(tmp_path, cache_home):
    out = tmp_path / "out"
    out.write_text("the output directory, replaced by a file after pre-flight")
    result = make_result([make_repeat(0, energy_j=40.0)], full_timeline=[{"gpu0": [{"t": 0.0}]}])
    with pytest.raises(NotSaved) as info:
        result.save(out)
    kept = cache_home / "llenergymeasure" / "unsaved" / f"{EXPERIMENT_ID}.json"
    assert info.value.kept_at == kept
    assert isinstance(info.value, ExperimentError) and info.value.exit_code == 1
    assert str(info.value) == (f"could not save the result in {out}: it is a file, not a directory; "
                               f"it was written to {kept} instead")
    assert ExperimentResult.load(kept).model_dump() == result.model_dump()  # the timeline is in its sidecar
    assert (kept.parent / f"{EXPERIMENT_ID}.timeline.json").exists()
    assert not [p for p in kept.parent.iterdir() if p.name.startswith(".")]


def test_a_failed_write_leaves_no_sidecar_no_temp_file_and_keeps_the_result(tmp_path, cache_home, monkeypatch):
    """The directory fails between the sidecar and the result (a full disk): neither stays there."""
    real_link = os.link

    def link_fails_for_results(src, dst):
        if str(dst).endswith(".json") and not str(dst).endswith(".timeline.json") and str(tmp_path / "out") in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_fails_for_results)
    result = make_result([make_repeat(0, energy_j=40.0)], full_timeline=[{"gpu0": [{"t": 0.0}]}])
    with pytest.raises(NotSaved, match="No space left on device; it was written to") as info:
        result.save(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert ExperimentResult.load(info.value.kept_at).model_dump() == result.model_dump()


def test_when_no_place_takes_the_result_the_error_says_it_was_not_saved(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache is beneath a file ...
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))  # ... and so is the temp dir
    with pytest.raises(NotSaved, match="the result was not saved$") as info:
        make_result([make_repeat(0, energy_j=40.0)]).save(blocker / "out")
    assert info.value.kept_at is None


def test_an_interrupted_save_leaves_no_sidecar_and_no_temp_file(tmp_path, monkeypatch):
    real_link = os.link

    def interrupted_at_the_result(src, dst):
        if not str(dst).endswith(".timeline.json"):
            raise KeyboardInterrupt
        real_link(src, dst)

    monkeypatch.setattr(os, "link", interrupted_at_the_result)
    with pytest.raises(KeyboardInterrupt):
        make_result([make_repeat(0, energy_j=40.0)], full_timeline=[{"gpu0": [{"t": 0.0}]}]).save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_create_new_refuses_a_taken_name(tmp_path):
    create_new(tmp_path / "a.json", "first\n")
    with pytest.raises(FileExistsError):
        create_new(tmp_path / "a.json", "second\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").read_text() == "first\n"


def test_create_new_without_hard_links_still_refuses_a_taken_name(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")  # what FAT or some network mounts answer

    monkeypatch.setattr(os, "link", no_links)
    assert create_new(tmp_path / "a.json", "first\n").read_text() == "first\n"
    with pytest.raises(FileExistsError):
        create_new(tmp_path / "a.json", "second\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").read_text() == "first\n"


# --- baselines are never overwritten either -----------------------------------------------------


def test_baselines_saved_in_the_same_second_keep_both_and_latest_is_the_last(tmp_path):
    baseline = Baseline.from_results([make_result([make_repeat(0, energy_j=40.0)])])
    key = baseline.machine.key
    first = baseline.save(new_baseline_path(tmp_path, key, None))
    taken = new_baseline_path(tmp_path, key, None)  # what a second process may compute before the first saves
    second = baseline.save(first)  # ... then saves to a name just taken
    third = baseline.save(taken)
    names = [p.name for p in (first, second, third)]
    assert names[1:] == [names[0].replace(".json", ".2.json"), names[0].replace(".json", ".3.json")]
    assert latest(tmp_path, key) == third
    assert Baseline.load(first) == Baseline.load(third) == baseline


def test_a_baseline_saved_to_a_taken_hand_named_path_gets_a_number(tmp_path):
    baseline = Baseline.from_results([make_result([make_repeat(0, energy_j=40.0)])])
    (tmp_path / "base.json").write_text("{}")
    assert baseline.save(tmp_path / "base.json") == tmp_path / "base.2.json"
    assert (tmp_path / "base.json").read_text() == "{}"


# --- file names and output directories ----------------------------------------------------------


@pytest.mark.parametrize("setup", ["file", "beneath-a-file", "long-part"])
def test_output_dir_problem_names_the_path(tmp_path, setup):
    (tmp_path / "f").write_text("")
    directory = {"file": tmp_path / "f", "beneath-a-file": tmp_path / "f" / "sub",
                 "long-part": tmp_path / ("x" * 300) / "out"}[setup]
    problem = output_dir_problem(directory, "r.json")
    assert problem is not None and problem.startswith(f"output_dir: {directory}")


def test_output_dir_problem_accepts_a_new_directory_and_creates_nothing(tmp_path):
    assert output_dir_problem(tmp_path / "a" / "b", "r.json") is None
    assert output_dir_problem(tmp_path, "r.json") is None
    assert list(tmp_path.iterdir()) == []


def test_output_dir_problem_refuses_names_the_filesystem_cannot_hold(tmp_path):
    assert "use a shorter experiment name" in output_dir_problem(tmp_path, "r" * 300 + ".json")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux procfs")
def test_output_dir_problem_refuses_a_directory_nobody_can_write_in():
    assert output_dir_problem("/proc/llem-results", "r.json").startswith(
        "output_dir: /proc/llem-results cannot be created: cannot write in /proc (")


def test_load_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        ExperimentResult.load(path)
    assert str(info.value) == f"{path}: result file not found"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"schema_version": 1, "experiment_id": ', "not a readable result file"),
        ("", "not a readable result file"),
        ("[1, 2]", "schema_version None is not 1"),
        ('{"metrics": {}}', "schema_version None is not 1"),
        ('{"schema_version": 2}', "schema_version 2 is not 1"),
        ('{"schema_version": "1"}', "schema_version '1' is not 1"),
    ],
    ids=["truncated", "empty", "list", "no-version", "newer", "string-version"],
)
def test_load_corrupt_or_wrong_schema_names_the_path(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        ExperimentResult.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert info.value.exit_code == 2


def test_load_valid_json_with_a_bad_field_names_path_and_key(tmp_path):
    result = make_result([make_repeat(0, energy_j=40.0)])
    data = json.loads(result.model_dump_json())
    data["metrics"]["energy_j"] = "lots"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        ExperimentResult.load(path)
    assert str(info.value).startswith(f"{path}: not a valid result file (metrics.energy_j: ")


def test_load_unknown_top_level_field_is_refused(tmp_path):
    result = make_result([make_repeat(0, energy_j=40.0)])
    data = json.loads(result.model_dump_json())
    data["surprise"] = 1
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"not a valid result file \(surprise: "):
        ExperimentResult.load(path)


def test_make_experiment_id_is_filesystem_safe():
    eid = make_experiment_id("serving[precision=fp16,batch_size=8]", "0123abcd0123abcd", STARTED)
    assert eid == "serving_precision_fp16_batch_size_8-0123abcd-20260102T030405"
    assert make_experiment_id("///", "ffffffff", STARTED) == "experiment-ffffffff-20260102T030405"


def test_a_long_sweep_name_is_cut_to_a_file_name_that_fits_and_stays_distinct():
    params = ",".join(f"pytorch.knob_{i}={i}" for i in range(30))
    a = make_experiment_id(f"serving[{params}]", "0123abcd0123abcd", STARTED)
    b = make_experiment_id(f"serving[{params},extra=1]", "0123abcd0123abcd", STARTED)
    assert a != b
    assert a.startswith("serving_pytorch.knob_0_0_pytorch.knob_1_1") and a.endswith("-0123abcd-20260102T030405")
    assert len(longest_file_name(a).encode()) <= 255
    assert a == make_experiment_id(f"serving[{params}]", "0123abcd0123abcd", STARTED)  # stable


def test_saved_file_name_for_a_made_id_is_plain(tmp_path):
    eid = make_experiment_id("a/b c", "0123abcd0123abcd", STARTED)
    path = make_result([make_repeat(0, energy_j=1.0)], experiment_id=eid).save(tmp_path)
    assert path.parent == tmp_path
    assert Path(path).name == f"{eid}.json"
