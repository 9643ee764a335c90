"""The dry run catches what would certainly stop the real run, and says it as the real run does.

Each gap is one benchmark file (with its dataset file) in a pytester directory, checked through
both front doors: ``llem run --dry-run FILE`` as a subprocess (exit 1, the problem on stderr,
neither torch nor transformers imported) and ``pytest --llem-dry-run`` as a pytester subprocess
(the item fails with the very same line, no heavy import). A last test runs the real run's
pre-flight on every gap file in one process and expects the same lines again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from llem_helpers import imported_modules, llem_process

HEAVY = {"torch", "transformers"}

# Printed at the end of a pytest session: which heavy modules it imported.
IMPORT_WATCH = """
import sys

def pytest_unconfigure(config):
    print("heavy imports:", sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""

PROMPTS = "".join(json.dumps({"prompt": f"prompt {i}"}) + "\n" for i in range(2))


@dataclass
class Gap:
    """A benchmark file (``MODEL`` and ``DIR`` are filled in), files beside it, the expected problem."""

    yaml: str
    problem: str
    files: dict[str, str] = field(default_factory=dict)


BASE = "name: gap\nmodel: MODEL\nprecision: fp32\nmax_output_tokens: 8\n"

GAPS = {
    "n-past-builtin": Gap(
        BASE + "dataset: builtin\nn: 500\n",
        "dataset: 'builtin' has 120 prompts but n=500; lower n or use a larger dataset"),
    "n-past-jsonl": Gap(
        BASE + "dataset: ./prompts.jsonl\nn: 3\n",
        "dataset: 'DIR/prompts.jsonl' has 2 prompts but n=3; lower n or use a larger dataset",
        {"prompts.jsonl": PROMPTS}),
    "past-the-context": Gap(
        "name: gap\nmodel: MODEL\nprecision: fp32\ndataset: builtin\nn: 2\nmax_input_tokens: 1000\nmax_output_tokens: 100\n",
        "max_input_tokens + max_output_tokens = 1100 exceeds the context of 'MODEL' "
        "(1024 tokens, n_positions in MODEL/config.json); lower max_input_tokens or max_output_tokens"),
    "no-prompt-column": Gap(
        BASE + "dataset: ./prompts.jsonl\nn: 1\n",
        "dataset: DIR/prompts.jsonl: no prompt column found (looked for prompt, text, question, instruction, "
        "input, content; the file has body, id); rename the column to 'prompt'",
        {"prompts.jsonl": json.dumps({"body": "hello", "id": 1}) + "\n"}),
    "missing-jsonl": Gap(
        BASE + "dataset: ./nope.jsonl\nn: 1\n",
        "dataset: file 'DIR/nope.jsonl' does not exist; check the path"),
    "dataset-name-typo": Gap(
        BASE + "dataset: buitin\nn: 1\n",
        "dataset: unknown dataset 'buitin' (did you mean 'builtin'?); use one of aienergyscore, builtin, "
        "synthetic or a path to a .jsonl file"),
    "output-dir-under-a-file": Gap(
        BASE + "dataset: builtin\nn: 1\noutput_dir: DIR/blocker/out\n",
        "output_dir: DIR/blocker/out cannot be created: DIR/blocker is a file, not a directory",
        {"blocker": "not a directory\n"}),
}


def unwritable_dir(root: Path) -> Path | None:
    """A directory this process cannot create files in: a mode-0555 one, or for root (whom modes
    do not stop) a read-only sysfs directory; None when there is none here."""
    if os.geteuid() != 0:
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return locked
    candidate = Path("/sys/kernel")
    try:
        with tempfile.TemporaryFile(dir=candidate):
            return None
    except OSError:
        return candidate


def write_gap(root: Path, model: Path, gap: Gap) -> Path:
    for name, text in gap.files.items():
        (root / name).write_text(text, encoding="utf-8")
    path = root / "llem_gap.yaml"
    path.write_text(gap.yaml.replace("MODEL", str(model)).replace("DIR", str(root)), encoding="utf-8")
    return path


def expected(gap: Gap, root: Path, model: Path) -> str:
    return gap.problem.replace("MODEL", str(model)).replace("DIR", str(root))


def check_both_front_doors(pytester: pytest.Pytester, path: Path, problem: str) -> None:
    """``llem run --dry-run`` exits 1 with ``problem``; ``pytest --llem-dry-run`` fails the item with it."""
    proc = llem_process("run", "--dry-run", str(path), cwd=pytester.path, python_flags=("-X", "importtime"), timeout=120)
    assert proc.returncode == 1, (proc.stdout, proc.stderr[-3000:])
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert lines[:2] == ["Error: Pre-flight check failed (1 problem):", f"  - {problem}"], lines
    assert not HEAVY & imported_modules(proc.stderr)

    pytester.makepyfile(importwatch=IMPORT_WATCH)
    result = pytester.runpytest_subprocess("--llem-dry-run", "-p", "importwatch", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert problem in result.outlines, result.stdout.str()
    result.stdout.fnmatch_lines(["heavy imports: []"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("name", GAPS)
def test_each_gap_is_caught_by_both_dry_runs_in_the_same_words(pytester, tiny_model, name):
    gap = GAPS[name]
    path = write_gap(pytester.path, tiny_model, gap)
    check_both_front_doors(pytester, path, expected(gap, pytester.path, tiny_model))


def test_an_unwritable_output_dir_is_caught_by_both_dry_runs(pytester, tiny_model):
    locked = unwritable_dir(pytester.path)
    if locked is None:
        pytest.skip("no directory here that this process cannot write in")
    gap = Gap(BASE + f"dataset: builtin\nn: 1\noutput_dir: {locked}/out\n", "")
    path = write_gap(pytester.path, tiny_model, gap)
    try:
        proc = llem_process("run", "--dry-run", str(path), cwd=pytester.path, timeout=120)
        problem = next(line[4:] for line in proc.stderr.splitlines() if line.startswith("  - "))
        assert problem.startswith(f"output_dir: {locked}/out cannot be created: cannot write in {locked} (")
        assert problem.endswith("; pass a writable directory")
        check_both_front_doors(pytester, path, problem)
    finally:
        if locked.is_relative_to(pytester.path):
            locked.chmod(0o755)


# Runs each file's pre-flight (the real run's first step) and prints {file: problems} as JSON.
PREFLIGHT_SCRIPT = """
import json, sys
from llenergymeasure.config.benchmark_file import load_benchmark_file
from llenergymeasure.core.preflight import preflight
from llenergymeasure.exceptions import PreFlightError

found = {}
for path in sys.argv[1:]:
    config = load_benchmark_file(path).experiments[0].config
    try:
        preflight(config).meter.close()
        found[path] = []
    except PreFlightError as exc:
        found[path] = exc.problems
print(json.dumps(found))
"""


def test_the_real_runs_preflight_words_each_gap_as_the_dry_run(tmp_path, tiny_model):
    paths, problems = [], {}
    for name, gap in GAPS.items():
        root = tmp_path / name
        root.mkdir()
        path = write_gap(root, tiny_model, gap)
        paths.append(str(path))
        problems[str(path)] = [expected(gap, root, tiny_model)]
    proc = subprocess.run([sys.executable, "-c", PREFLIGHT_SCRIPT, *paths], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == problems


def test_a_file_fixed_while_the_process_runs_is_read_again(tmp_path, tiny_model):
    # Per-model and per-file work is cached for a study's many experiments, keyed on each file's
    # version: a dataset or model file that changes is read again, not answered from the cache.
    from llenergymeasure.config.benchmark_file import load_benchmark_file
    from llenergymeasure.core.dry_run import dry_run

    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    gap = GAPS["n-past-jsonl"]
    config = load_benchmark_file(write_gap(tmp_path, model, gap)).experiments[0].config
    assert dry_run(config, None).problems == [expected(gap, tmp_path, model)]
    (tmp_path / "prompts.jsonl").write_text(PROMPTS + json.dumps({"prompt": "a third one"}) + "\n")
    assert dry_run(config, None).problems == []

    (model / "config.json").write_text("{not json")
    [problem] = dry_run(config, None).problems
    assert problem.startswith(f"model: {model / 'config.json'}: not valid JSON")
    shutil.copy(tiny_model / "config.json", model / "config.json")
    assert dry_run(config, None).problems == []
