"""Durations the pacer reasons about (ring-to-answer, talk, wrap-up) as frozen values.

A pacer needs one thing from a duration: its cumulative distribution, to ask "given that
this collector has talked for 140 s, how likely is the call to end in the next 20 s?".
The simulator needs a second: a draw from an injected `random.Random`. Both live here so
that the simulator and the pacer use the very same distribution (the pacer is handed the
fitted summaries it would have in production, the simulator draws from them).

`Empirical` is what production has first (samples of the campaign's own recent calls);
the parametric ones are the fitted summaries. All are pure: no module-level RNG, no clock.
"""
from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Protocol


class Duration(Protocol):
    """A non-negative duration in seconds."""

    @property
    def mean(self) -> float: ...

    def cdf(self, seconds: float) -> float:
        """P(duration <= seconds)."""
        ...

    def sample(self, rng: random.Random) -> float: ...


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal by its mean and standard deviation in seconds (call-centre talk times
    are close to log-normal: Brown et al., JASA 100(469), 2005)."""

    mean: float
    sd: float

    def __post_init__(self) -> None:
        if self.mean <= 0 or self.sd <= 0:
            raise ValueError(f"LogNormal needs a positive mean and sd, got {self.mean}, {self.sd}")

    @property
    def _mu_sigma(self) -> tuple[float, float]:
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        return math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2)

    def cdf(self, seconds: float) -> float:
        if seconds <= 0:
            return 0.0
        mu, sigma = self._mu_sigma
        return 0.5 * math.erfc(-(math.log(seconds) - mu) / (sigma * math.sqrt(2)))

    def sample(self, rng: random.Random) -> float:
        mu, sigma = self._mu_sigma
        return rng.lognormvariate(mu, sigma)


@dataclass(frozen=True, slots=True)
class Exponential:
    """Memoryless: how long a call has lasted says nothing of when it ends (the classic
    Erlang assumption, and Issabel's)."""

    mean: float

    def __post_init__(self) -> None:
        if self.mean <= 0:
            raise ValueError(f"Exponential needs a positive mean, got {self.mean}")

    def cdf(self, seconds: float) -> float:
        return 0.0 if seconds <= 0 else -math.expm1(-seconds / self.mean)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1 / self.mean)


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform on [low, high] (wrap-up: 10-30 s)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ValueError(f"Uniform needs 0 <= low <= high, got {self.low}, {self.high}")

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def cdf(self, seconds: float) -> float:
        if seconds >= self.high:
            return 1.0
        if seconds <= self.low:
            return 0.0
        return (seconds - self.low) / (self.high - self.low)

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class Clipped:
    """Another duration held inside [low, high] (ring-to-answer of answered calls: an
    answer cannot come after the no-answer timeout). The mass outside goes to the bounds."""

    inner: Duration
    low: float
    high: float

    @property
    def mean(self) -> float:
        # integral of the survival function over [low, high], plus low: 1 s steps are
        # plenty for the few-second spans this is used for
        steps = max(1, int(math.ceil(self.high - self.low)))
        width = (self.high - self.low) / steps
        return self.low + sum((1 - self.cdf(self.low + (k + 0.5) * width)) * width for k in range(steps))

    def cdf(self, seconds: float) -> float:
        if seconds >= self.high:
            return 1.0
        if seconds < self.low:
            return 0.0
        return self.inner.cdf(seconds)

    def sample(self, rng: random.Random) -> float:
        return min(self.high, max(self.low, self.inner.sample(rng)))


@dataclass(frozen=True, slots=True)
class Empirical:
    """The observed samples themselves (sorted on construction)."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("Empirical needs at least one sample")
        if any(s < 0 or math.isnan(s) for s in self.samples):
            raise ValueError("Empirical durations must be non-negative numbers")
        object.__setattr__(self, "samples", tuple(sorted(self.samples)))

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)

    def cdf(self, seconds: float) -> float:
        return bisect.bisect_right(self.samples, seconds) / len(self.samples)

    def sample(self, rng: random.Random) -> float:
        return self.samples[rng.randrange(len(self.samples))]


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same duration (a ring-out at the no-answer timeout)."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError(f"Fixed needs a duration >= 0, got {self.seconds}")

    @property
    def mean(self) -> float:
        return self.seconds

    def cdf(self, seconds: float) -> float:
        return 1.0 if seconds >= self.seconds else 0.0

    def sample(self, rng: random.Random) -> float:
        return self.seconds


@dataclass(frozen=True, slots=True)
class Mixture:
    """One of several durations, each with its weight (unanswered dials: busy or invalid
    numbers fail in seconds, the rest ring out)."""

    parts: tuple[tuple[float, Duration], ...]

    def __post_init__(self) -> None:
        weights = [w for w, _ in self.parts]
        if not self.parts or min(weights) < 0 or abs(sum(weights) - 1.0) > 1e-9:
            raise ValueError(f"Mixture weights must be >= 0 and sum to 1, got {weights}")

    @property
    def mean(self) -> float:
        return sum(w * d.mean for w, d in self.parts)

    def cdf(self, seconds: float) -> float:
        return sum(w * d.cdf(seconds) for w, d in self.parts)

    def sample(self, rng: random.Random) -> float:
        u = rng.random()
        for w, d in self.parts:
            if u < w:
                return d.sample(rng)
            u -= w
        return self.parts[-1][1].sample(rng)
