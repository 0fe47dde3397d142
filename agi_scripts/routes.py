"""FastAGI routes of the outbound call: `bind` (answered) and `ended` (hang-up handler).

The PBX starts the recording itself: the moment the carrier answers, the dialplan runs
MixMonitor named by the attempt (asterisk_conf/templates/pbx/extensions.conf), whatever
the service is doing, so no second of an answered call depends on the service being
quick. Then it asks `bind`, which confirms that the recording runs (MixMonitor has opened
the file) and ties call and recording to the attempt in one write (the lifecycle's
`bound`: answered, recording named). When AMI already reports this very channel answered
(with the token, that vouches for the attempt) the write waits until after the bridge: a
database busy with a burst of answers delays nothing; a refusal then hangs the call up.
Otherwise (AMI down) the write comes first. Then bind sets DUNLINE_BOUND=1 and the
dialplan bridges the debtor to the collector the Originate named (DUNLINE_COLLECTOR), or,
for the watchdog's canary (DUNLINE_CANARY=1 at Originate), plays the known prompt.
Anything unexpected (unknown or garbled attempt id, a channel that is not the attempt's, a
second bind, a recording that does not start) hangs the call up and leaves an audit event:
never an unbound or unrecorded conversation. What was recorded before a refusal is still
archived: every report of an answered call's end names its recording.

Only the PBX speaks FastAGI (`authorize`, enforced by the server before any handler runs):
each request names its attempt and carries that attempt's token (storage/call_tokens.py,
set as DUNLINE_TOKEN at Originate); `bind` also checks the speaking channel against the
one AMI reports for the attempt, answered. A refused request is audited (`agi.refused`,
a bounded number per window).

That the file also *grows* is proven by a watch that runs on while the call is bridged:
MixMonitor writes in 32 KB steps (~2 s of 8 kHz audio), so waiting for growth before the
bridge would keep the debtor in silence for seconds. A file that has not grown within
`grow_timeout_s` gets the call hung up (`on_recording_failed`) and an audit event.

`ended` runs in the channel's hang-up handler and reports the cause and the bridged time
from the dialplan, independent of the AMI link. Every report goes through the attempt
lifecycle (storage/lifecycle.py) by way of the durable writer: a report that would move
the attempt backwards (a second bind) is refused and audited, and nothing is lost while
the database cannot be written.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from agi_scripts.admission import RateLimiter
from agi_scripts.errors import AgiError, AgiHangup
from agi_scripts.protocol import AgiRequest
from agi_scripts.server import AgiSession
from storage import repositories as repo
from storage.attempt_reports import FactWriter
from storage.call_tokens import CallTokens
from storage.clock import Clock
from storage.db import Database
from storage.lifecycle import Event, Report, Source, State, is_over
from storage.names import ATTEMPT_ID_PATTERN, recording_name_of, spool_file_names

log = logging.getLogger("dunline.agi")

WAV_HEADER_BYTES = 44
ROUTES = ("bind", "ended", "keypad")
KEYPAD_NUMBER = re.compile(r"\+?[0-9]{3,20}")
PHONE_CHANNEL = re.compile(r"PJSIP/([A-Za-z0-9_.\-]{1,32})-[0-9a-f]{8}")  # a phone's own channel


@dataclass(frozen=True, slots=True)
class PbxChannel:
    """What the AMI link reports of an attempt's channel (its uniqueid is the attempt id)."""

    name: str  # e.g. PJSIP/carrier-0000002a
    answered: bool


def _no_view(attempt_id: str) -> PbxChannel | None:
    return None


async def _no_hang_up(attempt_id: str, channel: str, reason: str) -> None:
    return None


async def _no_vouching(channel: str, uniqueid: str) -> bool:
    return False


class Seats(Protocol):
    """The floor's waiting collectors (dialer/seats.py: SeatKeeper)."""

    async def take(self, attempt_id: str, wait_s: float, prefer: str | None = None) -> "SeatLike | None": ...

    def release(self, seat_id: str) -> None: ...


class SeatLike(Protocol):
    seat_id: str
    channel: str
    collector: str


