"""Where a project is: the top of the git work tree, which holds ``.llem/baselines``.

Light on purpose (no pydantic): the pytest plugin asks it in every session it loads in.
"""

from __future__ import annotations

from pathlib import Path


def project_root(start: str | Path) -> Path | None:
    """The top of the git work tree holding ``start`` (a file or directory), or None outside one:
    where ``.llem/baselines`` lives and what baseline keys are relative to, wherever pytest was
    started from and whatever rootdir it chose."""
    here = Path(start).resolve()
    for directory in [here, *here.parents] if here.is_dir() else here.parents:
        if (directory / ".git").exists():
            return directory
    return None
