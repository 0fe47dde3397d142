"""The running service, assembled: database, FastAGI, AMI link, call monitor, ingest, console.

`Service.start()` brings the parts up in dependency order and `stop()` takes them down in
reverse: the console stops taking work, calls in progress are allowed to finish (their
hang-up handlers and recordings still arrive), then the link, the ingest queue and the
database are closed. Nothing here decides policy; it only wires the packages together.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from agi_scripts.routes import CallRoutes, PbxChannel, RecordingTarget
from agi_scripts.server import FastAgiServer
from ami.errors import AmiError
from ami.link import AmiLink
from cases.batches import BatchImporter
from cases.complaints_store import alarm_loop
from cases.payments_store import PaymentImporter
from people.accounts import count_users
from console.api import make_app
from console.deps import ConsoleDeps
from console.keypad import keypad_dial
from dialer.campaign_engine import CampaignEngine
from dialer.floor import Floor
from dialer.monitor import CallMonitor
from dialer.seats import SeatKeeper, SeatNotOpened, follow
from dialer.supervision import Supervision
from dialer.policy_config import build_policy_book
from dialer.originate import DialSettings, place_call
from recorder.ingest import IngestSettings
from recorder.ingest_pool import AnalysisPool
from recorder.ingest_runner import IngestRunner
from recorder.spool_scan import scan_spool
from recorder.ledger_store import Ledger
from recorder.watchdog.gate import DialsHeldBack, GateChange, GateClosed
from recorder.watchdog.runner import CanaryOutcome, Watchdog
from storage import repositories as repo
from storage.attempt_reports import ReportResult
from storage.call_tokens import CallTokens
from storage.clock import Clock, system_clock
from storage.db import Database
from storage.durable import DurableWriter
from storage.journal import Journal
from storage.lifecycle import State
from storage.models import Attempt
from dunline.settings import Settings
from dunline.wiring import AmiPbxLink, open_accounts, open_archive_store, open_ledger, web_security
from recorder.watchdog.probes import ServiceProbes

KEYPAD_CONTEXT = "dunline-collectors"  # where the phones' own calls enter the dialplan
log = logging.getLogger("dunline.service")

SPOOL_SCAN_S = 10.0  # how often the spool is read for hang-up records the FastAGI report missed


class Service:
    def __init__(self, settings: Settings, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.database.url)
        # attempt reports and audit events: never dropped (journaled while the database cannot take them)
        self.writer = DurableWriter(self.db, Journal(settings.database.journal_path()), clock,
                                   on_report=self._on_report)
        self.archive = open_archive_store(settings.recording)
        self._ledger: Ledger | None = None  # opened at start: its key may have to be made first
        self._ingest: IngestRunner | None = None
        self._pool: AnalysisPool | None = None  # ingest's signal checks, in other processes
        self.ingest_settings = IngestSettings(
            spool_dir=Path(settings.recording.dir_host),
            retention_years=settings.recording.retention_years,
            client_retention_years=settings.recording.client_retention_years(),
            playback_format=settings.recording.playback_format,
        )
        self.tokens = CallTokens.load_or_create(
            Path(settings.agi.token_key_file) if settings.agi.token_key_file
            else settings.database.state_path("agi-token.key"))
        self.dial_settings = DialSettings(
            trunk=settings.pbx.trunk, context=settings.pbx.outbound_context,
            ring_timeout_s=settings.pbx.ring_timeout_s, tokens=self.tokens,
        )
        self.accounts = open_accounts(settings, self.db, clock)
        self.policy = build_policy_book(settings)  # which rules apply to which case
        self._collectors = itertools.cycle(settings.pbx.collectors)
        # a burst of dials: a few decide and write at a time, the others wait here, where waiting
        # costs nothing, rather than each holding a database connection in SQLite's busy handler
        # while the event loop (FastAGI binds, AMI events) serves them all
        self._dial_slots = asyncio.Semaphore(settings.pbx.dial_concurrency)
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self._campaign_task: asyncio.Task[Any] | None = None
        self.agi: FastAgiServer | None = None
        self.routes: CallRoutes | None = None
        self.link: AmiLink | None = None
        self.monitor: CallMonitor | None = None
        self.watchdog: Watchdog | None = None
        self.seats: SeatKeeper | None = None  # collectors' seats on the floor (settings.floor.seats)
        self.supervision: Supervision | None = None  # listen / whisper / barge on the floor's calls
        self.campaigns: CampaignEngine | None = None  # running campaigns dialled by their pacers (the floor)

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "service not started"
        return self._ledger

    @property
    def ingest(self) -> IngestRunner:
        assert self._ingest is not None, "service not started"
        return self._ingest

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        await self.db.migrate()
        await self.writer.replay()  # what the journal kept while the database could not take it
        await BatchImporter(self.db, self.clock).mark_interrupted()
        await PaymentImporter(self.db, self.clock).mark_interrupted()
        self._tasks.append(asyncio.create_task(self.writer.run(), name="journal-replay"))
        self._ledger = await open_ledger(s, self.db, self.archive, self.clock, create_if_new=True)
        await self._ledger.anchor_pending()  # checkpoints signed before a crash took their witness with it
        self._tasks.append(asyncio.create_task(self._ledger.run(s.recording.checkpoint_interval_s),
                                               name="ledger-checkpoints"))
        self._pool = AnalysisPool(s.recording.ingest_processes or None)
        self._tasks.append(asyncio.create_task(self._pool.warm(), name="analysis-pool-warm-up"))
        self._ingest = IngestRunner(self.db, self.archive, self.ingest_settings, self.clock, self._ledger,
                                    self.writer, workers=s.recording.ingest_workers,
                                    on_failure=self._recording_incident, analyse=self._pool.analyse)
        self.link = AmiLink(s.ami.host, s.ami.port, s.ami.username, s.ami.secret,
                            ping_interval=s.ami.ping_interval_s, ping_timeout=s.ami.ping_timeout_s,
                            action_timeout=s.ami.action_timeout_s)
        if s.floor.seats:
            loop = asyncio.get_running_loop()
            self.seats = SeatKeeper(self.link, Floor(s.floor.wrap_up_s), now=loop.time, audit=self.writer.audit,
                                    ring_timeout_s=s.pbx.ring_timeout_s)
            self._tasks.append(asyncio.create_task(self.seats.run(self.link.subscribe()), name="floor"))
            self.supervision = Supervision(self.link, self.seats.floor, now=loop.time, record=self._ledger.record,
                                           ring_timeout_s=s.pbx.ring_timeout_s)
            self._tasks.append(asyncio.create_task(follow(self.link.subscribe(), self.supervision.handle),
                                                   name="supervision"))
            self.campaigns = CampaignEngine(self.db, self.seats, self._campaign_dial, self.clock,
                                            tick_s=s.floor.campaign_tick_s, ring_timeout_s=s.pbx.ring_timeout_s)
        console = ConsoleDeps(db=self.db, dial=self.dial, health=self.health, accounts=self.accounts,
                              security=web_security(s.console), store=self.archive, ledger=self.ledger,
                              seats=self.seats, supervision=self.supervision,
                              visits_dir=Path(s.visits.dir), qc_sample_size=s.qc.sample_size)
        routes = CallRoutes(
            db=self.db,
            recording=RecordingTarget(dir_host=Path(s.recording.dir_host),
                                      start_timeout_s=s.recording.start_timeout_s,
                                      grow_timeout_s=s.recording.grow_timeout_s),
            clock=self.clock,
            writer=self.writer,
            tokens=self.tokens,
            on_recording_failed=self.hang_up_unrecorded,
            hang_up=self.hang_up_refused,
            on_recording_incident=self._recording_incident,
            pbx_view=self._pbx_view,
            pbx_watching=lambda: bool(self.link and self.link.connected),
            pbx_ended=lambda attempt_id: bool(self.monitor and self.monitor.tracker.has_ended(attempt_id)),
            seats=self.seats, seat_wait_s=s.floor.answer_wait_s,
            keypad_vouched=self._keypad_vouched,
            keypad_dial=lambda phone, number: keypad_dial(console, phone, number),
        )
        self.routes = routes
        self.agi = FastAgiServer(routes.routes(), host=s.agi.host, port=s.agi.port,
                                 max_sessions=s.agi.max_sessions, max_pending=s.agi.max_pending,
                                 max_pending_per_peer=s.agi.max_pending_per_peer,
                                 header_timeout=s.agi.header_timeout_s,
                                 authorize=routes.authorize, on_refused=routes.refused)
        await self.agi.start()
        self.monitor = CallMonitor(self.db, self.link.subscribe(), self.clock, self.writer)
        self._tasks.append(asyncio.create_task(self.monitor.run(), name="call-monitor"))
        await self._scan_spool()  # ends the PBX recorded while the service was down, recordings found again
        self._tasks.append(asyncio.create_task(self.ingest.run(), name="ingest"))
        self._tasks.append(asyncio.create_task(self._scan_spool_periodically(), name="spool-scan"))
        if s.visits.purge_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._purge_visits_periodically(s.visits.purge_interval_s),
                                                   name="visits-purge"))
        await self.link.start()
        if self.seats is not None and s.floor.open_at_start:
            await self.open_seats()
        if s.watchdog.enabled:
            self._start_watchdog()
        self._tasks.append(asyncio.create_task(  # complaints due soon or overdue: audited, posted
            alarm_loop(self.db, self.clock, self.complaint_alarm_poster(), s.complaints.check_interval_s),
            name="complaint-alarms"))
        if self.campaigns is not None:
            self._campaign_task = asyncio.create_task(self.campaigns.run(), name="campaigns")
            self._tasks.append(self._campaign_task)
        if s.reports.weekly_auto:  # the week just ended, written once (dunline/report_task.py)
            from dunline.report_task import run_weekly_reports

            self._tasks.append(asyncio.create_task(run_weekly_reports(
                self.db, self.clock, Path(s.reports.weekly_dir), s.reports.weekly_locale), name="weekly-report"))
        if s.qc.weekly_auto:  # each finished week's QC sample lands in the queue (dunline/qc_task.py)
            from dunline.qc_task import run_weekly_samples

            self._tasks.append(asyncio.create_task(run_weekly_samples(self.db, self.clock, s.qc.sample_size),
                                                   name="weekly-qc-sample"))
        if await count_users(self.db) == 0:
            log.warning("no users yet: add the first admin with `dunline user add NAME --role admin`")
        app = make_app(console)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, s.console.host, s.console.port).start()
        log.info("dunline up: console http://%s:%d, FastAGI %s:%d, AMI %s:%d", s.console.host,
                 s.console.port, s.agi.host, self.agi.port, s.ami.host, s.ami.port)

    async def open_seats(self, collectors: tuple[str, ...] | None = None) -> list[str]:
        """Ring each collector's phone for a seat (`floor.seats_per_phone` each); the seats
        that could not be asked for are logged and audited, the others returned."""
        assert self.seats is not None, "floor.seats is off"
        opened = []
        for collector in collectors or self.settings.pbx.collectors:
            for _ in range(self.settings.floor.seats_per_phone):
                try:
                    opened.append(await self.seats.open_seat(collector))
                except SeatNotOpened as exc:
                    log.error("could not ring %s for a seat: %s", collector, exc)
        return opened

    def _start_watchdog(self) -> None:
        s, link = self.settings, self.link
        assert link is not None
        volumes = {"spool_disk": Path(s.recording.dir_host)}
        if self.archive.name == "fs":
            volumes["archive_disk"] = Path(s.recording.archive_dir)
        probes = ServiceProbes(link=AmiPbxLink(link), db=self.db, clock=self.clock, volumes=volumes,
                               backlog=self.ingest.backlog, journal=self.writer.backlog, spool_dir=Path(s.recording.dir_host))
        self.watchdog = Watchdog(probes, s.watchdog, self.clock, on_change=self._gate_changed,
                                 canary=self.run_canary)
        self._tasks.append(asyncio.create_task(self.watchdog.run(), name="watchdog"))
        self._tasks.append(asyncio.create_task(self._poke_on_link_change(link.subscribe()),
                                               name="watchdog-link"))

    async def _poke_on_link_change(self, queue: asyncio.Queue[Any]) -> None:
        from ami.link import LinkDown, LinkUp

        while True:
            item = await queue.get()
            if isinstance(item, (LinkDown, LinkUp)) and self.watchdog is not None:
                self.watchdog.poke()

    async def _keypad_vouched(self, channel: str, uniqueid: str) -> bool:
        """Does the PBX report this very channel (name and uniqueid) calling from a phone's
        keypad (the phones' dialplan context)? A forged FastAGI request names none."""
        if self.link is None or not self.link.connected:
            return False
        try:
            statuses = await self.link.list_action("Status", Channel=channel)
        except AmiError:
            return False
        return any(e.get("Channel") == channel and e.get("Uniqueid") == uniqueid
                   and e.get("Context") == KEYPAD_CONTEXT for e in statuses)

    def _pbx_view(self, attempt_id: str) -> PbxChannel | None:
        """What AMI reports of the attempt's channel (bind checks the speaker against it)."""
        call = self.monitor.tracker.get(attempt_id) if self.monitor is not None else None
        return None if call is None else PbxChannel(call.channel, call.answered)

    def _recording_incident(self, attempt_id: str, reason: str) -> None:
        if self.watchdog is not None:
            self.watchdog.recording_failed(attempt_id, reason)

    async def run_canary(self) -> CanaryOutcome:
        """One canary call through the whole chain (the watchdog's proof; also on demand)."""
        from dialer.originate import place_canary
        from recorder.watchdog.canary import CanaryDeps, run_canary

        link = self.link
        assert link is not None, "service not started"
        w = self.settings.watchdog

        async def place() -> Attempt:
            return await place_canary(self.db, link, self.dial_settings, number=w.canary_number,
                                      clock=self.clock, writer=self.writer,
                                      on_queued=self.monitor.originate_queued if self.monitor else None)

        async def hang_up(attempt_id: str) -> None:
            await link.action("Hangup", Channel=attempt_id, Cause=16)

        return await run_canary(CanaryDeps(db=self.db, clock=self.clock, store=self.archive, place=place,
                                           hang_up=hang_up, timeout_s=w.canary_timeout_s))

    async def _gate_changed(self, change: GateChange) -> None:
        """Every open/close of the gate: an audit event, and the webhook if configured."""
        action = "gate.opened" if change.opened else "gate.closed"
        await self.writer.audit(at=change.at, actor="watchdog", action=action, subject="dialing-gate",
                               reason=change.reason, state=change.state.value)
        if self.settings.watchdog.webhook_url:
            asyncio.create_task(self._post_alarm({"event": action, "at": change.at.isoformat(),
                                                  "reason": change.reason}))

    def complaint_alarm_poster(self) -> Callable[[dict[str, Any]], Awaitable[None]] | None:
        """Where complaints' alarms (due soon, overdue) are POSTed: complaints.webhook_url, else
        watchdog.webhook_url; None when neither is set (the audit and the console's banner only)."""
        url = self.settings.complaints.webhook_url or self.settings.watchdog.webhook_url
        if not url:
            return None

        async def post(payload: dict[str, Any]) -> None:
            await self._post_alarm(payload, url)

        return post

    async def _post_alarm(self, payload: dict[str, Any], url: str | None = None) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                async with http.post(url or self.settings.watchdog.webhook_url, json=payload) as response:
                    if response.status >= 300:
                        log.error("alarm webhook answered %d", response.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.error("alarm webhook failed: %s", exc)

    async def stop(self, drain_timeout: float = 30.0) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._campaign_task is not None:  # no new call while the calls in progress drain
            self._campaign_task.cancel()
        await self.wait_idle(drain_timeout)
        if self.watchdog is not None:
            await self.watchdog.stop()
        if self.agi is not None:
            await self.agi.close(drain_timeout=5.0)
        if self.routes is not None:
            await self.routes.close()
        if self.seats is not None:  # nobody takes calls here any more: the waiting phones are let go
            await self.seats.close_all("the service stopped")
        if self.link is not None:
            await self.link.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._pool is not None:  # after the ingest runner: nothing analyses any more
            await self._pool.close()
        try:
            await self.writer.replay()  # what is still journaled stays for the next start
        except Exception:
            log.exception("journal replay at shutdown failed; the journal keeps its records")
        if self._ledger is not None:
            try:  # sign the head: whatever happens next, this much is sealed (and witnessed)
                await self._ledger.checkpoint()
            except Exception:  # the database refused: the next start's timer signs it
                log.exception("could not sign the ledger head at shutdown")
        await self.db.close()

    # -- work ------------------------------------------------------------------------
    async def dial(self, case_id: str, number: str | None = None, *, requested_by: str | None = None,
                   collector: str | None = None, campaign_id: int | None = None) -> Attempt:
        """Place a call now if the gate, the back-pressure and the policy allow; `requested_by`
        (a person, through the console) goes into the dial's own audit entries. `collector`: the
        phone of the person who dials (their own call: it rings them, or on the floor goes to
        their seat first); else on the floor whoever is ready, without it the next configured one.
        `campaign_id`: a dial for a campaign (refused unless it is running)."""
        who = {"requested_by": requested_by} if requested_by else {}
        assert self.link is not None, "service not started"
        # no lock in the process: a number is excluded by its lease in the database, and the
        # lease's write orders the decisions in time (dialer/originate.py, storage/dial_leases.py)
        if self.watchdog is not None and not self.watchdog.gate.is_open:
            reason = self.watchdog.gate.reason
            await self.writer.audit(actor="dialer", action="dial.gate_closed", subject=case_id, reason=reason,
                                    **who)
            raise GateClosed(f"dialing gate closed: {reason}")
        held = self.watchdog.held_back() if self.watchdog is not None else None
        if held is not None:  # busy, not broken: the gate stays open
            await self.writer.audit(actor="dialer", action="dial.held_back", subject=case_id,
                                    rule=held.rule, reason=held.reason, retry_after_s=held.retry_after_s, **who)
            raise DialsHeldBack(held.reason, held.retry_after_s, held.rule)
        async with self._dial_slots:
            return await place_call(self.db, self.link, self.dial_settings, case_id=case_id,
                                    collector=collector or (None if self.seats else next(self._collectors)),
                                    clock=self.clock,
                                    policy=self.policy, writer=self.writer,
                                    number=number, requested_by=requested_by, campaign_id=campaign_id,
                                    on_queued=self.monitor.originate_queued if self.monitor else None)

    async def _campaign_dial(self, case_id: str, number: str, *, campaign_id: int) -> Attempt:
        return await self.dial(case_id, number, campaign_id=campaign_id)

    async def hang_up_unrecorded(self, attempt_id: str, channel: str) -> None:
        """No recording, no call: cut a call whose recording stopped growing."""
        await self._cut_call(attempt_id, channel, cause=41, audit_as="recording", reason="recording not growing")

    async def hang_up_refused(self, attempt_id: str, channel: str, reason: str) -> None:
        """A call bridged on AMI's word whose binding the database then refused."""
        await self._cut_call(attempt_id, channel, cause=21, audit_as="bind", reason=reason)

    async def _cut_call(self, attempt_id: str, channel: str, *, cause: int, audit_as: str, reason: str) -> None:
        """Hang a call up over AMI; audited `<audit_as>.call_cut`, or `..._failed` with the error."""
        assert self.link is not None
        try:
            await self.link.action("Hangup", Channel=channel, Cause=cause)
        except AmiError as exc:
            log.error("could not cut call %s (%s; %s): %s", attempt_id, channel, reason, exc)
            await self.writer.audit(actor="dialer", action=f"{audit_as}.call_cut_failed", subject=attempt_id,
                                    channel=channel, error=str(exc))
            return
        await self.writer.audit(actor="dialer", action=f"{audit_as}.call_cut", subject=attempt_id, channel=channel,
                                reason=reason)

    async def _on_report(self, result: ReportResult) -> None:
        """A report was stored: a call that is over with a recording goes to ingest."""
        if result.ingest_due:
            self.ingest.poke()

    async def _scan_spool(self) -> None:
        try:
            await scan_spool(self.db, Path(self.settings.recording.dir_host), self.writer, self.tokens, self.clock)
        except Exception:  # the next pass tries again; the watchdog sees what stays missing
            log.exception("spool scan failed")
        self.ingest.poke()

    async def _scan_spool_periodically(self) -> None:
        while True:
            await asyncio.sleep(SPOOL_SCAN_S)
            await self._scan_spool()

    async def _purge_visits_periodically(self, interval_s: float) -> None:
        """Field-visit data past its six months goes: once soon after start, then every interval."""
        from cases.visit_purge import purge_visits

        await asyncio.sleep(min(60.0, interval_s))
        while True:
            try:
                report = await purge_visits(self.db, self.ledger, self.clock, Path(self.settings.visits.dir),
                                            by="dunline-retention")
                if report.purged or report.failed:
                    log.info("%s", report.render())
            except Exception:  # the next run tries again; nothing half-done stays (one transaction a visit)
                log.exception("field-visit purge failed")
            await asyncio.sleep(interval_s)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no attempt is open and no recording waits for ingest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self.db.session() as session:
                busy = [a for a in await repo.open_attempts(session) if a.state != State.UNKNOWN.value]
            if not busy and not (self._ingest is not None and self._ingest.busy):
                return True
            await asyncio.sleep(0.25)
        return False

    def health(self) -> dict[str, Any]:
        """Ready = the AMI link is up and (with the watchdog) the dialing gate is open."""
        link_ok = bool(self.link and self.link.connected)
        health: dict[str, Any] = {"ready": link_ok, "ami": "connected" if link_ok else "down",
                                  "ingest_backlog": self._ingest.backlog().pending if self._ingest else 0,
                                  "reasons": []}
        if not link_ok:
            health["reasons"].append("AMI link down")
        if self.watchdog is not None:
            status = self.watchdog.status()
            health["watchdog"] = status
            if not status["gate_open"]:
                health["ready"] = False
                health["reasons"].append(f"dialing gate {status['gate']}: {status['gate_reason']}")
        if self.seats is not None:  # how many collectors wait (counts only: /healthz needs no sign-in)
            floor = self.seats.floor
            health["floor"] = {"seats": len(floor.seats()),
                               "ready": floor.ready_count(asyncio.get_running_loop().time())}
        return health
