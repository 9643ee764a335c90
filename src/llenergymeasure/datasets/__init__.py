"""Prompt sources. ``load_prompts`` turns the config's ``dataset`` into exactly ``n`` prompts.

    aienergyscore   the AI Energy Score text-generation prompts (hub download, then the HF cache)
    builtin         a small prompt set shipped with the package; works offline
    synthetic       seeded filler text of exactly ``max_input_tokens`` tokens, fixed output length
    PATH.jsonl      a JSON-lines file; the prompt column is auto-detected

A source that cannot give ``n`` prompts raises PreFlightError saying why and what to do.
"""

from __future__ import annotations

from pathlib import Path

from llenergymeasure.exceptions import PreFlightError

NAMED = ("aienergyscore", "builtin", "synthetic")


def load_prompts(dataset: str, n: int, *, seed: int = 42, input_tokens: int = 512) -> list[str]:
    """The first ``n`` prompts of ``dataset`` (file order, so runs are comparable)."""
    if dataset == "aienergyscore":
        from llenergymeasure.datasets.aienergyscore import load_aienergyscore

        prompts = load_aienergyscore()
    elif dataset == "builtin":
        from llenergymeasure.datasets.jsonl import builtin_prompts

        prompts = builtin_prompts()
    elif dataset == "synthetic":
        from llenergymeasure.datasets.synthetic import synthetic_prompts

        return synthetic_prompts(n, seed=seed, words=input_tokens)
    elif dataset.endswith((".jsonl", ".json")) or _is_file(dataset):
        from llenergymeasure.datasets.jsonl import read_prompts

        prompts = read_prompts(Path(dataset))
    else:
        raise PreFlightError(
            f"dataset: unknown dataset {dataset!r}; use one of {', '.join(NAMED)} or a path to a .jsonl file"
        )
    if len(prompts) < n:
        raise PreFlightError(
            f"dataset: {dataset!r} has {len(prompts)} prompts but n={n}; lower n or use a larger dataset"
        )
    return prompts[:n]


def _is_file(dataset: str) -> bool:
    try:
        return Path(dataset).is_file()
    except (OSError, ValueError):  # a name too long for the filesystem: not a file, then
        return False
