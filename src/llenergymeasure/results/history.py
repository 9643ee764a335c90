"""A regression verdict against a machine's history of baseline sessions, with the variation
between sessions modelled: the gate that holds across CI runs.

``compare_values`` builds its 95% CI from the repeats inside one baseline session and one candidate
session. Two sessions differ by more than their repeats do (GPU temperature, clocks, what else the
host runs), so that CI is too narrow: with every session shifted by a random offset of SD 2% (3% CV
between repeats, 5 repeats) the single-baseline gate calls an unchanged candidate ``regressed``
about 7% of the time, 19% at SD 4% (benchmarks/compare_history.py). ``compare_history`` takes every
saved session of the same config instead, oldest first, and measures how far sessions wander.

Model, on the log scale for a relative threshold (raw values for an absolute one)::

    value = level + offset of its session (SD s) + repeat noise (SD sigma)

and the candidate session is one more such session, moved by the change. The sessions are
exchangeable: same config, same machine; a config change starts a new history.

Method (docs/compare.md, "Against a history of sessions", has the reasoning and simulated rates):

* Session summary: the Hodges-Lehmann estimate of its repeats (``ab.hodges_lehmann``, the median of
  the Walsh averages): within ~8% of the mean's variance on normal repeats, and one throttled repeat
  in ten barely moves it. The history's level is the mean of the summaries; the change is the
  candidate's summary minus the level (their ratio, for a relative threshold).
* tau^2, the variance of one session's summary (offset plus its own repeat noise): half the mean
  square successive difference of the summaries in time order, so a real step in the history (a
  driver update) inflates one difference instead of every deviation from the mean.
* Variance of the change: tau^2 (1 + 1/K) for a candidate measured like a history session (its own
  offset and repeat noise, plus the uncertainty of a level from K sessions), plus max(0, w_c - w_h),
  the excess of the candidate's repeat noise over a history session's: w_c is the candidate's
  variance over its repeats, never taken below the history's pooled within-session variance (a
  single candidate repeat takes the pooled one), w_h the pooled variance times the history's mean of
  1/repeats. A noisier candidate, or one with fewer repeats, widens the CI; a quieter one, or one
  with more repeats than the history's sessions, earns nothing.
* Degrees of freedom: Satterthwaite over those two terms, capped at nu = 2 m^2 / (3 m - 1), m = K - 1,
  the df of the successive-difference estimate, so the interval never claims more than the history
  can say about sessions; ``results.stats.t95`` rounds down.
* Between-session SD (reported, ``between_session_sd``): sqrt(max(0, tau^2 - w_h)).
* Verdict and text: the rule of ``results.compare`` (``regressed`` when the CI is clear of zero on
  the bad side AND the point estimate is past the threshold, ...), the text saying "over K history
  sessions" and the between-session SD.
* One session: exactly ``compare_values`` on it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from llenergymeasure.results.ab import hodges_lehmann
from llenergymeasure.results.compare import (
    Comparison,
    Sensitivity,
    Threshold,
    VerdictBuilder,
    check_values,
    format_amount,
    resolve_text,
    compare_values,
    minimum_detectable_effect,
    repeats_to_resolve,
    sensitivity,
)
from llenergymeasure.results.stats import t95


def compare_history(history: list[list[float]], candidate: list[float], threshold: Threshold, *,
                    higher_is_better: bool = False, robust: bool = True) -> Comparison:
    """Compare the candidate's per-repeat values of ``threshold.metric`` with ``history``, the
    per-repeat values of each saved session of the same config, oldest first. ``robust=False``
    summarises sessions by their mean instead of their Hodges-Lehmann estimate. See the module
    docstring for the method; it is closed-form, so the verdict is deterministic."""
    _check_history(history, candidate)
    if len(history) == 1:
        return compare_values(history[0], candidate, threshold, higher_is_better=higher_is_better)
    if threshold.relative and min(min(session) for session in [*history, candidate]) <= 0:
        return _nonpositive(history, candidate, threshold, higher_is_better)

    fit = _fit(history, threshold.relative, robust)
    values = _scale(candidate, threshold.relative)
    centre = _summary(values, robust)
    variance, df = fit.change_variance(_variance(values), len(values))
    delta, half = centre - fit.level, t95(df) * math.sqrt(variance)
    low, high = delta - half, delta + half
    if threshold.relative:
        result = VerdictBuilder(threshold, math.exp(fit.level), math.exp(centre), higher_is_better, change=math.expm1(delta))
        low, high = math.expm1(low), math.expm1(high)
    else:
        result = VerdictBuilder(threshold, fit.level, centre, higher_is_better, change=delta)
    note = f"over {fit.sessions} history sessions, between-session SD {format_amount(threshold, fit.between_sd)}"
    if len(values) == 1:
        note += ", single candidate repeat: its spread taken from the history"
    return result.from_ci(low, high, note)


def between_session_sd(history: list[list[float]], *, relative: bool = True, robust: bool = True) -> float:
    """The SD of the session offsets estimated from ``history`` (oldest first): on the log scale
    for ``relative`` (0.021 is about 2.1%), in the metric's unit otherwise. NaN for one session.
    When no session has 2 repeats it cannot be told from repeat noise and includes it."""
    _check_history(history, [0.0])
    if len(history) == 1:
        return math.nan
    if relative and min(min(session) for session in history) <= 0:
        raise ValueError("a relative between-session SD needs positive values")
    return _fit(history, relative, robust).between_sd


def history_sensitivity(history: list[list[float]], candidate: list[float], threshold: Threshold, *,
                        robust: bool = True) -> Sensitivity:
    """The MDE of ``compare_history`` on these values, and the repeats per session (history and
    candidate alike: a new history) that would resolve the threshold. More repeats shrink only the
    repeat noise of a session, not its offset, so with a large between-session SD no number does.
    One session: ``compare.sensitivity``."""
    _check_history(history, candidate)
    if len(history) == 1:
        return sensitivity(history[0], candidate, threshold)
    repeats = len(candidate)
    if threshold.relative and min(min(session) for session in [*history, candidate]) <= 0:
        return Sensitivity(math.nan, repeats, None, "no MDE: a relative threshold needs positive values")
    fit = _fit(history, threshold.relative, robust)
    variance, df = fit.change_variance(_variance(_scale(candidate, threshold.relative)), repeats)
    mde = minimum_detectable_effect(math.sqrt(variance), df, threshold)
    head = f"MDE {format_amount(threshold, mde)} at {repeats} repeats over {fit.sessions} history sessions"
    if not fit.within_df:
        return Sensitivity(mde, repeats, None, f"{head}; single-repeat sessions: repeat noise and session offsets "
                                               f"cannot be told apart")
    needed = repeats_to_resolve(fit.per_session_se, threshold)
    if needed is None:
        tail = (f"no number of repeats per session would resolve the {threshold} threshold: between-session SD "
                f"{format_amount(threshold, fit.between_sd)} over {fit.sessions} sessions sets the floor "
                f"(an interleaved A/B in one session cancels it)")
    else:
        tail = resolve_text(threshold, needed, repeats, "per session ")
    return Sensitivity(mde, repeats, needed, f"{head}; {tail}")


@dataclass(frozen=True)
class _Fit:
    """What the history says, on the CI's scale."""

    sessions: int
    level: float  # mean of the session summaries
    session_variance: float  # tau^2: variance of one session's summary, offset included
    within: float  # pooled within-session variance of one repeat; NaN when no session has 2 repeats
    within_df: int
    inverse_repeats: float  # mean of 1/repeats over the sessions

    @property
    def df_sessions(self) -> float:
        """Degrees of freedom of the successive-difference estimate of tau^2 for normal summaries:
        2 sigma^4 / Var, with Var = (3m - 1) sigma^4 / m^2 (neighbouring differences share a term)."""
        m = self.sessions - 1
        return 2 * m * m / (3 * m - 1)

    @property
    def history_noise(self) -> float:
        """w_h: the repeat noise in a history session's summary."""
        return self.within * self.inverse_repeats if self.within_df else 0.0

    @property
    def between_sd(self) -> float:
        return math.sqrt(max(0.0, self.session_variance - self.history_noise))

    def change_variance(self, spread: float | None, repeats: int) -> tuple[float, float]:
        """(variance, df) of candidate summary - level, for a candidate of ``repeats`` repeats whose
        own variance is ``spread`` (None for a single repeat)."""
        session = self.session_variance * (1 + 1 / self.sessions)
        noise, noise_df = self._candidate_noise(spread, repeats)
        excess = max(0.0, noise - self.history_noise)
        variance = session + excess
        # Satterthwaite, the candidate's noise counted in the share that is excess: all of its
        # uncertainty when the candidate is far noisier, none when it is not (the df of a chance
        # excess over 4 df would otherwise sink a candidate as steady as its history).
        denominator = session**2 / self.df_sessions + excess * noise / noise_df
        df = variance**2 / denominator if denominator else math.inf
        return variance, min(df, self.df_sessions)

    def per_session_se(self, repeats: int) -> tuple[float, float]:
        """(SE, df) of the change if every session, history and candidate, had ``repeats`` repeats."""
        session = max(0.0, self.session_variance - self.history_noise) + self.within / repeats
        return math.sqrt(session * (1 + 1 / self.sessions)), self.df_sessions

    def _candidate_noise(self, spread: float | None, repeats: int) -> tuple[float, float]:
        """(w_c, its df): the candidate's variance over its repeats, never below the pooled one."""
        if not self.within_df:
            # Single-repeat history: tau^2 already holds one repeat's noise; the candidate's comes on top.
            return (spread / repeats, repeats - 1) if spread is not None else (0.0, 1)
        if spread is not None and spread > self.within:
            return spread / repeats, repeats - 1
        return self.within / repeats, self.within_df


