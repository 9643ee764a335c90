"""The regression gate: which thresholds apply, and the verdict on one experiment's repeats against
its baseline entry — unverified when nothing is comparable, with notes on what changed since."""

from __future__ import annotations

import random
import re

import pytest

from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo
from llenergymeasure.results.compare import Threshold
from llenergymeasure.results.regression import (
    CONFIRM_CONFIDENCE,
    ONE_SESSION_NOTE,
    check_regression,
    confirm,
    thresholds,
)

KEY = "benchmarks/llem_gpt2.yaml::serving[batch_size=8]"
H200 = MachineInfo(gpus=["NVIDIA H200"], gpu_driver="550.54", cpu="AMD EPYC 9654", torch="2.3.0",
                   energy_source="nvml_counter")
A100 = MachineInfo(gpus=["NVIDIA A100 80GB PCIe"], gpu_driver="550.54", cpu="AMD EPYC 7763", torch="2.3.0",
                   energy_source="nvml_counter")
JPT_5 = [Threshold.parse("joules_per_token:5%")]


def noisy(center: float, seed: int, n: int = 5, cv: float = 0.01) -> list[float]:
    """``n`` repeats around ``center`` with a coefficient of variation of about ``cv``."""
    rng = random.Random(seed)
    return [center * (1 + rng.gauss(0, cv)) for _ in range(n)]


def entry(values: list[float | None], metric: str = "joules_per_token", **config) -> BaselineEntry:
    return BaselineEntry(experiment="serving[batch_size=8]", config_hash="0" * 16,
                         config={"model": "gpt2", "pytorch.batch_size": 8, **config},
                         repeats=[{metric: v} for v in values])


def baseline_of(before: BaselineEntry, machine: MachineInfo = H200) -> Baseline:
    return Baseline.from_entries({KEY: before}, machine, None)


# --- thresholds ----------------------------------------------------------------------------------


def test_without_any_gate_the_default_is_joules_per_token_5_percent():
    assert thresholds({}, []) == [Threshold("joules_per_token", 0.05, True)]


def test_the_files_gates_apply_relative_and_absolute():
    assert thresholds({"joules_per_token": "3%", "tokens_per_second": 0.5}, []) == [
        Threshold("joules_per_token", 0.03, True), Threshold("tokens_per_second", 0.5, False)]


def test_fail_on_overrides_the_files_gate_for_that_metric_only():
    gates = thresholds({"joules_per_token": "3%", "tokens_per_second": "10%"}, ["joules_per_token:8%"])
    assert gates == [Threshold("joules_per_token", 0.08, True), Threshold("tokens_per_second", 0.10, True)]


def test_fail_on_adds_to_the_default_gate():
    assert thresholds({}, ["tokens_per_second:10%"]) == [Threshold("joules_per_token", 0.05, True),
                                                         Threshold("tokens_per_second", 0.10, True)]


def test_a_file_regression_section_replaces_the_default():
    assert thresholds({"tokens_per_second": "10%"}, []) == [Threshold("tokens_per_second", 0.10, True)]


@pytest.mark.parametrize(("file_gates", "fail_on", "fragment"), [
    ({}, ["joules_per_token"], "expected METRIC:THRESHOLD"),
    ({}, ["joules:5%"], "unknown metric 'joules'"),
    ({}, ["joules_per_token:five%"], "threshold 'five%' for joules_per_token is not a number"),
    ({"joules_per_tokens": "5%"}, [], "did you mean 'joules_per_token'?"),
    ({"joules_per_token": "-5%"}, [], "must be a finite number >= 0"),
], ids=["no-threshold", "unknown-metric", "not-a-number", "typo-in-file", "negative"])
def test_bad_threshold_text_is_a_value_error_that_says_what_is_wrong(file_gates, fail_on, fragment):
    with pytest.raises(ValueError, match=fragment):
        thresholds(file_gates, fail_on)


# --- nothing comparable: unverified --------------------------------------------------------------


