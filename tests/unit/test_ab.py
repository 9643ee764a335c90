"""Interleaved A/B: the ABBA schedule, the paired verdict, what cancels, and the error rates by
simulation (an offset per session, a linear drift per window, 3% noise per window)."""

from __future__ import annotations

import math
import re
import random
import subprocess
import sys

import pytest

from llenergymeasure.results.ab import (
    ab_sensitivity,
    abba_schedule,
    compare_ab,
    hodges_lehmann,
    paired_t_ci,
    session_schedule,
)
from llenergymeasure.results.compare import Threshold, compare_values

FIVE_PCT = Threshold("joules_per_token", 0.05, True)
NOISE = [1.01, 0.98, 1.02, 0.99, 1.00, 1.03, 0.97, 1.01, 0.99, 1.02,  # per window, session order
         0.98, 1.00, 1.02, 0.97, 1.01, 1.03, 0.99, 1.00, 0.98, 1.01]


def _session(pairs: int, *, change: float, offset: float = 1.0, drift: float = 0.0,
             noise: list[float] | None = None) -> tuple[list[float], list[float]]:
    """A and B values of one ABBA session: window i is offset x (1 + drift)^i x noise_i, times
    1 + change for B."""
    order = abba_schedule(pairs)
    noise = noise or [1.0] * len(order)
    values = [offset * (1 + drift) ** i * noise[i] * (1 + change if w == "B" else 1.0) for i, w in enumerate(order)]
    return [v for v, w in zip(values, order) if w == "A"], [v for v, w in zip(values, order) if w == "B"]


def _log_centre(result) -> float:
    return (math.log1p(result.ci_low) + math.log1p(result.ci_high)) / 2


# --- the schedule ------------------------------------------------------------------------------

def test_abba_schedule():
    assert abba_schedule(1) == ["A", "B"]
    assert abba_schedule(2) == list("ABBA")
    assert abba_schedule(4) == list("ABBAABBA")
    assert abba_schedule(5) == list("ABBAABBAAB")  # an odd count ends on an AB block


@pytest.mark.parametrize("pairs", [5, 10])
def test_abba_schedule_has_each_config_once_per_block(pairs):
    order = abba_schedule(pairs)
    assert order.count("A") == order.count("B") == pairs
    assert all(sorted(order[i:i + 2]) == ["A", "B"] for i in range(0, len(order), 2))


def test_abba_schedule_may_open_with_b():
    assert abba_schedule(5, "B") == list("BAABBAABBA")
    with pytest.raises(ValueError, match="first must be 'A' or 'B'"):
        abba_schedule(2, "C")


def test_a_session_opens_on_either_side_at_random_after_a_settling_pair():
    schedules = [session_schedule(5, seed) for seed in range(200)]
    assert {tuple(settled) for settled, _ in schedules} == {("A", "B"), ("B", "A")}
    firsts = [order[0] for _, order in schedules]
    assert 70 < firsts.count("A") < 130  # 200 fair draws
    for settled, order in schedules:
        assert len(order) == 10 and order[0] != settled[0]  # the measured windows continue the ABBA pattern
        assert settled + order == abba_schedule(6, settled[0])
    assert session_schedule(5, 7) == session_schedule(5, 7)  # seeded: a session can be replayed


def test_ab_sensitivity_names_the_mde_and_the_pairs_that_would_resolve():
    a, b = [1.0, 1.03, 0.97, 1.02, 0.98], [1.04, 1.0, 1.05, 1.01, 1.06]
    result = ab_sensitivity(a, b, FIVE_PCT)
    assert result.text == f"MDE {result.mde:.1%} at 5 pairs; ~{result.repeats_to_resolve} pairs would resolve the 5% threshold"
    assert result.mde > 0.05 and result.repeats_to_resolve > 5
    assert ab_sensitivity([1.0], [1.1], FIVE_PCT).text == "no MDE: measure 3 or more A/B pairs"


