"""The noise-aware regression verdict: error rates by simulation, verdicts, text, thresholds."""

from __future__ import annotations

import math
import random
import statistics
import subprocess
import sys

import pytest

from llenergymeasure.results.compare import (
    HIGHER_IS_BETTER,
    Comparison,
    Sensitivity,
    Threshold,
    compare_metric,
    compare_values,
    minimum_detectable_effect,
    repeats_to_resolve,
    sensitivity,
)

FIVE_PCT = Threshold("joules_per_token", 0.05, True)
BASELINE = [0.390, 0.392, 0.391, 0.394, 0.393]
CANDIDATE = [0.410, 0.412, 0.411, 0.414, 0.413]


def _regressed_rate(seed: int, *, candidate_mean: float, cv: float = 0.03, repeats: int = 5,
                    trials: int = 2000) -> float:
    rng = random.Random(seed)
    hits = 0
    for _ in range(trials):
        baseline = [rng.gauss(1.0, cv) for _ in range(repeats)]
        candidate = [rng.gauss(candidate_mean, cv * candidate_mean) for _ in range(repeats)]
        hits += compare_values(baseline, candidate, FIVE_PCT).verdict == "regressed"
    return hits / trials


def test_false_alarm_rate_on_identical_distributions_is_at_most_2_percent():
    assert _regressed_rate(1, candidate_mean=1.0) <= 0.02


def test_true_10_percent_regression_is_caught_at_least_95_percent_of_the_time():
    assert _regressed_rate(2, candidate_mean=1.10) >= 0.95


def test_text_format_of_a_regression():
    result = compare_values(BASELINE, CANDIDATE, FIVE_PCT)
    assert result.text == "joules_per_token 0.412 vs 0.392 (+5.1%, 95% CI +4.5%..+5.7%) > 5% threshold: regressed"
    assert (result.metric, result.baseline, result.candidate) == ("joules_per_token", 0.392, 0.412)
    assert result.change == pytest.approx(0.412 / 0.392 - 1)
    assert result.verdict == "regressed"
    assert result.threshold is FIVE_PCT


def test_ci_is_welch_on_the_log_scale():
    # Equal sizes and equal spread of the logs make Welch's df exactly 8: t = 2.3060.
    baseline = [1.0, 1.02, 0.98, 1.01, 0.99]
    candidate = [v * 1.07 for v in baseline]
    logs_b, logs_c = [math.log(v) for v in baseline], [math.log(v) for v in candidate]
    diff = statistics.fmean(logs_c) - statistics.fmean(logs_b)
    half = 2.3060 * math.sqrt(statistics.variance(logs_b) / 5 + statistics.variance(logs_c) / 5)
    result = compare_values(baseline, candidate, FIVE_PCT)
    assert result.ci_low == pytest.approx(math.exp(diff - half) - 1, rel=1e-6)
    assert result.ci_high == pytest.approx(math.exp(diff + half) - 1, rel=1e-6)
    assert result.ci_low < result.change < result.ci_high


def test_improved():
    result = compare_values(CANDIDATE, [v * 0.9 for v in CANDIDATE], FIVE_PCT)
    assert result.verdict == "improved"
    assert "< -5% threshold: improved" in result.text


def test_unchanged_when_the_ci_lies_inside_the_threshold():
    result = compare_values([1.0, 1.02, 0.98, 1.01, 0.99], [1.0, 1.01, 0.99, 1.005, 0.995], FIVE_PCT)
    assert result.verdict == "unchanged"
    assert -0.05 < result.ci_low < 0 < result.ci_high < 0.05
    assert result.text.endswith("within ±5% threshold: unchanged")


def test_identical_constant_repeats_are_unchanged():
    result = compare_values([2.0] * 3, [2.0] * 4, FIVE_PCT)
    assert (result.verdict, result.change, result.ci_low, result.ci_high) == ("unchanged", 0.0, 0.0, 0.0)


def test_inconclusive_when_too_noisy_to_tell():
    result = compare_values([1.0, 1.1, 0.9, 1.05, 0.95], [1.06, 1.2, 0.9, 1.1, 1.0], FIVE_PCT)
    assert result.change > 0.05  # past the threshold, but the CI includes no change
    assert result.ci_low < 0 < result.ci_high
    assert result.verdict == "inconclusive"
    assert result.text.endswith("inconclusive (too noisy: the 95% CI includes no change)")


