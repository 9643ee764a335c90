"""Which measurement warnings make a result's numbers doubtful, and how a summary's verdict says so.

A verdict cell that reads "ok" or "passed" must not hide a number its own JSON doubts: every
summary (``llem run``'s study table, the plugin's terminal and markdown tables, its JSON) names
the doubts after the verdict, as the warning codes the JSON carries:

    suspect               the sanity checks doubted the energy (``energy_suspect``)
    high_variance         the repeats scatter too widely for a 5% gate (results/spread.py)
    first_repeat_outlier  the warm-up did not reach a steady state
    short_window          the window spans few sensor updates: the energy is coarse
    few_samples           integrated from too few power samples
    throttled             the GPU was throttled during the window
    other_processes       other processes' energy is counted too
    fp16_on_cpu           emulated fp16: not representative

Other codes (persistence mode off, a counter that wrapped and was unwrapped, a field a server
API cannot take...) describe the run without putting its number in doubt; they stay in the
result's warnings and its detailed summary.
"""

from __future__ import annotations

from collections.abc import Iterable

SUSPECT = "suspect"
DOUBTFUL_CODES = ("high_variance", "first_repeat_outlier", "short_window", "few_samples", "throttled",
                  "other_processes", "fp16_on_cpu")


def doubts(codes: Iterable[str], suspect: bool = False) -> list[str]:
    """The doubts to name for a result with warning ``codes`` (and suspect energy): ``suspect``
    first, then the doubtful codes in the order they came, once each."""
    flags = [SUSPECT] if suspect else []
    return flags + [code for code in dict.fromkeys(codes) if code in DOUBTFUL_CODES and code != SUSPECT]


def with_doubts(verdict: str, flags: list[str]) -> str:
    """``verdict`` naming ``flags`` at its end: a bare "ok" becomes ``doubtful: high_variance``;
    any other verdict keeps its words first (``passed; doubtful: suspect``, ``FAIL: joules_per_token
    0.5 above max 0.4; doubtful: high_variance``)."""
    if not flags:
        return verdict
    said = doubt_text(flags)
    return said if verdict == "ok" else f"{verdict}; {said}"


def doubt_text(flags: list[str]) -> str:
    """``doubtful: suspect, high_variance``."""
    return f"doubtful: {', '.join(flags)}"