@pytest.mark.parametrize("pairs", [0, -1, 2.5, True, "5"])
def test_abba_schedule_rejects_a_bad_count(pairs):
    with pytest.raises(ValueError, match="pairs must be a whole number"):
        abba_schedule(pairs)


# --- the paired analysis -----------------------------------------------------------------------

def test_identical_windows_are_unchanged():
    a = [1.0, 1.02, 0.99, 1.01, 1.0]
    result = compare_ab(a, list(a), FIVE_PCT)
    assert (result.change, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    assert result.verdict == "unchanged"
    assert result.text == ("joules_per_token 1 vs 1 (+0.0%, 95% CI +0.0%..+0.0%, paired over 5 A/B pairs) "
                           "within ±5% threshold: unchanged")


def test_same_config_twice_with_noise_is_not_a_regression():
    a, b = _session(5, change=0.0, noise=NOISE)
    result = compare_ab(a, b, FIVE_PCT)
    assert result.verdict in ("unchanged", "inconclusive")
    assert result.ci_low < 0 < result.ci_high


def test_a_30_percent_regression():
    a, b = _session(5, change=0.30, noise=NOISE)
    result = compare_ab(a, b, FIVE_PCT)
    assert result.verdict == "regressed"
    assert result.change == pytest.approx(0.30, abs=0.02)
    assert result.ci_low > 0.05
    assert result.text.startswith(f"joules_per_token {result.candidate:.4g} vs {result.baseline:.4g} (+")
    assert result.text.endswith(", paired over 5 A/B pairs) > 5% threshold: regressed")
    assert (result.baseline, result.candidate) == (pytest.approx(sorted(a)[2]), pytest.approx(sorted(b)[2]))


def test_ci_is_the_paired_t_interval_on_the_log_ratios_and_the_point_is_hodges_lehmann():
    a, b = _session(5, change=0.07, noise=NOISE)
    diffs = [math.log(y / x) for x, y in zip(a, b)]
    mean = sum(diffs) / 5
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 4)
    result = compare_ab(a, b, FIVE_PCT)
    assert result.ci_low == pytest.approx(math.expm1(mean - 2.7764 * sd / math.sqrt(5)), abs=1e-5)  # t(4)
    assert result.ci_high == pytest.approx(math.expm1(mean + 2.7764 * sd / math.sqrt(5)), abs=1e-5)
    walsh = sorted((diffs[i] + diffs[j]) / 2 for i in range(5) for j in range(i, 5))
    assert result.change == pytest.approx(math.expm1(walsh[7]))  # the median of 15


def test_hodges_lehmann_and_paired_t_ci():
    assert hodges_lehmann([1.0]) == 1.0
    assert hodges_lehmann([0.0, 1.0, 2.0, 100.0]) == 1.75  # one wild value barely moves it
    low, high = paired_t_ci([1.0, 3.0])
    assert (low + high) / 2 == 2.0 and high - low == pytest.approx(2 * 12.7062, rel=1e-4)


def test_a_session_offset_cancels():
    a, b = _session(6, change=0.08, noise=NOISE)
    plain = compare_ab(a, b, FIVE_PCT)
    for offset in (0.5, 1.04, 3.0):
        shifted = compare_ab([v * offset for v in a], [v * offset for v in b], FIVE_PCT)
        assert shifted.change == pytest.approx(plain.change)
        assert (shifted.ci_low, shifted.ci_high) == (pytest.approx(plain.ci_low), pytest.approx(plain.ci_high))
        assert shifted.verdict == plain.verdict == "regressed"


@pytest.mark.parametrize("pairs", [2, 4, 6])
def test_a_linear_drift_cancels_exactly_over_abba_quads(pairs):
    """Without noise, every pair sees the change times (1 + drift) or divided by it, alternately:
    an even number of pairs recovers the change exactly, in the point estimate and the CI's centre."""
    a, b = _session(pairs, change=0.07, offset=1.04, drift=0.01)
    result = compare_ab(a, b, FIVE_PCT)
    assert result.change == pytest.approx(0.07, abs=1e-12)
    assert _log_centre(result) == pytest.approx(math.log(1.07), abs=1e-12)


