"""What the plugin writes, and that nothing it writes loses or replaces anything.

``--llem-save-baseline`` never takes a benchmark file, a test path or a directory as its PATH
(the space form would swallow the next argument and overwrite it), nor an existing file; only
items that passed with measured, undoubted energy enter a baseline, and the summary says how
many were left out and why; an output path that cannot be written is refused before anything
runs, and an output that still cannot be written at the end fails the session.
"""

from __future__ import annotations

import json

import pytest

from tests.plugin.test_plugin_run import TINY as RUN

TINY = "model: MODEL\ndataset: builtin\nn: 2\nprecision: fp32\n"


@pytest.mark.parametrize(("args", "why"), [
    (["--llem-save-baseline", "llem_x.yaml"], "is a benchmark file"),
    (["--llem-save-baseline=llem_x.yaml"], "is a benchmark file"),
    (["--llem-save-baseline", "llem_x.yaml::x"], "is a test id"),
    (["--llem-save-baseline", "benchmarks"], "is a directory"),
    (["--llem-save-baseline", "test_plain.py"], "is a .py file, and a baseline is JSON"),
    (["--llem-save-baseline=old.json"], "already exists, and a baseline never overwrites a file"),
])
def test_save_baseline_never_takes_a_test_path_or_an_existing_file(pytester, write_llem, args, why):
    benchmark = write_llem("llem_x.yaml", TINY)
    write_llem("benchmarks/llem_y.yaml", TINY)
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    (pytester.path / "old.json").write_text("{}")
    before = {path: path.read_bytes() for path in (benchmark, pytester.path / "test_plain.py", pytester.path / "old.json")}

    result = pytester.runpytest(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    value = args[-1].split("=", 1)[-1]
    result.stderr.fnmatch_lines([f"ERROR: --llem-save-baseline took {value!r} as its PATH, but it {why}. "
                                 "Write an explicit PATH as --llem-save-baseline=PATH.json (a new file), or put the "
                                 "bare flag after the test paths (pytest benchmarks/ --llem-save-baseline)*"])
    assert {path: path.read_bytes() for path in before} == before  # byte for byte
    assert not (pytester.path / ".llem").exists()


def test_save_baseline_in_a_dry_run_is_a_usage_error(pytester, write_llem):
    write_llem("llem_x.yaml", TINY)
    result = pytester.runpytest("llem_x.yaml", "--llem-dry-run", "--llem-save-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --llem-save-baseline with --llem-dry-run: a dry run measures nothing*"])


@pytest.mark.parametrize(("args", "message"), [
    (["--llem-json", "afile/session.json"], "--llem-json afile/session.json: afile is a file, not a directory"),
    (["--llem-markdown", "adir"], "--llem-markdown adir: is a directory; give a file path"),
    (["--llem-save-baseline=adir/sub/base.json"], None),  # a directory to be created: fine
    (["--llem-save-baseline"], "--llem-save-baseline (to .llem/baselines under the rootdir): */.llem/baselines "
                               "cannot be created: */.llem is a file, not a directory"),
    (["--llem-output", "afile"], "--llem-output (ini llem_output) afile: afile is a file, not a directory"),
    (["--llem-output", "afile/results"],
     "--llem-output (ini llem_output) afile/results: afile/results cannot be created: afile is a file, not a directory"),
])
def test_an_output_that_cannot_be_written_is_refused_before_anything_runs(pytester, write_llem, args, message):
    write_llem("llem_x.yaml", TINY)
    (pytester.path / "afile").write_text("")
    (pytester.path / "adir").mkdir()
    (pytester.path / ".llem").write_text("")
    result = pytester.runpytest("--co", *args)
    if message is None:
        assert result.ret == pytest.ExitCode.OK
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_an_output_that_fails_at_the_end_fails_the_session_and_the_others_are_written(pytester, write_llem):
    write_llem("llem_x.yaml", TINY)
    # Takes the name of the JSON report's directory while the session runs.
    pytester.makepyfile(test_block="from pathlib import Path\n\ndef test_block():\n    Path('out').write_text('')\n")
    result = pytester.runpytest("--llem-dry-run", "--llem-json", "out/session.json", "--llem-markdown", "report.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "llem: could not write --llem-json out/session.json: *",
        "llem: markdown report written to report.md",
        "llem: the session fails (exit 1): --llem-json out/session.json asked for and not written",
    ])
    assert (pytester.path / "report.md").is_file()


def test_a_baseline_with_nothing_to_save_fails_the_session(pytester, write_llem):
    write_llem("llem_gpu.yaml", RUN + "pytorch: {device: cuda}\n")
    result = pytester.runpytest("--llem-save-baseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "llem: 1 item(s) left out of the baseline: 1 skipped",
        "llem: could not write --llem-save-baseline: no item was measured with energy, so there is nothing "
        "to save as a baseline",
        "llem: the session fails (exit 1): --llem-save-baseline asked for and not written",
    ])
    assert not (pytester.path / ".llem").exists()


def test_every_item_measured_with_energy_is_saved_with_its_status(pytester, write_llem, fake_meter):
    fake_meter(joules=1e6)  # a million joules in a window of seconds: no GPU draws that (energy_implausible)
    cpu = RUN + "pytorch: {device: cpu}\n"
    write_llem("llem_ok.yaml", cpu)
    write_llem("llem_gate.yaml", cpu + "expect:\n  joules_per_token: {max: 0.000001}\n")
    write_llem("llem_toomany.yaml", cpu.replace("n: 2", "n: 500"))
    write_llem("llem_gpu.yaml", RUN + "pytorch: {device: 'cuda:1'}\n")  # the fake GPU is cuda:0
    write_llem("llem_none.yaml", cpu + "energy: {source: none}\n")
    # 8 x 32 tokens one prompt at a time: a window long enough (0.1 s) for the NVML meter, even on a fast CPU
    write_llem("llem_suspect.yaml", RUN.replace("n: 2", "n: 8").replace("max_output_tokens: 4", "max_output_tokens: 32")
               + "energy: {source: nvml}\npytorch: {batch_size: 1, device: cpu}\n")

    result = pytester.runpytest_subprocess("-p", "fakemeter", "--llem-save-baseline=base.json")

    result.assert_outcomes(passed=3, failed=2, skipped=1)
    result.stdout.re_match_lines([r"llem_suspect.yaml::suspect\s+\S+ \(suspect\)\s+\S+\s+nvml_counter"])
    result.stdout.fnmatch_lines([
        "llem: 3 item(s) left out of the baseline: 1 skipped, 1 without measured energy, 1 not measured",
        "llem: baseline of 3 item(s) (1 failed, 1 passed, 1 suspect) saved to base.json",
    ])
    entries = json.loads((pytester.path / "base.json").read_text())["entries"]
    assert {key: (e["status"], e["energy_suspect"]) for key, e in entries.items()} == {
        "llem_gate.yaml::gate": ("failed", False), "llem_ok.yaml::ok": ("passed", False),
        "llem_suspect.yaml::suspect": ("passed", True)}  # a suspect entry is never a reference
