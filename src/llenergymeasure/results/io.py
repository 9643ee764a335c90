"""Result and baseline files on disk.

Writes are atomic (a crash or Ctrl-C leaves the whole file or none of it) and exclusive: a new
measurement never replaces a file, whoever wrote it (another run into the same folder, a save in
the same second); it takes the next free name instead. Reads name the file and what is wrong.
``output_dir_problem`` says, before anything is measured, why results could not be saved somewhere.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from llenergymeasure.exceptions import ConfigError, ExperimentError

Document = TypeVar("Document", bound=BaseModel)

MAX_NUMBERED = 10_000  # names tried before a directory is called full
# errno of filesystems without hard links (FAT, some network mounts): reserve the name, then replace it.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class NotSaved(ExperimentError):
    """A measurement could not be written where it was asked to go; ``kept_at`` is where it went
    instead (None: nowhere)."""

    def __init__(self, message: str, kept_at: Path | None) -> None:
        super().__init__(message)
        self.kept_at = kept_at


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temp file beside ``path``, fsync it, then rename it over ``path``.
    For files that are meant to be replaced (reports); a measurement goes through ``create_new``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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


def _write_temp(path: Path, text: str) -> Path:
    """A hidden temp file beside ``path`` holding ``text``, fsynced, with the mode the umask gives."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; a result file is as readable as any other
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
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
    if os.path.exists(path) and not os.path.isdir(path):  # os.path: False, not an error, for a name too long
        return f"output_dir: {path} is a file, not a directory; pass a directory (-o DIR)"
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


def load_document(model: type[Document], path: str | Path, *, noun: str, version: int | tuple[int, ...],
                  kind: str | None = None, hint: str = "") -> Document:
    """Read a JSON ``model`` (a "result", a "baseline") from ``path``; ConfigError saying which file
    and what is wrong when it is missing, not JSON, of another ``kind`` or schema version, or invalid.
    ``hint`` says how such a file is made."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {noun} file not found{'; ' + hint if hint else ''}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable {noun} file ({exc})") from None
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
