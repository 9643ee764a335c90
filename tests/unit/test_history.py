"""The verdict against a history of sessions: error rates by seeded simulation, the CI by hand,
one session, steps, outliers, single repeats, text, the between-session SD and the MDE helpers."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from scipy import stats as scipy_stats

from llenergymeasure.results.ab import hodges_lehmann
from llenergymeasure.results.compare import Threshold, compare_values, minimum_detectable_effect
from llenergymeasure.results.history import (
    Reference,
    between_session_sd,
    compare_history,
    history_sensitivity,
    judge_history,
)

FIVE_PCT = Threshold("joules_per_token", 0.05, True)
SHAPE = [1.0, 1.02, 0.98, 1.01, 0.99]  # one session's repeats, before its level
LEVELS = [1.00, 1.03, 0.99, 1.02, 0.98, 1.01, 1.00, 0.97, 1.02, 1.01]


def _session(rng: random.Random, *, s: float, repeats: int = 5, shift: float = 0.0, outlier: bool = False,
             cv: float = 0.03) -> list[float]:
    scale = (1 + shift) * math.exp(rng.gauss(0, s))
    values = [scale * rng.gauss(1.0, cv) for _ in range(repeats)]
    if outlier:
        values[rng.randrange(repeats)] *= 1.15  # a throttled repeat
    return values


def _rates(seed: int, trials: int, *, s: float, shift: float = 0.0, repeats: int = 5,
           candidate_repeats: int | None = None, outliers: str | None = None) -> tuple[float, float]:
    """(share called regressed, share of CIs holding the true change) over seeded trials: 10 history
    sessions, CV 3% between repeats, every session shifted by exp(N(0, s))."""
    rng = random.Random(seed)
    regressed = covered = 0
    for _ in range(trials):
        history = [_session(rng, s=s, repeats=repeats, outlier=outliers == "all") for _ in range(10)]
        candidate = _session(rng, s=s, repeats=candidate_repeats or repeats, shift=shift, outlier=outliers is not None)
        result = compare_history(history, candidate, FIVE_PCT)
        regressed += result.verdict == "regressed"
        covered += result.ci_low <= shift <= result.ci_high
    return regressed / trials, covered / trials


def _check(observed: float, *, at_most: float | None = None, at_least: float | None = None, expected: float,
           trials: int) -> None:
    """Assert the seeded rate against its target, after checking that the rate it estimates
    (``expected``, from benchmarks/compare_history.py or a 20,000-trial run) lies 3 binomial SEs or
    more inside the target at this many trials: a different seed would not flip the test."""
    margin = 3 * math.sqrt(expected * (1 - expected) / trials)
    if at_most is not None:
        assert expected + margin <= at_most, "too few trials to tell the rate from its target"
        assert observed <= at_most
    if at_least is not None:
        assert expected - margin >= at_least, "too few trials to tell the rate from its target"
        assert observed >= at_least


# Targets: false alarms at most 2.5% with between-session SD 2% and 4%; +10% caught at least 80% of the
# time at 2% and 95% with no offset (3% CV, 5 repeats, 10 sessions, 5% threshold).

def test_false_alarms_with_2_percent_session_offsets():
    rate, coverage = _rates(1, 1000, s=0.02)
    _check(rate, at_most=0.025, expected=0.011, trials=1000)
    _check(coverage, at_least=0.94, expected=0.962, trials=1000)


def test_false_alarms_with_4_percent_session_offsets():
    # Close to the CI's own one-sided 2.5% (the threshold hardly filters at this noise): 2.0% over
    # 20,000 trials, so this cell needs 8,000 for a 3-SE margin.
    _check(_rates(2, 8000, s=0.04)[0], at_most=0.025, expected=0.020, trials=8000)


def test_detects_10_percent_with_2_percent_session_offsets():
    _check(_rates(3, 1000, s=0.02, shift=0.10)[0], at_least=0.80, expected=0.853, trials=1000)


def test_detects_10_percent_without_session_offsets():
    _check(_rates(4, 1000, s=0.0, shift=0.10)[0], at_least=0.95, expected=0.996, trials=1000)


def test_one_throttled_repeat_in_ten_hides_no_regression():
    # Every session, history and candidate, has one repeat in ten at +15%.
    _check(_rates(5, 500, s=0.0, shift=0.10, repeats=10, outliers="all")[0], at_least=0.95, expected=0.999,
           trials=500)
    _check(_rates(6, 1000, s=0.02, shift=0.10, repeats=10, outliers="all")[0], at_least=0.80, expected=0.90,
           trials=1000)


def test_one_throttled_repeat_in_the_candidate_raises_no_false_alarm():
    _check(_rates(7, 1000, s=0.02, repeats=10, outliers="candidate")[0], at_most=0.025, expected=0.012,
           trials=1000)


def test_a_single_candidate_repeat_keeps_the_false_alarm_rate():
    _check(_rates(8, 1000, s=0.02, candidate_repeats=1)[0], at_most=0.025, expected=0.004, trials=1000)


def test_the_old_single_baseline_gate_fails_the_same_target():
    # The contrast that motivates the history: the last session as the baseline, 2% offsets.
    rng = random.Random(9)
    alarms = sum(compare_values(_session(rng, s=0.02), _session(rng, s=0.02), FIVE_PCT).verdict == "regressed"
                 for _ in range(2000))
    assert alarms / 2000 > 0.04  # 6.8% in the benchmark


def test_one_session_gives_no_verdict_across_sessions():
    # One session cannot say how sessions differ: a +5% candidate would be "regressed" by the
    # two-session Welch test (7-18% false alarms at 2-4% session offsets), here it is inconclusive.
    baseline, candidate = [0.390, 0.392, 0.391, 0.394, 0.393], [0.410, 0.412, 0.411, 0.414, 0.413]
    assert compare_values(baseline, candidate, FIVE_PCT).verdict == "regressed"
    result = compare_history([baseline], candidate, FIVE_PCT)
    assert result.verdict == "inconclusive"
    assert result.text.endswith("> 5% threshold: inconclusive (1 history session, between-session variation unknown)")
    assert math.isnan(result.ci_low) and result.change == pytest.approx(0.412 / 0.392 - 1, rel=1e-3)
    assert math.isnan(between_session_sd([baseline]))
    assert "how sessions differ is unknown" in history_sensitivity([baseline], candidate, FIVE_PCT).text


def test_a_new_segment_borrows_the_between_session_variation_of_the_one_before():
    # One session at a new level (an accept): with the previous segment's sessions as noise, its
    # candidate gets a verdict; the variation is the same as the old segment's alone would give.
    old = _history()
    accepted = [1.2 * v for v in SHAPE]
    reference = Reference(level=[accepted], noise=[old, [accepted]])
    result = judge_history(reference, [1.2 * 1.15 * v for v in SHAPE], FIVE_PCT)
    assert result.verdict == "regressed"
    assert "over 1 history session, between-session SD 2.2% (from 11 sessions)" in result.text
    assert between_session_sd(reference) == pytest.approx(between_session_sd(old), rel=0.01)
    # against the one session the level is known less well than against ten: a wider CI
    ten = compare_history(old, [1.08 * v for v in SHAPE], FIVE_PCT)
    assert result.ci_high - result.ci_low > ten.ci_high - ten.ci_low


def test_drift_since_the_pin_is_caught_when_the_level_has_followed_it():
    # A segment that crept +0.5% a session for 30 sessions: the newest ten have followed most of it
    # (+2.7%: not past the threshold), the pin (its first three) has not (+15%, the whole CI past 5%).
    segment = [[1.005**i * level * v for v in SHAPE] for i, level in enumerate(LEVELS * 3)]
    candidate = [1.005**30 * v for v in SHAPE]
    recent = judge_history(Reference(level=segment[-10:], noise=[segment]), candidate, FIVE_PCT)
    assert recent.verdict != "regressed" and recent.change < 0.05
    reference = Reference(level=segment[-10:], noise=[segment], pin=segment[:3], pin_note="since 2026-11-01, 31 sessions")
    result = judge_history(reference, candidate, FIVE_PCT)
    assert result.verdict == "regressed"
    assert result.change == pytest.approx(0.15, abs=0.02) and result.ci_low > 0.05
    assert " since 2026-11-01, 31 sessions, 95% CI " in result.text
    assert result.text.endswith("> 5% threshold: regressed (drift: the whole 95% CI is past the threshold)")
    # without drift the pin changes nothing
    flat = [[level * v for v in SHAPE] for level in LEVELS * 3]
    pinned = Reference(level=flat[-10:], noise=[flat], pin=flat[:3], pin_note="since 2026-11-01, 31 sessions")
    assert judge_history(pinned, SHAPE, FIVE_PCT) == judge_history(Reference(level=flat[-10:], noise=[flat]), SHAPE,
                                                                   FIVE_PCT)


def _history() -> list[list[float]]:
    return [[level * v for v in SHAPE] for level in LEVELS]


def test_ci_by_hand():
    # Every session has the same shape, so its summary is log(level) + HL(log shape) and the candidate's
    # spread equals the pooled one: the variance is tau^2 (1 + 1/10), the df the cap 2*81/26 = 6.23,
    # its t quantile exact (2.43; rounded down to 6 df it would be 2.45).
    candidate = [1.08 * v for v in SHAPE]
    logs = [math.log(level) for level in LEVELS]
    tau2 = sum((b - a) ** 2 for a, b in zip(logs, logs[1:])) / 18
    delta = math.log(1.08) - statistics.fmean(logs)
    half = scipy_stats.t.ppf(0.975, 2 * 81 / 26) * math.sqrt(tau2 * 1.1)
    result = compare_history(_history(), candidate, FIVE_PCT)
    assert result.change == pytest.approx(math.expm1(delta), rel=1e-9)
    assert result.ci_low == pytest.approx(math.expm1(delta - half), rel=1e-9)
    assert result.ci_high == pytest.approx(math.expm1(delta + half), rel=1e-9)
    centre = hodges_lehmann([math.log(v) for v in SHAPE])
    assert result.baseline == pytest.approx(math.exp(statistics.fmean(logs) + centre))
    assert result.candidate == pytest.approx(1.08 * math.exp(centre))
    within = statistics.variance([math.log(v) for v in SHAPE]) / 5
    assert between_session_sd(_history()) == pytest.approx(math.sqrt(tau2 - within))


def test_text_says_it_is_against_history():
    result = compare_history(_history(), [1.08 * v for v in SHAPE], FIVE_PCT)
    sd = between_session_sd(_history())
    assert result.verdict == "regressed"
    assert f"{sd:.1%}" == "2.2%"
    assert result.text == ("joules_per_token 1.08 vs 1.003 (+7.7%, 95% CI +1.6%..+14.2%, over 10 history sessions, "
                           "between-session SD 2.2%) > 5% threshold: regressed")
    inconclusive = compare_history(_history(), [1.04 * v for v in SHAPE], FIVE_PCT)
    assert inconclusive.verdict == "inconclusive"
    assert inconclusive.text.endswith("within ±5% threshold: inconclusive (too noisy: the 95% CI includes no change)")


def test_unchanged_and_improved():
    assert compare_history(_history(), SHAPE, Threshold("joules_per_token", 0.10, True)).verdict == "unchanged"
    assert compare_history(_history(), [0.9 * v for v in SHAPE], FIVE_PCT).verdict == "improved"


def test_higher_is_better_flips_the_direction():
    slower = [0.9 * v for v in SHAPE]
    threshold = Threshold("tokens_per_second", 0.05, True)
    assert compare_history(_history(), slower, threshold, higher_is_better=True).verdict == "regressed"
    assert compare_history(_history(), slower, threshold).verdict == "improved"


def test_a_step_in_the_history_inflates_one_difference_only():
    # Half the history 10% higher (a driver update): successive differences see one jump of log(1.1),
    # the spread of the session summaries sees it in every session.
    history = [[level * v for v in SHAPE] for level in [1.0] * 5 + [1.1] * 5]
    within = statistics.variance([math.log(v) for v in SHAPE]) / 5
    sd = between_session_sd(history)
    assert sd == pytest.approx(math.sqrt(math.log(1.1) ** 2 / 18 - within))
    naive = statistics.stdev(math.log(statistics.fmean(session)) for session in history)
    assert sd < naive / 2
    assert sd < 0.025


def test_one_outlier_session_cannot_blind_the_noise_estimate():
    # 30 sessions at s = 2%, one of them +30% (a thermal event for a whole session): its two
    # successive differences are capped at 4 robust SDs, so it inflates the between-session SD
    # less than half as much as it would uncapped.
    rng = random.Random(12)
    clean = [_session(rng, s=0.02) for _ in range(30)]
    spiked = [list(session) for session in clean]
    spiked[15] = [1.3 * v for v in spiked[15]]
    sd_clean, sd_spiked = between_session_sd(clean), between_session_sd(spiked)
    plain = math.sqrt(_tau2(spiked) - _within(spiked))  # the uncapped estimate
    assert sd_spiked - sd_clean < (plain - sd_clean) / 2
    assert between_session_sd(clean) == pytest.approx(math.sqrt(_tau2(clean) - _within(clean)), rel=0.02)
    # young histories (under 10 differences) are not capped: the median of a few is no scale
    assert between_session_sd(clean[:6]) == pytest.approx(math.sqrt(max(0.0, _tau2(clean[:6]) - _within(clean[:6]))))


def _tau2(history: list[list[float]]) -> float:
    summaries = [hodges_lehmann([math.log(v) for v in session]) for session in history]
    return sum((b - a) ** 2 for a, b in zip(summaries, summaries[1:])) / (2 * (len(history) - 1))


def _within(history: list[list[float]]) -> float:
    logs = [[math.log(v) for v in session] for session in history]
    return statistics.fmean(statistics.variance(session) for session in logs) / 5


def test_between_session_sd_recovers_the_offset_sd():
    rng = random.Random(10)
    history = [_session(rng, s=0.02) for _ in range(400)]
    assert between_session_sd(history) == pytest.approx(0.02, abs=0.003)
    assert between_session_sd(history, robust=False) == pytest.approx(0.02, abs=0.003)


def test_between_session_sd_of_one_session_is_nan_and_needs_positive_values():
    assert math.isnan(between_session_sd([SHAPE]))
    with pytest.raises(ValueError, match="positive"):
        between_session_sd([SHAPE, [0.0, 1.0]])
    assert between_session_sd([[0.0, 1.0], [1.0, 2.0]], relative=False) >= 0


def test_a_throttled_repeat_barely_moves_the_robust_summary():
    history = _history()
    throttled = [list(session) for session in history]
    throttled[3][2] *= 1.15
    moved = compare_history(throttled, SHAPE, FIVE_PCT).baseline / compare_history(history, SHAPE, FIVE_PCT).baseline
    moved_mean = (compare_history(throttled, SHAPE, FIVE_PCT, robust=False).baseline
                  / compare_history(history, SHAPE, FIVE_PCT, robust=False).baseline)
    assert abs(moved - 1) < abs(moved_mean - 1) / 2


def test_a_noisier_candidate_widens_the_ci():
    steady = compare_history(_history(), [1.08 * v for v in SHAPE], FIVE_PCT)
    noisy_shape = [1.0, 1.06, 0.94, 1.03, 0.97]
    noisy = compare_history(_history(), [1.08 * v for v in noisy_shape], FIVE_PCT)
    assert noisy.ci_high - noisy.ci_low > steady.ci_high - steady.ci_low
    quiet = compare_history(_history(), [1.08 * v for v in [1.0, 1.002, 0.998, 1.001, 0.999]], FIVE_PCT)
    assert quiet.ci_high - quiet.ci_low == pytest.approx(steady.ci_high - steady.ci_low, rel=1e-3)


def test_single_candidate_repeat_uses_the_history_spread_and_says_so():
    result = compare_history(_history(), [1.12], FIVE_PCT)
    assert not math.isnan(result.ci_low)
    assert "single candidate repeat: its spread taken from the history" in result.text
    wider = compare_history(_history(), [1.12 * v for v in SHAPE], FIVE_PCT)
    assert result.ci_high - result.ci_low > wider.ci_high - wider.ci_low


def test_single_repeat_history_sessions():
    history = [[level] for level in LEVELS]
    result = compare_history(history, [1.2], FIVE_PCT)
    assert result.verdict in {"regressed", "inconclusive"}
    assert "over 10 history sessions" in result.text
    assert history_sensitivity(history, [1.2], FIVE_PCT).repeats_to_resolve is None


def test_absolute_threshold_works_on_raw_values():
    threshold = Threshold("joules_per_token", 0.05, False)
    result = compare_history(_history(), [v + 0.1 for v in SHAPE], threshold)
    assert result.change == pytest.approx(0.1 + statistics.median(SHAPE) - statistics.fmean(LEVELS) * 1.0, abs=0.01)
    assert result.verdict == "regressed"
    assert "J/token)" in result.text and "over 10 history sessions" in result.text


def test_nonpositive_values_with_a_relative_threshold_are_inconclusive():
    result = compare_history([[0.0, 1.0, 1.0], [1.0, 1.1, 0.9]], [1.0, 1.1], FIVE_PCT)
    assert result.verdict == "inconclusive"
    assert "positive values in every session" in result.text
    zero = compare_history([[0.0, 0.0], [0.0, 0.0]], [1.0, 1.1], FIVE_PCT)
    assert "relative change undefined" in zero.text


@pytest.mark.parametrize(("history", "candidate", "message"), [
    ([], [1.0], "no history sessions"),
    ([[1.0], []], [1.0], "no history session values"),
    ([[1.0]], [], "no candidate values"),
    ([[1.0, math.inf]], [1.0], "history session values must be finite"),
])
def test_invalid_input_is_rejected(history, candidate, message):
    with pytest.raises(ValueError, match=message):
        compare_history(history, candidate, FIVE_PCT)


def test_history_sensitivity_text_and_floor():
    result = history_sensitivity(_history(), [1.08 * v for v in SHAPE], FIVE_PCT)
    assert result.repeats == 5
    assert result.text.startswith(f"MDE {result.mde:.1%} at 5 repeats over 10 history sessions; ")
    assert result.mde > 0.05
    # Sessions 10% apart in turn: no number of repeats per session gets past that.
    jumpy = [[level * v for v in SHAPE] for level in [1.0, 1.1] * 5]
    floor = history_sensitivity(jumpy, SHAPE, FIVE_PCT)
    assert floor.repeats_to_resolve is None
    assert "no number of repeats per session would resolve the 5% threshold: between-session SD" in floor.text
    assert history_sensitivity([SHAPE], SHAPE, FIVE_PCT).repeats_to_resolve is None


def test_repeats_to_resolve_shrink_with_less_session_noise():
    steady = [[level * v for v in SHAPE] for level in [1.0, 1.002, 0.999, 1.001, 1.0, 0.998, 1.001, 1.0, 0.999, 1.0]]
    needed = history_sensitivity(steady, SHAPE, FIVE_PCT).repeats_to_resolve
    assert needed is not None and needed <= 10


def test_power_at_the_history_mde_is_about_80_percent():
    # MDE from the true noise (s = 2%, 3% CV, 5 repeats, 10 sessions); simulated power 79% (3,000 trials).
    tau2 = 0.02**2 + 0.03**2 / 5
    mde = minimum_detectable_effect(math.sqrt(tau2 * 1.1), 2 * 81 / 26, FIVE_PCT)
    power = _rates(11, 1000, s=0.02, shift=mde)[0]
    assert 0.70 <= power <= 0.90
