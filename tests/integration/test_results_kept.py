"""Results are never lost or overwritten, seen from a real ``llem run``.

- Runs into one folder at the same time each keep their file.
- An ``-o`` that cannot take result files (a file, a path beneath a file, a path too deep for the
  filesystem, a place nobody can write) is refused by pre-flight before anything is loaded: exit
  1, a message naming the path, no "Internal error", torch never imported. A part longer than any
  filesystem allows is refused even earlier, as a config error (exit 2).
- A save that fails mid-run (here: the file-size limit of ``ulimit -f``, which fails writes as a
  full disk does) still prints the summary, says the result was not saved, exits 1, leaves no temp
  file, and in a study the next experiment still runs.
- Without ``-o`` the summary says the result was not saved and how to keep it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llem_helpers import LLEM, imported_modules, leftovers, llem_process, result_files
from llenergymeasure.exceptions import PreFlightError
from llenergymeasure.results.model import ExperimentResult

TINY_RUN = ["-n", "2", "--batch-size", "2", "-p", "fp32", "-d", "builtin", "--repeats", "1"]


@pytest.fixture
def quick_user_config(tmp_path: Path) -> None:
    """The user config of the isolated environment: 4 new tokens, no energy meter, one warmup batch."""
    Path(tmp_path / "no-user-config.yaml").write_text(
        "defaults:\n  max_output_tokens: 4\n  warmup: {n_warmup: 1}\n  energy: {source: none}\n")


@pytest.mark.slow
def test_four_runs_into_one_folder_at_once_keep_four_results(tiny_model, tmp_path, quick_user_config):
    out = tmp_path / "same"
    procs = [subprocess.Popen([*LLEM, "run", "--model", str(tiny_model), *TINY_RUN, "-o", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
             for _ in range(4)]
    try:
        outputs = [proc.communicate(timeout=400) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr
    files = result_files(out)
    assert len(files) == 4, sorted(p.name for p in out.iterdir())
    assert leftovers(out) == []
    said = {Path(line.split(None, 1)[1]).resolve() for stdout, _ in outputs
            for line in stdout.splitlines() if line.strip().startswith("result ")}
    assert said == {p.resolve() for p in files}  # each run names its own file
    assert len({ExperimentResult.load(p).started_at for p in files}) == 4  # four measurements, none lost


def unusable_output_dirs(tmp_path: Path) -> dict[str, tuple[Path, str, int]]:
    """id -> (an -o that cannot take results, what the message says about it, the exit code).
    A part longer than any filesystem allows is a config error (2); the rest are pre-flight's (1)."""
    (tmp_path / "a-file").write_text("not a directory\n")
    cases = {
        "a-file": (tmp_path / "a-file", "is a file, not a directory", 1),
        "beneath-a-file": (tmp_path / "a-file" / "results", f"{tmp_path / 'a-file'} is a file, not a directory", 1),
        "too-deep": (tmp_path.joinpath(*["d" * 200] * 20), "result file paths in it would pass PATH_MAX", 1),
        "300-char-name": (tmp_path / ("r" * 300), "a part of this path is 300 characters long", 2),
    }
    if Path("/proc/self").exists():  # procfs takes no new files, not even from root
        cases["procfs"] = (Path("/proc/llem-results"), "cannot be created: cannot write in /proc", 1)
    return cases


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("case", ["a-file", "beneath-a-file", "too-deep", "300-char-name", "procfs"])
def test_an_output_dir_that_cannot_take_results_is_refused_before_anything_is_loaded(tiny_model, tmp_path, case,
                                                                                     dry_run):
    cases = unusable_output_dirs(tmp_path)
    if case not in cases:
        pytest.skip("no procfs here")
    out, reason, code = cases[case]
    proc = llem_process("run", "--model", str(tiny_model), *TINY_RUN, "-o", str(out),
                        *(["--dry-run"] if dry_run else []), python_flags=("-X", "importtime"), timeout=120)
    assert proc.returncode == code, proc.stderr[-2000:]
    stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    assert ("Pre-flight check failed (1 problem)" if code == 1 else "Config error") in stderr
    assert "output_dir: " in stderr and str(out)[:50] in stderr and reason in stderr  # (a long path is shortened)
    assert "Internal error" not in stderr and "Traceback" not in stderr
    assert not {"torch", "transformers"} & imported_modules(proc.stderr)  # nothing loaded, nothing measured
    if not dry_run or code == 2:
        assert proc.stdout == ""
    assert not (tmp_path / "a-file" / "results").exists() and (tmp_path / "a-file").is_file()
    assert not (tmp_path / ("d" * 200)).exists()


