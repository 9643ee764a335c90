"""The regression gate over CI nights, through real pytest sessions: a 2-item suite of fixture tests
saved nightly with ``--llem-baseline auto --llem-save-baseline``, as README's CI job does on main.

Energy comes from the fake GPU of ``fake_meter`` (exactly JOULES per window); each window's tokens
carry seeded noise (a night's offset and each window's own), so J/token is exact and the nights
are the same on any machine, under any load. Item ``a`` regresses +25% and stays so until it is
accepted; item ``b`` creeps +1.5% a night.
"""

from __future__ import annotations

import json
import re

NIGHTLY = """\
import os
import random
import time

import pytest

NIGHT = int(os.environ["NIGHT"])
RNG = {item: random.Random(f"{NIGHT}/{item}") for item in "ab"}  # a re-run of a body draws fresh windows
OFFSET = {item: RNG[item].gauss(0, 0.01) for item in "ab"}  # tonight's conditions, per item


def tokens(item):
    level = float(os.environ["LEVEL_" + item.upper()]) * (1 + OFFSET[item]) * RNG[item].gauss(1, 0.01)
    return round(100_000 / level)  # 1 J per window over these tokens: J/token = level / 100000


@pytest.mark.llem(regression={"joules_per_token": "5%"}, source="nvml")
@pytest.mark.parametrize("item", ["a", "b"])
def test_serving(llem_energy, item):
    for _ in range(5):
        with llem_energy.window(sync=None) as window:
            time.sleep(0.12)  # longer than the 0.1 s the NVML meter needs
            window.tokens = tokens(item)
"""

A, B = "test_nightly.py::test_serving[a]", "test_nightly.py::test_serving[b]"


def test_a_regression_stays_red_until_accepted_and_creep_is_caught(pytester, fake_meter, monkeypatch):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_nightly=NIGHTLY)
    night = 0

    def run(level_a: float, level_b: float, *args: str):
        nonlocal night
        night += 1
        monkeypatch.setenv("NIGHT", str(night))
        monkeypatch.setenv("LEVEL_A", str(level_a))
        monkeypatch.setenv("LEVEL_B", str(level_b))
        return pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-save-baseline",
                                             "--llem-json=night.json", *args)

    def verdicts() -> dict[str, dict]:
        items = json.loads((pytester.path / "night.json").read_text())["items"]
        return {item["nodeid"]: item for item in items}

    for _ in range(4):  # a history of four green nights
        run(1.0, 1.0).assert_outcomes(passed=2)

    creep_red = None
    for creep_night in range(1, 5):  # a regresses +25% and is not fixed for four nights; b creeps +1.5% a night
        result = run(1.25, 1.015**creep_night)
        items = verdicts()
        assert items[A]["outcome"] == "failed", f"creep night {creep_night}: the unfixed regression went green"
        assert items[A]["regression"]["confirmation"] == "confirmed"
        result.stdout.fnmatch_lines(["*joules_per_token * vs * (+2?.?%, 95% CI *, over * history sessions*"
                                     "> 5% threshold: regressed*",
                                     "*confirmed on re-measurement: joules_per_token * (+2?.?%, 98.5% CI *: regressed*"])
        if items[B]["outcome"] == "failed" and creep_red is None:
            creep_red = creep_night
    assert re.search(r"baseline of 2 item\(s\) \(1 regressed, 1 (passed|regressed)\) saved to ", result.stdout.str())

    accepted = run(1.25, 1.015**5, "--llem-accept=test_nightly.py::test_serving[a]")
    items = verdicts()
    assert items[A]["outcome"] == "passed" and items[A]["regression"]["verdict"] == "accepted"
    assert items[A]["regression"]["lines"][0].startswith("accepted: new level +2")
    accepted.stdout.fnmatch_lines(["*1 item(s) accepted (--llem-accept)*"])
    saved = sorted((pytester.path / ".llem" / "baselines").glob("*/*.json"))[-1]
    assert json.loads(saved.read_text())["entries"][A]["status"] == "accepted"
    if items[B]["outcome"] == "failed" and creep_red is None:
        creep_red = 5

    for creep_night in range(6, 11):  # the night after the accept, a is green at its new level
        run(1.25, 1.015**creep_night, *(["--llem-html=report.html"] if creep_night == 10 else []))
        items = verdicts()
        assert items[A]["outcome"] == "passed", f"creep night {creep_night}: the accepted level is red"
        if items[B]["outcome"] == "failed" and creep_red is None:
            creep_red = creep_night
    assert creep_red is not None, "a +1.5%/night creep went 10 nights without a red"
    assert items[B]["outcome"] == "failed"  # ten nights in (+16%), it is red
    reasons = items[B]["regression"]["lines"]
    assert any(re.search(r"since 20\d\d-\d\d-\d\d, \d+ sessions|over \d+ history sessions", line) for line in reasons)

    history = items[A]["regression"]["history"]  # what the report draws: a's sessions, its step, its red nights
    assert [p["kind"] for p in history["points"]].count("regressed") == 4
    assert [p["kind"] for p in history["points"]].count("accepted") == 1 and len(history["pins"]) == 2
    page = (pytester.path / "report.html").read_text()
    assert page.count('data-kind="history"') == 2


