"""The floor, pure: collectors' seats and their states; which seat takes an answered call.

A **seat** is one collector's phone held open for a shift: the service rings the phone once
(AMI Originate, ChannelId = the seat's id) and the answered phone waits in the PBX
(`dunline-seat`), silent, for debtors. An answered debtor is bridged straight to a ready
seat's waiting channel, so nothing rings and nobody picks up between the debtor's "hello"
and the collector's (VICIdial's agents wait in a conference for the same reason).

States, driven by the PBX's events (`SeatKeeper`, dialer/seats.py) and by the people::

    connecting -> ready -> reserved -> on_call -> wrap_up -> ready ...
                     \\-> paused (a code) -> ready
    any -> gone (the phone hung up, the originate failed)

- *reserved*: bind picked the seat for an answered debtor; the bridge follows in
  milliseconds. A reservation the bridge never confirms (the debtor hung up during bind)
  is released by `release`.
- *wrap_up*: the call left the bridge; the seat is ready again after `wrap_up_s` (0: at
  once) or when `ready` is called (the collector finished the call's notes).
- Which ready seat: the one ready the longest (fair to collectors; the usual ACD rule).

No I/O, no asyncio, no clock: every time is passed in (seconds, any monotonic origin).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace

SEAT_ID_PREFIX = "seat-"


class SeatState(str, enum.Enum):
    CONNECTING = "connecting"  # the phone is being rung for the shift
    READY = "ready"
    RESERVED = "reserved"  # picked for an answered debtor, the bridge under way
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Seat:
    seat_id: str  # the seat channel's uniqueid (Originate ChannelId)
    collector: str  # the collector's endpoint (their phone)
    state: SeatState
    since: float  # when it entered this state
    channel: str = ""  # the PBX's channel name, once the phone answered
    attempt_id: str | None = None  # the call it is reserved for or on
    pause_code: str = ""


class FloorError(ValueError):
    """A change the seat's state does not allow (a bug or a stale event; the floor is unchanged)."""


class Floor:
    """Every open seat, by id. Methods return the seat as it now stands."""

    def __init__(self, wrap_up_s: float = 0.0) -> None:
        if wrap_up_s < 0:
            raise ValueError("wrap_up_s must be >= 0")
        self.wrap_up_s = wrap_up_s
        self._seats: dict[str, Seat] = {}

    # -- reading ---------------------------------------------------------------------
    def seats(self) -> tuple[Seat, ...]:
        return tuple(self._seats.values())

    def get(self, seat_id: str) -> Seat | None:
        return self._seats.get(seat_id)

    def is_ready(self, seat: Seat, now: float) -> bool:
        return seat.state is SeatState.READY or (
            seat.state is SeatState.WRAP_UP and now - seat.since >= self.wrap_up_s)

    def ready_count(self, now: float) -> int:
        return sum(1 for seat in self._seats.values() if self.is_ready(seat, now))

    # -- the PBX's side --------------------------------------------------------------
    def open(self, seat_id: str, collector: str, at: float) -> Seat:
        if not seat_id.startswith(SEAT_ID_PREFIX):
            raise FloorError(f"a seat id starts with {SEAT_ID_PREFIX!r}: {seat_id!r}")
        if seat_id in self._seats:
            raise FloorError(f"seat {seat_id} is already open")
        return self._put(Seat(seat_id, collector, SeatState.CONNECTING, at))

    def answered(self, seat_id: str, channel: str, at: float) -> Seat:
        """The collector's phone answered the seat's call: ready for debtors."""
        seat = self._seat(seat_id)
        if seat.state is not SeatState.CONNECTING:
            return seat  # a repeated Up: nothing changes
        return self._put(replace(seat, state=SeatState.READY, since=at, channel=channel))

    def bridged(self, seat_id: str, at: float) -> Seat:
        seat = self._seat(seat_id)
        if seat.state is not SeatState.RESERVED:
            raise FloorError(f"seat {seat_id} entered a bridge while {seat.state.value}")
        return self._put(replace(seat, state=SeatState.ON_CALL, since=at))

    def unbridged(self, seat_id: str, at: float) -> Seat:
        """The call left the seat's bridge: wrap-up (the attempt stays named until the next)."""
        seat = self._seat(seat_id)
        if seat.state is not SeatState.ON_CALL:
            return seat
        return self._put(replace(seat, state=SeatState.WRAP_UP, since=at))

    def gone(self, seat_id: str) -> Seat | None:
        """The seat's channel hung up (or never came up): it takes no more calls."""
        return self._seats.pop(seat_id, None)

    # -- answered debtors --------------------------------------------------------------
    def reserve(self, attempt_id: str, now: float, prefer: str | None = None) -> Seat | None:
        """The seat ready the longest, reserved for `attempt_id`; None when no seat is ready.
        `prefer`: a collector's own call (a preview or manual dial) goes to their seat if it is
        ready, else to whoever is (never left waiting for them)."""
        ready = [seat for seat in self._seats.values() if self.is_ready(seat, now) and seat.channel]
        if not ready:
            return None
        theirs = [seat for seat in ready if prefer and seat.collector == prefer]
        pick = min(theirs or ready, key=lambda seat: (self._ready_since(seat), seat.seat_id))
        return self._put(replace(pick, state=SeatState.RESERVED, since=now, attempt_id=attempt_id))

    def release(self, seat_id: str, now: float) -> Seat | None:
        """A reservation the bridge did not follow: ready again, first in line."""
        seat = self._seats.get(seat_id)
        if seat is None or seat.state is not SeatState.RESERVED:
            return seat
        return self._put(replace(seat, state=SeatState.READY, since=now, attempt_id=None))

    # -- the collector's side ----------------------------------------------------------
    def pause(self, collector: str, code: str, at: float) -> tuple[Seat, ...]:
        """Pause the collector's idle seats (a seat on a call pauses when it comes back)."""
        if not code:
            raise FloorError("a pause needs a code")
        return tuple(self._put(replace(seat, state=SeatState.PAUSED, since=at, pause_code=code))
                     for seat in self._of(collector) if self.is_ready(seat, at) or seat.state is SeatState.WRAP_UP)

    def ready(self, collector: str, at: float) -> tuple[Seat, ...]:
        """The collector is ready again (end of a pause, or of wrap-up before its time)."""
        return tuple(self._put(replace(seat, state=SeatState.READY, since=at, pause_code=""))
                     for seat in self._of(collector) if seat.state in (SeatState.PAUSED, SeatState.WRAP_UP))

    # -- inside ------------------------------------------------------------------------
    def _ready_since(self, seat: Seat) -> float:
        return seat.since + self.wrap_up_s if seat.state is SeatState.WRAP_UP else seat.since

    def _of(self, collector: str) -> list[Seat]:
        return [seat for seat in self._seats.values() if seat.collector == collector]

    def _seat(self, seat_id: str) -> Seat:
        try:
            return self._seats[seat_id]
        except KeyError:
            raise FloorError(f"no open seat {seat_id}") from None

    def _put(self, seat: Seat) -> Seat:
        self._seats[seat.seat_id] = seat
        return seat
