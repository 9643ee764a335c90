"""Reading a file once per process, and again only when it changes.

A study's dry run asks the same questions of the same model and dataset files for every one of
its experiments (10,000 in a big sweep): config.json, the safetensors headers, a .jsonl file.
``cached_by_file`` wraps a reader so that each version of a file is read once; the version is
the file's path with its stat (mtime, size, inode), so a file rewritten or replaced while the
process runs is read again. What the reader raises is cached too: a broken file stays broken
until it changes (the same exception is raised again, its traceback reset).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 4096  # far more files than one process reads; past it, start over rather than grow


def file_version(path: Path) -> tuple[Any, ...] | None:
    """What identifies this version of ``path``, or None when it cannot be stat'ed."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return os.path.abspath(path), st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


def cached_by_file(*errors: type[Exception]) -> Callable[[Callable[[Path], T]], Callable[[Path], T]]:
    """A decorator: ``read(path)`` is called once per version of the file; the ``errors`` it
    raises are cached as well. ``wrapper.cache_clear()`` forgets everything."""

    def decorate(read: Callable[[Path], T]) -> Callable[[Path], T]:
        cache: dict[tuple[Any, ...], tuple[bool, Any]] = {}  # version -> (read, value or exception)

        @functools.wraps(read)
        def wrapper(path: Path) -> T:
            key = file_version(path)
            if key is None:  # gone or unreadable: let the reader say so in its own words
                return read(path)
            if key not in cache:
                if len(cache) >= MAX_ENTRIES:
                    cache.clear()
                try:
                    cache[key] = (True, read(path))
                except errors as exc:
                    cache[key] = (False, exc)
            ok, value = cache[key]
            if ok:
                return value
            raise value.with_traceback(None)

        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper

    return decorate
