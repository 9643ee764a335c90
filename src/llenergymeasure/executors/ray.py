"""``llem run --ray``: a study's experiments as Ray tasks, on a local Ray instance or a cluster.

Each experiment becomes one task asking Ray for one CPU and the GPUs its config needs
(``core.placement.gpus_needed``: 0 on the CPU; for ``pytorch.device: auto``, 1 when the cluster
has GPUs, else 0). On the node that gets it, the task takes the device locks the pytest plugin
takes (``core.locks``: the UUIDs of the GPUs Ray gave it, or the host's CPU, so two CPU
experiments on one host never measure at once: RAPL and the CPU estimate cover the whole
package), runs ``core.runner.measure`` and returns the result to the driver, which saves it and
prints the summary as a local study does. Results name the host (``environment.host``) and the
Ray node (``environment.ray_node_id``) they were measured on.

What every node needs: llenergymeasure installed, with the backend's extras (and the CUDA build
of torch on GPU nodes), in the Python environment its raylet runs; the model and any dataset file
reachable there (a hub id in the node's cache or online, or a path that exists on the node).
Relative paths are read from the driver's working directory where the node has that directory.
The config is resolved on the driver (user config included); a worker's environment variables
are its raylet's, not the driver's.

One experiment's error (a pre-flight problem, a backend failure, a worker that died) comes back
as data and is reported; the others go on. Closing the generator of ``run_tasks`` early (Ctrl-C,
SIGTERM) cancels the tasks not yet finished. ``import ray`` happens only inside the functions
here: ``llem --help`` and dry runs never load it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llenergymeasure.exceptions import LLEMError, PreFlightError
from llenergymeasure.text import printable

if TYPE_CHECKING:
    from llenergymeasure.config.models import ExperimentConfig
    from llenergymeasure.results.model import ExperimentResult

INSTALL_HINT = "pip install 'pytest-llem[ray]'"
WAIT_S = 0.5  # ray.wait in short steps, so Ctrl-C and SIGTERM are handled at once
CONNECT_TIMEOUT_S = 5.0


class TaskError(LLEMError):
    """A task's error that is not one of llenergymeasure's own classes (a worker that died, a bug)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Failure:
    """Why a task has no result, as plain data (our exceptions do not survive pickling intact)."""

    kind: str  # the exception's class name
    message: str
    problems: list[str] | None
    exit_code: int

    @classmethod
    def of(cls, exc: Exception) -> Failure:
        return cls(type(exc).__name__, str(exc), getattr(exc, "problems", None), getattr(exc, "exit_code", 1))

    def error(self) -> LLEMError:
        """The exception again, of its own class where that is one of llenergymeasure's."""
        from llenergymeasure import exceptions

        kind = getattr(exceptions, self.kind, None)
        if kind in (exceptions.ConfigError, exceptions.PreFlightError) and self.problems:
            return kind(self.problems)
        if kind in (exceptions.BackendError, exceptions.ExperimentError):
            return kind(self.message)
        return TaskError(self.message, self.exit_code)


@dataclass
class Outcome:
    """What one task gives back: its result or why there is none, and where it ran (None: unknown)."""

    result: ExperimentResult | None
    failure: Failure | None
    host: str | None = None
    node_id: str | None = None


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise PreFlightError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def run_tasks(experiments: list[tuple[str, ExperimentConfig]], address: str | None) -> Iterator[tuple[int, Outcome]]:
    """Run each experiment as a Ray task; yield ``(its index, its Outcome)`` as each one finishes.

    ``address``: a cluster (``host:port`` or ``ray://...``); None: Ray's own choice (RAY_ADDRESS,
    else a cluster started with ``ray start`` on this machine, else a new local instance).
    Closing the generator before the end cancels (kills) the tasks not finished; this driver
    disconnects from Ray on the way out (a local instance it started stops).
    """
    ray = import_ray()
    connect(ray, address)
    pending: dict[Any, int] = {}
    try:
        task = ray.remote(run_experiment_task)
        cwd = os.getcwd()
        unplaceable: list[tuple[int, Outcome]] = []
        gpu_nodes = node_gpu_counts(ray)
        for index, (exp_id, config) in enumerate(experiments):
            gpus = task_gpus(config, gpu_nodes)
            if gpus > max(gpu_nodes, default=0):
                failure = Failure("PreFlightError", "", [too_few_gpus(gpus, gpu_nodes)], 1)
                unplaceable.append((index, Outcome(None, failure)))
                continue
            ref = task.options(num_cpus=1, num_gpus=gpus, max_retries=0, name=exp_id).remote(exp_id, config, cwd)
            pending[ref] = index
        yield from unplaceable
        while pending:
            with SigtermKept() as kept:
                try:
                    done, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                except KeyboardInterrupt as interrupt:
                    raise kept.raised or interrupt from None
            for ref in done:
                index = pending.pop(ref)
                yield index, collect(ray, ref)
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished, or Ray is going away: nothing to cancel
                ray.cancel(ref, force=True)
        ray.shutdown()


