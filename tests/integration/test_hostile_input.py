"""Hostile and broken input, as a user meets it: refused with the contract's exit code.

A config error (exit 2) names the file, line and key; a model or dataset file that cannot be
what it claims stops pre-flight (exit 1) naming the file. Never "Internal error", never a
traceback, never a hang: each case runs ``llem`` (or pytest with the plugin) as a real process.
No assertion depends on this machine's speed: time bounds are generous, and that nothing was
expanded is shown by the caps the messages name.
"""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import pytest

from llenergymeasure.config.benchmark_file import MAX_EXPERIMENTS
from llenergymeasure.config.yaml_source import MAX_NODES

# Nine levels of nine aliases each: 9**9 (387 million) strings, from a file of 700 bytes.
BILLION_LAUGHS = "\n".join(
    ["model: gpt2", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
) + "\n"

# Six keys of 100 values: 10**12 experiments if it were expanded.
HUGE_SWEEP = "model: gpt2\nsweep:\n" + "".join(
    f"  {key}: [{', '.join(str(v) for v in range(1, 101))}]\n"
    for key in ("n", "max_output_tokens", "max_input_tokens", "random_seed", "repeats", "pytorch.batch_size")
)

GENEROUS_S = 20  # a bound for a loaded CI machine; the refusal itself takes milliseconds


def assert_refused(proc, code: int, *fragments: str) -> None:
    """``proc`` exited ``code`` with one friendly message holding every fragment."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    assert "Internal error" not in proc.stderr
    assert "please report it" not in proc.stderr
    assert "Traceback" not in proc.stderr


def garbage_model(tmp_path: Path, tiny_model: Path, weights: bytes) -> Path:
    """The tiny model's config.json beside a model.safetensors holding ``weights``."""
    model = tmp_path / "broken-model"
    model.mkdir()
    shutil.copy(tiny_model / "config.json", model / "config.json")
    (model / "model.safetensors").write_bytes(weights)
    return model


# --- config errors: exit 2 -----------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_billion_laughs_is_refused_at_once(run_llem, tmp_path, dry_run):
    path = tmp_path / "llem_laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.monotonic()
    proc = run_llem("run", *(["--dry-run"] if dry_run else []), str(path), cwd=tmp_path, timeout=120)
    assert time.monotonic() - started < GENEROUS_S
    assert_refused(proc, 2, f"{path}: holds more than {MAX_NODES:,} keys and values once its aliases (*name) "
                            "are expanded (the cap for a config file)")
    assert proc.stdout == ""


def test_billion_laughs_is_a_collection_error_in_a_pytest_dry_run(pytester):
    pytester.path.joinpath("llem_laughs.yaml").write_text(BILLION_LAUGHS)
    started = time.monotonic()
    result = pytester.runpytest("--llem-dry-run")
    assert time.monotonic() - started < GENEROUS_S
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2, as for any collection error
    result.stdout.fnmatch_lines(["*ERROR collecting llem_laughs.yaml*",
                                 f"*llem_laughs.yaml: holds more than {MAX_NODES:,} keys and values once its aliases*"])
    assert "Traceback" not in result.stdout.str()


def test_a_sweep_of_a_trillion_points_is_refused_naming_the_cap(run_llem, tmp_path):
    path = tmp_path / "llem_huge.yaml"
    path.write_text(HUGE_SWEEP)
    proc = run_llem("run", "--dry-run", str(path), cwd=tmp_path, timeout=120)
    assert_refused(proc, 2, f"{path}:2: its sweep expands to 1,000,000,000,000 experiments, "
                            f"more than the cap of {MAX_EXPERIMENTS:,} per file")


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("{max: .nan}", "expect.joules_per_token.max must be a finite number (got nan)"),
        ("{max: .inf}", "expect.joules_per_token.max must be a finite number (got inf)"),
        ("{max: -1}", "expect.joules_per_token.max is -1, but no metric is ever negative"),
        ("{min: 2, max: 1}", "expect.joules_per_token has min 2 above max 1, so it can never pass"),
    ],
    ids=["nan", "inf", "negative", "min-above-max"],
)
def test_a_gate_bound_that_cannot_mean_anything_is_a_config_error(run_llem, tmp_path, gate, message):
    path = tmp_path / "llem_gate.yaml"
    path.write_text(f"model: gpt2\nexpect:\n  joules_per_token: {gate}\n")
    proc = run_llem("run", str(path), cwd=tmp_path, timeout=120)
    assert_refused(proc, 2, f"{path}:3: {message}")