def test_inconclusive_when_a_real_change_may_or_may_not_pass_the_threshold():
    result = compare_values([1.0, 1.02, 0.98, 1.01, 0.99], [1.03, 1.05, 1.01, 1.04, 1.02], FIVE_PCT)
    assert 0 < result.ci_low < result.change < 0.05 < result.ci_high
    assert result.verdict == "inconclusive"
    assert result.text.endswith("inconclusive (the 95% CI reaches past the threshold)")


def test_two_repeats_give_a_wide_ci_not_a_verdict():
    result = compare_values([1.0, 1.03], [1.08, 1.12], FIVE_PCT)
    assert result.verdict == "inconclusive"
    assert result.ci_low < 0


def test_absolute_threshold():
    threshold = Threshold.parse("joules_per_token:0.01")
    result = compare_values(BASELINE, CANDIDATE, threshold)
    assert result.change == pytest.approx(0.02)
    assert result.ci_low == pytest.approx(0.02 - 2.306 * math.sqrt(2 * statistics.variance(BASELINE) / 5), rel=1e-4)
    assert result.verdict == "regressed"
    assert result.text == ("joules_per_token 0.412 vs 0.392 (+0.02, 95% CI +0.01769..+0.02231) "
                           "> 0.01 J/token threshold: regressed")
    assert compare_values(BASELINE, CANDIDATE, Threshold.parse("joules_per_token:0.03")).verdict == "unchanged"


def test_absolute_threshold_handles_zero_and_negative_values():
    result = compare_values([0.0, 0.1, -0.1], [1.0, 1.1, 0.9], Threshold("net_energy_j", 0.5, False))
    assert result.verdict == "regressed"
    assert result.change == pytest.approx(1.0)


def test_higher_is_better_flips_the_direction():
    threshold = Threshold.parse("tokens_per_second:5%")
    slower, faster = [90, 91, 89, 92, 88], [110, 111, 109, 112, 108]
    baseline = [100, 101, 99, 102, 98]
    assert compare_values(baseline, slower, threshold, higher_is_better=True).verdict == "regressed"
    assert compare_values(baseline, faster, threshold, higher_is_better=True).verdict == "improved"
    assert compare_values(baseline, slower, threshold).verdict == "improved"
    result = compare_metric("tokens_per_second", baseline, slower, threshold)
    assert result.text == "tokens_per_second 90 vs 100 (-10.0%, 95% CI -12.2%..-7.8%) < -5% threshold: regressed"


def test_compare_metric_picks_the_direction_from_the_metric():
    assert "tokens_per_second" in HIGHER_IS_BETTER
    assert "joules_per_token" not in HIGHER_IS_BETTER
    assert compare_metric("joules_per_token", BASELINE, CANDIDATE, FIVE_PCT).verdict == "regressed"
    assert compare_metric("joules_per_token", CANDIDATE, BASELINE, Threshold.parse("joules_per_token:4%")).verdict \
        == "improved"


def test_compare_metric_rejects_a_threshold_for_another_metric():
    with pytest.raises(ValueError, match="threshold is for joules_per_token, not energy_j"):
        compare_metric("energy_j", BASELINE, CANDIDATE, FIVE_PCT)


@pytest.mark.parametrize(("text", "expected"), [
    ("joules_per_token:5%", Threshold("joules_per_token", 0.05, True)),
    (" tokens_per_second : 2.5 % ", Threshold("tokens_per_second", 0.025, True)),
    ("joules_per_token:0.01", Threshold("joules_per_token", 0.01, False)),
    ("energy_j:0", Threshold("energy_j", 0.0, False)),
])
def test_threshold_parse(text, expected):
    assert Threshold.parse(text) == expected


def test_threshold_str():
    assert str(Threshold.parse("joules_per_token:2.5%")) == "2.5%"
    assert str(Threshold.parse("energy_j:3")) == "3 J"


@pytest.mark.parametrize(("text", "message"), [
    ("joules_per_token", r"expected METRIC:THRESHOLD such as 'joules_per_token:5%'.*got 'joules_per_token'"),
    ("joules_per_token:", "expected METRIC:THRESHOLD"),
    (":5%", "expected METRIC:THRESHOLD"),
    ("joules_per_tokn:5%", r"unknown metric 'joules_per_tokn' \(did you mean 'joules_per_token'\?\); "
                           r"known metrics: energy_j, .*tokens_per_second"),
    ("joules_per_token:five%", r"'five%' for joules_per_token is not a number; write '5%' for a relative threshold "
                               r"or '0.01' for an absolute change in J/token"),
    ("joules_per_token:-5%", "must be a finite number >= 0"),
    ("joules_per_token:nan", "must be a finite number >= 0"),
    ("joules_per_token:inf%", "must be a finite number >= 0"),
])
def test_threshold_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        Threshold.parse(text)


