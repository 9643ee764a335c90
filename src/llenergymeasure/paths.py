"""What a path named in a config is, in words, when it is not what the config wanted.

"does not exist" is said only of a path that does not exist: a FIFO where a dataset file was
expected, or ``model: /etc/passwd``, is something else, and the message says what.
"""

from __future__ import annotations

import errno
import os
import stat

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def path_kind(path: str | os.PathLike[str]) -> str | None:
    """What is at ``path`` (following symlinks), or None when nothing is there at all."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        if os.path.islink(path):
            return f"a symlink to {os.readlink(path)!r}, which does not exist"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            return None
        return f"unreadable ({exc.strerror})"
    except ValueError:  # a NUL byte
        return None
    return mode_kind(mode)


def mode_kind(mode: int) -> str:
    """What a file of stat mode ``mode`` is: "a directory", "a FIFO (named pipe)", ..."""
    return next((kind for test, kind in _KINDS if test(mode)), "not a file or directory")