@dataclass(frozen=True, slots=True)
class RecordingTarget:
    dir_host: Path  # where the dialplan's MixMonitor writes, as this host sees it
    start_timeout_s: float = 2.0  # until MixMonitor has opened the file
    start_poll_s: float = 0.005  # the dialplan started it a moment ago: it opens within milliseconds
    grow_timeout_s: float = 5.0  # MixMonitor flushes in 32 KB steps (~2 s at 8 kHz)
    poll_s: float = 0.05


AMD_VERDICTS = frozenset({"HUMAN", "MACHINE", "NOTSURE", "HANGUP"})  # AMD()'s AMDSTATUS
MACHINE = "MACHINE"


def amd_verdict(session: AgiSession) -> str | None:
    """Answering-machine detection's verdict on this call (the dialplan ran AMD() for a
    campaign that asks for it); None when it did not run (or sent anything else)."""
    verdict = session.query.get("amd", "")
    return verdict if verdict in AMD_VERDICTS else None


@dataclass(frozen=True, slots=True)
class CallRoutes:
    """The routes with what they need; `routes()` gives the server's route table."""

    db: Database
    recording: RecordingTarget
    clock: Clock
    writer: FactWriter  # attempt reports and audit events (never dropped)
    tokens: CallTokens  # only the PBX channel the service originated knows its attempt's token
    on_recording_failed: Callable[[str, str], Awaitable[None]]  # (attempt id, channel): hang up
    # (attempt id, reason): a call the chain failed to record (the watchdog closes the gate)
    on_recording_incident: Callable[[str, str], None] = lambda attempt_id, reason: None
    # what AMI reports of an attempt's channel now, and whether AMI is watching at all
    pbx_view: Callable[[str], PbxChannel | None] = _no_view
    pbx_watching: Callable[[], bool] = lambda: False
    pbx_ended: Callable[[str], bool] = lambda attempt_id: False  # AMI saw the attempt's channel hang up
    confirm_timeout_s: float = 1.0  # how long bind waits for AMI to report the channel
    # (attempt id, channel, reason): hang up a bridged call whose binding the database refused
    hang_up: Callable[[str, str, str], Awaitable[None]] = _no_hang_up
    # collectors waiting on the floor: an answered debtor is bridged to one of them within
    # `seat_wait_s`, or hears the abandon message; None: the dialplan rings DUNLINE_COLLECTOR
    seats: Seats | None = None
    seat_wait_s: float = 2.0
    # a phone's keypad call: does the PBX report this very channel (name, uniqueid) calling from
    # the phones' context? And (phone, number) -> None when the call was placed, else why not
    keypad_vouched: Callable[[str, str], Awaitable[bool]] = _no_vouching
    keypad_dial: Callable[[str, str], Awaitable[str | None]] | None = None
    _watches: set[asyncio.Task[None]] = field(default_factory=set)
    _bridged: set[str] = field(default_factory=set)  # bridged on AMI's word, until their watch ends
    _audits: set[asyncio.Task[None]] = field(default_factory=set)
    _refusal_audit: RateLimiter = field(default_factory=lambda: RateLimiter(burst=20, window_s=10.0))

    def routes(self) -> dict[str, Callable[[AgiSession], Awaitable[None]]]:
        return {"bind": self.bind, "ended": self.ended, "keypad": self.keypad}

    # -- who may speak --------------------------------------------------------------------
    def authorize(self, request: AgiRequest) -> str | None:
        """Only the PBX speaks FastAGI: every request names its attempt and carries that
        attempt's token (the server refuses the request before any handler runs)."""
        if request.route not in ROUTES:
            return f"unknown route {request.route!r}"
        if request.route == "keypad":  # no attempt yet: the handler asks AMI to vouch for the channel
            if not PHONE_CHANNEL.fullmatch(request.channel or ""):
                return "a keypad request comes from a phone's channel"
            if not KEYPAD_NUMBER.fullmatch(request.query.get("number", "")):
                return "a keypad request names the number dialled"
            return None
        attempt_id = request.query.get("attempt", "")
        if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
            return "garbled attempt id"
        if not self.tokens.check(attempt_id, request.query.get("token")):
            return "no valid token for this attempt"
        return None

    def refused(self, peer: str, request: AgiRequest | None, reason: str) -> None:
        """Audit a refused request (a bounded number per window: a flood must not flood the
        audit trail; the rest are summed up in the next one that is written)."""
        allowed, suppressed = self._refusal_audit.allow(asyncio.get_running_loop().time())
        if not allowed:
            return
        attempt_id = request.query.get("attempt", "") if request else ""
        task = asyncio.create_task(self.writer.audit(
            actor="agi", action="agi.refused",
            subject=attempt_id[:128] if ATTEMPT_ID_PATTERN.fullmatch(attempt_id) else None,
            reason=reason, peer=peer, route=request.route if request else None,
            channel=request.channel[:128] if request else None,
            uniqueid=request.uniqueid[:64] if request else None, not_audited_before=suppressed))
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    async def _pbx_disagrees(self, session: AgiSession, attempt_id: str, *, must_be_answered: bool) -> str | None:
        """The channel AMI reports for the attempt must be the one speaking (and, for bind,
        answered); waits up to `confirm_timeout_s` for AMI to catch up. With AMI down the
        token alone vouches for the request."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.confirm_timeout_s
        while True:
            view = self.pbx_view(attempt_id)
            if view is not None and view.name == session.channel and (view.answered or not must_be_answered):
                return None
            if not self.pbx_watching():
                return None
            if loop.time() >= deadline:
                if view is None:
                    return "contradicts the PBX: AMI reports no channel for this attempt"
                if view.name != session.channel:
                    return f"contradicts the PBX: the attempt's channel is {view.name}, not {session.channel}"
                return "contradicts the PBX: AMI does not report the call answered"
            await asyncio.sleep(0.02)

    async def _reject(self, session: AgiSession, attempt_id: str, reason: str) -> None:
        log.warning("bind rejected for %r on %s: %s", attempt_id, session.channel, reason)
        await self.writer.audit(actor="agi", action="bind.rejected", subject=attempt_id[:128] or None,
                               reason=reason, channel=session.channel, uniqueid=session.uniqueid)
        try:
            await session.hangup()
        except AgiError:
            pass

    async def bind(self, session: AgiSession) -> None:
        """The debtor answered and the dialplan started the recording: confirm it runs, tie it
        to the attempt (one short write), let the dialplan bridge."""
        started = asyncio.get_running_loop().time()
        attempt_id = session.query.get("attempt", "")
        if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
            await self._reject(session, attempt_id, "garbled attempt id")
            return
        if session.uniqueid != attempt_id:
            await self._reject(session, attempt_id, f"channel uniqueid {session.uniqueid!r} is not the attempt's")
            return
        if (disagreement := await self._pbx_disagrees(session, attempt_id, must_be_answered=True)) is not None:
            await self._reject(session, attempt_id, disagreement)
            return
        # AMI already reports this very channel answered: with the token, that vouches for the
        # attempt (only the service originates channels with an attempt's id), so nothing needs
        # the database before the bridge
        view = self.pbx_view(attempt_id) if self.pbx_watching() else None
        vouched = view is not None and view.name == session.channel and view.answered
        name = recording_name_of(attempt_id)
        path = self.recording.dir_host / spool_file_names(name)["mixed"]
        try:
            if not await self._wait_size(path, 0, self.recording.start_timeout_s, self.recording.start_poll_s):
                # the dialplan's MixMonitor did not open the file (not loaded, spool unwritable)
                self.on_recording_incident(attempt_id, "recording did not start")
                await self._reject(session, attempt_id, "recording did not start (no file)")
                return
            report = Report(event=Event.BOUND, source=Source.AGI, at=self.clock(), recording_name=name)
            if vouched:
                if attempt_id in self._bridged:  # a second bind of one call: a replay
                    await self._reject(session, attempt_id, "attempt already bound")
                    return
                self._bridged.add(attempt_id)
                seat = await self._to_seat(session, attempt_id, started)
                report = self._seated(report, session, seat)
                await session.set_variable("DUNLINE_BOUND", "1")
                self._background(self._store_binding(attempt_id, session.channel, report), self._audits)
                self._watch(attempt_id, session.channel, path)
                return
            # AMI cannot vouch (the link is down): the database must, before the bridge (a seat
            # taken first, so that the binding names the collector the debtor is given)
            seat = await self._to_seat(session, attempt_id, started)
            bound = await self.writer.report(attempt_id, self._seated(report, session, seat))
            # None: the database cannot take it now (kept in the journal): the call is recorded, go on
            if bound is not None and (bound.refused or bound.state is not State.BOUND or not bound.changed):
                if seat is not None and self.seats is not None:
                    self.seats.release(seat.seat_id)  # no bridge will come
                if bound.refused:  # refused, or the debtor hung up meanwhile (the recording is kept)
                    await self._reject(session, attempt_id, bound.reason)
                elif bound.state is State.BOUND:  # a second bind of one call: a replay
                    await self._reject(session, attempt_id, "attempt already bound")
                return
            await session.set_variable("DUNLINE_BOUND", "1")
            self._watch(attempt_id, session.channel, path)
        except AgiHangup:
            log.info("debtor hung up during bind of %s", attempt_id)

    async def keypad(self, session: AgiSession) -> None:
        """A number dialled on a collector's phone: placed as their own call (the same gate,
        policy and recording as every call), or refused; the dialplan says which
        (DUNLINE_KEYPAD=placed|refused) and hangs the phone's call up."""
        match = PHONE_CHANNEL.fullmatch(session.channel)
        number = session.query.get("number", "")
        if match is None or not KEYPAD_NUMBER.fullmatch(number):
            await session.set_variable("DUNLINE_KEYPAD", "refused")
            return
        if not await self.keypad_vouched(session.channel, session.uniqueid):
            log.warning("keypad request from %s not vouched for by the PBX: refused", session.channel)
            await self.writer.audit(actor="agi", action="keypad.refused", subject=f"phone:{match.group(1)}",
                                    reason="the PBX does not report this channel calling from a phone",
                                    channel=session.channel[:128], uniqueid=session.uniqueid[:64])
            await session.set_variable("DUNLINE_KEYPAD", "refused")
            return
        reason = "keypad dialling is off" if self.keypad_dial is None else await self.keypad_dial(match.group(1), number)
        if reason is not None:
            log.info("keypad call of %s refused: %s", match.group(1), reason)
        await session.set_variable("DUNLINE_KEYPAD", "placed" if reason is None else "refused")

    async def _to_seat(self, session: AgiSession, attempt_id: str, started: float) -> SeatLike | None:
        """On the floor: a ready collector's waiting channel for the dialplan's Bridge()
        (DUNLINE_SEAT), or, when none is ready within `seat_wait_s` of the answer, the abandon
        message (DUNLINE_ABANDON=1; audited `call.abandoned`). The canary takes no seat.
        Returns the seat the debtor is given, if any."""
        if self.seats is None or session.query.get("canary") == "1":
            return None
        if amd_verdict(session) == MACHINE:  # an answering machine: nobody to talk to, no message left
            log.info("answering machine on %s: hung up, no collector", attempt_id)
            await session.set_variable("DUNLINE_MACHINE", "1")
            return None
        wait_s = max(0.0, self.seat_wait_s - (asyncio.get_running_loop().time() - started))
        # a collector's own dial (preview, manual) names them: their seat first
        seat = await self.seats.take(attempt_id, wait_s, session.query.get("collector") or None)
        if seat is None:
            log.warning("no collector ready within %.1f s for %s: abandoned with the message",
                        self.seat_wait_s, attempt_id)
            self._background(self.writer.audit(actor="agi", action="call.abandoned", subject=attempt_id,
                                               reason=f"no collector ready within {self.seat_wait_s:g} s"),
                             self._audits)
            await session.set_variable("DUNLINE_ABANDON", "1")
            return None
        try:
            await session.set_variable("DUNLINE_SEAT", seat.channel)
        except AgiError:
            self.seats.release(seat.seat_id)
            raise
        return seat

    def _seated(self, report: Report, session: AgiSession, seat: SeatLike | None) -> Report:
        """The binding names the collector the debtor was given or, on the floor, that none was
        (abandoned: the debtor hears the message; the campaign's abandon count)."""
        on_floor = self.seats is not None and session.query.get("canary") != "1"
        verdict = amd_verdict(session)
        return replace(report, collector=seat.collector if seat else None, amd=verdict,
                       abandoned=on_floor and seat is None and verdict != MACHINE)

    async def _store_binding(self, attempt_id: str, channel: str, report: Report) -> None:
        """After the bridge: the one write of the binding (answered, recording named, its ingest
        job). A refusal of a call still live (the attempt is unknown to the database, or was
        bound before) hangs it up; a call that ended meanwhile only gets its binding noted."""
        stored = await self.writer.report(attempt_id, report)
        if stored is None or not stored.refused or (stored.state is not None and is_over(stored.state)):
            return
        log.warning("binding of %s refused after the bridge (%s): hanging up", attempt_id, stored.reason)
        await self.writer.audit(actor="agi", action="bind.rejected", subject=attempt_id, reason=stored.reason,
                                channel=channel, after_bridge=True)
        await self.hang_up(attempt_id, channel, stored.reason)

    def _background(self, work: Awaitable[None], tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _wait_size(self, path: Path, more_than: int, timeout_s: float, poll_s: float | None = None) -> bool:
        """True once the file exists and is larger than `more_than` bytes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                if path.stat().st_size > more_than or (more_than == 0 and path.exists()):
                    return True
            except FileNotFoundError:
                pass
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll_s or self.recording.poll_s)

    def _watch(self, attempt_id: str, channel: str, path: Path) -> None:
        task = asyncio.create_task(self._watch_growth(attempt_id, channel, path))
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)
        task.add_done_callback(lambda _: self._bridged.discard(attempt_id))

    async def _call_over(self, attempt_id: str) -> bool:
        """The call has ended: as AMI saw it, as reported and not stored yet (a database that
        keeps writes waiting must not make a finished call look "not growing"), or as stored."""
        if self.pbx_ended(attempt_id) or self.writer.ended_pending(attempt_id):
            return True
        async with self.db.session() as s:
            attempt = await repo.get_attempt(s, attempt_id)
        return attempt is None or is_over(attempt.state)

    async def _watch_growth(self, attempt_id: str, channel: str, path: Path) -> None:
        """For as long as the call lasts, the file must grow within `grow_timeout_s`
        (a disk filling mid-call, or the file removed, stops it growing)."""
        size, poll = WAV_HEADER_BYTES, self.recording.poll_s
        while await self._wait_size(path, size, self.recording.grow_timeout_s, poll):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                break
            poll = max(self.recording.poll_s, self.recording.grow_timeout_s / 10)  # first growth seen
        if await self._call_over(attempt_id):
            return  # the call is over: MixMonitor closed the file (the recorder may have taken it)
        log.error("recording of %s is not growing: hanging the call up", attempt_id)
        self.on_recording_incident(attempt_id, "recording not growing")
        await self.writer.audit(actor="agi", action="recording.not_growing", subject=attempt_id, channel=channel,
                               path=str(path), size=size)
        await self.on_recording_failed(attempt_id, channel)

    async def close(self) -> None:
        """Stop the growth watches (service shutdown); let refusal audits land."""
        for task in list(self._watches):
            task.cancel()
        await asyncio.gather(*self._watches, *self._audits, return_exceptions=True)

    async def ended(self, session: AgiSession) -> None:
        """The hang-up handler's report: it runs only on a channel that was answered."""
        attempt_id = session.query.get("attempt", "")
        if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id) or session.uniqueid != attempt_id:
            log.warning("ended: attempt id %r does not match the channel %r", attempt_id, session.uniqueid)
            return
        view = self.pbx_view(attempt_id)
        if view is not None and view.name != session.channel:
            await self.writer.audit(actor="agi", action="agi.refused", subject=attempt_id,
                                    reason=f"contradicts the PBX: the attempt's channel is {view.name}",
                                    route="ended", channel=session.channel)
            return
        values = {}
        # ANSWEREDTIME here is the debtor channel's time since answer (Asterisk 22 sets it
        # from the calling channel's up time), i.e. the span the recording must cover.
        for var in ("HANGUPCAUSE", "DIALSTATUS", "ANSWEREDTIME"):
            try:
                values[var] = await session.get_variable(var)
            except AgiError:
                values[var] = None
        await self.writer.report(attempt_id, Report(
            event=Event.HUNG_UP, source=Source.AGI, at=self.clock(), answered=True,
            hangup_cause=_int_or_none(values["HANGUPCAUSE"]), dial_status=values["DIALSTATUS"] or None,
            answered_seconds=_float_or_none(values["ANSWEREDTIME"]), recording_name=recording_name_of(attempt_id)))


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
