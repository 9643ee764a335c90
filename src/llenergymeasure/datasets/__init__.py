"""Prompt sources. ``load_prompts`` turns the config's ``dataset`` into exactly ``n`` prompts.

    aienergyscore   the AI Energy Score text-generation prompts (hub download, then the HF cache)
    builtin         a small prompt set shipped with the package; works offline
    synthetic       seeded filler text of exactly ``max_input_tokens`` tokens, fixed output length
    PATH.jsonl      a JSON-lines file; the prompt column is auto-detected

A source that cannot give ``n`` prompts raises PreFlightError saying why and what to do.
``check_dataset`` is the same check without the network, for the dry run: it finds every problem
``load_prompts`` would raise, in the same words (an unknown name with a did-you-mean, a missing
file, no prompt column, fewer prompts than ``n``), and notes what it cannot know here.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from llenergymeasure.exceptions import PreFlightError
from llenergymeasure.paths import path_kind

NAMED = ("aienergyscore", "builtin", "synthetic")


def load_prompts(dataset: str, n: int, *, seed: int = 42, input_tokens: int = 512) -> list[str]:
    """The first ``n`` prompts of ``dataset`` (file order, so runs are comparable)."""
    kind = dataset_kind(dataset)
    if kind == "synthetic":
        from llenergymeasure.datasets.synthetic import synthetic_prompts

        return synthetic_prompts(n, seed=seed, words=input_tokens)
    if kind == "aienergyscore":
        from llenergymeasure.datasets.aienergyscore import load_aienergyscore

        prompts = load_aienergyscore()
    else:
        prompts = _local_prompts(kind, dataset)
    problem = too_few_problem(dataset, len(prompts), n)
    if problem:
        raise PreFlightError(problem)
    return prompts[:n]


def check_dataset(dataset: str, n: int, *, input_tokens: int) -> tuple[list[str], list[str]]:
    """(problems, notes): what ``load_prompts`` would refuse, found from this machine's files only
    (the aienergyscore set only when it is in the HF cache), worded as ``load_prompts`` words it."""
    from llenergymeasure.datasets.aienergyscore import PUBLISHED_SIZE, cached_aienergyscore
    from llenergymeasure.datasets.synthetic import size_problem

    try:
        kind = dataset_kind(dataset)
        if kind == "synthetic":
            problem = size_problem(n, input_tokens)
            return [problem] if problem else [], []
        if kind == "aienergyscore":
            prompts = cached_aienergyscore()
            if prompts is None:  # its size is known only from the published set: a note, not a problem
                note = (f"dataset: 'aienergyscore' is not in the Hugging Face cache here, and its {PUBLISHED_SIZE:,} "
                        f"published prompts are fewer than n={n}")
                return [], [note] if n > PUBLISHED_SIZE else []
        else:
            prompts = _local_prompts(kind, dataset)
    except PreFlightError as exc:
        return list(exc.problems), []
    problem = too_few_problem(dataset, len(prompts), n)
    return [problem] if problem else [], []


def dataset_kind(dataset: str) -> str:
    """One of NAMED, or "file"; PreFlightError for anything else (a name with a did-you-mean, a
    path that is not there, naming the directory a relative one was looked for in)."""
    if dataset in NAMED:
        return dataset
    if _is_file(dataset):
        return "file"
    raise PreFlightError(unknown_dataset_problem(dataset))


def unknown_dataset_problem(dataset: str) -> str:
    path = Path(dataset)
    kind = path_kind(path)
    if kind is not None:
        return (f"dataset: cannot read {dataset}: it is {kind}, not a regular file; pass a .jsonl file (one JSON "
                "prompt per line)")
    if _looks_like_path(dataset):
        where = "" if path.is_absolute() else f" (looked for in {Path.cwd()})"
        return f"dataset: file {dataset!r} does not exist{where}; check the path"
    close = difflib.get_close_matches(dataset.lower(), NAMED, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (f"dataset: unknown dataset {_short(dataset)!r}{hint}; "
            f"use one of {', '.join(NAMED)} or a path to a .jsonl file")


def too_few_problem(dataset: str, size: int, n: int) -> str | None:
    if size >= n:
        return None
    return f"dataset: {dataset!r} has {size} prompts but n={n}; lower n or use a larger dataset"


def _local_prompts(kind: str, dataset: str) -> list[str]:
    """Every prompt of the built-in set or of a file (read once per version of the file)."""
    from llenergymeasure.datasets.jsonl import builtin_prompts, read_prompts

    return builtin_prompts() if kind == "builtin" else read_prompts(Path(dataset))


def _looks_like_path(dataset: str) -> bool:
    """A file name (``prompts.jsonl``) or a path, rather than a misspelt dataset name."""
    return "/" in dataset or "\\" in dataset or bool(Path(dataset).suffix)


def _short(name: str) -> str:
    return name if len(name) <= 80 else f"{name[:60]}...{name[-12:]}"


def _is_file(dataset: str) -> bool:
    try:
        return Path(dataset).is_file()
    except (OSError, ValueError):  # a name too long for the filesystem: not a file, then
        return False


__all__ = ["NAMED", "check_dataset", "dataset_kind", "load_prompts", "too_few_problem", "unknown_dataset_problem"]
