"""Who may talk to the FastAGI server, pure: no sockets, no clock of its own.

A FastAGI connection proves nothing until its environment (and the token in it) has
arrived, so every connection first waits as *pending*. A flood of connections that send
nothing must not take the place of the PBX's next call:

- at most `max_per_peer` pending connections per peer address and `max_pending` in all;
- when a new connection finds the limit reached, the oldest pending connection that has
  sent nothing for `evict_idle_after_s` is closed to make room (the PBX sends its
  environment at once, so it is never the one idle that long); if there is none, the new
  connection is refused;
- only a request with a valid token becomes a session (the server's `max_sessions`): the
  session capacity is reserved for the PBX.

`RateLimiter` bounds what a flood can write into the log and the audit trail: at most
`burst` messages per `window_s`, the rest counted and summarised.
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class Pending:
    peer: str
    since: float
    started: bool = False  # has sent at least one line of its environment


class Admission:
    def __init__(self, *, max_pending: int = 256, max_per_peer: int = 128, evict_idle_after_s: float = 0.1) -> None:
        if max_pending < 1 or max_per_peer < 1 or evict_idle_after_s < 0:
            raise ValueError("max_pending and max_per_peer must be >= 1, evict_idle_after_s >= 0")
        self.max_pending, self.max_per_peer = max_pending, max_per_peer
        self.evict_idle_after_s = evict_idle_after_s
        self._pending: dict[Hashable, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def of_peer(self, peer: str) -> int:
        return sum(1 for p in self._pending.values() if p.peer == peer)

    def admit(self, key: Hashable, peer: str, now: float) -> tuple[bool, Hashable | None]:
        """(admitted, the pending connection to close for it, if any)."""
        victim: Hashable | None = None
        crowded_peer = self.of_peer(peer) >= self.max_per_peer
        if crowded_peer or len(self._pending) >= self.max_pending:
            victim = self._oldest_idle(peer if crowded_peer else None, now)
            if victim is None:
                return False, None
            del self._pending[victim]
        self._pending[key] = Pending(peer, now)
        return True, victim

    def _oldest_idle(self, peer: str | None, now: float) -> Hashable | None:
        candidates = [(p.since, k) for k, p in self._pending.items()
                      if not p.started and now - p.since >= self.evict_idle_after_s
                      and (peer is None or p.peer == peer)]
        return min(candidates, key=lambda c: c[0])[1] if candidates else None

    def started(self, key: Hashable) -> None:
        if (pending := self._pending.get(key)) is not None:
            pending.started = True

    def done(self, key: Hashable) -> None:
        """No longer pending (its environment arrived, or it was closed)."""
        self._pending.pop(key, None)


class RateLimiter:
    """At most `burst` events per `window_s` (a fixed window); `allow(now)` says whether this
    one may be written and how many were suppressed since the last one that was."""

    def __init__(self, burst: int = 10, window_s: float = 10.0) -> None:
        if burst < 1 or window_s <= 0:
            raise ValueError("burst must be >= 1 and window_s > 0")
        self.burst, self.window_s = burst, window_s
        self._window_start: float | None = None
        self._count = 0
        self._suppressed = 0
        self.total_suppressed = 0

    def allow(self, now: float) -> tuple[bool, int]:
        if self._window_start is None or now - self._window_start >= self.window_s:
            self._window_start, self._count = now, 0
        if self._count < self.burst:
            self._count += 1
            suppressed, self._suppressed = self._suppressed, 0
            return True, suppressed
        self._suppressed += 1
        self.total_suppressed += 1
        return False, 0
