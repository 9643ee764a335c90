"""``llem --version`` and ``llem config``: what is installed, and what this machine can measure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

import llenergymeasure
from llenergymeasure.cli import app


def config_rows(stdout: str) -> dict[str, str]:
    """``llem config`` rows keyed by label (top level and the indented energy sources), text as value."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^\s*(user config|NVIDIA driver|energy sources|\S+)\s*(.*)$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_version_prints_the_installed_version(run_llem):
    proc = run_llem("--version", timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"llem {version('pytest-llem')}"
    assert proc.stdout.strip() == f"llem {llenergymeasure.__version__}"


def test_the_console_script_is_installed_and_runs():
    script = Path(sys.executable).with_name("llem")
    if not script.exists():
        pytest.skip("no llem console script next to this interpreter (not installed into this environment)")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"llem {llenergymeasure.__version__}"


def test_config_lists_versions_energy_sources_and_the_user_config(run_llem):
    proc = run_llem("config", timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = config_rows(proc.stdout)
    assert sys.executable in rows["python"]
    assert version("torch") in rows["torch"]
    assert version("transformers") in rows["transformers"]
    assert "energy sources" in rows
    for source in ("nvml", "rapl", "cpu_estimate"):
        assert source in rows, proc.stdout
        assert "available" in rows[source]
    assert "an estimate, not a measurement" in rows["cpu_estimate"]
    # The isolated environment points RAPL at an empty directory: it says so, with the path.
    assert rows["rapl"].startswith("unavailable:")
    assert os.environ["LLEM_POWERCAP_ROOT"] in rows["rapl"]
    assert f"{os.environ['LLEM_CONFIG']} (not found)" in rows["user config"]
    assert "Traceback" not in proc.stderr


def test_config_sees_a_user_config_once_it_exists(run_llem):
    Path(os.environ["LLEM_CONFIG"]).write_text("defaults:\n  precision: fp32\n")
    proc = run_llem("config", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"{os.environ['LLEM_CONFIG']} (found)" in proc.stdout


def test_in_process_cli_without_a_command_shows_help_and_lists_the_commands():
    result = CliRunner().invoke(app, [])
    assert "Usage:" in result.output
    for command in ("run", "config"):
        assert command in result.output
    assert result.exit_code in (0, 2)  # click's no_args_is_help: 2 since click 8.2


def test_in_process_run_help_documents_every_flag():
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    for flag in ("--model", "--backend", "--dataset", "-n", "--batch-size", "--precision", "--repeats", "--output",
                 "--dry-run", "--quiet", "--verbose"):
        assert flag in result.output, flag


@pytest.mark.parametrize("command", ["run", "compare", "ab", "report", "config"])
def test_help_shows_flags_as_flags_and_keeps_bracketed_text(run_llem, command):
    proc = run_llem(command, "--help", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "<bool>" not in proc.stdout  # a flag takes no value: `--dry-run true` would read "true" as a file
    if command == "run":
        assert re.search(r"--dry-run\s+Validate", proc.stdout) and "[ray] extra" in proc.stdout, proc.stdout
