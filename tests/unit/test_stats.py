"""Spread over repeats (median, IQR, CV, 95% CI) and the percentile used everywhere."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from llenergymeasure.results.metrics import percentile
from llenergymeasure.results.stats import summarize


def test_summarize_five_values():
    s = summarize([5.0, 1.0, 4.0, 2.0, 3.0])
    assert s.n == 5
    assert s.median == 3.0
    assert s.mean == 3.0
    assert s.std == pytest.approx(math.sqrt(2.5))  # sample standard deviation
    assert s.iqr == pytest.approx(2.0)  # 4 - 2
    assert s.cv == pytest.approx(math.sqrt(2.5) / 3.0)
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, df=4)
    assert s.ci95_low == pytest.approx(3.0 - half, rel=1e-6)
    assert s.ci95_high == pytest.approx(3.0 + half, rel=1e-6)


@pytest.mark.parametrize("values", [[1.0, 2.0], [10.0, 10.5, 11.0], [0.41, 0.43, 0.40, 0.47, 0.39, 0.44],
                                    [100.0 + i * 0.1 for i in range(12)]])
def test_ci_contains_the_mean_and_median_matches(values):
    s = summarize(values)
    assert s.ci95_low < s.mean < s.ci95_high
    assert s.median == statistics.median(values)
    assert s.mean == pytest.approx(statistics.fmean(values))
    uncut = summarize(values, floor=None)  # symmetric about the mean; the default cuts it at 0
    assert uncut.ci95_high - uncut.mean == pytest.approx(uncut.mean - uncut.ci95_low)
    assert (s.ci95_low, s.ci95_high) == (max(0.0, uncut.ci95_low), uncut.ci95_high)


@pytest.mark.parametrize("values", [[1.0, 2.0], [0.0, 1.0, 0.0], [0.5, 0.01, 2.0]])
def test_ci_of_a_quantity_that_cannot_be_negative_never_goes_below_zero(values):
    """Few noisy repeats of energy or tokens/s: the t interval would reach below 0."""
    assert summarize(values, floor=None).ci95_low < 0
    s = summarize(values)
    assert s.ci95_low == 0.0 and s.ci95_high > s.mean


def test_ci_of_values_below_the_floor_is_not_cut():
    s = summarize([-3.0, -1.0, -2.0])
    assert s.ci95_low < -2.0 < s.ci95_high


def test_iqr_matches_numpy():
    values = [3.0, 7.0, 1.0, 9.0, 4.0, 4.5, 8.0]
    expected = np.percentile(values, 75) - np.percentile(values, 25)
    assert summarize(values).iqr == pytest.approx(expected)


def test_identical_values_have_zero_spread():
    s = summarize([2.0, 2.0, 2.0])
    assert (s.std, s.iqr, s.cv, s.ci95_low, s.ci95_high) == (0.0, 0.0, 0.0, 2.0, 2.0)


def test_single_value():
    s = summarize([7.5])
    assert (s.n, s.median, s.mean, s.std, s.iqr) == (1, 7.5, 7.5, 0.0, 0.0)
    assert s.ci95_low == s.ci95_high == 7.5


def test_cv_is_none_when_the_mean_is_zero():
    assert summarize([-1.0, 1.0]).cv is None


def test_ci_narrows_with_more_repeats_of_the_same_spread():
    few = summarize([1.0, 2.0, 3.0])
    many = summarize([1.0, 2.0, 3.0] * 5)
    assert (many.ci95_high - many.ci95_low) < (few.ci95_high - few.ci95_low)


# Two-sided 95% Student t quantiles (reference values).
T95 = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 11: 2.201, 14: 2.145, 29: 2.045, 39: 2.023, 59: 2.001}


@pytest.mark.parametrize("df", [1, 2, 4, 9, 11, 14, 29])
def test_ci_uses_a_t_quantile_at_least_as_wide_as_the_exact_one(df):
    values = [float(i % 2) for i in range(df + 1)]  # alternating 0, 1
    s = summarize(values)
    half = s.ci95_high - s.mean  # the upper side: never cut at 0
    t_used = half / (s.std / math.sqrt(s.n))
    assert t_used >= T95[df] - 1e-3
    assert t_used <= T95[df] * 1.05  # and not absurdly conservative


@pytest.mark.parametrize("df", [39, 59])
def test_ci_beyond_the_t_table_is_not_too_narrow(df):
    values = [float(i % 2) for i in range(df + 1)]
    s = summarize(values)
    half = s.ci95_high - s.mean  # the upper side: never cut at 0
    assert half / (s.std / math.sqrt(s.n)) >= T95[df] - 1e-3


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (31, 2.040), (60, 2.000), (120, 1.980)],
)
def test_t_quantile_matches_reference_values(df, expected):
    values = [float(i % 2) for i in range(df + 1)]
    s = summarize(values)
    half = s.ci95_high - s.mean  # the upper side: never cut at 0
    assert half / (s.std / math.sqrt(s.n)) == pytest.approx(expected, abs=1e-3)


# --- percentile ----------------------------------------------------------------------------------


ARRAYS = [
    [1.0],
    [2.0, 1.0],
    [1.0, 2.0, 3.0, 4.0],
    [0.5, 0.1, 0.9, 0.3, 0.7],
    [5.0, 5.0, 1.0, 1.0, 3.0, 9.0],
    [random.Random(3).uniform(0, 100) for _ in range(37)],
]


@pytest.mark.parametrize("values", ARRAYS, ids=lambda v: f"n{len(v)}")
@pytest.mark.parametrize("q", [0, 5, 25, 50, 75, 90, 95, 99, 100])
def test_percentile_matches_numpy_linear(values, q):
    expected = float(np.percentile(values, q, method="linear"))
    assert percentile(values, q) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_percentile_does_not_reorder_its_input():
    values = [3.0, 1.0, 2.0]
    percentile(values, 50)
    assert values == [3.0, 1.0, 2.0]


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None