@pytest.mark.parametrize("value", ["nan", "-5", "lots"])
def test_a_bad_carbon_intensity_variable_stops_the_run_before_it_starts(run_llem, tmp_path, monkeypatch, tiny_model,
                                                                        value):
    monkeypatch.setenv("LLEM_CARBON_INTENSITY", value)
    for dry_run in ([], ["--dry-run"]):
        proc = run_llem("run", *dry_run, "--model", str(tiny_model), "-n", "1", "--dataset", "builtin",
                        "-o", str(tmp_path / "out"), cwd=tmp_path, timeout=120)
        assert_refused(proc, 2, f"LLEM_CARBON_INTENSITY={value!r} is not a finite, non-negative number")
        assert not (tmp_path / "out").exists()


def test_a_control_character_in_the_yaml_names_its_line_and_key(run_llem, tmp_path):
    path = tmp_path / "llem_ctl.yaml"
    path.write_text('model: gpt2\nname: "bench\\0mark"\n')
    proc = run_llem("run", "--dry-run", str(path), cwd=tmp_path, timeout=120)
    assert_refused(proc, 2, f"{path}:2: control character U+0000 in 'name'")


def test_a_binary_file_given_as_config_names_the_file(run_llem, tmp_path, tiny_model):
    proc = run_llem("run", "--dry-run", str(tiny_model / "model.safetensors"), cwd=tmp_path, timeout=120)
    assert_refused(proc, 2, f"{tiny_model / 'model.safetensors'}:")


# --- broken model and dataset files: exit 1 ------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "fragment"),
    [
        (struct.pack("<Q", 2**64 - 1) + b"{}",
         "its header claims 18,446,744,073,709,551,615 bytes but the file holds 10"),
        (b"\x00\x01", "truncated (2 bytes, less than a safetensors header)"),
        (struct.pack("<Q", 7) + b"garbage", "the safetensors header is not valid JSON"),
    ],
    ids=["huge-header-length", "truncated", "garbage-header"],
)
def test_a_broken_safetensors_file_fails_the_dry_run_naming_it(run_llem, tmp_path, tiny_model, weights, fragment):
    model = garbage_model(tmp_path, tiny_model, weights)
    proc = run_llem("run", "--dry-run", "--model", str(model), cwd=tmp_path, timeout=120)
    assert_refused(proc, 1, "Pre-flight check failed", f"model: {model / 'model.safetensors'}: ", fragment)


def test_a_broken_safetensors_file_stops_a_real_run_in_preflight(run_llem, tmp_path, tiny_model):
    model = garbage_model(tmp_path, tiny_model, struct.pack("<Q", 2**63) + b"{}")
    proc = run_llem("run", "--model", str(model), "-n", "1", "--dataset", "builtin", "-o", str(tmp_path / "out"),
                    cwd=tmp_path, timeout=240)
    assert_refused(proc, 1, "Pre-flight check failed", f"model: {model / 'model.safetensors'}: not a safetensors file")
    assert not (tmp_path / "out").exists()


def test_a_config_json_that_is_not_json_fails_the_dry_run_naming_it(run_llem, tmp_path, tiny_model):
    model = garbage_model(tmp_path, tiny_model, (tiny_model / "model.safetensors").read_bytes())
    (model / "config.json").write_text("{not json")
    proc = run_llem("run", "--dry-run", "--model", str(model), cwd=tmp_path, timeout=120)
    assert_refused(proc, 1, f"model: {model / 'config.json'}: not valid JSON")


def test_a_binary_dataset_stops_the_run_naming_file_and_line(run_llem, tmp_path, tiny_model):
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_bytes(b'{"prompt": "fine"}\n' + bytes(range(128, 256)))
    proc = run_llem("run", "--model", str(tiny_model), "-n", "1", "--dataset", str(dataset),
                    "-o", str(tmp_path / "out"), cwd=tmp_path, timeout=240)
    assert_refused(proc, 1, f"dataset: {dataset}:2: not UTF-8 text")
    assert not (tmp_path / "out").exists()


def test_an_invalid_model_name_is_not_an_internal_error(run_llem, tmp_path):
    proc = run_llem("run", "--dry-run", "--model", "not a repo id", cwd=tmp_path, timeout=120)
    assert "Internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.returncode in (0, 1)  # the dry run may leave the hub id to pre-flight