def test_the_same_experiment_under_another_node_id_is_found():
    before = entry([0.40, 0.41, 0.40])
    check = check_regression(baseline_of(before), "elsewhere/llem_gpt2.yaml::serving", before, H200, JPT_5)
    assert check.unverified is None
    assert [c.verdict for c in check.comparisons] == ["unchanged"]


def test_no_entry_for_the_experiment_is_unverified_naming_it():
    other = entry([0.4, 0.41]).model_copy(update={"experiment": "other"})
    check = check_regression(baseline_of(entry([0.4, 0.41])), "other::test", other, H200, JPT_5)
    assert check.verdict == "unverified"
    assert "the baseline has no entry for other::test" in check.unverified
    assert check.lines()[0].startswith("not compared with the baseline: the baseline has no entry for other::test")
    assert check.regressed == []


def test_another_machine_is_unverified_naming_both():
    check = check_regression(baseline_of(entry(noisy(0.4, 1)), A100), KEY, entry(noisy(0.8, 2)), H200, JPT_5)
    assert check.verdict == "unverified"
    assert check.unverified == ("baseline measured on 1x NVIDIA A100 80GB PCIe, nvml_counter, "
                                "this run on 1x NVIDIA H200, nvml_counter")
    assert check.comparisons == [] and check.regressed == []


def test_across_machines_compares_with_a_note():
    check = check_regression(baseline_of(entry(noisy(0.4, 1)), A100), KEY, entry(noisy(0.4, 2)), H200, JPT_5,
                             across_machines=True)
    assert check.unverified is None
    assert [c.metric for c in check.comparisons] == ["joules_per_token"]
    assert ("different machines: baseline measured on 1x NVIDIA A100 80GB PCIe, nvml_counter, "
            "this run on 1x NVIDIA H200, nvml_counter") in check.notes


# --- verdicts and notes --------------------------------------------------------------------------


def test_a_clear_20_percent_regression_is_regressed():
    check = check_regression(baseline_of(entry(noisy(0.40, 1))), KEY, entry(noisy(0.48, 2)), H200, JPT_5)
    assert check.verdict == "regressed"
    [worse] = check.regressed
    assert worse.metric == "joules_per_token"
    assert worse.change == pytest.approx(0.20, abs=0.03)
    assert check.lines()[0].startswith("joules_per_token ")
    assert check.lines()[0].endswith(": regressed")


def test_a_clear_20_percent_improvement_is_improved_not_regressed():
    check = check_regression(baseline_of(entry(noisy(0.40, 1))), KEY, entry(noisy(0.32, 2)), H200, JPT_5)
    assert check.verdict == "improved"
    assert check.regressed == []


def test_identical_repeats_are_not_regressed():
    values = noisy(0.4, 1)
    check = check_regression(baseline_of(entry(values)), KEY, entry(list(values)), H200, JPT_5)
    assert check.verdict == "unchanged"
    assert check.regressed == []
    assert check.notes == [ONE_SESSION_NOTE]


def test_one_named_baseline_file_says_what_its_ci_does_not_hold():
    check = check_regression(baseline_of(entry(noisy(0.40, 1))), KEY, entry(noisy(0.48, 2)), H200, JPT_5)
    assert check.lines()[-1] == ONE_SESSION_NOTE
    assert ONE_SESSION_NOTE.startswith("one baseline session: its CI holds the repeats' noise, not how sessions differ")


def test_a_config_change_is_noted_old_then_new():
    before = entry(noisy(0.4, 1))
    after = entry(noisy(0.4, 2), **{"pytorch.batch_size": 1})
    check = check_regression(baseline_of(before), KEY, after, H200, JPT_5)
    assert "config changed since the baseline: pytorch.batch_size 8 -> 1" in check.notes
    assert check.lines()[-2] == "config changed since the baseline: pytorch.batch_size 8 -> 1"


