"""The ``llem_energy`` fixture and the ``llem`` marker, through real pytest sessions.

A test measures a real tiny-model generate loop with the fixture (on the CPU estimate here) and a
marker gate fails it with the gate's one-line diff; fixture tests enter JUnit, the session table,
the JSON report and baselines like benchmark-file items. Verdicts against a baseline are measured
on the fake GPU of ``fake_meter`` (exactly JOULES per window), so they cannot depend on the load.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

GENERATE = """\
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL = {model!r}
NEW = 16


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(MODEL), AutoTokenizer.from_pretrained(MODEL)


def test_generate(llem_energy, model):
    lm, tokenizer = model
    inputs = tokenizer(["the energy of a token"] * 2, return_tensors="pt")
    out = llem_energy(lm.generate, **inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False,
                      pad_token_id=tokenizer.eos_token_id, tokens=lambda out: out.shape[0] * NEW, repeats=2)
    assert out.shape == (2, inputs["input_ids"].shape[1] + NEW)


@pytest.mark.llem(expect={{"joules_per_token": {{"max": 1e-12}}}})
def test_gated(llem_energy, model):
    lm, tokenizer = model
    inputs = tokenizer(["the energy of a token"] * 2, return_tensors="pt")
    with llem_energy.window() as window:
        lm.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False,
                    pad_token_id=tokenizer.eos_token_id)
        window.tokens = 2 * NEW
"""


def _properties(junit) -> dict[str, dict[str, str]]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}


def test_a_generate_loop_is_measured_and_a_marker_gate_fails_it(pytester, tiny_model):
    pytester.makepyfile(test_energy=GENERATE.format(model=str(tiny_model)))
    result = pytester.runpytest_subprocess("--junitxml=junit.xml", "--llem-json=session.json")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_gated _*",
        "joules_per_token * > max 1e-12 (+*%)",
        "energy: cpu_estimate (estimated, not measured)",
        "*llem results*",
        "test_energy.py::test_generate * (est.)*cpu_estimate*passed*",  # "; doubtful: high_variance" on a busy machine
        "test_energy.py::test_gated * (est.)*cpu_estimate*FAIL: joules_per_token * > max 1e-12*",
    ])
    assert "Traceback" not in result.stdout.str()
    properties = _properties(pytester.path / "junit.xml")
    for test in ("test_generate", "test_gated"):
        assert float(properties[test]["joules_per_token"]) > 0
        assert properties[test]["energy_source"] == "cpu_estimate"
    items = {item["nodeid"]: item for item in json.loads((pytester.path / "session.json").read_text())["items"]}
    generate = items["test_energy.py::test_generate"]
    assert generate["outcome"] == "passed" and generate["estimated"] is True
    assert len(generate["result"]["repeats"]) == 2  # repeats=2
    assert generate["result"]["output_tokens"] == 2 * 16
    assert items["test_energy.py::test_gated"]["outcome"] == "failed"


METERED = """\
import os
import time

import pytest


@pytest.mark.llem(regression={"joules_per_token": "10%"}, source="nvml")
def test_window(llem_energy):
    tokens = int(os.environ["TOKENS"])
    for _ in range(3):
        with llem_energy.window(sync=None) as window:
            time.sleep(0.15)  # longer than the 0.1 s the NVML meter needs
            window.tokens = tokens


def test_call(llem_energy):
    llem_energy(time.sleep, 0.15, tokens=int(os.environ["TOKENS"]), warmup=0)
"""


def test_fixture_tests_save_a_baseline_and_are_judged_against_it(pytester, fake_meter, monkeypatch):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_metered=METERED)
    monkeypatch.setenv("TOKENS", "100")
    saved = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline")
    saved.assert_outcomes(passed=2)
    [path] = (pytester.path / ".llem" / "baselines").glob("*/*.json")
    entries = json.loads(path.read_text())["entries"]
    assert {entry["status"] for entry in entries.values()} == {"passed"}
    assert set(entries) == {"test_metered.py::test_window", "test_metered.py::test_call"}
    assert len(entries["test_metered.py::test_call"]["repeats"]) == 5  # saving a baseline: enough repeats

    pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline").assert_outcomes(passed=2)
    same = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto")
    same.assert_outcomes(passed=2)
    same.stdout.fnmatch_lines(["test_metered.py::test_window *0.01 *passed*joules_per_token +0.0% unchanged"])

    monkeypatch.setenv("TOKENS", "50")  # the same joules over half the tokens: +100% J/token
    worse = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto")
    assert worse.ret == 1
    worse.assert_outcomes(failed=2)
    worse.stdout.fnmatch_lines(["*joules_per_token 0.02 vs 0.01 (+100.0%*) > 10% threshold: regressed*",
                                "*confirmed on re-measurement: joules_per_token 0.02 vs 0.01 (+100.0%, 98.5% CI*"])
    assert worse.stderr.str().count("regressed: measuring it again to confirm (--llem-confirm)") == 2


def test_a_dry_run_skips_the_measurement_and_says_so_but_checks_the_marker(pytester):
    pytester.makepyfile(test_dry="""
        import pytest

        def test_measured(llem_energy):
            raise AssertionError("a dry run must not run the measured code")

        @pytest.mark.llem(expect={"joules_per_tokn": {"max": 0.5}})
        def test_typo(llem_energy):
            pass
    """)
    result = pytester.runpytest("--llem-dry-run")
    result.assert_outcomes(skipped=1, errors=1)
    result.stdout.fnmatch_lines([
        "*test_dry.py::test_typo: @pytest.mark.llem(expect.joules_per_tokn): unknown metric "
        "'expect.joules_per_tokn'; did you mean 'joules_per_token'?*",
        "*llem dry run*",
        "test_dry.py::test_measured*SKIPPED: llem dry run: the energy of this test is measured only without "
        "--llem-dry-run*",
    ])


def test_a_test_that_measures_nothing_or_counts_no_tokens_fails_saying_what_to_do(pytester):
    pytester.makepyfile(test_misuse="""
        import pytest

        def test_nothing(llem_energy):
            pass

        def test_no_tokens(llem_energy):
            with llem_energy.window(sync=None):
                sum(range(1000))

        def test_bad_tokens(llem_energy):
            llem_energy(sum, range(10), tokens="many")

        @pytest.mark.llem(expect={"joules_per_token": {"max": 0.5}})
        def test_gate_without_fixture():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=3, errors=1)
    result.stdout.fnmatch_lines_random([
        "*the test used llem_energy but measured nothing: call llem_energy(fn, ..., tokens=N) or use "
        "llem_energy.window()*",
        "*test_no_tokens: llem_energy.window(): set window.tokens to the number of tokens generated inside "
        "the with block*",
        "*llem_energy: tokens must be a whole number of generated tokens, 0 or more (got 'many')*",
        "*test_gate_without_fixture: @pytest.mark.llem sets energy gates, but the test does not measure: add the "
        "llem_energy fixture to its arguments*",
    ])


def test_xdist_pins_a_gpu_per_worker_for_fixture_tests(pytester, fake_gpus):
    uuids = fake_gpus(count=2)
    pytester.makepyfile(test_pinned="""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_uses(n, llem_energy):
            pass  # pinned at worker start; measuring is not needed to show it
    """)
    pytester.runpytest_subprocess("-p", "fakegpus", "-n", "2", "--llem-dry-run")
    pinned = {p.stem: p.read_text() for p in pytester.path.glob("gw*.cvd")}
    assert pinned, "no worker ran an item"
    for worker, visible in pinned.items():
        assert visible == uuids[int(worker[2:])]