def test_unknown_metric_without_a_close_match_lists_the_names_only():
    with pytest.raises(ValueError) as info:
        Threshold.parse("xyzzy:5%")
    assert "did you mean" not in str(info.value)
    assert "known metrics: energy_j" in str(info.value)


def test_single_repeat_shows_the_change_but_gives_no_verdict():
    result = compare_values([0.392], [0.412], FIVE_PCT)
    assert result.verdict == "inconclusive"
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.text == ("joules_per_token 0.412 vs 0.392 (+5.1%, single repeat: no noise estimate) "
                           "> 5% threshold: inconclusive (measure repeats: 3 or more on both sides for a verdict)")


@pytest.mark.parametrize(("baseline", "candidate"), [
    ([1.0], [2.0, 2.1, 2.2]),  # one side alone with a single repeat is enough to have no spread
    ([1.0, 1.1, 1.2], [0.5]),
    ([1.0], [1.0]),
])
def test_single_repeat_on_either_side_is_inconclusive(baseline, candidate):
    result = compare_values(baseline, candidate, FIVE_PCT)
    assert result.verdict == "inconclusive"
    assert "single repeat: no noise estimate" in result.text


@pytest.mark.parametrize("baseline", [[0.0, 0.0, 0.0], [-1.0, -2.0], [0.0]])
def test_nonpositive_baseline_median_with_relative_threshold_is_inconclusive(baseline):
    result = compare_values(baseline, [1.0, 1.1, 1.2], FIVE_PCT)
    assert result.verdict == "inconclusive"
    assert math.isnan(result.change)
    assert "relative change undefined: baseline median is" in result.text
    assert "use an absolute threshold" in result.text


def test_nonpositive_values_with_positive_medians_give_no_relative_ci():
    result = compare_values([0.0, 1.0, 1.0], [1.0, 1.1, 1.2], FIVE_PCT)
    assert result.verdict == "inconclusive"
    assert "a relative CI needs positive values" in result.text


@pytest.mark.parametrize(("baseline", "candidate"), [([], [1.0]), ([1.0], []), ([1.0, math.nan], [1.0])])
def test_missing_or_non_finite_values_are_rejected(baseline, candidate):
    with pytest.raises(ValueError):
        compare_values(baseline, candidate, FIVE_PCT)


def test_comparison_is_frozen():
    result = compare_values(BASELINE, CANDIDATE, FIVE_PCT)
    assert isinstance(result, Comparison)
    with pytest.raises(AttributeError):
        result.verdict = "unchanged"  # type: ignore[misc]


def test_importing_compare_does_not_import_torch():
    code = "import sys, llenergymeasure.results.compare; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_robust_option_uses_the_rank_interval():
    baseline, candidate = [1.0, 1.02, 0.98, 1.01, 0.99], [1.11, 1.12, 1.09, 1.10, 1.13]
    result = compare_values(baseline, candidate, FIVE_PCT, robust=True)
    # 5 and 5 repeats: P(U <= 2) = 4/252 <= 2.5%, so the 3rd smallest and largest of the 25 differences.
    diffs = sorted(math.log(y) - math.log(x) for x in baseline for y in candidate)
    assert (result.ci_low, result.ci_high) == pytest.approx((math.expm1(diffs[2]), math.expm1(diffs[22])))
    assert result.verdict == "regressed"
    assert result.text == ("joules_per_token 1.11 vs 1 (+11.0%, 95% CI +7.9%..+14.1%, rank-based) "
                           "> 5% threshold: regressed")
    assert compare_metric("joules_per_token", baseline, candidate, FIVE_PCT, robust=True) == result
    assert compare_values(baseline, candidate, FIVE_PCT) != result  # Welch stays the default


def test_robust_option_with_too_few_repeats_gives_no_verdict():
    result = compare_values([1.0, 1.02, 0.98], [1.11, 1.12, 1.09], FIVE_PCT, robust=True)
    assert result.verdict == "inconclusive"
    assert result.text.endswith("(+11.0%, 3 and 3 repeats: too few for a 95% rank CI) > 5% threshold: "
                                "inconclusive (measure 4 or more repeats on both sides for a rank-based verdict)")