def test_a_linear_drift_leaves_drift_over_pairs_with_an_odd_count():
    a, b = _session(5, change=0.07, drift=0.01)
    assert _log_centre(compare_ab(a, b, FIVE_PCT)) == pytest.approx(math.log(1.07) + math.log(1.01) / 5)


def test_drift_with_noise_moves_the_ci_centre_not_at_all():
    a, b = _session(6, change=0.10, noise=NOISE)
    drifting = _session(6, change=0.10, offset=1.04, drift=0.03, noise=NOISE)
    assert _log_centre(compare_ab(*drifting, FIVE_PCT)) == pytest.approx(_log_centre(compare_ab(a, b, FIVE_PCT)))


def test_pairing_keeps_a_verdict_that_drift_hides_from_welch():
    a, b = _session(6, change=0.10, offset=1.04, drift=0.03, noise=NOISE)
    assert compare_ab(a, b, FIVE_PCT).verdict == "regressed"
    assert compare_values(a, b, FIVE_PCT).verdict == "inconclusive"  # the drift is in both spreads


def test_improved_and_higher_is_better():
    a, b = _session(5, change=-0.20, noise=NOISE)
    assert compare_ab(a, b, FIVE_PCT).verdict == "improved"
    throughput = Threshold("tokens_per_second", 0.05, True)
    assert compare_ab(a, b, throughput, higher_is_better=True).verdict == "regressed"


def test_absolute_threshold_pairs_raw_differences():
    a, _ = _session(5, change=0.0, noise=NOISE)
    b = [v + 0.2 for v in a]
    result = compare_ab(a, b, Threshold("joules_per_token", 0.1, False))
    assert result.change == pytest.approx(0.2)
    assert result.ci_low == pytest.approx(0.2) and result.ci_high == pytest.approx(0.2)
    assert result.verdict == "regressed"
    assert "(+0.2, 95% CI +0.2..+0.2, paired over 5 A/B pairs) > 0.1 J/token threshold" in result.text


def test_an_explicit_order_is_checked_and_used():
    order = list("BAABBAAB")  # starts with BA: fine
    assert compare_ab([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], FIVE_PCT, order=order).verdict == "unchanged"


@pytest.mark.parametrize(("order", "message"), [
    (list("ABAB"), "2 A-B blocks and 0 B-A"),  # unbalanced: a drift would be read as a change
    (list("BABABA"), "0 A-B blocks and 3 B-A"),
    (list("AABB"), "block 1 is \\['A', 'A'\\]"),
    (list("ABBAX") + ["B"], "block 3"),
    (list("ABB"), "order has 3 windows"),
])
def test_a_bad_order_is_rejected(order, message):
    pairs = len(order) // 2 if len(order) % 2 == 0 else 2
    with pytest.raises(ValueError, match=message):
        compare_ab([1.0] * pairs, [1.0] * pairs, FIVE_PCT, order=order)


def test_unequal_counts_and_bad_values_are_rejected():
    with pytest.raises(ValueError, match="as many A windows as B windows"):
        compare_ab([1.0, 1.0], [1.0], FIVE_PCT)
    with pytest.raises(ValueError, match="no A values"):
        compare_ab([], [], FIVE_PCT)
    with pytest.raises(ValueError, match="B values must be finite"):
        compare_ab([1.0], [math.nan], FIVE_PCT)


def test_a_single_pair_shows_the_change_but_gives_no_verdict():
    result = compare_ab([1.0], [1.2], FIVE_PCT)
    assert result.verdict == "inconclusive" and math.isnan(result.ci_low)
    assert result.text == ("joules_per_token 1.2 vs 1 (+20.0%, single A/B pair: no noise estimate) > 5% threshold: "
                           "inconclusive (measure 3 or more A/B pairs for a verdict)")


