"""Listen, whisper, barge: a supervisor joins a live call from their own phone (ChanSpy).

The service rings the supervisor's phone (AMI Originate into the dialplan's `dunline-spy`,
ChannelId = the session's id) and, when it answers, ChanSpy attaches it to the collector's
seat channel of the call: *listen* hears both sides and says nothing (ChanSpy `q`), *whisper*
talks to the collector only (`w`), *barge* talks to both (`B`). The call's recording is the
debtor channel's and is not changed by a spy.

Each session is two ledger entries: `monitor` (who, which call, the mode, the
phone, the collector) when the supervisor's phone is rung, `monitor_end` with its
length when that phone's channel hangs up (or the ring failed). Who may monitor whom is the
role matrix's (people/roles.py) and the console's; this module only does it.
"""
from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ami.events import Hangup, Newstate, OriginateResponse
from dialer.floor import Floor, SeatState

log = logging.getLogger("dunline.floor")

SPY_CONTEXT = "dunline-spy"
SPY_ID_PREFIX = "spy-"


class SpyMode(str, enum.Enum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


class NotOnTheFloor(LookupError):
    """The call is not on a collector's seat now (not bridged, over, or not a floor call)."""


@dataclass(frozen=True, slots=True)
class SpySession:
    spy_id: str
    attempt_id: str
    mode: SpyMode
    phone: str  # the supervisor's endpoint
    by: str  # the supervisor's user name
    collector: str
    started: float  # monotonic
    answered: float | None = None


Record = Callable[..., Awaitable[Any]]  # Ledger.record(actor=, action=, subject=, detail=)


class Supervision:
    def __init__(self, link: Any, floor: Floor, *, now: Callable[[], float], record: Record,
                 ring_timeout_s: int = 30) -> None:
        self.link = link
        self.floor = floor
        self.now = now
        self.record = record
        self.ring_timeout_s = ring_timeout_s
        self._sessions: dict[str, SpySession] = {}
        self._by_action: dict[str, str] = {}

    def sessions(self) -> tuple[SpySession, ...]:
        return tuple(self._sessions.values())

    async def start(self, attempt_id: str, mode: SpyMode, *, phone: str, by: str) -> SpySession:
        """Ring `phone` (the supervisor's own) and attach it to the call's collector."""
        seat = next((s for s in self.floor.seats()
                     if s.attempt_id == attempt_id and s.state is SeatState.ON_CALL), None)
        if seat is None:
            raise NotOnTheFloor(f"call {attempt_id} is not with a collector on the floor now")
        session = SpySession(SPY_ID_PREFIX + uuid.uuid4().hex, attempt_id, mode, phone, by, seat.collector,
                             self.now())
        await self.record(actor=by, action="monitor", subject=attempt_id,
                          detail={"session": session.spy_id, "mode": mode.value, "phone": phone,
                                  "collector": seat.collector})
        self._sessions[session.spy_id] = session
        try:
            response = await self.link.originate(
                f"PJSIP/{phone}", context=SPY_CONTEXT, exten="s", channel_id=session.spy_id,
                variables={"DUNLINE_SPY_TARGET": seat.channel, "DUNLINE_SPY_MODE": mode.value},
                timeout_ms=self.ring_timeout_s * 1000)
        except Exception as exc:
            await self._ended(session.spy_id, f"the supervisor's phone could not be rung: {exc}")
            raise
        if response.get("ActionID"):
            self._by_action[response["ActionID"]] = session.spy_id
        return session

    async def handle(self, item: Any) -> None:
        if isinstance(item, OriginateResponse):
            spy_id = self._by_action.pop(item.action_id, "") or item.uniqueid
            if item.response != "Success" and spy_id in self._sessions:
                await self._ended(spy_id, f"the supervisor's phone did not answer (reason {item.reason})")
            return
        uid = getattr(item, "uniqueid", "")
        session = self._sessions.get(uid) if uid.startswith(SPY_ID_PREFIX) else None
        if session is None:
            return
        if isinstance(item, Newstate) and item.channel_state == 6 and session.answered is None:
            self._sessions[uid] = replace(session, answered=self.now())
        elif isinstance(item, Hangup):
            await self._ended(uid, "hung up")

    async def _ended(self, spy_id: str, how: str) -> None:
        session = self._sessions.pop(spy_id, None)
        if session is None:
            return
        listened = 0.0 if session.answered is None else round(self.now() - session.answered, 1)
        await self.record(actor=session.by, action="monitor_end", subject=session.attempt_id,
                          detail={"session": spy_id, "mode": session.mode.value, "seconds": listened, "how": how})
