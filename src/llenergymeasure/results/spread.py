"""What the spread of one experiment's repeats says about it, as measurement warnings.

    high_variance         the repeats of joules_per_token scatter so widely that a regression gate
                          of GATE (5%) cannot be resolved at this many repeats: the text gives the
                          smallest change they could detect and the repeats that would resolve it
    first_repeat_outlier  the first repeat lies far from all the others: a sign that the warm-up
                          did not bring the device (clocks, caches, compilation) to its steady state

Both look only at one run's repeats, so they can be said before any baseline exists, when a
user is deciding how many repeats a gate needs.
"""

from __future__ import annotations

import statistics

from llenergymeasure.results.compare import Threshold, sensitivity

GATE = Threshold("joules_per_token", 0.05, True)
HIGH_CV = 0.05  # above this spread between repeats, 5 repeats cannot resolve a 5% gate
OUTLIER_SPREADS = 5.0  # robust SDs of the other repeats the first must lie beyond
OUTLIER_FLOOR = 0.05  # ... and at least this far (relative), so identical repeats do not flag noise


def spread_warnings(values: list[float]) -> list[tuple[str, str]]:
    """(code, message) pairs for the per-repeat joules_per_token ``values`` of one run."""
    if len(values) < 2 or min(values) <= 0:
        return []
    warnings = []
    mean = statistics.fmean(values)
    cv = statistics.stdev(values) / mean
    if cv > HIGH_CV:
        detail = sensitivity(values, values, GATE)
        warnings.append(("high_variance", f"joules_per_token varies by CV {cv:.1%} over {len(values)} repeats: "
                                          f"against a {GATE} gate, {detail.text}; lengthen the windows "
                                          "(more prompts or tokens) or add repeats"))
    first, rest = values[0], values[1:]
    if len(rest) >= 3:
        centre = statistics.median(rest)
        robust_sd = 1.4826 * statistics.median(abs(v - centre) for v in rest)
        if abs(first - centre) > max(OUTLIER_SPREADS * robust_sd, OUTLIER_FLOOR * centre):
            warnings.append(("first_repeat_outlier", f"repeat 1 is {first / centre - 1:+.0%} from the median of the "
                                                     "other repeats: the warm-up may be too short "
                                                     "(warmup.n_warmup), so it is not yet at steady state"))
    return warnings
