"""The distribution as a user gets it: the wheel built from this tree, installed with its ``[pytorch]``
extra into a fresh venv on a CPU machine, used from a directory outside the clone.

The CPU torch wheel goes in first (the same torch as the running environment's, pinned exactly), then
``<wheel>[pytorch]``: nothing CUDA (``nvidia-*`` wheels, ``triton``) may follow it in. Then, with the
fresh venv's interpreter and a working directory outside the clone, README's "Use it in your
repository" files and push check, and a measuring run of ``llem run`` on a tiny offline model.

pip runs with its own configuration (index, find-links, cache): no ``--isolated``, no ``--no-cache-dir``.
The module's venv is built once and shared by its tests; a couple of minutes, mostly pip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from llem_helpers import isolated_env_vars, push_check_args, result_files, write_path_blocks
from test_readme_adoption import blocks, section

REPO = Path(__file__).resolve().parents[2]
PIP_TIMEOUT = 900

pytestmark = pytest.mark.slow


def _run(command: list, *, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{' '.join(done.args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _cpu_torch_pin() -> str:
    """``torch==<version>`` of the torch this suite runs with (a CPU build in CI: ``.ci/run`` installs it)."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        pytest.skip("no torch in the running environment to pin the fresh venv's CPU torch to")
    import torch

    if torch.version.cuda is not None:  # a GPU machine: the check is about CPU machines
        pytest.skip(f"torch {version} here is a CUDA build; this test installs the CPU build of a CPU machine")
    return f"torch=={version}"


class FreshInstall:
    """A venv holding only the wheel (with ``[pytorch]``) and what pip pulled for it, plus a directory
    outside the clone to use it from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.wheelhouse = root / "wheelhouse"
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.project = root / "project"  # the user's repository: outside the clone
        self.env = isolated_env_vars(root)
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
            self.env.pop(name, None)  # nothing may lead the fresh venv's python back to this tree
        self.env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["XDG_RUNTIME_DIR"] = str(root / "runtime")  # device locks of its own
        self.env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        (root / "runtime").mkdir(mode=0o700)
        self.project.mkdir()

    def build(self) -> None:
        # pip wheel builds through the pyproject's backend (hatchling, in an isolated build env): the same
        # wheel `python -m build --wheel` makes, with nothing to install here first.
        _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", self.wheelhouse, REPO],
                 cwd=self.root, env=self.env, timeout=PIP_TIMEOUT))
        [self.wheel] = self.wheelhouse.glob("pytest_llem-*.whl")

    def install(self) -> None:
        _ok(_run([sys.executable, "-m", "venv", self.venv], cwd=self.root, env=self.env))
        # --no-compile: no .pyc for the thousands of modules of torch and transformers up front (a minute
        # on a small runner); Python writes those it imports when it imports them.
        pip = [self.python, "-m", "pip", "install", "-q", "--no-compile"]
        _ok(_run([*pip, _cpu_torch_pin()], cwd=self.root, env=self.env, timeout=PIP_TIMEOUT))
        _ok(_run([*pip, f"{self.wheel}[pytorch]"], cwd=self.root, env=self.env, timeout=PIP_TIMEOUT))

    def distributions(self) -> dict[str, str]:
        """Normalized name -> version of every distribution in the venv."""
        code = ("import json, re; from importlib import metadata; print(json.dumps({re.sub(r'[-_.]+', '-', "
                "d.metadata['Name']).lower(): d.version for d in metadata.distributions()}))")
        return json.loads(_ok(_run([self.python, "-c", code], cwd=self.project, env=self.env)).stdout)

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
        """``ARGS[0]`` from the venv's bin (``python``, ``llem``), in the project directory."""
        return _run([self.venv / "bin" / args[0], *args[1:]], cwd=self.project, env=self.env, timeout=timeout)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> FreshInstall:
    install = FreshInstall(tmp_path_factory.mktemp("wheel-install"))
    assert not install.project.resolve().is_relative_to(REPO), "the user's directory must lie outside the clone"
    install.build()
    install.install()
    return install


def test_the_wheel_holds_both_packages_the_prompt_data_and_both_entry_points(fresh):
    with zipfile.ZipFile(fresh.wheel) as wheel:
        names = set(wheel.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_text = wheel.read(entry_points).decode()
    shipped = {n for n in names if ".dist-info/" not in n}
    tracked = {p.relative_to(REPO / "src").as_posix() for package in ("llenergymeasure", "pytest_llem")
               for p in (REPO / "src" / package).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert tracked <= shipped, f"files under src/ missing from the wheel: {sorted(tracked - shipped)}"
    assert {"llenergymeasure/__init__.py", "pytest_llem/__init__.py",
            "llenergymeasure/datasets/builtin_prompts.jsonl"} <= shipped
    assert re.search(r"\[console_scripts\]\s*llem = llenergymeasure\.cli:main", entry_text), entry_text
    assert re.search(r"\[pytest11\]\s*llem = pytest_llem\.plugin", entry_text), entry_text


def test_installing_the_wheel_with_pytorch_after_cpu_torch_pulls_nothing_cuda(fresh):
    installed = fresh.distributions()
    cuda = sorted(name for name in installed
                  if (name.startswith("nvidia-") and name != "nvidia-ml-py")  # nvidia-ml-py: NVML bindings, pure Python
                  or name.startswith("cuda-") or name == "triton")
    assert not cuda, f"CUDA wheels in a CPU install: {cuda}"
    assert installed["torch"] == metadata.version("torch"), "pip replaced the CPU torch"
    assert {"pytest-llem", "transformers", "pytest"} <= installed.keys()


def test_the_installed_packages_come_from_the_venv_not_the_clone(fresh):
    code = "import llenergymeasure, pytest_llem; print(llenergymeasure.__file__); print(pytest_llem.__file__)"
    for path in _ok(fresh.run("python", "-c", code)).stdout.split():
        assert Path(path).resolve().is_relative_to(fresh.venv.resolve()), path
    assert _ok(fresh.run("llem", "--version")).stdout.strip().endswith(fresh.wheel.name.split("-")[1])


def test_readmes_push_check_passes_outside_the_clone_with_no_warning(fresh):
    steps = blocks(section("Use it in your repository"))
    written = write_path_blocks(steps, fresh.project)
    assert len(written) >= 3, "the section lost its benchmark file, its pytest config or its CI job"
    done = _ok(fresh.run("python", "-m", "pytest", *push_check_args(steps), "-W", "error", "-p", "no:cacheprovider"))
    assert "plugins: llem-" in done.stdout, done.stdout  # loaded through the pytest11 entry point
    assert re.search(r"\b\d+ passed\b", done.stdout) and "warning" not in done.stdout.lower(), done.stdout


def test_a_measuring_run_on_a_tiny_model_writes_its_result(fresh):
    model = fresh.root / "tiny-gpt2"
    _ok(fresh.run("python", "-m", "llenergymeasure.testing.tiny_model", model))
    done = _ok(fresh.run("llem", "run", "--model", model, "-d", "builtin", "-n", "4", "--batch-size", "2",
                         "-p", "fp32", "-o", "out/", timeout=600))
    [result] = result_files(fresh.project / "out")
    data = json.loads(result.read_text(encoding="utf-8"))
    assert data["n_prompts"] == 4 and data["output_tokens"] > 0, data
    assert data["estimated"] is True and "(estimated)" in done.stdout  # a CPU machine: labelled, not passed off
