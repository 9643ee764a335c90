"""``llem compare BASELINE CANDIDATE``, run as a user runs it: the verdict table on stdout, exit 0
when nothing regressed, 1 when a metric did, 2 (with a message naming the file) for unreadable
input or a bad ``--fail-on``.

The inputs are baseline files written by ``Baseline.save`` from synthetic per-repeat values
(seeded, about 1% coefficient of variation), the shape ``pytest --llem-save-baseline`` writes.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest


from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineInfo

H200 = MachineInfo(gpus=["NVIDIA H200"], gpu_driver="550.54", cpu="AMD EPYC 9654", torch="2.3.0",
                   energy_source="nvml_counter")
KEY = "benchmarks/llem_gpt2.yaml::serving"
COLUMNS = ["experiment", "metric", "baseline", "candidate", "change", "95% CI", "verdict"]


def noisy(center: float, seed: int, n: int = 5) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.gauss(0, 0.01)) for _ in range(n)]


def save_baseline(path: Path, *, joules_per_token: float = 0.40, tokens_per_second: float = 250.0, seed: int = 1,
                  key: str = KEY, batch_size: int = 8) -> Path:
    """A one-experiment baseline file measured around the given medians."""
    repeats = [{"joules_per_token": jpt, "tokens_per_second": tps}
               for jpt, tps in zip(noisy(joules_per_token, seed), noisy(tokens_per_second, seed + 100))]
    entry = BaselineEntry(experiment=key.rpartition("::")[2], config_hash="0" * 16,
                          config={"model": "gpt2", "pytorch.batch_size": batch_size}, repeats=repeats)
    return Baseline.from_entries({key: entry}, H200, None).save(path)


def table(stdout: str) -> list[dict[str, str]]:
    """The rows of the verdict table, by column name (columns are separated by 2+ spaces)."""
    lines = [line for line in stdout.splitlines() if line and not line.startswith("note:")]
    header = re.split(r"\s{2,}", lines[0])
    assert header == COLUMNS
    assert set(lines[1].replace(" ", "")) == {"-"}
    return [dict(zip(header, re.split(r"\s{2,}", line))) for line in lines[2:]]


def assert_config_error(done, path: Path, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    assert str(path) in done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


# --- verdicts and exit codes ---------------------------------------------------------------------


def test_identical_files_exit_0_with_the_full_table(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    new = save_baseline(tmp_path / "new.json")
    done = run_llem("compare", str(old), str(new))
    assert done.returncode == 0, done.stderr
    [row] = table(done.stdout)
    assert row["experiment"] == KEY
    assert row["metric"] == "joules_per_token"
    assert row["baseline"] == row["candidate"]
    assert row["change"] == "+0.0%"
    assert re.fullmatch(r"-\d+\.\d%\.\.\+\d+\.\d%", row["95% CI"])
    assert row["verdict"] == "unchanged"


@pytest.mark.parametrize(("candidate", "exit_code", "verdict", "sign"), [
    (0.48, 1, "regressed", "+"),  # 20% more energy per token
    (0.32, 0, "improved", "-"),   # an improvement is reported, never a failure
])
def test_a_20_percent_change_gives_its_verdict_and_exit_code(tmp_path, run_llem, candidate, exit_code, verdict, sign):
    old = save_baseline(tmp_path / "old.json", joules_per_token=0.40)
    new = save_baseline(tmp_path / "new.json", joules_per_token=candidate, seed=2)
    done = run_llem("compare", str(old), str(new))
    assert done.returncode == exit_code, done.stderr
    [row] = table(done.stdout)
    assert row["verdict"] == verdict
    assert row["change"].startswith(sign)
    assert done.stderr == ""


def test_a_candidate_that_stopped_measuring_energy_exits_1(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    data = json.loads(save_baseline(tmp_path / "new.json", seed=2).read_text())
    for repeat in data["entries"][KEY]["repeats"]:
        repeat["joules_per_token"] = None
    (tmp_path / "new.json").write_text(json.dumps(data))
    done = run_llem("compare", str(old), str(tmp_path / "new.json"))
    assert done.returncode == 1, done.stderr
    [row] = table(done.stdout)
    assert (row["metric"], row["candidate"], row["verdict"]) == ("joules_per_token", "n/a", "not measured")


def test_fail_on_tokens_per_second_treats_lower_throughput_as_the_regression(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json", tokens_per_second=250.0)
    slower = save_baseline(tmp_path / "slower.json", tokens_per_second=200.0, seed=2)
    faster = save_baseline(tmp_path / "faster.json", tokens_per_second=300.0, seed=3)
    done = run_llem("compare", str(old), str(slower), "--fail-on", "tokens_per_second:5%")
    assert done.returncode == 1, done.stderr
    # --fail-on adds a gate: the default joules_per_token:5% still applies
    assert [(r["metric"], r["verdict"]) for r in table(done.stdout)] == [("joules_per_token", "unchanged"),
                                                                         ("tokens_per_second", "regressed")]
    done = run_llem("compare", str(old), str(faster), "--fail-on", "tokens_per_second:5%")
    assert done.returncode == 0, done.stderr
    assert [(r["metric"], r["verdict"]) for r in table(done.stdout)][1] == ("tokens_per_second", "improved")


def test_a_config_change_is_a_note_below_the_table(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json", batch_size=8)
    new = save_baseline(tmp_path / "new.json", batch_size=1)
    done = run_llem("compare", str(old), str(new))
    assert done.returncode == 0, done.stderr
    assert f"note: {KEY}: config changed since the baseline: pytorch.batch_size 8 -> 1" in done.stdout.splitlines()


def test_experiments_match_by_id_when_the_keys_differ(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json", key="benchmarks/llem_gpt2.yaml::serving")
    new = save_baseline(tmp_path / "new.json", key="other/llem_gpt2.yaml::serving", joules_per_token=0.48, seed=2)
    done = run_llem("compare", str(old), str(new))
    assert done.returncode == 1, done.stderr
    [row] = table(done.stdout)
    assert (row["experiment"], row["verdict"]) == ("other/llem_gpt2.yaml::serving", "regressed")


def test_no_common_experiment_exits_2_naming_both_files(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json", key="a.yaml::first")
    new = save_baseline(tmp_path / "new.json", key="b.yaml::second")
    done = run_llem("compare", str(old), str(new))
    assert_config_error(done, new, "none of its experiments (b.yaml::second)")
    assert f"{old} (a.yaml::first)" in done.stderr


# --- every file llem report reads: session files of pytest --llem-json, results, directories ----


def session_file(path: Path, *, joules_per_token: float, seed: int = 2, key: str = KEY) -> Path:
    """A ``pytest --llem-json`` session file as the plugin writes it: one measured item (its record,
    with the whole result), and one skipped item that measured nothing."""
    from llenergymeasure.results.baselines import BaselineEntry, MachineInfo
    from tests.unit.result_builders import make_repeat, make_result

    repeats = [make_repeat(i, energy_j=jpt * 100, output_tokens=100)
               for i, jpt in enumerate(noisy(joules_per_token, seed))]
    result = make_result(repeats, name="serving", config={"model": "gpt2", "pytorch": {"batch_size": 8}})
    measured = {"nodeid": key, "experiment": "serving", "file": key.split("::")[0], "index": 0, "line": 1,
                "outcome": "passed", "root": ".", "baseline_key": key,
                "joules_per_token": result.metrics.joules_per_token,
                "baseline_entry": BaselineEntry.from_result(result).model_dump(mode="json"),
                "machine": MachineInfo.from_result(result).model_dump(mode="json"),
                "result": result.model_dump(mode="json")}
    skipped = {"nodeid": "benchmarks/llem_gpt2.yaml::big", "experiment": "big", "file": "benchmarks/llem_gpt2.yaml",
               "index": 1, "line": 9, "outcome": "skipped", "error": "needs a GPU"}
    document = {"llem_version": "0.0", "written_at": "2026-01-02T03:04:05+00:00", "dry_run": False,
                "machine": {"gpus": [], "driver": None}, "items": [measured, skipped]}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def test_a_session_file_of_pytest_is_compared_with_a_baseline_either_way(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json", joules_per_token=0.40)
    worse = session_file(tmp_path / "session.json", joules_per_token=0.48)  # 20% more energy per token
    done = run_llem("compare", str(old), str(worse))
    assert done.returncode == 1, done.stderr
    [row] = table(done.stdout)  # the skipped item measured nothing: left out
    assert (row["experiment"], row["metric"], row["verdict"]) == (KEY, "joules_per_token", "regressed")
    assert row["change"].startswith("+")

    done = run_llem("compare", str(worse), str(old))  # the session as the baseline: the file is now 20% better
    assert done.returncode == 0, done.stderr
    [row] = table(done.stdout)
    assert row["verdict"] == "improved"


def test_a_session_file_is_matched_with_result_files_by_experiment_id(tmp_path, run_llem):
    from tests.unit.result_builders import make_repeat, make_result

    results = tmp_path / "results"
    repeats = [make_repeat(i, energy_j=jpt * 100, output_tokens=100) for i, jpt in enumerate(noisy(0.40, 5))]
    make_result(repeats, name="serving", config={"model": "gpt2"}).save(results)
    done = run_llem("compare", str(results), str(session_file(tmp_path / "session.json", joules_per_token=0.40)))
    assert done.returncode == 0, done.stderr
    [row] = table(done.stdout)
    assert (row["experiment"], row["verdict"]) == (KEY, "unchanged")  # key "serving" in the directory, by its id


def test_a_session_that_measured_nothing_exits_2_saying_so(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    empty = tmp_path / "dry.json"
    empty.write_text(json.dumps({"llem_version": "0.0", "dry_run": True, "items": [
        {"nodeid": KEY, "outcome": "passed", "dry_run": True, "vram_estimate_gb": 1.0}]}))
    done = run_llem("compare", str(old), str(empty))
    assert_config_error(done, empty, "measured nothing to compare")


def test_one_experiment_measured_twice_on_a_side_compares_the_newest_with_a_note(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json", joules_per_token=0.40)
    runs = tmp_path / "runs"
    runs.mkdir()
    save_baseline(runs / "a.json", joules_per_token=0.48, seed=3)
    newest = save_baseline(runs / "b.json", joules_per_token=0.40, seed=4)  # saved later: compared
    done = run_llem("compare", str(old), str(runs))
    assert done.returncode == 0, done.stderr
    [row] = table(done.stdout)
    assert row["verdict"] == "unchanged"
    assert f"note: {KEY}: measured 2 times in {runs}; the newest ({newest}) is compared" in done.stdout.splitlines()


# --- unreadable input and a bad --fail-on: exit 2, the file named ------------------------------


def test_a_missing_file_exits_2_naming_it(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    done = run_llem("compare", str(old), str(tmp_path / "gone.json"))
    assert_config_error(done, tmp_path / "gone.json", "no such file or directory")


def test_a_corrupt_file_exits_2_naming_it(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(old.read_text()[:200])
    done = run_llem("compare", str(old), str(corrupt))
    assert_config_error(done, corrupt, "not a readable result, baseline or session file")


def test_a_json_file_that_is_not_a_baseline_is_called_so(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    other = tmp_path / "package.json"
    other.write_text(json.dumps({"name": "web", "version": "1.0.0"}))
    done = run_llem("compare", str(other), str(old))
    assert_config_error(done, other, "not an llem file; give a result JSON (llem run -o DIR), a directory of them, "
                                     "a baseline file (.llem/baselines/) or a session file (pytest --llem-json)")


def test_a_baseline_with_a_nan_value_exits_2_naming_it(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    data = json.loads(old.read_text())
    data["entries"][KEY]["repeats"][0]["joules_per_token"] = float("nan")
    broken = tmp_path / "nan.json"
    broken.write_text(json.dumps(data))
    done = run_llem("compare", str(old), str(broken))
    assert_config_error(done, broken, "joules_per_token")


def test_a_baseline_of_another_schema_version_exits_2_naming_it(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    data = json.loads(old.read_text())
    data["schema_version"] = 3
    future = tmp_path / "future.json"
    future.write_text(json.dumps(data))
    done = run_llem("compare", str(future), str(old))
    assert_config_error(done, future, "baseline schema_version 3 is not 1 or 2")


def test_an_unknown_fail_on_metric_exits_2_listing_the_metrics(tmp_path, run_llem):
    old = save_baseline(tmp_path / "old.json")
    done = run_llem("compare", str(old), str(old), "--fail-on", "joules:5")
    assert done.returncode == 2, done.stderr
    assert "--fail-on: unknown metric 'joules'" in done.stderr
    assert "joules_per_token" in done.stderr
    assert "Traceback" not in done.stderr