def connect(ray: Any, address: str | None) -> None:
    """``ray.init``; PreFlightError when nothing answers at the address. This process keeps its
    own SIGTERM handler (ray.init replaces it with one that exits without clean-up)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_reachable(address)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, log_to_driver=True)
    except ConnectionError as exc:
        raise PreFlightError(f"could not connect to the Ray cluster at {address}: {exc}") from None
    except ValueError as exc:  # Ray's word for an address it cannot use (ray:// without ray[client], ...)
        raise PreFlightError(f"Ray address {address}: {' '.join(str(exc).split())}") from None
    finally:
        if previous is not None:  # None: a handler not set from Python, which cannot be put back
            signal.signal(signal.SIGTERM, previous)


class SigtermKept(contextlib.AbstractContextManager):
    """Within the block, what this process's SIGTERM handler raises is kept: Ray turns any
    KeyboardInterrupt raised by a handler during ``ray.wait`` into a plain KeyboardInterrupt,
    and ``raised`` holds the original (``llem``'s Terminated, for exit 143)."""

    def __init__(self) -> None:
        self.raised: BaseException | None = None
        self.previous: Any = None

    def __enter__(self) -> SigtermKept:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGTERM)
            if callable(self.previous):
                signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        try:
            self.previous(signum, frame)
        except BaseException as exc:
            self.raised = exc
            raise

    def __exit__(self, *exc_info: object) -> None:
        # The handler may have replaced itself (a second SIGTERM then kills): keep what it set.
        if callable(self.previous) and signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self.previous)


def check_reachable(address: str) -> None:
    """PreFlightError naming ``address`` when no Ray cluster answers there: nothing listens, or
    something that is not Ray's GCS (ray.init would retry for minutes, printing Ray's own logs)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PreFlightError(f"Ray address {address!r} is not HOST:PORT (the head's `ray start` port, "
                             "e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S) as sock:
            answer = _http2_answer(sock)
    except OSError as exc:
        raise PreFlightError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                             "`ray start --head` there, or check RAY_ADDRESS / --ray-address") from None
    if answer is not None:
        raise PreFlightError(f"something listens at {address}, but it is not a Ray cluster (it {answer}); give the "
                             "port of the head's `ray start` (6379 by default) in RAY_ADDRESS / --ray-address")


# What an HTTP/2 client sends first: the preface, then an empty SETTINGS frame.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _http2_answer(sock: socket.socket) -> str | None:
    """None when the peer answers as an HTTP/2 (gRPC) server does, with a SETTINGS frame, as Ray's
    GCS does; else what it did instead."""
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.sendall(_HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            part = sock.recv(9 - len(head))
            if not part:
                return "closed the connection" if not head else f"answered {head!r}"
            head += part
    except socket.timeout:
        return f"did not answer an HTTP/2 handshake within {CONNECT_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"broke off the connection ({exc.strerror or exc})"
    if head[3] == 0x04:  # a frame header whose type is SETTINGS
        return None
    return f"answered {printable(head.decode('latin-1'))!r}..."


def node_gpu_counts(ray: Any) -> list[int]:
    """The GPUs of each live node of the cluster."""
    return [int(node.get("Resources", {}).get("GPU", 0)) for node in ray.nodes() if node.get("Alive")]


def task_gpus(config: ExperimentConfig, gpu_nodes: list[int]) -> int:
    """``num_gpus`` for ``config``'s task: what it needs, or for ``device: auto`` 1 when the cluster has a GPU."""
    from llenergymeasure.core.placement import gpus_needed

    needed = gpus_needed(config)
    if needed is None:
        return 1 if any(gpu_nodes) else 0
    return needed


def too_few_gpus(gpus: int, gpu_nodes: list[int]) -> str:
    largest = max(gpu_nodes, default=0)
    return (f"it needs {gpus} GPU(s) on one node, and no node of the Ray cluster has that many (the largest has "
            f"{largest}); Ray would wait for one forever")


def collect(ray: Any, ref: Any) -> Outcome:
    """A finished task's Outcome; a Ray-level failure (the worker died, a bug in the task) as a Failure."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the task raised something other than our errors
        cause = getattr(exc, "cause", None) or exc
        return Outcome(None, Failure("TaskError", f"the Ray task failed: {type(cause).__name__}: {cause}", None, 1))
    except ray.exceptions.RayError as exc:  # worker crashed or was killed (out of memory), node lost, ...
        text = " ".join(str(exc).split())
        return Outcome(None, Failure("TaskError", f"the Ray task failed: {type(exc).__name__}: {text}", None, 1))


# On the worker node.

def run_experiment_task(exp_id: str, config: ExperimentConfig, driver_cwd: str) -> Outcome:
    """Measure ``config`` here, holding the locks of the devices it measures; errors as data."""
    import ray

    from llenergymeasure.core.locks import LockError, measurement_lock
    from llenergymeasure.core.runner import measure

    host, node_id = socket.gethostname(), ray.get_runtime_context().get_node_id()
    try:
        with working_directory(driver_cwd), measurement_lock(task_devices(ray.get_gpu_ids()),
                                                             holder=f"llem run --ray {exp_id}", notify=say):
            result = measure(config, progress=False)
    except (LLEMError, LockError) as exc:
        return Outcome(None, Failure.of(exc), host, node_id)
    result.environment.ray_node_id = node_id
    return Outcome(result, None, host, node_id)


def task_devices(gpu_ids: list[Any]) -> list[str]:
    """The devices to lock: the UUIDs of the GPUs Ray gave the task (it sees only those), or the CPU."""
    if not gpu_ids:
        return ["cpu"]
    from llenergymeasure.energy.sources import nvml_status

    _, gpus, _ = nvml_status()
    return [gpu.uuid for gpu in gpus] or [f"ray-gpu-{gpu_id}" for gpu_id in gpu_ids]


@contextlib.contextmanager
def working_directory(path: str) -> Iterator[None]:
    """In ``path`` when this node has it (relative dataset and model paths mean what they meant to the driver)."""
    previous = os.getcwd()
    if not os.path.isdir(path):
        yield
        return
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def say(text: str) -> None:
    """A lock wait, on the worker's stderr (Ray forwards it to the driver's)."""
    print(text, file=sys.stderr, flush=True)