def test_the_api_refuses_it_in_pre_flight_too(tiny_model, tmp_path):
    """``run_experiment`` (and so the pytest plugin) gets the same check from pre-flight."""
    from llenergymeasure import run_experiment

    (tmp_path / "a-file").write_text("")
    with pytest.raises(PreFlightError, match=f"output_dir: {tmp_path / 'a-file'} is a file, not a directory"):
        run_experiment(model=str(tiny_model), n=2, dataset="builtin", output_dir=str(tmp_path / "a-file"))


def limited_file_size(max_bytes: int):
    """``ulimit -f``: a write past ``max_bytes`` fails with EFBIG, as a full disk fails with ENOSPC."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return limit


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_failed_save_prints_the_summary_says_so_and_the_study_goes_on(tiny_model, tmp_path, quick_user_config,
                                                                      monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    config = tmp_path / "llem_two.yaml"
    config.write_text(f"name: two\nmodel: {tiny_model}\nn: 2\ndataset: builtin\nprecision: fp32\n"
                      "sweep:\n  pytorch.batch_size: [1, 2]\n")
    out = tmp_path / "out"
    proc = subprocess.run([*LLEM, "run", str(config), "-o", str(out)], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, preexec_fn=limited_file_size(1000))  # a result is ~3 kB
    assert proc.returncode == 1, proc.stderr
    assert "Internal error" not in proc.stderr and "Traceback" not in proc.stderr
    for exp_id in ("two[batch_size=1]", "two[batch_size=2]"):  # both ran: the first failed save stopped nothing
        assert f"Error in {exp_id}: could not save the result in {out}: File too large" in proc.stderr
        row = next(line for line in proc.stdout.splitlines() if line.startswith(exp_id))
        assert "ERROR: could not save the result" in row
    assert "the result was not saved" in proc.stderr
    assert result_files(out) == [] and leftovers(out) == []
    assert leftovers(tmp_path / "cache" / "llenergymeasure" / "unsaved") == []


@pytest.mark.slow
def test_a_failed_single_save_prints_the_summary_and_exits_1(tiny_model, tmp_path, quick_user_config, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    proc = subprocess.run([*LLEM, "run", "--model", str(tiny_model), *TINY_RUN, "-o", str(out)], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, preexec_fn=limited_file_size(1000))
    assert proc.returncode == 1, proc.stderr
    assert "tokens/s" in proc.stdout  # the summary of what was measured
    assert "result              NOT SAVED: see the error below" in proc.stdout
    assert f"Error: could not save the result in {out}: File too large" in proc.stderr
    assert "Internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert leftovers(out) == []


@pytest.mark.slow
def test_without_an_output_dir_the_summary_says_nothing_was_saved(run_llem, tiny_model, tmp_path, quick_user_config):
    proc = run_llem("run", "--model", str(tiny_model), *TINY_RUN, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "result              not saved: pass -o DIR" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-user-config.yaml"]  # nothing littered


@pytest.mark.slow
def test_a_study_without_an_output_dir_says_nothing_was_saved(run_llem, tiny_model, tmp_path, quick_user_config):
    (tmp_path / "llem_two.yaml").write_text(f"name: two\nmodel: {tiny_model}\nn: 2\ndataset: builtin\n"
                                            "precision: fp32\nsweep:\n  pytorch.batch_size: [1, 2]\n")
    proc = run_llem("run", "llem_two.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Results not saved: pass -o DIR" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llem_two.yaml", "no-user-config.yaml"]
