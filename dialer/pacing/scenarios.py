"""Scenarios of the next ~30 s, and what one more dial would cost in them.

Let X(k) = answers by step k + calls waiting now - collectors ready now - collectors free
by step k (+ the 2 s an answered call may wait, see forecast.py). Collectors left idle
carry over, a call that finds none is gone, so the calls lost over the horizon are
max(0, max_k X(k)) (the loss of a reflected walk). The pool is empty at step k exactly
when X(k) >= max(0, X(j) for j < k); a call answered at step t adds one to X from t on, and
so adds one abandon (itself, or a later call whose collector it took) exactly when the pool
is empty at some step at or after t.

The scenarios are whole-number paths: for each thing on the floor, the step at which it is
done is read from its row's quantile table at a uniform level taken from a fixed, seeded
design (the same snapshot always gives the same paths; the design is shifted with the
snapshot's second so that consecutive seconds do not reuse the same draws for the same
slot). For the next dial, the cost is not drawn but averaged exactly over when it might be
answered: E[abandons added] = sum over t of P(answered at step t) x P(pool empty at or
after t). Whole numbers matter: a Gaussian approximation of the same counts underestimated
the risk of "exactly no collector left" by 2-4x in the simulator.
"""
from __future__ import annotations

import numpy as np

from dialer.pacing.forecast import LEVELS, Tables


class Design:
    """Fixed uniform levels: `scenarios` rows, one column per thing on the floor (and per
    new dial), drawn once from `seed`."""

    def __init__(self, scenarios: int, seed: int, columns: int = 8192) -> None:
        self.scenarios, self.seed = scenarios, seed
        self._draw(columns)

    def _draw(self, columns: int) -> None:
        rng = np.random.default_rng(self.seed)
        self.columns = columns
        self.floor = rng.integers(0, LEVELS, size=(self.scenarios, columns), dtype=np.intp)
        self.dials = rng.integers(0, LEVELS, size=(self.scenarios, columns), dtype=np.intp)

    def start(self, second: int, count: int) -> int:
        """Where this second's run of `count` columns begins: moved on every second, so that
        the same thing is not given the same draws second after second."""
        if count > self.columns:
            self._draw(2 * count)
        return (second * 7919) % (self.columns - count + 1)


def row_index(elapsed: tuple[float, ...], rows: int) -> np.ndarray:
    """Table rows for things that have lasted `elapsed` s: whole seconds, held at the last."""
    return np.minimum(np.array(elapsed, dtype=float).astype(np.intp), rows - 1)


def shortfall_paths(tables: Tables, design: Design, *, start: int, ready: int, waiting: int,
                    on_call: tuple[float, ...], wrap_up: tuple[float, ...],
                    ringing: tuple[float, ...]) -> np.ndarray:
    """X(k) per scenario (rows) and step (columns), with no new dial."""
    h, m = tables.horizon, design.scenarios
    rows = [row_index(elapsed, len(steps)) * LEVELS for steps, elapsed in
            ((tables.talk_steps, on_call), (tables.wrap_steps, wrap_up), (tables.answer_steps, ringing))]
    n_free = len(on_call) + len(wrap_up)
    total = n_free + len(ringing)
    x = np.full((m, h), float(waiting - ready))
    if total == 0:
        return x
    levels = design.floor[:, start:start + total]
    done_at = np.concatenate([
        tables.talk_steps.ravel().take(rows[0] + levels[:, :len(on_call)]),
        tables.wrap_steps.ravel().take(rows[1] + levels[:, len(on_call):n_free]),
        tables.answer_steps.ravel().take(rows[2] + levels[:, n_free:]),
    ], axis=1)  # (m, total): the step index each thing is done at; h = not within the horizon
    slot = done_at + (np.arange(m) * (h + 1))[:, None]
    size = m * (h + 1)
    freed = np.bincount(slot[:, :n_free].ravel(), minlength=size)
    answered = np.bincount(slot[:, n_free:].ravel(), minlength=size)
    return x + (answered - freed).reshape(m, h + 1)[:, :h].cumsum(axis=1)


def with_dials(x: np.ndarray, tables: Tables, design: Design, start: int, n: int) -> np.ndarray:
    """The paths with n more dials placed now (their answer steps drawn like the rest)."""
    if n == 0:
        return x
    m, h = x.shape
    steps = tables.answer_steps[0].take(design.dials[:, start:start + n])
    slot = steps + (np.arange(m) * (h + 1))[:, None]
    counts = np.bincount(slot.ravel(), minlength=m * (h + 1)).reshape(m, h + 1)[:, :h]
    return x + counts.cumsum(axis=1)


def next_dial_abandons(x: np.ndarray, answered_by: np.ndarray) -> float:
    """Expected abandons one more dial adds to the paths `x`; answered_by[k] = P(a new dial
    is answered by step k). The dial adds one exactly when it is answered at or before the
    last step at which the pool is empty."""
    peak = np.maximum(np.maximum.accumulate(x, axis=1), 0.0)
    empty = np.empty(x.shape, dtype=bool)
    empty[:, 0] = x[:, 0] >= 0.0
    np.greater_equal(x[:, 1:], peak[:, :-1], out=empty[:, 1:])  # X(k) >= max(0, X(j), j < k)
    h = x.shape[1]
    last = h - 1 - np.argmax(empty[:, ::-1], axis=1)
    return float(np.where(empty.any(axis=1), answered_by[last], 0.0).mean())


def expected_abandons(x: np.ndarray) -> float:
    """Expected calls lost over the horizon in the paths `x`."""
    return float(np.maximum(x.max(axis=1), 0.0).mean())
