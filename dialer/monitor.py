"""The call monitor: AMI events -> pure tracker -> attempt rows.

It consumes the AMI link's subscriber queue, feeds the pure `CallTracker` and reports what
the tracker concludes to the attempt lifecycle (storage/lifecycle.py, through the durable
writer): an attempt's end comes with its own channel's Hangup cause, from which the
lifecycle's one outcome rule tells busy / no answer / congestion / invalid apart (not
OriginateResponse). After every (re)login the link delivers a CoreShowChannels listing:
attempts that ended while the link was down are reported `vanished` (unknown: fail
closed) unless the dialplan reported their end meanwhile (FastAGI, or its spool record).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from ami.events import OriginateResponse
from ami.link import Resynced
from ami.tracker import CallState, CallTracker, UpdateKind
from storage import repositories as repo
from storage.attempt_reports import FactWriter
from storage.clock import Clock
from storage.db import Database
from storage.lifecycle import LIVE_CALL_STATES, Event, Report, Source, State
from storage.names import ATTEMPT_ID_PATTERN, recording_name_of

log = logging.getLogger("dunline.monitor")


class CallMonitor:
    def __init__(
        self,
        db: Database,
        queue: asyncio.Queue[Any],
        clock: Clock,
        writer: FactWriter,
        *,
        resync_grace_s: float = 10.0,
    ) -> None:
        self.db = db
        self.queue = queue
        self.clock = clock
        self.writer = writer
        self.resync_grace_s = resync_grace_s
        self.tracker = CallTracker(accept=lambda uid: bool(ATTEMPT_ID_PATTERN.fullmatch(uid)))
        self._later: set[asyncio.Task[None]] = set()
        self._by_action: dict[str, str] = {}  # Originate ActionID -> attempt id
        self.resyncs = 0

    def originate_queued(self, action_id: str, attempt_id: str) -> None:
        """Remember which attempt an Originate is, for an OriginateResponse with no Uniqueid."""
        if action_id:
            self._by_action[action_id] = attempt_id

    async def run(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                try:
                    await self.handle(item)
                except Exception:  # one bad event must not stop the monitor
                    log.exception("failed to handle %r", item)
        finally:
            for task in self._later:
                task.cancel()

    async def handle(self, item: Any) -> None:
        if isinstance(item, Resynced):
            self.resyncs += 1
            updates = self.tracker.resync(item.channels, item.at)
            await self._reconcile_absent({c.uniqueid for c in item.channels})
        elif isinstance(item, OriginateResponse):
            await self._originate_response(item)
            return
        else:
            updates = self.tracker.apply(item)
        for update in updates:
            if update.kind is UpdateKind.ENDED:
                await self._ended(update.call)

    async def _ended(self, call: CallState) -> None:
        if call.ended_by_resync:
            self._check_later(call.uniqueid)
            return
        bridged = None
        if call.bridged_at is not None:
            left = call.unbridged_at if call.unbridged_at is not None else call.ended_at
            if left is not None:
                bridged = round(max(left - call.bridged_at, 0.0), 3)
        # the answer -> collector audio latency, on every call bridged (both times are this
        # process's reading of the PBX's events, so their difference is the PBX's delay plus
        # the same event delivery)
        to_bridge = (round(max(call.bridged_at - call.answered_at, 0.0), 3)
                     if call.bridged_at is not None and call.answered_at is not None else None)
        pbx_started = (None if call.pbx_created_at is None
                       else datetime.fromtimestamp(call.pbx_created_at, tz=timezone.utc))
        await self.writer.report(call.uniqueid, Report(
            event=Event.HUNG_UP, source=Source.AMI, at=self.clock(), answered=call.answered,
            hangup_cause=call.hangup_cause, dial_status=call.dial_status or None, bridged_seconds=bridged,
            answer_to_bridge_s=to_bridge, pbx_started_at=pbx_started, recording_name=recording_name_of(call.uniqueid) if call.answered else None))
        log.info("attempt %s ended (cause %s, answered %s)", call.uniqueid, call.hangup_cause, call.answered)

    async def _originate_response(self, event: OriginateResponse) -> None:
        """A failed Originate whose channel never appeared will send no Hangup: end it here."""
        uid = self._by_action.pop(event.action_id, "") or event.uniqueid
        if event.response == "Success" or not ATTEMPT_ID_PATTERN.fullmatch(uid or ""):
            return
        if self.tracker.get(uid) is not None or self.tracker.has_ended(uid):
            return  # the channel exists (or existed): its Hangup decides
        await self.writer.report(uid, Report(
            event=Event.ORIGINATE_FAILED, source=Source.DIALER, at=self.clock(),
            note=f"originate failed (reason {event.reason}) before a channel existed"))

    async def _reconcile_absent(self, present: set[str]) -> None:
        """Open attempts the PBX no longer has: check them after a grace period."""
        cutoff = self.clock() - timedelta(seconds=2)
        async with self.db.session() as s:
            open_attempts = await repo.open_attempts(s)
        for attempt in open_attempts:
            if attempt.id in present or State(attempt.state) not in LIVE_CALL_STATES:
                continue
            if attempt.originated_at is not None and attempt.originated_at > cutoff:
                continue
            if self.tracker.get(attempt.id) is None:
                self._check_later(attempt.id)

    def _check_later(self, attempt_id: str) -> None:
        task = asyncio.create_task(self._close_if_still_open(attempt_id))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _close_if_still_open(self, attempt_id: str) -> None:
        """Gone from the PBX and, after the grace period, still no report of its end (the
        hang-up handler's FastAGI report or its spool record): vanished, outcome unknown."""
        await asyncio.sleep(self.resync_grace_s)
        if self.writer.ended_pending(attempt_id):
            return
        async with self.db.session() as s:
            attempt = await repo.get_attempt(s, attempt_id)
        if attempt is None or State(attempt.state) not in LIVE_CALL_STATES:
            return
        await self.writer.report(attempt_id, Report(
            event=Event.VANISHED, source=Source.RESYNC, at=self.clock(),
            note="ended while the AMI link was down; outcome not reported"))
