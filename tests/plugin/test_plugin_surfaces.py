"""One truth on every surface: an item's verdict, the reason it could not be judged and the notes
it must be read with are worded once (report.explain) and said alike in the terminal summary,
JUnit properties, the markdown report and the --llem-json file; paths in those artefacts are
relative to the repository; and a session that passed --llem-save-baseline is never told to pass
it, but what it saves.

Measured on the fake GPU (``fake_meter``: exactly the fake's joules per window), so that the
verdicts are exact whatever the machine's load.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pytest_llem.baselines import reworded
from pytest_llem.settings import Settings
from tests.plugin.test_plugin_baseline import METERED

pytestmark = pytest.mark.slow

NOTE = "config changed since the baseline: max_input_tokens 32 -> 24"
NODEID = "llem_tiny.yaml::tiny"


def _properties(junit: str) -> list[tuple[str, str]]:
    case = ET.fromstring(junit).find(".//testcase")
    return [(p.get("name"), p.get("value")) for p in case.iter("property")]


def test_a_config_changed_baseline_miss_says_the_same_reason_and_notes_everywhere(pytester, write_llem, fake_meter):
    fake_meter(joules=1.0)
    llem_file = write_llem("llem_tiny.yaml", METERED)

    # the first session of a machine: nothing to compare with; it saves, so it is not told to
    first = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-save-baseline")
    first.assert_outcomes(passed=1, warnings=1)
    first.stdout.fnmatch_lines([
        f"  {NODEID}: not compared with the baseline: no baseline saved for this machine (cpu-*) under "
        ".llem/baselines; this session's measurement is saved to this machine's history (--llem-save-baseline)",
        "llem: baseline of 1 item(s) (1 passed) saved to .llem/baselines/cpu-*/*.json",
    ])
    assert "save one with" not in first.stdout.str()

    llem_file.write_text(llem_file.read_text().replace("max_input_tokens: 32", "max_input_tokens: 24"))
    second = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-baseline", "auto", "--llem-save-baseline",
                                           "--junitxml", "out/junit.xml", "--llem-markdown", "out/report.md",
                                           "--llem-json", "out/session.json", "--llem-html", "out/report.html")
    second.assert_outcomes(passed=1, warnings=1)
    terminal = second.stdout.str()
    junit = (pytester.path / "out" / "junit.xml").read_text()
    markdown = (pytester.path / "out" / "report.md").read_text()
    session = (pytester.path / "out" / "session.json").read_text()

    [item] = json.loads(session)["items"]
    said = item["said"]
    assert said["reason"].startswith("joules_per_token 0.003906 vs 0.003906 (+0.0%) within ±50% threshold: "
                                     "inconclusive (1 history session, between-session variation unknown)")
    assert ("this session is saved as one more (--llem-save-baseline), for a verdict in a later one; or measure an "
            "A/B (--llem-against)") in said["reason"]
    assert NOTE in said["notes"]
    assert said["verdict"].startswith("passed")

    # the terminal: the table's verdict, then the reason and every note
    second.stdout.re_match_lines([rf"{re.escape(NODEID)}\s.*\s{re.escape(said['verdict'])}\s+"
                                  r"joules_per_token \+0\.0% inconclusive$"])
    second.stdout.fnmatch_lines([f"  {NODEID}: {said['reason']}".replace("[", "[[]"),
                                 *(f"    note: {note}" for note in said["notes"])])
    # JUnit: the reason and each note as properties
    properties = _properties(junit)
    assert ("baseline_reason", said["reason"]) in properties
    assert [value for name, value in properties if name == "llem_note"] == said["notes"]
    # markdown: the table's verdict, and the reason and notes under "Against the baseline"
    assert f"| {said['verdict']} |" in markdown
    assert f"- `{NODEID}`: {said['reason']}" in markdown
    assert all(f"  - note: {note}" in markdown for note in said["notes"])

    # the HTML report: the same verdict in the item's outcome cell
    page = (pytester.path / "out" / "report.html").read_text()
    assert html.escape(said["verdict"], quote=False) in page

    said_in_junit = "\n".join(value for _, value in properties)  # unescaped
    for text in (terminal, said_in_junit, markdown, session):
        assert NOTE in text
        assert "save more sessions" not in text and "save one with" not in text
    # paths relative to the repository (here: the directory pytest ran in), no machine path
    for artefact in (junit, markdown, session, page):
        assert str(pytester.path) not in artefact and str(pytester.path.resolve()) not in artefact
    for artefact in (junit, markdown):  # the JSON's results keep the tiny model's path: their config
        assert str(pytester.path.parent) not in artefact
    assert item["root"] == "."
    assert item["regression"]["against"].startswith("this machine's history in .llem/baselines/cpu-")

    # llem compare reads the session file as llem report does, and says the same note
    first_saved = min((pytester.path / ".llem" / "baselines").glob("*/*.json"))  # names sort by time
    compared = subprocess.run([sys.executable, "-m", "llenergymeasure.cli", "compare", str(first_saved),
                               "out/session.json"], cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert compared.returncode == 0, compared.stderr
    assert re.search(rf"^{re.escape(NODEID)}\s+joules_per_token\s", compared.stdout, re.M), compared.stdout
    assert f"note: {NODEID}: {NOTE}" in compared.stdout.splitlines(), compared.stdout


def test_advice_to_save_a_baseline_becomes_what_this_session_saves():
    text = "no baseline saved for this machine (cpu-x) under .llem/baselines; save one with --llem-save-baseline"
    assert reworded(text, Settings()) == text  # nothing saved: the advice stands
    assert reworded(text, Settings(save_baseline="auto")).endswith(
        "; this session's measurement is saved to this machine's history (--llem-save-baseline)")
    to_file = reworded("the baseline has no entry for a.yaml::a; save a new one with --llem-save-baseline",
                       Settings(save_baseline="base.json"))
    assert to_file == ("the baseline has no entry for a.yaml::a; this session is saved to base.json "
                       "(--llem-save-baseline=PATH): compare with that file next time (--llem-baseline base.json), "
                       "or save to this machine's history (--llem-save-baseline, no PATH)")
    hint = "save more sessions (--llem-save-baseline) or measure an A/B (--llem-against)"
    assert reworded(hint, Settings(save_baseline="auto")) == (
        "this session is saved as one more (--llem-save-baseline), for a verdict in a later one; or measure an A/B "
        "(--llem-against)")


def test_a_verdict_names_the_doubts_of_its_number_and_never_cuts_them_off():
    from pytest_llem.report import explain, verdict

    record = {"nodeid": "a.yaml::a", "outcome": "passed", "warnings": ["persistence_off", "high_variance"],
              "energy_suspect": True}
    assert verdict(record) == "passed; doubtful: suspect, high_variance"  # persistence_off is said, not doubted
    assert explain(record).verdict == verdict(record)
    failed = {**record, "outcome": "failed", "error": "x" * 400}
    short = verdict(failed, width=80)
    assert len(short) == 80 and short.endswith("...; doubtful: suspect, high_variance")
    assert verdict({"nodeid": "b", "outcome": "skipped", "error": "no GPU", "warnings": ["high_variance"]}) == (
        "SKIPPED: no GPU")
