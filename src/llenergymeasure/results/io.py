"""Result and baseline files on disk.

Writes are atomic (a crash or Ctrl-C leaves the whole file or none of it) and exclusive: a new
measurement never replaces a file, whoever wrote it (another run into the same folder, a save in
the same second); it takes the next free name instead. ``output_dir_problem`` says, before
anything is measured, why results could not be saved somewhere.

Outputs that are meant to be replaced (a report, a session file) replace only what llem wrote
there before: ``write_output`` refuses a path that is one of the run's inputs (the same file,
through a symlink or a hard link too), or an existing file that is not empty and does not begin
as that kind of output begins (a measured result, a baseline, anyone else's file), naming it
(ConfigError, exit 2).

Reads are bounded, since result, baseline and session files may come from anywhere (a CI cache):
``read_limited`` opens only a regular file (a symlink counts as what it points to), never a FIFO,
a device or a socket, nor a file of /proc or /sys, and reads at most MAX_DOCUMENT_BYTES. Every
problem is a ConfigError naming the file and what is wrong.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llenergymeasure.exceptions import ConfigError, ExperimentError
from llenergymeasure.paths import mode_kind, path_kind
from llenergymeasure.text import printable

Document = TypeVar("Document", bound=BaseModel)

MAX_NUMBERED = 10_000  # names tried before a directory is called full
# The most a result, baseline or session file may hold: a long study's session file with every
# result is a few MiB; a file far past that is not one (or is a symlink to /dev/zero).
MAX_DOCUMENT_BYTES = 64 * 2**20
PSEUDO_FILESYSTEMS = ("/proc/", "/sys/")  # "regular" files whose size says nothing of what a read returns
# errno of filesystems without hard links (FAT, some network mounts): reserve the name, then replace it.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class NotSaved(ExperimentError):
    """A measurement could not be written where it was asked to go; ``kept_at`` is where it went
    instead (None: nowhere)."""

    def __init__(self, message: str, kept_at: Path | None) -> None:
        super().__init__(message)
        self.kept_at = kept_at


def atomic_write_text(path: str | Path, text: str | bytes) -> Path:
    """Write ``text`` to a temp file beside ``path``, fsync it, then rename it over ``path``.
    Replaces whatever is there: outputs go through ``write_output``, measurements through ``create_new``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class Output:
    """A kind of file llem writes and replaces (a report, a session file): what it is called in
    messages, and how every such file begins (any of ``starts``)."""

    what: str  # "an HTML report"
    starts: tuple[bytes, ...]


