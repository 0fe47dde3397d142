"""The look-ahead tables: for everything on the floor, how likely it is to have happened by
each of the next few seconds, given how long it has lasted already.

Time after the snapshot is cut into one-second steps k = 1..`horizon`. Rows are indexed by
whole seconds already spent in the state (rounded down); columns by k:

- `answers[r, k-1]`: a call in flight for r s is answered by r + k. From the answer rate,
  the ring-to-answer distribution of answered calls and the time unanswered calls stay in
  flight: a call that has rung long is ever more likely to be one that rings out, and one
  past the fast failures (busy, invalid) a little more likely to be answered;
- `after_talk[e, k-1]`: a collector on a call for e s is free (talk over and wrap-up done)
  by e + k + grace: the remaining talk given e, convolved with wrap-up;
- `after_wrap[w, k-1]`: a collector in wrap-up for w s is free by w + k + grace.

Supply is read `grace` seconds later than answers because an answered call may wait that
long (2 s) for a collector. Each table also comes as quantiles (`*_steps[row, u]`: the
step index, 0-based, at which a thing drawn at uniform level u is done; `horizon` for
"not within the horizon"), which is how scenarios are drawn without a loop per thing.

Built once per set of distributions (tens of ms, numpy); the answer table again when the
observed answer rate moves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dialer.pacing.distributions import Duration

MAX_TALK_ROW_S = 3600  # a call on for longer is treated as one on for an hour
LEVELS = 1024  # uniform levels of the quantile tables


def cdf_grid(dist: Duration, points: int, offset: float = 0.0) -> np.ndarray:
    """F(i + offset) for i = 0..points-1."""
    return np.fromiter((dist.cdf(i + offset) for i in range(points)), dtype=float, count=points)


def support_end(dist: Duration) -> float:
    """The smallest whole second by which (all but 1e-9 of) the distribution has happened."""
    high = max(1.0, math.ceil(dist.mean))
    while dist.cdf(high) < 1 - 1e-9 and high < 1e6:
        high *= 2
    low = 0.0
    while high - low > 1:
        mid = math.floor((low + high) / 2)
        low, high = (low, mid) if dist.cdf(mid) >= 1 - 1e-9 else (mid, high)
    return high


def _conditional(cdf: np.ndarray, rows: int, columns: np.ndarray) -> np.ndarray:
    """P(done by e + c | not done at e) for rows e = 0..rows-1 and offsets c in `columns`,
    from cdf[i] = F(i). Rows past the last sample (survival ~0) are all zero: such a thing
    is not counted on, which errs towards fewer dials."""
    e = np.arange(rows)[:, None]
    survival = 1.0 - cdf[:rows, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cdf[e + columns[None, :]] - cdf[e]) / survival
    out[survival[:, 0] < 1e-12] = 0.0
    return np.clip(np.nan_to_num(out), 0.0, 1.0)


def after_wrap_table(wrap_up: Duration, horizon: int, grace: int) -> np.ndarray:
    rows = int(support_end(wrap_up)) + 2
    cdf = cdf_grid(wrap_up, rows + horizon + grace + 1)
    return _conditional(cdf, rows, np.arange(1, horizon + 1) + grace)


def after_talk_table(talk: Duration, wrap_up: Duration, horizon: int, grace: int) -> np.ndarray:
    """The talk ends in some second e + j + 1/2 (j = 0, 1, ...); the collector is then free
    by e + c if wrap-up takes at most c - j - 1/2."""
    width = horizon + grace
    talk_cdf = cdf_grid(talk, MAX_TALK_ROW_S + width + 2)
    pmf = np.diff(talk_cdf)  # pmf[i] = P(i < T <= i + 1)
    ends = np.lib.stride_tricks.sliding_window_view(pmf, width)[:MAX_TALK_ROW_S + 1]  # [e, j]
    gap = np.arange(1, width + 1)[None, :] - np.arange(width)[:, None] - 1  # [j, c-1] = c - j - 1
    wrap_half = cdf_grid(wrap_up, width, offset=0.5)  # F_W(m + 1/2)
    wrap_by = np.where(gap >= 0, wrap_half[np.clip(gap, 0, width - 1)], 0.0)
    survival = 1.0 - talk_cdf[:MAX_TALK_ROW_S + 1, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (ends @ wrap_by) / survival
    out[survival[:, 0] < 1e-12] = 0.0
    return np.clip(np.nan_to_num(out), 0.0, 1.0)[:, grace:]


def answers_table(answer_cdf: np.ndarray, gone_cdf: np.ndarray, answer_rate: float, horizon: int) -> np.ndarray:
    """From F_answer(i) and F_unanswered(i) on whole seconds (see `in_flight_cdfs`)."""
    rows = len(answer_cdf) - horizon - 1
    r = np.arange(rows)[:, None]
    k = np.arange(1, horizon + 1)[None, :]
    in_flight = answer_rate * (1.0 - answer_cdf[:rows, None]) + (1.0 - answer_rate) * (1.0 - gone_cdf[:rows, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = answer_rate * (answer_cdf[r + k] - answer_cdf[r]) / in_flight
    out[in_flight[:, 0] < 1e-12] = 0.0
    return np.clip(np.nan_to_num(out), 0.0, 1.0)


def in_flight_cdfs(ring_to_answer: Duration, unanswered: Duration, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    rows = int(max(support_end(ring_to_answer), support_end(unanswered))) + 1
    return cdf_grid(ring_to_answer, rows + horizon + 1), cdf_grid(unanswered, rows + horizon + 1)


def quantile_steps(table: np.ndarray) -> np.ndarray:
    """steps[row, u]: the first step index whose probability reaches level (u + 1/2) / LEVELS,
    or the table's width when none does (not within the horizon)."""
    levels = (np.arange(LEVELS) + 0.5) / LEVELS
    out = np.empty((table.shape[0], LEVELS), dtype=np.int16)
    for i, row in enumerate(table):
        out[i] = np.searchsorted(np.maximum.accumulate(row), levels, side="left")
    return out


@dataclass(frozen=True, slots=True)
class Tables:
    """Everything the look-ahead reads, for one horizon and grace."""

    horizon: int
    answers: np.ndarray
    after_talk: np.ndarray
    after_wrap: np.ndarray
    answer_steps: np.ndarray
    talk_steps: np.ndarray
    wrap_steps: np.ndarray

    @property
    def new_dial(self) -> np.ndarray:
        """P(a dial placed now is answered by step k)."""
        return self.answers[0]
