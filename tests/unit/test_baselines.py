"""Baselines: the file a later run is compared with — saving and loading it, the errors a user
reads for a bad file, reading results as a baseline, the machine key, what counts as a change of
machine or config, finding the newest baseline, and the commit it was measured at."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from llenergymeasure.exceptions import ConfigError
from llenergymeasure.results.baselines import (
    Baseline,
    BaselineEntry,
    CommitInfo,
    MachineInfo,
    latest,
    load_comparable,
    machine_key,
    new_baseline_path,
)
from llenergymeasure.results.model import EnvironmentSnapshot
from result_builders import make_repeat, make_result

H200 = MachineInfo(gpus=["NVIDIA H200"], gpu_driver="550.54", gpu_power_limits_w=[700.0], cpu="AMD EPYC 9654",
                   torch="2.3.0", transformers="4.44.0", energy_source="nvml_counter")


def entry(config: dict | None = None, repeats: list[dict] | None = None) -> BaselineEntry:
    return BaselineEntry(experiment="serving", config_hash="0" * 16,
                         config=config if config is not None else {"model": "gpt2", "pytorch.batch_size": 8},
                         repeats=repeats if repeats is not None else [{"joules_per_token": 0.4}, {"joules_per_token": 0.41}])


def a_baseline() -> Baseline:
    return Baseline.from_entries({"benchmarks/llem_gpt2.yaml::serving": entry()}, H200,
                                 CommitInfo(sha="0123456789abcdef", branch="main"))


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        Baseline.load(path)
    assert info.value.exit_code == 2
    return str(info.value)


def write_baseline_json(path: Path, **changes) -> Path:
    data = json.loads(a_baseline().model_dump_json())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


# --- save and load --------------------------------------------------------------------------------


def test_save_then_load_gives_the_same_baseline(tmp_path):
    baseline = a_baseline()
    path = baseline.save(tmp_path / "baselines" / "b.json")
    assert Baseline.load(path) == baseline


def test_save_leaves_one_readable_file_and_no_temp_file(tmp_path):
    path = a_baseline().save(tmp_path / "b.json")
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert json.loads(path.read_text())["kind"] == "llem-baseline"


def test_load_a_missing_file_names_it_and_says_how_to_make_one(tmp_path):
    path = tmp_path / "nope.json"
    message = load_error(path)
    assert message.startswith(f"{path}: baseline file not found;")
    assert "--llem-save-baseline" in message


def test_load_a_file_that_is_not_json_names_it(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"kind": "llem-baseline", ')
    assert load_error(path).startswith(f"{path}: not a readable baseline file (")


def test_load_json_without_kind_says_it_is_not_a_baseline(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"entries": {}}))
    message = load_error(path)
    assert message.startswith(f"{path}: not an llem baseline file")
    assert '"kind": "llem-baseline"' in message


def test_load_another_schema_version_names_both_versions(tmp_path):
    path = write_baseline_json(tmp_path / "b.json", schema_version=3)
    assert load_error(path).startswith(f"{path}: baseline schema_version 3 is not 1 or 2;")


def test_a_schema_1_file_reads_as_passed_entries(tmp_path):
    data = json.loads(a_baseline().model_dump_json())
    data["schema_version"] = 1
    for entry in data["entries"].values():
        del entry["status"]
    (tmp_path / "b.json").write_text(json.dumps(data))
    [loaded] = Baseline.load(tmp_path / "b.json").entries.values()
    assert loaded.status == "passed" and loaded.is_reference


def test_load_an_invalid_field_names_the_field(tmp_path):
    data = json.loads(a_baseline().model_dump_json())
    data["entries"]["benchmarks/llem_gpt2.yaml::serving"]["repeats"] = "five"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    message = load_error(path)
    assert message.startswith(f"{path}: not a valid baseline file (entries.benchmarks/llem_gpt2.yaml::serving.repeats: ")


# --- load_comparable: a baseline, a result JSON, a directory of them ----------------------------


def test_load_comparable_reads_a_baseline_file(tmp_path):
    baseline = a_baseline()
    assert load_comparable(baseline.save(tmp_path / "b.json")) == baseline


def test_load_comparable_reads_a_result_json_keyed_by_its_name(tmp_path):
    result = make_result([make_repeat(0, energy_j=40.0), make_repeat(1, energy_j=42.0)],
                         config={"model": "tiny", "pytorch": {"batch_size": 2}})
    baseline = load_comparable(result.save(tmp_path))
    [(key, only)] = baseline.entries.items()
    assert key == "tiny"
    assert only.values("joules_per_token") == [0.4, 0.42]
    assert only.config == {"model": "tiny", "pytorch.batch_size": 2}
    assert baseline.machine.energy_source == "nvml_counter"
    assert baseline.commit is None


def test_load_comparable_reads_every_result_of_a_directory_but_not_timelines(tmp_path):
    for name in ("alpha", "beta"):
        result = make_result([make_repeat(0, energy_j=40.0)], name=name, experiment_id=f"{name}-0123abcd-20260102T030405")
        result.model_copy(update={"full_timeline": [{"gpu0": [{"t": 0.0, "power_w": 100.0}]}]}).save(tmp_path)
    assert len(list(tmp_path.glob("*.timeline.json"))) == 2
    assert sorted(load_comparable(tmp_path).entries) == ["alpha", "beta"]


def test_load_comparable_of_an_empty_directory_names_it(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: no result JSON files in this directory")):
        load_comparable(tmp_path)


def test_load_comparable_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'gone.json'}: ")):
        load_comparable(tmp_path / "gone.json")


# --- the machine ---------------------------------------------------------------------------------


def test_machine_key_counts_gpus_of_one_model():
    assert machine_key(["NVIDIA H200", "NVIDIA H200"], "AMD EPYC 9654") == "2x-nvidia-h200"


def test_machine_key_names_mixed_gpus():
    assert machine_key(["NVIDIA A100-SXM4-80GB", "NVIDIA H100 PCIe"], None) == "1x-nvidia-a100-sxm4-80gb-1x-nvidia-h100-pcie"


def test_machine_key_without_gpus_is_the_cpu():
    assert machine_key([], "AMD EPYC 7763 64-Core Processor") == "cpu-amd-epyc-7763-64-core-processor"
    assert machine_key([], None) == "cpu-unknown"


def test_a_cpu_run_on_a_gpu_machine_is_keyed_by_its_cpu():
    env = EnvironmentSnapshot(llem_version="0", python="3", platform="p", device="cpu", cpu="Intel Xeon Gold 6338",
                              gpus=["NVIDIA H200"])
    machine = MachineInfo.from_result(make_result([make_repeat(0, energy_j=1.0)], environment=env))
    assert machine.key == "cpu-intel-xeon-gold-6338"


def test_a_gpu_run_is_keyed_by_its_gpus():
    env = EnvironmentSnapshot(llem_version="0", python="3", platform="p", device="cuda:0", cpu="Intel Xeon Gold 6338",
                              gpus=["NVIDIA H200"], gpu_driver="550.54", torch="2.3.0")
    machine = MachineInfo.from_result(make_result([make_repeat(0, energy_j=1.0)], environment=env))
    assert (machine.key, machine.gpu_driver, machine.torch) == ("1x-nvidia-h200", "550.54", "2.3.0")


def test_the_same_machine_is_no_mismatch_even_with_other_software():
    assert H200.mismatch(H200.model_copy(update={"torch": "2.4.0", "gpu_driver": "560.35"})) is None


def test_another_gpu_is_a_mismatch_that_names_both_machines():
    a100 = H200.model_copy(update={"gpus": ["NVIDIA A100 80GB PCIe"]})
    assert H200.mismatch(a100) == ("baseline measured on 1x NVIDIA A100 80GB PCIe, nvml_counter, "
                                   "this run on 1x NVIDIA H200, nvml_counter")


def test_another_energy_source_is_a_mismatch():
    sampled = H200.model_copy(update={"energy_source": "nvml_power"})
    assert H200.mismatch(sampled) == ("baseline measured on 1x NVIDIA H200, nvml_power, "
                                      "this run on 1x NVIDIA H200, nvml_counter")


def test_software_changes_list_old_then_new():
    before = H200.model_copy(update={"gpu_driver": "535.104", "torch": "2.2.0"})
    assert H200.software_changes(before) == ["gpu_driver 535.104 -> 550.54", "torch 2.2.0 -> 2.3.0"]
    assert H200.software_changes(H200) == []


# --- what counts as a config change --------------------------------------------------------------


def test_a_changed_key_is_a_config_change():
    before = entry({"model": "gpt2", "pytorch.batch_size": 8})
    assert entry({"model": "gpt2", "pytorch.batch_size": 1}).config_changes(before) == ["pytorch.batch_size 8 -> 1"]


def test_repeats_name_and_output_dir_are_not_config_changes():
    before = entry({"model": "gpt2", "repeats": 5, "name": "a", "output_dir": "/tmp/a"})
    after = entry({"model": "gpt2", "repeats": 10, "name": "b", "output_dir": "/tmp/b"})
    assert after.config_changes(before) == []


def test_the_same_local_model_in_another_checkout_is_not_a_change():
    before = entry({"model": "/home/ci/build-1/models/tiny-gpt2"})
    assert entry({"model": "/home/dev/src/models/tiny-gpt2"}).config_changes(before) == []


def test_another_local_model_is_a_change():
    before = entry({"model": "/models/tiny-gpt2"})
    assert entry({"model": "/models/small-gpt2"}).config_changes(before) == [
        "model /models/tiny-gpt2 -> /models/small-gpt2"]


# --- where baselines live and which is the newest ----------------------------------------------


def test_new_baseline_path_is_under_the_machine_and_carries_the_commit(tmp_path):
    path = new_baseline_path(tmp_path, "1x-nvidia-h200", CommitInfo(sha="abcdef0123456789"))
    assert path.parent == tmp_path / ".llem" / "baselines" / "1x-nvidia-h200"
    assert re.fullmatch(r"\d{8}T\d{6}Z-abcdef01\.json", path.name)
    assert re.fullmatch(r"\d{8}T\d{6}Z\.json", new_baseline_path(tmp_path, "1x-nvidia-h200", None).name)


def test_latest_picks_the_newest_file_of_that_machine(tmp_path):
    machines = tmp_path / ".llem" / "baselines"
    for relative in ("1x-nvidia-h200/20260101T000000Z-aaaaaaaa.json", "1x-nvidia-h200/20260301T120000Z-bbbbbbbb.json",
                     "1x-nvidia-h200/20260201T000000Z.json", "2x-nvidia-h200/20270101T000000Z.json"):
        (machines / relative).parent.mkdir(parents=True, exist_ok=True)
        (machines / relative).write_text("{}")
    assert latest(tmp_path, "1x-nvidia-h200") == machines / "1x-nvidia-h200" / "20260301T120000Z-bbbbbbbb.json"
    assert latest(tmp_path, "cpu-unknown") is None


def test_a_saved_baseline_is_the_latest(tmp_path):
    path = a_baseline().save(new_baseline_path(tmp_path, H200.key, None))
    assert latest(tmp_path, H200.key) == path


# --- the commit ----------------------------------------------------------------------------------


@pytest.fixture
def outside_git(tmp_path, monkeypatch) -> Path:
    """``tmp_path``, with git stopped from finding a repository above it and GITHUB_SHA unset."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.delenv("GITHUB_REF_NAME", raising=False)
    return tmp_path


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_detect_reads_sha_branch_and_dirty_from_git(outside_git):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=outside_git,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("-c", "init.defaultBranch=main", "init", "-q")
    (outside_git / "README").write_text("hi\n")
    git("add", "README")
    git("commit", "-q", "-m", "first")
    assert CommitInfo.detect(outside_git) == CommitInfo(sha=git("rev-parse", "HEAD"), branch="main", dirty=False)
    (outside_git / "README").write_text("changed\n")
    assert CommitInfo.detect(outside_git).dirty is True


def test_detect_outside_a_repository_is_none(outside_git):
    assert CommitInfo.detect(outside_git) is None


def test_detect_outside_a_repository_falls_back_to_github_sha(outside_git, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "feedface" * 5)
    monkeypatch.setenv("GITHUB_REF_NAME", "release")
    assert CommitInfo.detect(outside_git) == CommitInfo(sha="feedface" * 5, branch="release")


def test_created_at_is_now_in_utc():
    before = datetime.now(timezone.utc)
    assert before <= a_baseline().created_at <= datetime.now(timezone.utc)
