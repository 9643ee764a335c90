"""``llem run STUDY --ray``: a study's experiments as Ray tasks on a real local Ray head (CPU only).

The module starts its own Ray head (``ray start --head --block``, 2 CPUs, no GPU, a private temp
dir, HOME and XDG_RUNTIME_DIR, so its auth token and device locks are its own) in a new process
group, and kills that group at the end: no other Ray instance on the machine is touched.
``llem`` runs as a real subprocess connected to it through RAY_ADDRESS.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llem_helpers import LLEM, imported_modules, interruptible, isolated_env_vars, leftovers, llem_process, result_files
from llenergymeasure.results.model import TIMELINE_SUFFIX, ExperimentResult

pytest.importorskip("ray", reason="llem run --ray needs the [ray] extra: pip install 'pytest-llem[ray]'")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT semantics are POSIX"),
]

HEAD_START_LIMIT_S = 120
STOP_LIMIT_S = 60

SWEEP = """\
name: sweep
model: {model}
dataset: builtin
n: 4
precision: fp32
baseline: {{enabled: false}}
energy: {{source: cpu_estimate}}
warmup: {{n_warmup: 1}}
sweep:
  pytorch.batch_size: [1, 2]
  max_output_tokens: [4, 8]
"""

SWEEP_IDS = [f"sweep[batch_size={b},max_output_tokens={t}]" for b in (1, 2) for t in (4, 8)]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of an ``llem`` connected to this module's Ray head (RAY_ADDRESS set)."""
    root = tmp_path_factory.mktemp("ray-env")
    env = isolated_env_vars(root)
    for name in ("HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        (root / name.lower()).mkdir(mode=0o700)
        env[name] = str(root / name.lower())
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.pop("RAY_ADDRESS", None)
    # Ray's unix socket paths must stay short (107 bytes): its temp dir is not under pytest's.
    temp_dir = tempfile.mkdtemp(prefix="llem-ray-")
    port, client_port, dashboard_port = free_ports(3)
    log = root / "ray-head.log"
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray) if ray.exists() else "ray", "start", "--head", "--block", f"--port={port}",
               "--num-cpus=2", "--num-gpus=0", "--disable-usage-stats", "--include-dashboard=false",
               "--object-store-memory=100000000", f"--temp-dir={temp_dir}", f"--dashboard-port={dashboard_port}"]
    if ray_client_installed():  # else no client server starts, and ray start refuses the option
        command.append(f"--ray-client-server-port={client_port}")
    with log.open("w") as out:
        head = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=root, start_new_session=True)
    try:
        wait_for_head(head, log)
        yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    finally:
        stop_group(head, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def ray_client_installed() -> bool:
    """Whether ``ray[client]`` is installed (``pip install ray`` alone has no client server)."""
    try:
        from ray._private.utils import get_ray_client_dependency_error
    except ImportError:
        return False
    return get_ray_client_dependency_error() is None


def wait_for_head(head: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HEAD_START_LIMIT_S
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if head.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the Ray head did not start (rc {head.poll()}):\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def stop_group(head: subprocess.Popen, temp_dir: str) -> None:
    """SIGTERM to ``ray start --block`` (it stops what it started), SIGKILL to its process group
    after a few seconds (its drain can wait 30 s for idle workers), then to any process still
    naming this head's private temp dir (a worker outside the group): only what this module started."""
    with contextlib.suppress(ProcessLookupError):
        head.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)
    head.wait(timeout=STOP_LIMIT_S)
    deadline = time.monotonic() + 10
    while processes_naming(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in processes_naming(temp_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def processes_naming(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (Linux; elsewhere none are found)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
    return pids


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """The summary table: its header cells, and each row's cells (split on runs of 2+ spaces)."""
    lines = stdout.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("----")]
    assert len(rules) == 1, stdout
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines[rules[0] - 1:] if line.strip()]
    return cells[0], cells[2:]


def without_numbers(rows: list[list[str]], header: list[str]) -> list[dict[str, str]]:
    numeric = {"J/token", "tokens/s"}
    return [{key: value for key, value in zip(header, row) if key not in numeric} for row in rows]


def test_a_sweep_on_ray_saves_every_result_and_prints_the_local_table(tiny_model, tmp_path, ray_env):
    study = tmp_path / "llem_sweep.yaml"
    study.write_text(SWEEP.format(model=tiny_model))
    out = tmp_path / "out"
    proc = llem_process("run", str(study), "--ray", "-o", str(out), cwd=tmp_path, env=ray_env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    header, rows = table(proc.stdout)
    assert [row[0] for row in rows] == SWEEP_IDS  # the study's order, whatever order they finished in
    host = socket.gethostname()
    for exp_id in SWEEP_IDS:
        assert re.search(rf"^\[\d/4\] {re.escape(exp_id)}: done on {re.escape(host)}$", proc.stderr, re.M), proc.stderr
    results = {path: ExperimentResult.load(path) for path in result_files(out)}
    assert sorted(r.name for r in results.values()) == sorted(SWEEP_IDS)
    for path, result in results.items():
        assert result.environment.host == host
        assert result.environment.ray_node_id  # the Ray node it ran on
        assert result.output_tokens > 0
        sidecar = json.loads(path.with_name(path.stem + TIMELINE_SUFFIX).read_text())  # the timeline came back too
        assert sidecar["experiment_id"] == result.experiment_id and sidecar["session"]["devices"]
    assert leftovers(out) == []

    local_env = {key: value for key, value in ray_env.items() if key != "RAY_ADDRESS"}
    local = llem_process("run", str(study), cwd=tmp_path, env=local_env)
    assert local.returncode == 0, local.stderr
    local_header, local_rows = table(local.stdout)
    assert header == local_header
    assert without_numbers(rows, header) == without_numbers(local_rows, local_header)


def test_an_experiment_that_fails_on_ray_does_not_stop_the_others(tiny_model, tmp_path, ray_env):
    study = tmp_path / "llem_pair.yaml"
    study.write_text(SWEEP.format(model=tiny_model).split("sweep:\n")[0]
                     + "experiments:\n  - {name: fine, max_output_tokens: 4}\n"
                       "  - {name: broken, dataset: missing-prompts.jsonl}\n")
    out = tmp_path / "out"
    proc = llem_process("run", str(study), "--ray", "-o", str(out), cwd=tmp_path, env=ray_env)
    assert proc.returncode == 1, proc.stderr
    _, rows = table(proc.stdout)
    assert [row[0] for row in rows] == ["fine", "broken"]
    assert rows[0][-1] == "ok" and rows[1][-1].startswith("ERROR") and "missing-prompts.jsonl" in rows[1][-1]
    assert re.search(r"^\[\d/2\] broken: failed on ", proc.stderr, re.M), proc.stderr
    assert "Error in broken:" in proc.stderr and "missing-prompts.jsonl" in proc.stderr
    assert "Traceback" not in proc.stderr
    [saved] = result_files(out)
    assert ExperimentResult.load(saved).name == "fine"


def lock_holder(env: dict[str, str]) -> int | None:
    """The pid holding this Ray head's CPU lock (a worker measuring), from the lock file, or None."""
    lock = Path(env["XDG_RUNTIME_DIR"], "llem-locks", "cpu.lock")
    try:
        pid, _, holder = lock.read_text().partition(" ")
    except OSError:
        return None
    return int(pid) if pid.isdigit() and "llem run --ray" in holder else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(("signum", "code", "message"), [
    pytest.param(signal.SIGINT, 130, "Interrupted.", id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, "Terminated.", id="SIGTERM"),
])
def test_a_signal_cancels_the_tasks_and_keeps_what_was_saved(tiny_model, tmp_path, ray_env, signum, code, message):
    study = tmp_path / "llem_long.yaml"
    study.write_text(SWEEP.format(model=tiny_model).split("sweep:\n")[0].replace("n: 4\n", "")
                     + "pytorch: {batch_size: 1}\nexperiments:\n  - {name: quick, n: 2, max_output_tokens: 4}\n"
                       "  - {name: long-a, n: 120, max_output_tokens: 200}\n"
                       "  - {name: long-b, n: 120, max_output_tokens: 200, random_seed: 7}\n")
    out = tmp_path / "out"
    before = lock_holder(ray_env)  # the lock file keeps the last holder's pid: an earlier test's
    proc = subprocess.Popen([*LLEM, "run", str(study), "--ray", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=tmp_path, env=ray_env,
                            preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            holder = lock_holder(ray_env)  # a task of this run holds the CPU: it is on a worker, measuring
            if holder is not None and holder != before and alive(holder):
                break
            time.sleep(0.1)
        assert proc.poll() is None and holder not in (None, before), "no task started measuring"
        time.sleep(2)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=STOP_LIMIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert message in stderr and "Traceback" not in stderr
    assert re.search(r"^Stopped: \d finished, \d cancelled \(", stderr, re.M), stderr
    assert "long-a" in stderr.split("Stopped:")[1] or "long-b" in stderr.split("Stopped:")[1]
    for path in result_files(out):  # what finished before Ctrl-C is whole, and listed with where it is
        result = ExperimentResult.load(path)
        assert any(line.startswith(result.name + " ") and line.rstrip().endswith(str(path))
                   for line in stdout.splitlines())
    assert leftovers(out) == []
    deadline = time.monotonic() + STOP_LIMIT_S
    while alive(holder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(holder), f"the Ray worker measuring (pid {holder}) still runs after Ctrl-C"


def test_help_dry_run_and_config_errors_never_import_ray(tiny_model, tmp_path, ray_env):
    study = tmp_path / "llem_sweep.yaml"
    study.write_text(SWEEP.format(model=tiny_model))
    importtime = ("-X", "importtime")
    runs = {
        "help": llem_process("--help", env=ray_env, python_flags=importtime),
        "run help": llem_process("run", "--help", env=ray_env, python_flags=importtime),
        "dry run": llem_process("run", "--dry-run", str(study), "--ray", env=ray_env, python_flags=importtime),
    }
    broken = tmp_path / "llem_broken.yaml"
    broken.write_text(SWEEP.format(model=tiny_model).replace("n: 4", "n: 4\nbatchsize: 2"))
    runs["config error"] = llem_process("run", str(broken), "--ray", env=ray_env, python_flags=importtime)
    assert runs["help"].returncode == 0, runs["help"].stderr
    assert runs["run help"].returncode == 0 and "--ray-address" in runs["run help"].stdout
    assert runs["dry run"].returncode == 0, runs["dry run"].stderr
    assert runs["config error"].returncode == 2, runs["config error"].stderr
    for what, proc in runs.items():
        assert "ray" not in imported_modules(proc.stderr), what


def test_a_ray_address_where_nothing_listens_is_a_preflight_error(tmp_path, ray_env, tiny_model):
    study = tmp_path / "llem_sweep.yaml"
    study.write_text(SWEEP.format(model=tiny_model))
    proc = llem_process("run", str(study), "--ray-address", f"127.0.0.1:{free_ports(1)[0]}", env=ray_env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "no Ray cluster answers at 127.0.0.1:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("listener", ["http", "silent"])
def test_a_ray_address_where_something_else_listens_is_refused_within_seconds(tmp_path, ray_env, tiny_model,
                                                                                listener):
    """Without the check, ray.init retries a web server's port for minutes, printing Ray's logs."""
    import http.server
    import threading

    study = tmp_path / "llem_sweep.yaml"
    study.write_text(SWEEP.format(model=tiny_model))
    if listener == "http":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port, close = server.server_address[1], server.shutdown
    else:  # accepts, never answers
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port, close = sock.getsockname()[1], sock.close
    try:
        started = time.monotonic()
        proc = llem_process("run", str(study), "--ray-address", f"127.0.0.1:{port}", env=ray_env, timeout=120)
        elapsed = time.monotonic() - started
    finally:
        close()
    assert proc.returncode == 1, proc.stderr
    assert f"something listens at 127.0.0.1:{port}, but it is not a Ray cluster" in proc.stderr
    assert ("(it answered '" if listener == "http" else "did not answer an HTTP/2 handshake") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert elapsed < 60  # a 5 s probe and llem's start; ray.init alone would go on for minutes


def test_ray_client_without_its_extra_is_a_preflight_error(tmp_path, ray_env, tiny_model):
    if ray_client_installed():
        pytest.skip("ray[client] is installed here")
    study = tmp_path / "llem_sweep.yaml"
    study.write_text(SWEEP.format(model=tiny_model))
    proc = llem_process("run", str(study), "--ray-address", "ray://127.0.0.1:10001", env=ray_env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Ray address ray://127.0.0.1:10001: Ray Client requires pip package `ray[client]`" in proc.stderr
    assert "Internal error" not in proc.stderr


def test_an_error_comes_back_from_a_task_as_the_same_error():
    from llenergymeasure.core.locks import LockError
    from llenergymeasure.exceptions import BackendError, ConfigError, PreFlightError
    from llenergymeasure.executors.ray import Failure, TaskError

    for error, kind, code in [(PreFlightError(["dataset: x.jsonl missing", "n: too many"]), PreFlightError, 1),
                              (ConfigError(["energy.carbon_country: unknown"]), ConfigError, 2),
                              (BackendError("generate failed"), BackendError, 1),
                              (LockError("gave up waiting for cpu"), TaskError, 1)]:
        back = pickle.loads(pickle.dumps(Failure.of(error))).error()  # as Ray carries it
        assert type(back) is kind and str(back) == str(error) and back.exit_code == code
        assert getattr(back, "problems", None) == getattr(error, "problems", None)