def output_problem(path: str | Path, kind: Output, inputs: Iterable[str | Path] = ()) -> str | None:
    """Why ``path`` must not be written as ``kind``, or None: it is one of ``inputs`` (the files the
    run reads), or it exists and is neither an empty regular file nor begins as ``kind`` does
    (llem replaces only what it wrote)."""
    path = Path(path)
    for source in inputs:
        if _same_file(path, Path(source)):
            return f"is one of the inputs ({source}); write the output to another file"
    if not os.path.lexists(path):
        return None
    try:
        head = read_limited(path, kind.what, limit=max(map(len, kind.starts)), whole=False)
    except (OSError, ConfigError):  # a dangling symlink, a FIFO, a device: not ours either
        head = None
    if head is not None and (head == b"" or head.startswith(kind.starts)):  # empty (mktemp's): nothing to lose
        return None
    return (f"exists and is not {kind.what} written by llem, so it is not replaced (llem never overwrites a "
            "result, a baseline or anyone else's file): give a new file name, or move this file away first")


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (through symlinks and hard links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def write_output(path: str | Path, content: str | bytes, kind: Output, inputs: Iterable[str | Path] = ()) -> Path:
    """``atomic_write_text``, unless ``output_problem`` says no: then a ConfigError naming ``path``."""
    problem = output_problem(path, kind, inputs)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return atomic_write_text(path, content)


def create_new(path: str | Path, text: str) -> Path:
    """Create ``path`` holding ``text``, atomically and exclusively: FileExistsError if it exists.

    The text goes to a temp file first (fsynced), which is then hard-linked to ``path`` (a link
    fails where a name is taken, a rename would not) and unlinked."""
    path = Path(path)
    tmp = _write_temp(path, text)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            _reserve_and_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _reserve_and_replace(tmp: Path, path: Path) -> None:
    """Without hard links: take the name with an empty O_EXCL file, then rename the temp file over it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        os.replace(tmp, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def create_numbered(names: Callable[[int], Sequence[Path]], texts: Sequence[str]) -> list[Path]:
    """Write ``texts`` to ``names(1)``, or else ``names(2)``, ``names(3)``...: the first set of
    paths none of which exists. Files are written in order, each with ``create_new`` (so put the
    main file last: it appears only once the others are whole); on a collision or any failure,
    the files already written for that set are removed. FileExistsError after MAX_NUMBERED sets."""
    for number in range(1, MAX_NUMBERED + 1):
        paths = list(names(number))
        if any(os.path.lexists(p) for p in paths):
            continue
        try:
            return _create_all(paths, texts)
        except FileExistsError:
            continue  # another writer took one of the names a moment ago
    raise FileExistsError(errno.EEXIST, f"{MAX_NUMBERED} numbered names are taken", str(names(1)[-1]))


def _create_all(paths: list[Path], texts: Sequence[str]) -> list[Path]:
    written: list[Path] = []
    try:
        for path, text in zip(paths, texts, strict=True):
            written.append(create_new(path, text))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def _write_temp(path: Path, text: str | bytes) -> Path:
    """A hidden temp file beside ``path`` holding ``text``, fsynced, with the mode the umask gives."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; a result file is as readable as any other
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def unsaved_dirs() -> list[Path]:
    """Where a measurement goes when its own directory fails: the user cache, then the temp dir."""
    places = [Path(tempfile.gettempdir()) / "llenergymeasure-unsaved"]
    try:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found
        return places
    return [cache / "llenergymeasure" / "unsaved", *places]


def write_failure(directory: Path, exc: OSError) -> str:
    """Why writing in ``directory`` failed, in words: "No space left on device", "not a directory"..."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        return "it is a file, not a directory"
    return exc.strerror or str(exc)


def output_dir_problem(directory: str | Path, longest_name: str) -> str | None:
    """Why files named up to ``longest_name`` could not be created in ``directory``, or None.

    Creates nothing: the nearest existing ancestor must be a directory this process can write
    in (tried with a nameless temp file, so a read-only mount fails here as it would later,
    even for root), and every name must fit the filesystem (NAME_MAX, PATH_MAX)."""
    path = Path(directory).expanduser()
    for step in (path, *path.parents):  # a dangling or looping symlink on the way: mkdir would fail later
        kind = path_kind(step)
        if kind is not None and kind != "a directory":
            kind = "a file" if kind == "a regular file" else kind
            if step == path:
                return f"output_dir: {path} is {kind}, not a directory; pass a directory (-o DIR)"
            return f"output_dir: {path} cannot be created: {step} is {kind}, not a directory"
        if kind == "a directory":
            break
    ancestor = _nearest_existing(path)
    if not os.path.isdir(ancestor):
        return f"output_dir: {path} cannot be created: {ancestor} is a file, not a directory"
    name_max, path_max = _limit(ancestor, "PC_NAME_MAX", 255), _limit(ancestor, "PC_PATH_MAX", 4096)
    for part in path.absolute().relative_to(ancestor.absolute()).parts:
        if len(os.fsencode(part)) > name_max:
            return (f"output_dir: {path} cannot be created: its part {_short(part)!r} is "
                    f"{len(os.fsencode(part))} bytes, "
                    f"more than this filesystem allows in a name ({name_max}); use a shorter directory name")
    if len(os.fsencode(longest_name)) > name_max:
        return (f"output_dir: result files in {path} would be named like {_short(longest_name)!r} "
                f"({len(os.fsencode(longest_name))} bytes), more than this filesystem allows ({name_max}); "
                "use a shorter experiment name")
    if len(os.fsencode(str(path.absolute() / longest_name))) >= path_max:
        return f"output_dir: {path} is too deep: result file paths in it would pass PATH_MAX ({path_max} bytes)"
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        if ancestor == path.absolute():
            return f"output_dir: cannot write in {path}: {exc.strerror or exc}; pass a writable directory"
        return (f"output_dir: {path} cannot be created: cannot write in {ancestor} ({exc.strerror or exc}); "
                "pass a writable directory")
    return None


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not os.path.exists(current) and current != current.parent:
        current = current.parent
    return current


def _limit(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no limit reported
        return default


def _short(name: str) -> str:
    return name if len(name) <= 60 else f"{name[:40]}...{name[-12:]}"


def read_limited(path: str | Path, what: str, limit: int = MAX_DOCUMENT_BYTES, whole: bool = True) -> bytes:
    """The bytes of ``path``, which must be a regular file (a symlink counts as what it points to)
    outside /proc and /sys, of at most ``limit`` bytes (``whole=False``: its first ``limit`` bytes,
    however long it is). OSError when the name cannot be looked up (FileNotFoundError: there is
    none), for the caller to word; anything else is a ConfigError naming ``path`` and saying why
    it is not read as ``what`` ("a result file")."""
    path = Path(path)
    # stat before opening: opening a FIFO blocks until a writer comes, and opening a device may do anything
    _check_regular(path, os.stat(path), what, limit, whole)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        _check_regular(path, info, what, limit, whole)  # what was opened, should the name have changed since
        try:
            if not whole:
                return fh.read(limit)
            data = fh.read(min(info.st_size, limit) + 1)
            if len(data) > info.st_size:  # it grew while it was read: the rest, up to the cap
                data += fh.read(limit + 1 - len(data))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise ConfigError(_too_big(path, what, limit))
    return data


def _check_regular(path: Path, info: os.stat_result, what: str, limit: int, whole: bool) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path}: is a directory, not {what}")
    target = os.path.realpath(path)
    via = f" (a link to {target})" if target != os.path.abspath(path) else ""
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: is {mode_kind(info.st_mode)}{via}, not {what}; only a regular file is read")
    if target.startswith(PSEUDO_FILESYSTEMS):
        root = "/" + target.split("/")[1]
        raise ConfigError(f"{path}: is a file of {root}{via}, not {what}; only a regular file is read")
    if whole and info.st_size > limit:
        raise ConfigError(_too_big(path, what, limit))


def _too_big(path: Path, what: str, limit: int) -> str:
    return f"{path}: is larger than {limit / 2**20:g} MiB, the most {what} may hold; not read: is it the right file?"


def load_document(model: type[Document], path: str | Path, *, noun: str, version: int | tuple[int, ...],
                  kind: str | None = None, hint: str = "", data: Any = None) -> Document:
    """Read a JSON ``model`` (a "result", a "baseline") from ``path`` (``read_limited``), or take
    ``data``, its JSON already read; ConfigError saying which file and what is wrong when it is
    missing, not a regular file, too large, not JSON, of another ``kind`` or schema version, or
    invalid. ``hint`` says how such a file is made."""
    path = Path(path)
    if data is None:
        data = read_json(path, noun, hint)
    if kind is not None and (not isinstance(data, dict) or data.get("kind") != kind):
        raise ConfigError(f"{path}: not an llem {noun} file (no \"kind\": \"{kind}\"){'; ' + hint if hint else ''}")
    found = data.get("schema_version") if isinstance(data, dict) else None
    versions = version if isinstance(version, tuple) else (version,)
    if found not in versions or isinstance(found, bool):
        expected = " or ".join(map(str, versions))
        raise ConfigError(f"{path}: {noun} schema_version {found!r} is not {expected}; "
                          "it was written by another llenergymeasure version")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: not a valid {noun} file ({where}: {first['msg']})") from None


def read_json(path: str | Path, noun: str, hint: str = "") -> Any:
    """The JSON of ``path``, a ``noun`` file ("result", "baseline"), read by ``read_limited``;
    ConfigError naming it when it is missing (with ``hint``: how such a file is made), not a
    regular file, too large, or not JSON."""
    path = Path(path)
    try:
        raw = read_limited(path, f"a {noun} file")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {noun} file not found{'; ' + hint if hint else ''}") from None
    except OSError as exc:  # stat failed: a permission, a name too long, a symlink loop
        raise ConfigError(f"{path}: not a readable {noun} file ({exc.strerror or exc})") from None
    return parse_json(raw, path, noun)


MAX_NUMBER = 1e15  # past every count, joule, second or byte llem records: 277 GWh, 31 million years
MAX_VALUES = 1_000_000  # values and keys in one file: a latency and a TTFT for 50,000 prompts x 10 repeats


def parse_json(raw: bytes, path: Path, noun: str, hint: str = "") -> Any:
    """``raw`` as JSON, bounded before anything validates it (a validator's errors grow with the
    values it is given): ConfigError naming ``path`` when it is not UTF-8 JSON, nests too deep,
    holds more than MAX_VALUES values, or a number that is not finite or is past MAX_NUMBER.
    Every string comes back printable. ``hint`` follows what is said of a file that is not JSON."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not a readable {noun} file (not JSON: {exc}){'; ' + hint if hint else ''}") \
            from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, 4,300+ digits; nested too deep
        raise ConfigError(f"{path}: not a readable {noun} file ({exc})") from None
    problem = _bounded(data)
    if problem:
        raise ConfigError(f"{path}: not a valid {noun} file ({problem})")
    return data


