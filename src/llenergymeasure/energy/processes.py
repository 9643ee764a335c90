"""A server's processes on this machine, and the CPU time they spend (for ``backend: openai``).

The CPU estimate of a server counts the CPU time of the server's process and of every process
below it (vLLM's engine core, tokenizer workers, ...), not the client's:

    tree = find_server(pid=None, port=8000)   # by pid, or by the process listening on the port
    tree.cpu_seconds()                        # user + system seconds of the tree so far

``cpu_seconds`` only grows: a process that ends keeps the time it was last seen with, and one
that appears counts from its own start (zero). A short-lived child that starts and ends between
two readings is missed; a server's workers live as long as it does.

``is_this_machine(host)`` says whether a URL's host is this machine (loopback, one of its names
or addresses): only then can its devices be measured here.

psutil is imported inside: only the openai backend needs it (``pip install 'pytest-llem[openai]'``).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

RESOLVE_TIMEOUT_S = 2.0  # a name lookup that takes longer is a broken resolver, not this machine


class ServerNotFound(LookupError):
    """The server's process could not be found; the message says why and what to set."""


class ProcessTree:
    """One or more root processes and, at every reading, all of their descendants."""

    def __init__(self, roots: list[Any]) -> None:
        self.roots = roots
        self.pids = [root.pid for root in roots]
        self._seen: dict[tuple[int, float], float] = {}  # (pid, create time) -> CPU seconds last seen
        self._lock = threading.Lock()  # read by the window's edges and by samplers' threads

    def cpu_seconds(self) -> float:
        with self._lock:
            return self._cpu_seconds()

    def _cpu_seconds(self) -> float:
        import psutil

        gone = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)
        for root in self.roots:
            try:
                processes = [root, *root.children(recursive=True)]
            except gone:
                continue
            for process in processes:
                try:
                    with process.oneshot():
                        times, created = process.cpu_times(), process.create_time()
                except gone:
                    continue
                self._seen[(process.pid, created)] = times.user + times.system
        return sum(self._seen.values())


def _psutil() -> Any:
    try:
        import psutil
    except ImportError:
        raise ServerNotFound("psutil is not installed; install it with: pip install 'pytest-llem[openai]'") from None
    return psutil


def find_server(pid: int | None = None, port: int | None = None) -> ProcessTree:
    """The process tree of the server: process ``pid``, else the process(es) listening on TCP
    ``port`` of this machine (the topmost, when a socket is shared with children). Given both,
    ``pid`` must be the listener or one of its ancestors, where a listener can be seen: a file
    cannot point the CPU estimate at an idle process to make a server look cheap."""
    psutil = _psutil()
    if pid is not None:
        try:
            process = psutil.Process(pid)
            if port is not None:
                _check_serves(psutil, process, port)
            return ProcessTree([process])
        except psutil.NoSuchProcess:
            raise ServerNotFound(f"openai.server_pid: there is no process {pid} on this machine") from None
        except psutil.AccessDenied:
            raise ServerNotFound(f"openai.server_pid: process {pid} cannot be read by this user") from None
    if port is None:
        raise ServerNotFound("no server_pid and no port to find the server by")
    pids, foreign = _listening(psutil, port)
    if not pids:
        if foreign:
            raise ServerNotFound(f"port {port} is held by a process of another user (a container, a service); "
                                 "set openai.server_pid to the server's process id (as this machine numbers it)")
        raise ServerNotFound(f"no process of this machine listens on port {port} (a server in a container or a VM "
                             "listens elsewhere); set openai.server_pid to the server's process id")
    roots = [p for p in pids if not set(_ancestors(psutil, p)) & pids]
    processes = []
    for root in sorted(roots):
        try:
            processes.append(psutil.Process(root))
        except psutil.NoSuchProcess:
            continue
    if not processes:
        raise ServerNotFound(f"the process listening on port {port} ended")
    return ProcessTree(processes)


# Processes that listen on a port for a server elsewhere (a container's published port).
PORT_FORWARDERS = frozenset({"docker-proxy", "rootlessport", "slirp4netns", "pasta", "kubectl", "conmon"})


def _check_serves(psutil: Any, process: Any, port: int) -> None:
    """ServerNotFound unless ``process`` or a descendant listens on ``port``. Nothing visible listening
    (a container's own network, another user's socket) or a port forwarder cannot be checked."""
    listeners, _ = _listening(psutil, port)
    if not listeners:
        return
    tree = {process.pid} | {child.pid for child in process.children(recursive=True)}
    if listeners & tree:
        return
    names = {pid: _name(psutil, pid) for pid in sorted(listeners)}
    if set(names.values()) & PORT_FORWARDERS:
        return
    holder = ", ".join(f"{pid} ({name})" for pid, name in names.items())
    raise ServerNotFound(f"openai.server_pid: process {process.pid} ({_name(psutil, process.pid)}) is not the "
                         f"server at port {port}: process {holder} listens there, and it is not {process.pid} nor "
                         "one of its children; set openai.server_pid to the server's process, or leave it unset to "
                         "find it by the port")


def _name(psutil: Any, pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"


def _listening(psutil: Any, port: int) -> tuple[set[int], bool]:
    """(pids with a listening TCP socket on ``port``, whether such a socket belongs to a process we cannot see)."""
    pids: set[int] = set()
    foreign = False
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid:
                    pids.add(conn.pid)
                else:
                    foreign = True
        return pids, foreign
    except psutil.AccessDenied:  # macOS lists other processes' sockets only to root: ask ours one by one
        pass
    for process in psutil.process_iter():
        try:
            connections = getattr(process, "net_connections", None) or process.connections
            if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections("inet")):
                pids.add(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return pids, foreign


def _ancestors(psutil: Any, pid: int) -> list[int]:
    try:
        return [parent.pid for parent in psutil.Process(pid).parents()]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def is_this_machine(host: str) -> bool:
    """Whether ``host`` (a URL's host: a name or an address) is this machine."""
    name = host.strip("[]").lower()
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    if name == socket.gethostname().lower():
        return True
    addresses = _resolve(name)
    if any(address.is_loopback or address.is_unspecified for address in addresses):
        return True
    return bool(addresses & _our_addresses())


def _resolve(name: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses ``name`` stands for (itself, for an address); empty when it does not resolve in time."""
    try:
        return {ipaddress.ip_address(name.partition("%")[0])}
    except ValueError:
        pass
    found: dict[str, Any] = {}

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(name, None)
        except OSError:
            found["infos"] = []

    thread = threading.Thread(target=lookup, name=f"llem-resolve {name}", daemon=True)
    thread.start()
    thread.join(RESOLVE_TIMEOUT_S)
    addresses = set()
    for info in found.get("infos", []):
        try:
            addresses.add(ipaddress.ip_address(str(info[4][0]).partition("%")[0]))
        except ValueError:
            continue
    return addresses


def _our_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses of this machine's interfaces (through psutil), and those its own name resolves to."""
    addresses = _resolve(socket.gethostname())
    try:
        import psutil
    except ImportError:
        return addresses
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    addresses.add(ipaddress.ip_address(entry.address.partition("%")[0]))
                except ValueError:
                    continue
    return addresses
