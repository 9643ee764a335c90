"""Synthetic prompts: seeded filler text, for workloads where only the lengths matter.

Each prompt has ``words`` words drawn from a fixed vocabulary; every word is at least one
token, so truncating at ``max_input_tokens`` gives prompts of exactly that many tokens. The
backend generates exactly ``max_output_tokens`` for synthetic prompts (end-of-text ignored).
All of them are built at once, before measuring, so their total size is capped (MAX_WORDS).
"""

from __future__ import annotations

import random

from llenergymeasure.exceptions import PreFlightError

MAX_WORDS = 50_000_000  # n x max_input_tokens: about 400 MB of text, days of inference

_VOCABULARY = (
    "energy model token power measure window device sample counter baseline result prompt "
    "output input batch latency memory cache kernel tensor layer attention weight system "
    "network signal record report value time clock thermal limit budget study sweep repeat"
).split()


def synthetic_prompts(n: int, *, seed: int, words: int) -> list[str]:
    problem = size_problem(n, words)
    if problem:
        raise PreFlightError(problem)
    rng = random.Random(seed)
    return [" ".join(rng.choices(_VOCABULARY, k=words)) for _ in range(n)]


def size_problem(n: int, words: int) -> str | None:
    """Why ``n`` prompts of ``words`` words are too many to build at once, or None."""
    if n * words <= MAX_WORDS:
        return None
    return (f"dataset: synthetic prompts of n={n:,} x max_input_tokens={words:,} make {n * words:,} words, "
            f"more than {MAX_WORDS:,}; lower n or max_input_tokens")