def _bounded(data: Any) -> str | None:
    """Why ``data`` (parsed JSON) holds a number that is not finite or is past MAX_NUMBER, or None;
    every string in it is made printable on the way (a name with ESC sequences would reach the
    terminal). Iterative: the parser allows nesting deeper than a recursive walk could follow."""
    if not isinstance(data, (dict, list)):
        return None
    stack: list[tuple[Any, str]] = [(data, "")]
    values = 0
    while stack:
        node, where = stack.pop()
        values += len(node)
        if values > MAX_VALUES:
            return f"it holds more than {MAX_VALUES:,} values, the cap for one file"
        if isinstance(node, dict):
            for key in [key for key in node if printable(key) != key]:
                node[printable(key)] = node.pop(key)
        for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
            at = f"{where}[{key}]" if isinstance(node, list) else f"{where}.{key}" if where else str(key)
            if isinstance(value, str):
                node[key] = printable(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) <= MAX_NUMBER:
                if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity: JSON as Python writes it
                    return f"{printable(at)}: {value} is not a finite number"
                shown = f"a {len(str(value))}-digit number" if isinstance(value, int) else f"{value:g}"
                return f"{printable(at)}: {shown} is past any value llem records ({MAX_NUMBER:g})"
            elif isinstance(value, (dict, list)):
                stack.append((value, at))
    return None
