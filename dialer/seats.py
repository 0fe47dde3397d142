"""Seats on the PBX: collectors' phones held open for a shift, and the pick of a seat for an
answered debtor (the pure rules are dialer/floor.py; this is their I/O).

- `open_seat(collector)` rings the collector's phone once (AMI Originate into the dialplan's
  `dunline-seat`, ChannelId = the seat's id); the answered phone waits there.
- `run(queue)` follows the seats' channels over AMI: Up -> ready, BridgeEnter -> on the
  call, BridgeLeave -> wrap-up, Hangup (or a failed Originate, or a channel absent after a
  resync) -> gone; and the phones' registrations: a phone that unregisters or fails its
  qualify (ContactStatus Removed / Unreachable) loses its seats at once (they are hung up).
  Every change of a seat is logged; opening and closing are audited.
- `take(attempt_id, wait_s)` is bind's question: a ready seat now, or within `wait_s`
  (the debtor is already recorded and hears silence meanwhile); None -> the call is
  abandoned with a short message (the dialplan), never left in dead air.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from collections.abc import Awaitable, Callable
from typing import Any

from ami.errors import AmiError
from ami.events import BridgeEnter, BridgeLeave, ContactStatus, Hangup, Newstate, OriginateResponse
from ami.link import Resynced
from dialer.floor import SEAT_ID_PREFIX, Floor, FloorError, Seat, SeatState

log = logging.getLogger("dunline.floor")

SEAT_CONTEXT = "dunline-seat"
CHANNEL_UP = 6
TAKE_POLL_S = 0.02
RESERVATION_TIMEOUT_S = 5.0  # a reserved seat the bridge never reached is released after this

Audit = Callable[..., Awaitable[None]]


async def follow(queue: asyncio.Queue[Any], handle: Callable[[Any], Awaitable[None]]) -> None:
    """Feed every item of an AMI link subscription to `handle`, for ever; one item that
    fails is logged, never stops the floor."""
    while True:
        item = await queue.get()
        try:
            await handle(item)
        except Exception:
            log.exception("floor: failed to handle %r", item)


class SeatNotOpened(RuntimeError):
    """The PBX could not be asked to ring the collector's phone (the link is down, refused)."""