SPIKE = """\
import os
import random
import time

import pytest

NIGHT = int(os.environ["NIGHT"])
RNG = random.Random(NIGHT)
BODY_RUNS = []


@pytest.mark.llem(regression={"joules_per_token": "5%"}, source="nvml")
def test_serving(llem_energy):
    BODY_RUNS.append(1)
    spike = 1.3 if os.environ.get("SPIKE") and len(BODY_RUNS) == 1 else 1.0  # only the first run of the body
    for _ in range(5):
        with llem_energy.window(sync=None) as window:
            time.sleep(0.12)
            window.tokens = round(100_000 / (spike * RNG.gauss(1, 0.01)))
"""


def test_a_spike_the_re_measurement_does_not_confirm_passes_and_usage_errors_name_the_option(
        pytester, fake_meter, monkeypatch):
    fake_meter(joules=1.0)
    pytester.makepyfile(test_spike=SPIKE)
    for night in range(1, 4):
        monkeypatch.setenv("NIGHT", str(night))
        pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline").assert_outcomes(passed=1)

    monkeypatch.setenv("NIGHT", "4")
    monkeypatch.setenv("SPIKE", "1")
    off = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-confirm=0")
    off.assert_outcomes(failed=1)  # without confirmation the spike fails the build
    assert "measuring it again" not in off.stderr.str()

    spiked = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-save-baseline",
                                           "--llem-json=night.json")
    spiked.assert_outcomes(passed=1)
    assert spiked.stderr.str().count("regressed: measuring it again to confirm (--llem-confirm)") == 1
    [record] = json.loads((pytester.path / "night.json").read_text())["items"]
    assert record["regression"]["verdict"] == "not confirmed"
    assert record["regression"]["changes"][0]["verdict"] == "regressed"  # the session's (first) measurement
    assert record["regression"]["again"][0]["verdict"] != "regressed"
    assert record["regression"]["lines"][1].startswith("not confirmed (noise): re-measured: joules_per_token ")
    assert "98.5% CI" in record["regression"]["lines"][1]
    spiked.stdout.fnmatch_lines(["*test_spike.py::test_serving *joules_per_token +3?.?% regressed, re-measured: "
                                 "joules_per_token * (not confirmed (noise))",
                                 "llem: 1 regressed item(s) measured again (--llem-confirm): 0 confirmed, "
                                 "1 not confirmed (noise)"])
    saved = sorted((pytester.path / ".llem" / "baselines").glob("*/*.json"))[-1]
    [entry] = json.loads(saved.read_text())["entries"].values()
    assert entry["status"] == "passed" and entry["repeats"][0]["joules_per_token"] > 1.2e-5  # the first measurement

    for args, message in ((["--llem-accept"], "--llem-accept needs --llem-save-baseline (without a PATH)"),
                          (["--llem-save-baseline", "--llem-accept", "test_spike.py"],
                           "--llem-accept took 'test_spike.py' as its PATTERN, and it is also a path pytest would run"),
                          (["--llem-save-baseline", "--llem-accept=spike and (", ],
                           "--llem-accept=spike and (: not a test id or a -k expression"),
                          (["--llem-confirm=-1"], "--llem-confirm '-1': expected a whole number of re-measurements")):
        refused = pytester.runpytest_subprocess(*args)
        assert refused.ret == 4, args  # pytest's usage error
        refused.stderr.fnmatch_lines([f"*{message}*"])
