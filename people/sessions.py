"""Sign-in sessions, API tokens and the login throttle: the rules, without I/O.

- A **session** lives at most `absolute` after sign-in and ends after `idle` without a
  request; its `last_seen_at` is written at most once a `touch_every` (not on every click).
- **Tokens** (session cookies and API tokens) are 256 random bits; only their SHA-256 is
  stored. API tokens carry a readable prefix (`dl_`) so a leaked one is recognisable.
- The **throttle** slows guessing: after `free_failures` failed sign-ins in a row for a
  user name (counted within `window`, reset by a success), each further try waits twice as
  long as the one before, up to `max_wait`; one address failing `per_ip_failures` times
  within `window` waits `max_wait`. A throttled try is refused without checking the
  password, so it neither confirms a guess nor costs the server a hash.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

API_TOKEN_PREFIX = "dl_"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored of a token: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)  # a shift, then sign in again
    touch_every: timedelta = timedelta(minutes=1)

    def ended(self, created_at: datetime, last_seen_at: datetime, now: datetime) -> str | None:
        """Why a session is over as of `now` ('expired', 'idle'), or None if it is alive."""
        if now >= created_at + self.absolute:
            return "expired"
        if now >= last_seen_at + self.idle:
            return "idle"
        return None

    def needs_touch(self, last_seen_at: datetime, now: datetime) -> bool:
        return now - last_seen_at >= self.touch_every


@dataclass(frozen=True, slots=True)
class Attempt:
    """One past sign-in attempt, as the throttle sees it."""

    at: datetime
    ok: bool


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    window: timedelta = timedelta(minutes=15)
    free_failures: int = 5
    first_wait: timedelta = timedelta(seconds=30)
    max_wait: timedelta = timedelta(minutes=15)
    per_ip_failures: int = 30

    def wait(self, by_user: Sequence[Attempt], by_ip: Sequence[Attempt], now: datetime) -> timedelta:
        """How long until the next try may be checked (zero: now). `by_user` and `by_ip` are
        the attempts for this user name and from this address within `window`, any order."""
        since = now - self.window
        recent_user = sorted((a for a in by_user if a.at >= since), key=lambda a: a.at)
        failures: list[datetime] = []
        for attempt in recent_user:
            failures = [] if attempt.ok else [*failures, attempt.at]
        wait = timedelta(0)
        if len(failures) >= self.free_failures:
            extra = len(failures) - self.free_failures
            step = min(self.first_wait * (2 ** min(extra, 20)), self.max_wait)
            wait = max(wait, failures[-1] + step - now)
        ip_failures = sorted(a.at for a in by_ip if a.at >= since and not a.ok)
        if len(ip_failures) >= self.per_ip_failures:
            wait = max(wait, ip_failures[-1] + self.max_wait - now)
        return max(wait, timedelta(0))