class SeatKeeper:
    def __init__(self, link: Any, floor: Floor, *, now: Callable[[], float], audit: Audit,
                 ring_timeout_s: int = 30) -> None:
        self.link = link
        self.floor = floor
        self.now = now  # monotonic seconds (the event loop's time)
        self.audit = audit
        self.ring_timeout_s = ring_timeout_s
        self._by_action: dict[str, str] = {}  # Originate ActionID -> seat id
        self._timers: set[asyncio.Task[None]] = set()
        self._watchers: set[asyncio.Queue[Seat]] = set()  # the console's live pages (screen pop, wallboard)

    # -- opening ---------------------------------------------------------------------
    async def open_seat(self, collector: str) -> str:
        """Ring the collector's phone for their shift; the seat is ready once it answers."""
        seat_id = SEAT_ID_PREFIX + uuid.uuid4().hex
        self._changed(self.floor.open(seat_id, collector, self.now()))
        try:
            response = await self.link.originate(
                f"PJSIP/{collector}", context=SEAT_CONTEXT, exten="s", channel_id=seat_id,
                variables={"DUNLINE_SEAT_COLLECTOR": collector}, timeout_ms=self.ring_timeout_s * 1000)
        except AmiError as exc:
            self.floor.gone(seat_id)
            await self.audit(actor="dialer", action="seat.failed", subject=collector, seat=seat_id, reason=str(exc))
            raise SeatNotOpened(str(exc)) from exc
        if response.get("ActionID"):
            self._by_action[response["ActionID"]] = seat_id
        await self.audit(actor="dialer", action="seat.opened", subject=collector, seat=seat_id)
        return seat_id

    # -- following the PBX -----------------------------------------------------------
    async def run(self, queue: asyncio.Queue[Any]) -> None:
        try:
            await follow(queue, self.handle)
        finally:
            for task in self._timers:
                task.cancel()

    async def handle(self, item: Any) -> None:
        if isinstance(item, OriginateResponse):
            seat_id = self._by_action.pop(item.action_id, "") or item.uniqueid
            if item.response != "Success" and self.floor.get(seat_id) is not None:
                await self._close(seat_id, f"the phone did not take the seat's call (reason {item.reason})")
            return
        if isinstance(item, ContactStatus):
            if item.lost:  # the phone unregistered or stopped answering: its seats take no more calls
                for seat in [s for s in self.floor.seats() if s.collector == item.aor]:
                    await self._close(seat.seat_id, f"the phone's registration: {item.status}")
                    await self._hang_up(seat.channel)
            return
        if isinstance(item, Resynced):
            present = {c.uniqueid for c in item.channels}
            for seat in self.floor.seats():
                if seat.seat_id not in present and seat.state is not SeatState.CONNECTING:
                    await self._close(seat.seat_id, "absent from the PBX after the AMI link came back")
            return
        uid = getattr(item, "uniqueid", "")
        if not uid.startswith(SEAT_ID_PREFIX) or self.floor.get(uid) is None:
            return
        try:
            if isinstance(item, Newstate) and item.channel_state == CHANNEL_UP:
                self._changed(self.floor.answered(uid, item.channel, self.now()))
            elif isinstance(item, BridgeEnter):
                self._changed(self.floor.bridged(uid, self.now()))
            elif isinstance(item, BridgeLeave):
                self._changed(self.floor.unbridged(uid, self.now()))
            elif isinstance(item, Hangup):
                await self._close(uid, f"the phone hung up (cause {item.cause})")
        except FloorError as exc:
            log.warning("floor: %s", exc)

    async def _close(self, seat_id: str, reason: str) -> None:
        seat = self.floor.gone(seat_id)
        if seat is not None:
            self._changed(replace(seat, channel=""))  # a seat without a channel: gone
            log.info("seat %s of %s closed: %s", seat_id, seat.collector, reason)
            await self.audit(actor="dialer", action="seat.closed", subject=seat.collector, seat=seat_id,
                             reason=reason, state=seat.state.value, attempt_id=seat.attempt_id)

    async def close_all(self, reason: str) -> None:
        """Close every seat and hang its phone up (the service is stopping)."""
        for seat in self.floor.seats():
            await self._close(seat.seat_id, reason)
            await self._hang_up(seat.channel)

    async def _hang_up(self, channel: str) -> None:
        if not channel:
            return
        try:
            await self.link.action("Hangup", Channel=channel, Cause=16)
        except AmiError as exc:  # gone already, or the link is down: the seat is closed either way
            log.info("hanging up seat channel %s: %s", channel, exc)

    def _changed(self, seat: Seat) -> None:
        log.debug("seat %s of %s: %s", seat.seat_id, seat.collector, seat.state.value)
        for queue in self._watchers:
            if queue.full():  # a stalled page: it misses old states, never the latest
                queue.get_nowait()
            queue.put_nowait(seat)

    def watch(self, size: int = 64) -> asyncio.Queue[Seat]:
        """A queue that receives every seat as it changes; a closed seat arrives once more with
        its channel emptied (it is gone from the floor)."""
        queue: asyncio.Queue[Seat] = asyncio.Queue(maxsize=size)
        self._watchers.add(queue)
        return queue

    def unwatch(self, queue: asyncio.Queue[Seat]) -> None:
        self._watchers.discard(queue)

    # -- the collector's side -----------------------------------------------------------
    async def pause(self, collector: str, code: str, *, by: str) -> int:
        """Pause the collector's idle seats (with a code; audited); how many were paused."""
        paused = self.floor.pause(collector, code, self.now())
        for seat in paused:
            self._changed(seat)
        await self.audit(actor=by, action="seat.paused", subject=collector, code=code, seats=len(paused))
        return len(paused)

    async def ready(self, collector: str, *, by: str) -> int:
        ready = self.floor.ready(collector, self.now())
        for seat in ready:
            self._changed(seat)
        await self.audit(actor=by, action="seat.ready", subject=collector, seats=len(ready))
        return len(ready)

    # -- answered debtors ------------------------------------------------------------
    async def take(self, attempt_id: str, wait_s: float, prefer: str | None = None) -> Seat | None:
        """A ready seat reserved for the attempt (the `prefer`red collector's if ready), waiting
        up to `wait_s` for one."""
        deadline = self.now() + wait_s
        while True:
            seat = self.floor.reserve(attempt_id, self.now(), prefer)
            if seat is not None:
                self._changed(seat)
                self._expire_later(seat.seat_id, attempt_id)
                return seat
            if self.now() >= deadline:
                return None
            await asyncio.sleep(TAKE_POLL_S)

    def release(self, seat_id: str) -> None:
        """The call a seat was reserved for will not come (the debtor hung up during bind)."""
        seat = self.floor.release(seat_id, self.now())
        if seat is not None:
            self._changed(seat)

    def _expire_later(self, seat_id: str, attempt_id: str) -> None:
        async def expire() -> None:
            await asyncio.sleep(RESERVATION_TIMEOUT_S)
            seat = self.floor.get(seat_id)
            if seat is not None and seat.state is SeatState.RESERVED and seat.attempt_id == attempt_id:
                log.warning("seat %s: the bridge of %s never came; ready again", seat_id, attempt_id)
                self.release(seat_id)

        task = asyncio.ensure_future(expire())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