@pytest.mark.parametrize(("m", "n", "critical"), [(3, 3, None), (4, 4, 0), (5, 5, 2), (6, 4, 2), (10, 10, 23)])
def test_rank_critical_values(m, n, critical):
    from llenergymeasure.results.compare import _mann_whitney_counts, _rank_critical

    assert _rank_critical(m, n) == critical
    assert sum(_mann_whitney_counts(m, n)) == math.comb(m + n, m)


def test_robust_option_sees_a_10_percent_regression_through_a_throttled_repeat():
    # 10 repeats a side, one of them +30% on each side: Welch catches +10% 80% of the time, ranks 99.6%
    # (benchmarks/compare_history.py); 500 trials put 95% some 10 SEs below the expected rate.
    rng = random.Random(3)
    hits = 0
    for _ in range(500):
        baseline = [rng.gauss(1.0, 0.03) for _ in range(10)]
        candidate = [rng.gauss(1.1, 0.033) for _ in range(10)]
        baseline[rng.randrange(10)] *= 1.3
        candidate[rng.randrange(10)] *= 1.3
        hits += compare_values(baseline, candidate, FIVE_PCT, robust=True).verdict == "regressed"
    assert hits / 500 >= 0.95


def test_minimum_detectable_effect():
    # No noise: anything past the threshold is called.
    assert minimum_detectable_effect(0.0, 8, FIVE_PCT) == pytest.approx(0.05)
    # The threshold binds (t*SE < log 1.05): the point estimate must clear it 80% of the time.
    se = 0.01
    expected = math.expm1(math.log(1.05) + statistics.NormalDist().inv_cdf(0.8) * se)
    assert minimum_detectable_effect(se, 1000, FIVE_PCT) == pytest.approx(expected, abs=0.003)
    # Noisier: larger, and in the metric's unit for an absolute threshold.
    assert minimum_detectable_effect(0.05, 4, FIVE_PCT) > minimum_detectable_effect(0.02, 4, FIVE_PCT) > 0.05
    assert minimum_detectable_effect(0.0, 4, Threshold("energy_j", 3.0, False)) == pytest.approx(3.0)


def test_power_at_the_mde_is_about_80_percent():
    # MDE from the true noise (3% CV, 5 repeats a side); simulated power 81% over 3,000 trials.
    se = 0.03 * math.sqrt(2 / 5)
    mde = minimum_detectable_effect(se, 8, FIVE_PCT, point_se=se * math.sqrt(math.pi / 2))
    power = _regressed_rate(4, candidate_mean=1 + mde, trials=1000)
    assert 0.70 <= power <= 0.90


def test_repeats_to_resolve():
    # (t95(2n - 2) + 0.84) * 0.03 * sqrt(2 / n) <= log 1.05 first holds at n = 7.
    needed = repeats_to_resolve(lambda n: (0.03 * math.sqrt(2 / n), 2 * n - 2), FIVE_PCT)
    assert needed == 7
    assert repeats_to_resolve(lambda n: (0.5, 2 * n - 2), FIVE_PCT) is None  # a floor no repeats get under


def test_sensitivity_text():
    baseline = [1.0, 1.06, 0.94, 1.03, 0.97]
    result = sensitivity(baseline, [1.05 * v for v in baseline], FIVE_PCT)
    assert isinstance(result, Sensitivity)
    assert result.repeats == 5 and result.repeats_to_resolve > 5
    assert result.text == (f"MDE {result.mde:.1%} at 5 repeats; ~{result.repeats_to_resolve} repeats per side "
                           f"would resolve the 5% threshold")
    steady = sensitivity(BASELINE, CANDIDATE, FIVE_PCT)
    assert steady.text.endswith("5 repeats resolve the 5% threshold")
    assert steady.mde < result.mde
    single = sensitivity([1.0], [1.1], FIVE_PCT)
    assert math.isnan(single.mde) and single.repeats_to_resolve is None
    assert "no noise estimate" in single.text
    one_side = sensitivity([1.0], [1.0, 1.02, 0.98], FIVE_PCT)
    assert math.isnan(one_side.mde) and one_side.repeats_to_resolve is not None
    assert sensitivity([0.0, 1.0], [1.0, 1.0], FIVE_PCT).text.startswith("no MDE")
