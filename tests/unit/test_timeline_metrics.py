"""Prefill and decode energy as metrics: derived from one window and its prefill window, in the one
metric table, gated and shown like the others, None (with the reason) where not measured."""

from __future__ import annotations

import statistics

import pytest

from llenergymeasure.cli.display import print_result
from llenergymeasure.config.benchmark_file import Bound
from llenergymeasure.results.compare import Threshold
from llenergymeasure.results.gates import check_expect
from llenergymeasure.results.metrics import ENERGY_METRICS, METRICS, PHASE_METRICS, compute_metrics
from llenergymeasure.results.model import MeasurementWarning, RepeatResult
from tests.unit.result_builders import make_result

PHASES = ("prefill_energy_j", "decode_energy_j", "prefill_joules_per_input_token", "decode_joules_per_token")


def window(energy_j, prefill_energy_j, *, index=0, output_tokens=80, n_prompts=8, input_tokens=400):
    metrics = compute_metrics(duration_s=2.0, output_tokens=output_tokens, n_prompts=n_prompts, latencies_s=[1.0],
                              ttfts_s=[0.1], energy_j=energy_j, gpu_energy_j=energy_j, input_tokens=input_tokens,
                              prefill_energy_j=prefill_energy_j)
    return RepeatResult(index=index, n_prompts=n_prompts, input_tokens=input_tokens, output_tokens=output_tokens,
                        latencies_s=[1.0], ttfts_s=[0.1], metrics=metrics)


def test_the_four_metrics_are_in_the_one_table_as_energy_metrics():
    assert set(PHASES) == PHASE_METRICS <= ENERGY_METRICS
    assert {name: METRICS[name][:2] for name in PHASES} == {
        "prefill_energy_j": ("J", "lower"), "decode_energy_j": ("J", "lower"),
        "prefill_joules_per_input_token": ("J/token", "lower"), "decode_joules_per_token": ("J/token", "lower")}
    assert Threshold.parse("decode_joules_per_token:5%").relative


def test_decode_is_the_window_minus_its_prefill_and_the_first_tokens_are_the_prefills():
    m = window(100.0, 12.5).metrics
    assert (m.prefill_energy_j, m.decode_energy_j) == (12.5, 87.5)
    assert m.prefill_joules_per_input_token == 12.5 / 400
    assert m.decode_joules_per_token == 87.5 / (80 - 8)  # each prompt's first token came from the prefill


@pytest.mark.parametrize(("energy_j", "prefill_j", "output_tokens"), [
    (None, 1.0, 80),    # the window measured nothing
    (100.0, None, 80),  # no prefill window (a server backend) or it measured nothing
    (1.0, 2.0, 80),     # a prefill above its window: below what the meter resolves
])
def test_no_phase_energy_without_both_windows_or_from_an_unresolved_difference(energy_j, prefill_j, output_tokens):
    m = window(energy_j, prefill_j, output_tokens=output_tokens).metrics
    assert [getattr(m, name) for name in PHASES] == [None] * 4


def test_one_token_per_prompt_has_a_decode_energy_but_no_decoded_token():
    m = window(10.0, 9.0, output_tokens=8, n_prompts=8).metrics
    assert m.decode_energy_j == pytest.approx(1.0) and m.decode_joules_per_token is None
    result = make_result([window(10.0, 9.0, output_tokens=8, n_prompts=8)], config={"backend": "pytorch"})
    assert check_expect(result, {"decode_joules_per_token": Bound(max=1.0)})[0].text == (
        "decode_joules_per_token not measured (no token was decoded after each prompt's first (max_output_tokens is 1))")


def test_headline_medians_add_up_within_the_spread_of_the_repeats():
    repeats = [window(100.0, 10.0, index=0), window(104.0, 13.0, index=1), window(98.0, 11.0, index=2)]
    m = make_result(repeats).metrics
    assert (m.energy_j, m.prefill_energy_j, m.decode_energy_j) == (100.0, 11.0, 90.0)
    gap = abs(m.prefill_energy_j + m.decode_energy_j - m.energy_j)
    spread = sum(max(values) - min(values) for values in
                 ([r.metrics.prefill_energy_j for r in repeats], [r.metrics.decode_energy_j for r in repeats]))
    assert 0 < gap <= spread  # docs/measurements.md: exact per repeat, within the repeats' range for medians
    assert statistics.median(r.metrics.energy_j for r in repeats) == m.energy_j


def test_a_gate_on_phase_energy_says_why_it_was_not_measured():
    server = make_result([window(100.0, None)], config={"backend": "openai"})
    [verdict] = check_expect(server, {"prefill_energy_j": Bound(max=50.0)})
    assert not verdict.passed
    assert verdict.text == "prefill_energy_j not measured (the openai backend does not measure prefill and decode apart)"

    nothing = make_result([window(None, None)], config={"backend": "pytorch"},
                          energy_unavailable_reason="energy.source is 'none'")
    assert check_expect(nothing, {"decode_energy_j": Bound(max=1.0)})[0].text == (
        "decode_energy_j not measured (energy.source is 'none')")

    note = "prefill and decode energy not measured in the prefill window after repeat 1: too short"
    unresolved = make_result([window(100.0, None)], config={"backend": "pytorch"},
                             measurement_warnings=[MeasurementWarning(code="prefill_unmeasured", message=note)])
    assert check_expect(unresolved, {"decode_energy_j": Bound(max=1.0)})[0].text == f"decode_energy_j not measured ({note})"

    measured = make_result([window(100.0, 12.5)])
    assert check_expect(measured, {"decode_joules_per_token": Bound(max=2.0)})[0].passed
    suspect = measured.model_copy(update={"energy_suspect": True})
    assert not check_expect(suspect, {"prefill_energy_j": Bound(max=50.0)})[0].passed


def test_the_summary_shows_prefill_and_decode_with_their_joules_per_token(capsys):
    print_result(make_result([window(100.0, 12.5)], estimated=True), [], None)
    lines = [line for line in capsys.readouterr().out.splitlines() if "prefill / decode" in line]
    assert lines == ["  prefill / decode    12.5 J (0.03125 J/input token) / 87.5 J (1.215 J/token) (estimated)"]


def test_the_summary_has_no_prefill_line_when_nothing_was_measured_apart(capsys):
    print_result(make_result([window(100.0, None)]), [], None)
    assert "prefill / decode" not in capsys.readouterr().out
