"""How every artefact shows a path (report, JUnit, markdown, session JSON): never this machine's layout.

A report ends up in PR comments and CI artifacts, where ``/home/runner/work/repo/repo/results/x.json``
says nothing useful and tells everyone how the machine is laid out. A path inside the project (the
top of the git work tree holding the current directory, else the current directory) is shown
relative to it: ``results/x.json``; one under the home directory as ``~/...``; any other as its
last two parts, ``…/models/tiny-gpt2`` (``/srv/model`` as ``…/model``; ``/x`` stays: in text it is
as likely a unit as a path). Device and kernel paths (``/dev/``, ``/sys/``, ``/proc/``)
are shown as they are: they name hardware, not a machine's layout.

``Paths.text`` does the same to every absolute path inside a piece of text (a warning, an error, a
label with ``model=/abs/path``), and ``Paths.page`` to every text node of a finished page (the
safety net: the inline SVG is left alone, its text is drawn as glyph outlines).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from llenergymeasure.results.project import project_root

KEPT = ("/dev/", "/sys/", "/proc/")
KEPT_PARTS = 2  # of a path outside the project and the home directory
# An absolute POSIX path inside text: a "/" that does not continue a word, a relative path, a URL
# or a tag ("J/token", "a/b", "https://", "</td>"), followed by at least one path character. It ends
# at whitespace, a quote, markup, or punctuation that closes a phrase ("model=/x/y, n=4", "(/x/y)").
ABSOLUTE = re.compile(r"(?<![\w.~/:<>\\…-])/[^\s\"'<>&`|;,)\]}:]+")
TAG = re.compile(r"(<svg\b.*?</svg>|<[^>]*>)", re.DOTALL)


def default_root() -> Path:
    """The top of the git work tree holding the current directory, else the current directory."""
    here = Path.cwd()
    return project_root(here) or here


class Paths:
    """Shows paths relative to ``root`` (``default_root()`` when None)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(os.path.abspath(root if root is not None else default_root()))
        self.resolved_root = self.root.resolve()
        try:
            self.home: Path | None = Path.home()
        except (KeyError, RuntimeError):  # no home directory (a bare container user)
            self.home = None

    def shown(self, path: str | Path) -> str:
        """``path`` (absolute, or relative to the current directory) as the report shows it."""
        text = str(path)
        if not text:
            return text
        absolute = Path(os.path.abspath(text))
        if text.startswith(KEPT):
            return text
        for root in dict.fromkeys((self.root, self.resolved_root)):
            inside = _relative(absolute, root)
            if inside is not None:
                return inside or "."
        if self.home is not None and self.home != Path("/"):
            inside = _relative(absolute, self.home)
            if inside is not None:
                return f"~/{inside}" if inside else "~"
        parts = absolute.parts[1:]
        if len(parts) <= 1:
            return absolute.as_posix()
        return "…/" + "/".join(parts[-min(KEPT_PARTS, len(parts) - 1):])

    def text(self, text: str) -> str:
        """``text`` with every absolute path in it shown as ``shown`` shows it (a trailing full
        stop stays a full stop)."""
        if "/" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            stop = len(found.rstrip("."))
            return self.shown(found[:stop]) + found[stop:] if stop > 1 else found

        return ABSOLUTE.sub(replace, text)

    def page(self, html: str) -> str:
        """Every text node of ``html`` (outside tags and inline SVG) through ``text``."""
        pieces = TAG.split(html)
        return "".join(piece if index % 2 else self.text(piece) for index, piece in enumerate(pieces))


def _relative(path: Path, root: Path) -> str | None:
    try:
        inside = path.relative_to(root)
    except ValueError:
        return None
    return inside.as_posix() if inside.parts else ""
