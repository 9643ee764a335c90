"""Pre-flight and the dry run say the truth, and what a user can do wrong is never "Internal error".

Each case runs ``llem`` (or pytest with the plugin) as a real process and asserts the contract's
exit code and a message naming the file, key or path: a dangling or looping output_dir, a FIFO
where a file belongs, a file where a model directory belongs, pickled weights, a 5000-digit
number, a deleted working directory, an ``against:`` reference that pre-flight would refuse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from llem_helpers import LLEM

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and deleted directories are POSIX")


def assert_said(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    assert "Internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_fifo_is_not_said_not_to_exist_and_is_never_read(run_llem, tmp_path):
    fifo = tmp_path / "prompts.jsonl"
    os.mkfifo(fifo)
    config = tmp_path / "exp.yaml"
    os.mkfifo(config)
    proc = run_llem("run", "--model", "gpt2", "-n", "2", "--dataset", str(fifo), "--dry-run", timeout=60)
    assert_said(proc, 1, f"dataset: cannot read {fifo}: it is a FIFO (named pipe), not a regular file")
    assert "does not exist" not in proc.stderr
    proc = run_llem("run", str(config), "--dry-run", timeout=60)  # open() would block on it for ever
    assert_said(proc, 2, f"{config}: cannot read config file: it is a FIFO (named pipe), not a regular file")


def test_a_file_is_not_a_model_directory_and_pickled_weights_are_never_loaded(run_llem, tmp_path, tiny_model):
    proc = run_llem("run", "--model", "/etc/passwd", "-n", "1", "--dataset", "builtin", "--dry-run", timeout=60)
    assert_said(proc, 1, "model: '/etc/passwd' is a regular file, not a model directory")
    assert "does not exist" not in proc.stderr

    model = tmp_path / "pickled"
    model.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model / name, model / name)
    marker = tmp_path / "pwned"
    # A pickle that runs a command when loaded (what pytorch_model.bin can be).
    (model / "pytorch_model.bin").write_bytes(
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    for args in (("--dry-run",), ("-o", str(tmp_path / "out"))):
        proc = run_llem("run", "--model", str(model), "-n", "1", "--dataset", "builtin", *args, timeout=240)
        assert_said(proc, 1, f"model: {model} has no .safetensors weights; it holds pytorch_model.bin: pickle files")
    assert not marker.exists()


def test_a_dangling_or_looping_output_dir_symlink_is_refused_before_measuring(run_llem, tmp_path, tiny_model):
    dangling, loop = tmp_path / "dangling", tmp_path / "loop"
    dangling.symlink_to(tmp_path / "nowhere")
    loop.symlink_to(loop)
    for link, said in ((dangling, "is a symlink to"), (loop, "a symlink loop")):
        for args in (("--dry-run",), ()):
            proc = run_llem("run", "--model", str(tiny_model), "-n", "1", "--dataset", "builtin", "-o", str(link),
                            *args, timeout=240)
            assert_said(proc, 1, str(link), said)
    assert not (tmp_path / "nowhere").exists()


def test_a_5000_digit_number_is_a_config_error_at_its_line(run_llem, tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text("model: gpt2\nn: " + "9" * 5000 + "\n")
    proc = run_llem("run", str(config), "--dry-run", timeout=60)
    assert_said(proc, 2, f"{config}:2: ", "an integer of 5000 characters")


def test_a_deleted_working_directory_is_said_as_such(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (f"import os, subprocess, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
              f"sys.exit(subprocess.run({[sys.executable, *LLEM[1:], 'run', '--model', 'gpt2', '-n', '1', '--dry-run']!r}"
              ").returncode)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert_said(proc, 1, "the current directory cannot be used", "cd to an existing directory")


def test_the_dry_run_checks_the_against_reference_and_names_keys_misplaced_in_it(tmp_path):
    def pytest_dry_run(text: str) -> subprocess.CompletedProcess:
        path = tmp_path / "llem_ab.yaml"
        path.write_text(text)
        return subprocess.run([sys.executable, "-m", "pytest", "--llem-dry-run", "-p", "no:cacheprovider", str(path)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)

    missing = tmp_path / "no-such-model"
    proc = pytest_dry_run(f"model: gpt2\nn: 2\ndataset: builtin\nagainst:\n  model: {missing}\n")
    assert proc.returncode == 1, proc.stdout
    assert f"against (ab~against): model: path '{missing}' does not exist" in proc.stdout

    proc = pytest_dry_run("model: gpt2\nn: 2\nagainst:\n  precision: fp16\n  expect:\n    energy_per_token_j: {max: 1}\n")
    assert proc.returncode == 2, proc.stdout
    assert "llem_ab.yaml:5: unknown key 'expect' in 'against'; sweep, experiments, expect" in proc.stdout

    proc = pytest_dry_run("model: gpt2\nn: 2\nagainst:\n  precision: fp16\n  name: other\n")
    assert proc.returncode == 2, proc.stdout
    assert "llem_ab.yaml:5: 'name' in 'against' changes nothing that is measured" in proc.stdout


def test_llem_repeats_has_the_benchmark_files_cap(tmp_path):
    from llenergymeasure.config.models import ExperimentConfig
    from pytest_llem.settings import MAX_REPEATS

    assert MAX_REPEATS == next(m.le for m in ExperimentConfig.model_fields["repeats"].metadata if hasattr(m, "le"))
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--llem-repeats", str(MAX_REPEATS + 1), "-p",
                           "no:cacheprovider", "test_x.py"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 4, proc.stderr  # pytest's usage error
    assert f"--llem-repeats {MAX_REPEATS + 1}: a whole number of measurement windows, 1 to {MAX_REPEATS}" in proc.stderr


@pytest.mark.parametrize(("name", "said"), [
    ('"a\\u202eevil"', ":4: control character U+202E in 'experiments.0.name'"),
    ('"a\\u200fx"', ":4: control character U+200F in 'experiments.0.name'"),
    ('"b\\nPASSED fake line"', ":4: the experiment's name 'b\\nPASSED fake line' holds a line break"),
], ids=["bidi-override", "rtl-mark", "line-break"])
def test_a_name_that_would_forge_terminal_lines_is_a_config_error(run_llem, tmp_path, name, said):
    path = tmp_path / "llem_names.yaml"
    path.write_text(f"model: gpt2\nn: 2\nexperiments:\n  - name: {name}\n")
    proc = run_llem("run", str(path), "--dry-run", timeout=60)
    assert_said(proc, 2, f"{path}{said}")
    assert "PASSED fake line  " not in proc.stdout
