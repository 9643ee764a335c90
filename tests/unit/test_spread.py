"""Warnings from one run's repeats: too noisy for a 5% gate, and a first repeat unlike the rest."""

from __future__ import annotations

from llenergymeasure.results.spread import spread_warnings


def codes(values):
    return [code for code, _ in spread_warnings(values)]


def test_steady_repeats_say_nothing():
    assert spread_warnings([1.00, 1.01, 0.99, 1.00, 1.02]) == []
    assert spread_warnings([1.0]) == [] and spread_warnings([1.0, 1.0, 1.0]) == []


def test_repeats_too_noisy_for_a_5_percent_gate_say_what_would_resolve_it():
    [(code, message)] = spread_warnings([1.0, 1.15, 0.9, 1.1, 0.95])
    assert code == "high_variance"
    assert message.startswith("joules_per_token varies by CV 10.2% over 5 repeats: against a 5% gate, MDE 23.0% at 5 repeats; ")
    assert "repeats per side would resolve the 5% threshold" in message


def test_a_first_repeat_far_from_the_steady_others_is_flagged():
    assert codes([1.30, 1.00, 1.01, 0.99, 1.00]) == ["high_variance", "first_repeat_outlier"]
    assert "repeat 1 is +30% from the median of the other repeats" in spread_warnings([1.3, 1.0, 1.01, 0.99, 1.0])[1][1]
    assert "first_repeat_outlier" not in codes([1.03, 1.00, 1.01, 0.99, 1.00])  # within the 5% floor
