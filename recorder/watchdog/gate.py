"""The dialing gate, pure: no recording chain, no new calls.

    OPEN ──any critical check──▶ CLOSED ──criticals cleared──▶ PROVING ──canary passes──▶ OPEN
      ▲                            ▲                             │
      └─────────── canary passes ──┼──── a critical again ───────┘

An incident (a failed canary, a call whose recording failed or went missing) is critical
but only a *passing* canary can clear it, so it moves the gate to PROVING (closed, a
canary is wanted) rather than CLOSED; a failing condition (AMI down, disk full, module
unloaded) keeps it CLOSED until the condition clears. A critical result that no longer
holds the gate (`holds_gate=False`: a recording still missing after a canary proved the
chain) is shown and alarmed, but neither closes nor keeps closed the gate. The gate
starts in PROVING: after a (re)start the chain proves itself before the first call.
`is_open` is the only thing the dialer asks; calls in progress are never touched.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from recorder.watchdog.checks import CheckResult


def _reasons(results: list[CheckResult]) -> str:
    return "; ".join(f"{r.name}: {r.reason}" for r in results)


class GateClosed(RuntimeError):
    """A dial was refused: the dialing gate is closed (the message is the reason)."""


class DialsHeldBack(RuntimeError):
    """A dial was refused by back-pressure, not by a fault: recordings wait for ingest faster
    than it archives them (a busy backlog, rule `ingest_backlog`), or facts wait a moment for
    a busy database (`database_busy`). The gate stays open and nothing is an incident; try
    again after `retry_after_s`."""

    def __init__(self, reason: str, retry_after_s: int, rule: str = "ingest_backlog") -> None:
        super().__init__(f"{rule}: {reason}")
        self.reason, self.retry_after_s, self.rule = reason, retry_after_s, rule


class GateState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"  # a critical check is failing
    PROVING = "proving"  # nothing failing now; closed until a canary passes


@dataclass(frozen=True, slots=True)
class GateChange:
    """An open/close of the gate (audited, alarmed)."""

    at: datetime
    opened: bool
    state: GateState
    reason: str


class DialingGate:
    def __init__(self, state: GateState = GateState.PROVING, reason: str = "starting: awaiting a canary") -> None:
        self.state = state
        self.reason = reason
        self.changed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state is GateState.OPEN

    @property
    def wants_canary(self) -> bool:
        return self.state is GateState.PROVING

    def observe(self, results: Iterable[CheckResult], now: datetime) -> GateChange | None:
        """Feed the latest check results; returns the change if the gate closed."""
        critical = [r for r in results if r.critical and r.holds_gate]
        blocking = [r for r in critical if not r.cleared_by_canary]
        if blocking:
            return self._move(GateState.CLOSED, _reasons(blocking), now)
        if critical:  # only incidents: closed, and only a passing canary opens it
            return self._move(GateState.PROVING, _reasons(critical), now)
        if self.state is GateState.CLOSED:
            return self._move(GateState.PROVING, f"recovered ({self.reason}); awaiting a canary", now)
        return None

    def canary_passed(self, now: datetime) -> GateChange | None:
        """A canary call went through the whole chain; opens the gate if nothing fails."""
        if self.state is GateState.PROVING:
            return self._move(GateState.OPEN, "canary passed", now)
        return None

    def _move(self, state: GateState, reason: str, now: datetime) -> GateChange | None:
        was_open = self.is_open
        if state is self.state and reason == self.reason:
            return None
        self.state, self.reason = state, reason
        if was_open == self.is_open and state is not GateState.OPEN:
            return None  # still closed, only the reason changed (the state keeps the latest)
        self.changed_at = now
        return GateChange(now, self.is_open, state, reason)