def _fit(history: list[list[float]], relative: bool, robust: bool) -> _Fit:
    sessions = [_scale(session, relative) for session in history]
    summaries = [_summary(session, robust) for session in sessions]
    k = len(summaries)
    tau2 = math.fsum((b - a) ** 2 for a, b in zip(summaries, summaries[1:])) / (2 * (k - 1))
    spreads = [(len(session) - 1, _variance(session)) for session in sessions if len(session) > 1]
    within_df = sum(df for df, _ in spreads)
    within = math.fsum(df * v for df, v in spreads) / within_df if within_df else math.nan
    inverse_repeats = statistics.fmean(1 / len(session) for session in sessions)
    return _Fit(k, statistics.fmean(summaries), tau2, within, within_df, inverse_repeats)


def _scale(values: list[float], relative: bool) -> list[float]:
    return [math.log(v) for v in values] if relative else list(values)


def _summary(values: list[float], robust: bool) -> float:
    return hodges_lehmann(values) if robust else statistics.fmean(values)


def _variance(values: list[float]) -> float | None:
    """Sample variance; None for a single value. Plain floats: statistics.variance is exact and slow."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _nonpositive(history: list[list[float]], candidate: list[float], threshold: Threshold,
                 higher_is_better: bool) -> Comparison:
    level = statistics.fmean(statistics.median(session) for session in history)
    result = VerdictBuilder(threshold, level, statistics.median(candidate), higher_is_better)
    if level <= 0:
        return result.inconclusive(f"relative change undefined: history level is {level:.4g}; "
                                   f"use an absolute threshold")
    return result.inconclusive("a relative CI needs positive values in every session; use an absolute threshold")


def _check_history(history: list[list[float]], candidate: list[float]) -> None:
    if not history:
        raise ValueError("no history sessions to compare with")
    for number, session in enumerate(history, 1):
        check_values(f"history session {number}", session)
    check_values("candidate", candidate)
