"""Result and baseline files on disk: atomic writes (a crash or Ctrl-C leaves the old file or the
new one, never half of one), and reads whose every failure names the file and what is wrong."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from llenergymeasure.exceptions import ConfigError

Document = TypeVar("Document", bound=BaseModel)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temp file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; a result file is as readable as any other
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_document(model: type[Document], path: str | Path, *, noun: str, version: int, kind: str | None = None,
                  hint: str = "") -> Document:
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
    if found != version:
        raise ConfigError(f"{path}: {noun} schema_version {found!r} is not {version}; "
                          "it was written by another llenergymeasure version")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: not a valid {noun} file ({where}: {first['msg']})") from None