def test_a_software_change_is_noted_but_still_compared():
    upgraded = H200.model_copy(update={"torch": "2.4.0"})
    check = check_regression(baseline_of(entry(noisy(0.4, 1))), KEY, entry(noisy(0.4, 2)), upgraded, JPT_5)
    assert check.notes == ["software changed since the baseline: torch 2.3.0 -> 2.4.0", ONE_SESSION_NOTE]
    assert len(check.comparisons) == 1


def test_a_metric_unmeasured_in_the_baseline_is_noted_not_compared():
    before = entry([None, None, None])
    check = check_regression(baseline_of(before), KEY, entry(noisy(0.4, 2)), H200, JPT_5)
    assert check.comparisons == []
    assert check.notes == ["joules_per_token: not measured in the baseline, so not compared"]
    assert check.regressed == [] and not check.failed


def test_a_metric_that_stopped_being_measured_fails_the_gate():
    check = check_regression(baseline_of(entry(noisy(0.4, 1))), KEY, entry([None, None]), H200, JPT_5)
    assert check.failed and check.verdict == "not measured"
    assert check.lines() == ["joules_per_token was measured in the baseline but not in this run"]


def test_throughput_gate_treats_lower_throughput_as_the_regression():
    gate = [Threshold.parse("tokens_per_second:5%")]
    before = entry(noisy(100.0, 1), metric="tokens_per_second")
    slower = check_regression(baseline_of(before), KEY, entry(noisy(80.0, 2), metric="tokens_per_second"), H200, gate)
    faster = check_regression(baseline_of(before), KEY, entry(noisy(120.0, 2), metric="tokens_per_second"), H200, gate)
    assert (slower.verdict, faster.verdict) == ("regressed", "improved")


def test_a_run_with_suspect_energy_fails_the_gate_without_a_comparison():
    before = entry(noisy(0.4, 1))
    suspect = entry(noisy(0.4, 2)).model_copy(update={"energy_suspect": True})
    check = check_regression(baseline_of(before), KEY, suspect, H200, JPT_5)
    assert check.failed and check.verdict == "suspect"
    assert check.lines()[0] == ("not compared with the baseline: this run's energy is suspect "
                                "(see its measurement warnings)")


def test_a_baseline_entry_with_suspect_energy_is_never_the_reference():
    before = entry(noisy(0.4, 1)).model_copy(update={"energy_suspect": True})
    check = check_regression(baseline_of(before), KEY, entry(noisy(0.8, 2)), H200, JPT_5)
    assert not check.failed and check.verdict == "unverified"
    assert "has suspect energy" in check.unverified


def test_an_entry_a_schema_1_file_carried_over_unchanged_is_not_a_second_session():
    before = entry(noisy(0.4, 1, cv=0.03))
    first = baseline_of(before).model_copy(update={"schema_version": 1})
    copy = first.model_copy()  # a later schema-1 save that did not measure it copied its entry
    check = check_regression([first, copy], KEY, entry(noisy(0.428, 2, cv=0.03)), H200, JPT_5)
    [comparison] = check.comparisons
    assert comparison.verdict == "inconclusive"
    assert comparison.text.endswith("(1 history session, between-session variation unknown)")
    # the same values in two schema-2 files are two measurements (an exact meter measures alike)
    two = check_regression([baseline_of(before), baseline_of(before)], KEY, entry(noisy(0.428, 2, cv=0.03)), H200,
                           JPT_5)
    assert "over 2 history sessions" in two.comparisons[0].text


# --- a history: red sessions, segments, accept, confirmation ----------------------------------------


def history_of(levels: list[float], statuses: list[str] | None = None, **config) -> list[Baseline]:
    """Saved sessions (oldest first) of KEY at ``levels``, 1% noise, each with its status."""
    statuses = statuses or ["passed"] * len(levels)
    return [baseline_of(entry(noisy(level, seed), **config).model_copy(update={"status": status}))
            for seed, (level, status) in enumerate(zip(levels, statuses))]


