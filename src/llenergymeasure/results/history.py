"""A regression verdict against a machine's history of baseline sessions, with the variation
between sessions modelled: the gate that holds across CI runs.

``compare_values`` builds its 95% CI from the repeats inside one baseline session and one candidate
session. Two sessions differ by more than their repeats do (GPU temperature, clocks, what else the
host runs), so that CI is too narrow: with every session shifted by a random offset of SD 2% (3% CV
between repeats, 5 repeats) the single-baseline gate calls an unchanged candidate ``regressed``
about 7% of the time, 19% at SD 4% (benchmarks/compare_history.py). The verdict here takes saved
sessions of the same experiment instead, and measures how far sessions wander.

Which sessions (``results.segments`` chooses them from what was saved; this module is the
arithmetic on their values, one metric at a time, in a ``Reference``):

* the **level**: the newest K sessions of the current segment (a segment begins at an accepted
  session or a config change); the candidate is compared with their mean;
* the **noise**: up to the newest 30 sessions of the experiment, in runs that never cross a segment
  boundary, from which the between-session variation is estimated; a new segment's first nights
  borrow it from the segment before, so they are not one-session comparisons;
* the **pin**: the first sessions of the segment (the accepted ones). Once the segment is longer
  than the level, the candidate is also compared with the pin, and fails when the whole CI of its
  drift since then is past the threshold: slow creep, which the level follows, is caught there.

Model, on the log scale for a relative threshold (raw values for an absolute one)::

    value = level + offset of its session (SD s) + repeat noise (SD sigma)

Method (docs/compare.md, "Against a history of sessions", has the reasoning and simulated rates):

* Session summary: the Hodges-Lehmann estimate of its repeats (``ab.hodges_lehmann``, the median of
  the Walsh averages): within ~8% of the mean's variance on normal repeats, and one throttled repeat
  in ten barely moves it. The change is the candidate's summary minus the mean of the level's.
* tau^2, the variance of one session's summary (offset plus its own repeat noise): half the mean
  square successive difference of the summaries in time order, pooled over the noise runs, so a
  step (a driver update) inflates one difference instead of every deviation from the mean; from
  10 differences on, each capped at 4 robust SDs, so one outlier session cannot inflate it for the
  30 sessions it stays in the window.
* Variance of the change: tau^2 (1 + 1/n) against n reference sessions (the candidate is one more
  session, compared with a mean of n), plus max(0, w_c - w_h), the excess of the candidate's repeat
  noise over a history session's. w_c is the candidate's variance with every repeat first pulled to
  within 3 pooled SDs of the history from the repeats' median (one wild window cannot stretch it; a
  robust scale, as the summary is), never taken below the pooled within-session variance (a single
  candidate repeat takes the pooled one); w_h is the pooled variance times the noise sessions' mean
  of 1/repeats.
* Degrees of freedom: Satterthwaite over those two terms, capped at the df of the pooled
  successive-difference estimate, 2 M^2 / sum(3 m - 1) over runs of m differences (M in all): 6.2
  for one run of 10 sessions, 19.6 for 30. t quantiles exact for a fractional df.
* Between-session SD (reported, ``between_session_sd``): sqrt(max(0, tau^2 - w_h)).
* Verdict and text: the rule of ``results.compare`` (``regressed`` when the CI is clear of zero on
  the bad side AND the point estimate is past the threshold, ...), the text saying "over K history
  sessions" and the between-session SD. Against the pin: ``regressed`` only when the CI is past the
  threshold, "+12.6% since accepted on 2026-12-03, 9 sessions".
* No two sessions in any run: no estimate of how sessions differ, so no verdict across sessions:
  ``inconclusive`` ("1 history session, between-session variation unknown").
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from llenergymeasure.results.ab import hodges_lehmann
from llenergymeasure.results.compare import (
    Comparison,
    Sensitivity,
    Threshold,
    VerdictBuilder,
    check_values,
    format_amount,
    minimum_detectable_effect,
    repeats_to_resolve,
    resolve_text,
)
from llenergymeasure.results.stats import t_quantile
from llenergymeasure.results.tables import change_text

CLIP_SDS = 3.0  # a candidate repeat counts at most this many pooled SDs from its centre in its spread
CAP_SDS = 4.0  # a successive difference counts at most this many of its robust SDs in tau^2 ...
CAP_FROM = 10  # ... once there are this many differences to take that SD from
# E[min(Z^2, CAP_SDS^2)] for a standard normal Z: what the cap leaves of clean data (0.99988)
_CAPPED_MEAN = (1 - 2 * (CAP_SDS * statistics.NormalDist().pdf(CAP_SDS) + 1 - statistics.NormalDist().cdf(CAP_SDS))
                + CAP_SDS**2 * 2 * (1 - statistics.NormalDist().cdf(CAP_SDS)))
_CHI2_1_MEDIAN = 0.454936  # the median of a chi-square with 1 df


@dataclass(frozen=True)
class Reference:
    """An experiment's saved sessions as the verdict uses them, for one metric: each session is its
    per-repeat values, sessions oldest first. ``noise`` holds runs of consecutive sessions that no
    segment boundary splits (the level's among them); ``pin`` the segment's pinned sessions when
    the candidate is to be judged against them too, ``pin_note`` since when ("since accepted on
    2026-12-03, 9 sessions")."""

    level: Sequence[Sequence[float]]
    noise: Sequence[Sequence[Sequence[float]]]
    pin: Sequence[Sequence[float]] = ()
    pin_note: str = ""

    @classmethod
    def of(cls, history: Sequence[Sequence[float]]) -> Reference:
        """One run of sessions, all of them the level: a history without segments."""
        return cls(level=history, noise=[history])

    def sessions(self) -> list[Sequence[float]]:
        return [session for run in self.noise for session in run]


def judge_history(reference: Reference, candidate: list[float], threshold: Threshold, *,
                  higher_is_better: bool = False, robust: bool = True, confidence: float = 0.95) -> Comparison:
    """Compare the candidate's per-repeat values of ``threshold.metric`` with ``reference``: with the
    level, and with the pin when there is one (see the module docstring). ``confidence`` is the CI's
    level: 0.95, or stricter for a confirmation. Closed-form: the verdict is deterministic."""
    _check(reference, candidate)
    relative = threshold.relative
    if relative and min(min(session) for session in [*reference.sessions(), *reference.level, candidate]) <= 0:
        return _nonpositive(reference.level, candidate, threshold, higher_is_better)

    fit = _fit(reference, relative, robust)
    values = _scale(candidate, relative)
    centre = _summary(values, robust)
    builder = _builder(threshold, fit.level, centre, higher_is_better, confidence)
    if not fit.differences:
        sessions = fit.noise_sessions
        return builder.inconclusive(f"{sessions} history session{'s' if sessions != 1 else ''}, between-session "
                                    "variation unknown")
    spread = _spread(values, fit.within)
    variance, df = fit.change_variance(spread, len(values), fit.level_sessions)
    quantile = t_quantile(0.5 + confidence / 2, df)
    recent = builder.from_ci(*_interval(centre - fit.level, quantile * math.sqrt(variance), relative),
                             _note(fit, threshold, len(values)))
    if not reference.pin:
        return recent
    pin_level = statistics.fmean(_session(tuple(session), relative, robust).summary for session in reference.pin)
    variance, df = fit.change_variance(spread, len(values), len(reference.pin))
    quantile = t_quantile(0.5 + confidence / 2, df)
    drift = _builder(threshold, pin_level, centre, higher_is_better, confidence).from_drift(
        *_interval(centre - pin_level, quantile * math.sqrt(variance), relative), reference.pin_note)
    if drift is None:
        return recent
    if recent.verdict == "regressed":  # both: the recent comparison, and the drift said with it
        return Comparison(**{**vars(recent), "text": f"{recent.text}; {change_text(drift.change, threshold.relative)} "
                                                      f"{reference.pin_note}"})
    return drift


def compare_history(history: list[list[float]], candidate: list[float], threshold: Threshold, *,
                    higher_is_better: bool = False, robust: bool = True) -> Comparison:
    """Compare the candidate's per-repeat values of ``threshold.metric`` with ``history``, the
    per-repeat values of each saved session of the same config, oldest first, all of them the level
    and the noise (one segment). ``robust=False`` summarises sessions by their mean instead of their
    Hodges-Lehmann estimate. One session: ``inconclusive`` (how sessions differ is unknown)."""
    return judge_history(Reference.of(history), candidate, threshold, higher_is_better=higher_is_better,
                         robust=robust)


def between_session_sd(history: list[list[float]] | Reference, *, relative: bool = True,
                       robust: bool = True) -> float:
    """The SD of the session offsets estimated from ``history`` (sessions oldest first, or a
    Reference): on the log scale for ``relative`` (0.021 is about 2.1%), in the metric's unit
    otherwise. NaN without two sessions in a run. When no session has 2 repeats it cannot be told
    from repeat noise and includes it."""
    reference = history if isinstance(history, Reference) else Reference.of(history)
    _check(reference, [0.0])
    if relative and min(min(session) for session in reference.sessions()) <= 0:
        raise ValueError("a relative between-session SD needs positive values")
    fit = _fit(reference, relative, robust)
    return fit.between_sd if fit.differences else math.nan


def history_sensitivity(history: list[list[float]] | Reference, candidate: list[float], threshold: Threshold, *,
                        robust: bool = True) -> Sensitivity:
    """The MDE of the verdict against the level on these values, and the repeats per session
    (history and candidate alike: a new history) that would resolve the threshold. More repeats
    shrink only the repeat noise of a session, not its offset, so with a large between-session SD
    no number does."""
    reference = history if isinstance(history, Reference) else Reference.of(history)
    _check(reference, candidate)
    repeats = len(candidate)
    if threshold.relative and min(min(session) for session in [*reference.sessions(), candidate]) <= 0:
        return Sensitivity(math.nan, repeats, None, "no MDE: a relative threshold needs positive values")
    fit = _fit(reference, threshold.relative, robust)
    if not fit.differences:
        return Sensitivity(math.nan, repeats, None, "no MDE: with one session, how sessions differ is unknown; "
                                                    "save more sessions (--llem-save-baseline) or measure an A/B "
                                                    "(--llem-against)")
    spread = _spread(_scale(candidate, threshold.relative), fit.within)
    variance, df = fit.change_variance(spread, repeats, fit.level_sessions)
    mde = minimum_detectable_effect(math.sqrt(variance), df, threshold)
    head = f"MDE {format_amount(threshold, mde)} at {repeats} repeats over {fit.level_sessions} history sessions"
    if not fit.within_df:
        return Sensitivity(mde, repeats, None, f"{head}; single-repeat sessions: repeat noise and session offsets "
                                               f"cannot be told apart")
    needed = repeats_to_resolve(fit.per_session_se, threshold)
    if needed is None:
        tail = (f"no number of repeats per session would resolve the {threshold} threshold: between-session SD "
                f"{format_amount(threshold, fit.between_sd)} over {fit.noise_sessions} sessions sets the floor "
                f"(an interleaved A/B in one session cancels it)")
    else:
        tail = resolve_text(threshold, needed, repeats, "per session ")
    return Sensitivity(mde, repeats, needed, f"{head}; {tail}")


@dataclass(frozen=True)
class _Fit:
    """What the reference says, on the CI's scale."""

    level: float  # mean of the level's session summaries
    level_sessions: int
    noise_sessions: int
    differences: int  # successive differences within the noise runs (M)
    session_variance: float  # tau^2: variance of one session's summary, offset included; NaN for M = 0
    df_sessions: float  # of tau^2: 2 M^2 / sum over runs of (3 m - 1)
    within: float  # pooled within-session variance of one repeat; NaN when no session has 2 repeats
    within_df: int
    inverse_repeats: float  # mean of 1/repeats over the noise sessions

    @property
    def history_noise(self) -> float:
        """w_h: the repeat noise in a history session's summary."""
        return self.within * self.inverse_repeats if self.within_df else 0.0

    @property
    def between_sd(self) -> float:
        return math.sqrt(max(0.0, self.session_variance - self.history_noise))

    def change_variance(self, spread: float | None, repeats: int, against: int) -> tuple[float, float]:
        """(variance, df) of candidate summary - the mean of ``against`` reference sessions, for a
        candidate of ``repeats`` repeats whose own variance is ``spread`` (None for one repeat)."""
        session = self.session_variance * (1 + 1 / against)
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
        return math.sqrt(session * (1 + 1 / self.level_sessions)), self.df_sessions

    def _candidate_noise(self, spread: float | None, repeats: int) -> tuple[float, float]:
        """(w_c, its df): the candidate's variance over its repeats, never below the pooled one."""
        if not self.within_df:
            # Single-repeat history: tau^2 already holds one repeat's noise; the candidate's comes on top.
            return (spread / repeats, repeats - 1) if spread is not None else (0.0, 1)
        if spread is not None and spread > self.within:
            return spread / repeats, repeats - 1
        return self.within / repeats, self.within_df


def _fit(reference: Reference, relative: bool, robust: bool) -> _Fit:
    def summary(session: Sequence[float]) -> float:
        return _session(tuple(session), relative, robust).summary

    runs = [[summary(session) for session in run] for run in reference.noise]
    squares = [(b - a) ** 2 for run in runs for a, b in zip(run, run[1:])]
    lengths = [len(run) - 1 for run in runs if len(run) > 1]
    differences = len(squares)
    tau2 = _successive_variance(squares) if differences else math.nan
    df_sessions = 2 * differences**2 / sum(3 * m - 1 for m in lengths) if differences else math.nan
    sessions = [_session(tuple(session), relative, robust) for session in reference.sessions()]
    spreads = [(s.repeats - 1, s.variance) for s in sessions if s.variance is not None]
    within_df = sum(df for df, _ in spreads)
    within = math.fsum(df * v for df, v in spreads) / within_df if within_df else math.nan
    inverse_repeats = statistics.fmean(1 / s.repeats for s in sessions)
    level = statistics.fmean(summary(session) for session in reference.level)
    return _Fit(level, len(reference.level), len(sessions), differences, tau2, df_sessions, within, within_df,
                inverse_repeats)


def _successive_variance(squares: list[float]) -> float:
    """tau^2 from the squared successive differences: half their mean, each first capped at
    CAP_SDS robust SDs (from their median) once there are CAP_FROM of them. One outlier session
    (a whole session a thermal event or a neighbour inflated) makes two huge differences; capped,
    it cannot widen every CI for the 30 sessions it stays in the noise window. Clean differences
    almost never reach the cap (the mean is divided by what the cap leaves of them, 0.99988)."""
    if len(squares) < CAP_FROM:
        return math.fsum(squares) / (2 * len(squares))
    cap = CAP_SDS**2 * statistics.median(squares) / _CHI2_1_MEDIAN
    return math.fsum(min(d2, cap) for d2 in squares) / (2 * len(squares) * _CAPPED_MEAN)


@dataclass(frozen=True)
class _Session:
    summary: float
    variance: float | None  # of one repeat; None for a single repeat
    repeats: int


@functools.lru_cache(maxsize=1 << 16)
def _session(values: tuple[float, ...], relative: bool, robust: bool) -> _Session:
    """A session's summary and spread on the CI's scale. Cached: a nightly history judges the same
    sessions night after night (and a simulation of thousands of nights, thousands of times)."""
    check_values("history session", list(values))
    scaled = _scale(values, relative)
    return _Session(_summary(scaled, robust), _variance(scaled), len(values))


def _spread(values: list[float], within: float) -> float | None:
    """The candidate's variance over its repeats (None for one repeat), each repeat first pulled to
    within CLIP_SDS pooled SDs of the history from the repeats' median: one window a thermal event
    stretched counts as a far but ordinary one, and repeats that need no pulling give exactly their
    sample variance. Without a pooled spread, the plain variance."""
    if len(values) < 2 or math.isnan(within) or within <= 0:
        return _variance(values)
    centre, cap = statistics.median(values), CLIP_SDS * math.sqrt(within)
    return _variance([centre + max(-cap, min(cap, v - centre)) for v in values])


def _builder(threshold: Threshold, level: float, centre: float, higher_is_better: bool,
             confidence: float) -> VerdictBuilder:
    if threshold.relative:
        return VerdictBuilder(threshold, math.exp(level), math.exp(centre), higher_is_better,
                              change=math.expm1(centre - level), confidence=confidence)
    return VerdictBuilder(threshold, level, centre, higher_is_better, change=centre - level, confidence=confidence)


def _interval(delta: float, half: float, relative: bool) -> tuple[float, float]:
    low, high = delta - half, delta + half
    return (math.expm1(low), math.expm1(high)) if relative else (low, high)


def _note(fit: _Fit, threshold: Threshold, repeats: int) -> str:
    note = (f"over {fit.level_sessions} history session{'s' if fit.level_sessions != 1 else ''}, between-session "
            f"SD {format_amount(threshold, fit.between_sd)}")
    if fit.noise_sessions > fit.level_sessions:
        note += f" (from {fit.noise_sessions} sessions)"
    if repeats == 1:
        note += ", single candidate repeat: its spread taken from the history"
    return note


def _scale(values: Sequence[float], relative: bool) -> list[float]:
    return [math.log(v) for v in values] if relative else list(values)


def _summary(values: list[float], robust: bool) -> float:
    return hodges_lehmann(values) if robust else statistics.fmean(values)


def _variance(values: list[float]) -> float | None:
    """Sample variance; None for a single value. Plain floats: statistics.variance is exact and slow."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _nonpositive(level: Sequence[Sequence[float]], candidate: list[float], threshold: Threshold,
                 higher_is_better: bool) -> Comparison:
    mean = statistics.fmean(statistics.median(session) for session in level)
    result = VerdictBuilder(threshold, mean, statistics.median(candidate), higher_is_better)
    if mean <= 0:
        return result.inconclusive(f"relative change undefined: history level is {mean:.4g}; "
                                   f"use an absolute threshold")
    return result.inconclusive("a relative CI needs positive values in every session; use an absolute threshold")


def _check(reference: Reference, candidate: list[float]) -> None:
    """ValueError for no sessions or a candidate without finite values (sessions: ``_session``)."""
    if not reference.level or not reference.sessions():
        raise ValueError("no history sessions to compare with")
    if not all([*reference.sessions(), *reference.level, *reference.pin]):
        raise ValueError("no history session values: every session needs at least one")
    check_values("candidate", candidate)