def test_nonpositive_values_give_no_relative_verdict():
    assert "median of A is 0" in compare_ab([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], FIVE_PCT).text
    result = compare_ab([1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], FIVE_PCT)
    assert result.verdict == "inconclusive" and "positive values" in result.text


def test_importing_ab_does_not_import_torch():
    code = "import sys, llenergymeasure.results.ab; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- error rates (benchmarks/compare_ab.py has the full table) ---------------------------------

def _rates(seed: int, *, pairs: int, change: float, trials: int) -> tuple[float, float]:
    """Share of sessions called "regressed", and share whose CI contains the true change: CV 3% per
    window, session offset N(0, 4%), drift +1% per window."""
    rng = random.Random(seed)
    order = abba_schedule(pairs)
    regressed = covered = 0
    for _ in range(trials):
        offset = 1 + rng.gauss(0, 0.04)
        values = [offset * (1 + 0.01 * i) * (1 + change if w == "B" else 1.0) * (1 + rng.gauss(0, 0.03))
                  for i, w in enumerate(order)]
        a = [v for v, w in zip(values, order) if w == "A"]
        b = [v for v, w in zip(values, order) if w == "B"]
        result = compare_ab(a, b, FIVE_PCT, order=order)
        regressed += result.verdict == "regressed"
        covered += result.ci_low <= change <= result.ci_high
    return regressed / trials, covered / trials


@pytest.mark.parametrize("pairs", [5, 10])
def test_false_alarms_at_most_2_percent_and_the_ci_covers(pairs):
    # Expected ~0.4% (5 pairs) and ~0% (10): 2,000 trials put 2% many standard errors away.
    false_alarms, coverage = _rates(10 + pairs, pairs=pairs, change=0.0, trials=2000)
    assert false_alarms <= 0.02
    assert 0.93 <= coverage <= 0.975  # expected ~95.4%; standard error 0.5%


@pytest.mark.parametrize(("pairs", "target"), [(5, 0.90), (10, 0.95)])
def test_a_true_10_percent_regression_is_caught(pairs, target):
    # Expected ~95% (5 pairs, standard error 0.5% at 2,000 trials) and ~100% (10).
    detected, _ = _rates(20 + pairs, pairs=pairs, change=0.10, trials=2000)
    assert detected >= target


def test_a_pair_with_an_unmeasured_window_is_left_out_and_the_design_stays_balanced():
    from llenergymeasure.core.ab import complete_pairs

    order = abba_schedule(4)  # A B | B A | A B | B A
    a, b, kept = complete_pairs([1.0, None, 1.0, 1.0], [1.1, 1.1, 1.1, None], order)
    assert (a, b, kept) == ([1.0, 1.0], [1.1, 1.1], ["A", "B", "A", "B"])


def test_an_inconclusive_ab_says_what_would_resolve_it():
    from llenergymeasure.core.ab import AbRun, judge_ab
    from result_builders import make_repeat, make_result

    def side(energies: list[float]):
        return make_result([make_repeat(i, energy_j=e) for i, e in enumerate(energies)])

    run = AbRun(side([10.0, 10.4, 9.7, 10.2, 9.9]), side([10.6, 10.1, 10.9, 10.3, 10.8]),
                order=abba_schedule(5, "B"), settled=["A", "B"], seed=7)
    check = judge_ab(run, [FIVE_PCT])
    [comparison] = check.comparisons
    assert comparison.verdict == "inconclusive"
    [hint] = check.hints
    assert re.fullmatch(r"joules_per_token: MDE \d+\.\d% at 5 pairs; ~\d+ pairs would resolve the 5% threshold", hint)
    assert "windows B A A B B A A B B A after an unmeasured settling pair A B (order seed 7)" in check.notes