STEADY = [0.400, 0.404, 0.398, 0.402, 0.397, 0.401, 0.403, 0.399, 0.400, 0.402]


def test_an_unfixed_regression_stays_red_however_many_nights_it_was_red():
    # Ten passed sessions, then ten red ones at +20%: tonight's +20% is judged against the ten passed.
    history = history_of(STEADY + [0.48] * 10, ["passed"] * 10 + ["regressed"] * 10)
    check = check_regression(history, KEY, entry(noisy(0.48, 99)), H200, JPT_5)
    assert check.verdict == "regressed"
    assert check.selection is not None and len(check.selection.flagged) == 10
    assert "over 10 history sessions" in check.comparisons[0].text


def test_an_accepted_session_starts_a_segment_judged_with_the_old_variation():
    history = history_of(STEADY + [0.48], ["passed"] * 10 + ["accepted"])
    same = check_regression(history, KEY, entry(noisy(0.48, 99)), H200, JPT_5)
    assert same.verdict != "regressed"
    [comparison] = same.comparisons
    assert "over 1 history session" in comparison.text and "(from 11 sessions)" in comparison.text
    assert same.selection.accepted is same.selection.segment[0]


def test_the_first_session_of_a_history_gives_no_verdict():
    check = check_regression(history_of([0.40]), KEY, entry(noisy(0.48, 99)), H200, JPT_5)
    assert check.verdict == "inconclusive" and not check.failed
    assert check.comparisons[0].text.endswith("(1 history session, between-session variation unknown)")


def test_only_red_sessions_is_unverified_saying_how_to_accept():
    check = check_regression(history_of([0.40, 0.41], ["regressed", "failed"]), KEY, entry(noisy(0.4, 9)), H200, JPT_5)
    assert check.verdict == "unverified"
    assert check.unverified == (f"no saved session of {KEY} is a reference: 2 red or suspect session(s), none passed; "
                                "accept the current level with --llem-accept")


def test_the_night_a_config_changes_it_is_judged_against_the_old_level_with_a_note():
    check = check_regression(history_of(STEADY), KEY, entry(noisy(0.40, 99), **{"pytorch.batch_size": 1}), H200, JPT_5)
    assert check.selection.config_changed and check.selection.pin == []
    assert "config changed since the baseline: pytorch.batch_size 8 -> 1" in check.notes
    assert "judged against the level of the previous config (a new config has no history yet)" in check.notes


def test_confirmation_fails_only_when_the_re_measurement_regressed_too():
    history = history_of(STEADY)
    first = check_regression(history, KEY, entry(noisy(0.46, 50)), H200, JPT_5)
    assert first.needs_confirmation
    noise = confirm(first, check_regression(history, KEY, entry(noisy(0.40, 51)), H200, JPT_5,
                                            confidence=CONFIRM_CONFIDENCE))
    assert not noise.failed and noise.verdict == "not confirmed" and noise.confirmation == "not confirmed (noise)"
    assert noise.lines()[0] == first.comparisons[0].text
    assert noise.lines()[1].startswith("not confirmed (noise): re-measured: joules_per_token ")
    assert "98.5% CI" in noise.lines()[1]
    real = confirm(first, check_regression(history, KEY, entry(noisy(0.46, 52)), H200, JPT_5,
                                           confidence=CONFIRM_CONFIDENCE))
    assert real.failed and real.verdict == "regressed" and real.confirmation == "confirmed"
    assert real.lines()[1].startswith("confirmed on re-measurement: joules_per_token ")


def test_an_accepted_regression_passes_saying_its_new_level():
    check = check_regression(history_of(STEADY), KEY, entry(noisy(0.48, 99)), H200, JPT_5)
    check.accepted = True
    assert not check.failed and not check.needs_confirmation and check.verdict == "accepted"
    assert re.match(r"accepted: new level \+(19|20)\.\d% \(joules_per_token 0\.48\d* vs 0\.40", check.lines()[0])
