"""`make demo`: sandbox PBX, the service, a few demo calls, and a clear summary."""
from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from asterisk_conf import sandbox
from cases.demo import DEMO_CLIENT, seed_demo_cases
from dunline.service import Service
from dunline.settings import load_settings
from dunline.wiring import settings_with_sandbox
from dialer.originate import DialBlocked
from people.accounts import Accounts
from people.roles import DESCRIPTIONS, Role
from sqlalchemy import update
from storage import repositories as repo
from storage.models import Case
from storage.clock import OffsetClock

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def run_demo(config: str | None, state_dir: Path | None, keep_running: bool) -> int:
    base = load_settings(config)
    state = Path(state_dir or base.sandbox_dir)
    problem = sandbox.check_host()
    if problem:
        print(problem)
        return 2
    print(f"== starting the sandbox PBX, carrier and collector phones in {state} ...")
    await asyncio.to_thread(sandbox.up, state, phones=len(DEMO_PHONES))
    # The demo keeps its own data (wiped each run) and runs at 10:00 Beijing time whatever
    # the hour here, so the call window and the caps start fresh every time.
    demo_dir = Path("var/demo")
    shutil.rmtree(demo_dir, ignore_errors=True)
    settings = settings_with_sandbox(config, state, extra={
        "database": {"url": f"sqlite+aiosqlite:///{demo_dir / 'dunline.db'}"},
        "recording": {"archive_dir": str(demo_dir / "archive")},
        "floor": {"seats": True},  # the collector's phone waits on the floor; answered debtors go straight to it
    })
    start = datetime.now(SHANGHAI).replace(hour=10, minute=0, second=0, microsecond=0)
    print(f"== demo clock: {start.isoformat()} (debtors' local time)")
    service = Service(settings, clock=OffsetClock(start.astimezone(timezone.utc)))
    try:
        await service.start()
        await wait_for_gate(service)
        demos = await seed_demo_cases(service.db, service.clock)
        sign_in = await seed_demo_users(service.accounts, service.db, [d.case_id for d in demos],
                                        settings.database.url)
        await open_demo_seat(service)
        print(f"== dialling {len(demos)} demo cases ...")
        attempts = await asyncio.gather(*(service.dial(d.case_id) for d in demos))
        try:
            await service.dial(demos[0].case_id)
        except DialBlocked as exc:
            print(f"== dialling {demos[0].case_id} again right away: {exc}")
        await service.wait_idle(timeout=150)
        print(await summary(service, demos, [a.id for a in attempts]))
        print(await proven(service))
        print(sign_in.replace("CONSOLE", f"http://{settings.console.host}:{settings.console.port}/"))
        if keep_running:
            print("== the console is up (Ctrl-C to stop the demo and the sandbox)")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    finally:
        await service.stop(drain_timeout=30)
        await asyncio.to_thread(sandbox.down, state)
        print("== sandbox stopped")
    return 0


DEMO_TEAM = "demo"
# the sandbox's phones: the collector's (their seat on the floor), the team lead's, the supervisor's
# (where listen / whisper / barge ring)
DEMO_PHONES = {Role.COLLECTOR: "6001", Role.TEAM_LEAD: "6002", Role.SUPERVISOR: "6003"}


async def open_demo_seat(service: Service, timeout: float = 30.0) -> None:
    """The collector starts their shift: their phone is rung once and waits on the floor."""
    phone = DEMO_PHONES[Role.COLLECTOR]
    print(f"== the collector's phone {phone} takes a seat on the floor ...")
    await service.open_seats((phone,))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    assert service.seats is not None
    while not service.seats.floor.ready_count(loop.time()):
        if loop.time() > deadline:
            raise RuntimeError(f"the collector's phone {phone} did not take its seat within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def seed_demo_users(accounts: Accounts, db, case_ids: list[str], db_url: str) -> str:
    """One user per role (user name = the role), one password for all made fresh each run,
    the demo's cases assigned to the collector; returns how to sign in."""
    password = "demo-" + secrets.token_urlsafe(9)
    await accounts.add_team(DEMO_TEAM, by="demo")
    team_id = {t.name: t.id for t in await accounts.teams()}[DEMO_TEAM]
    lines = ["== sign in at CONSOLE with any of these users; the password of all is " + password]
    collector_id = None
    for role in Role:
        user = await accounts.add_user(
            username=role.value.replace("_", ""), display_name=f"Demo {role.value}", role=role.value,
            password=password, by="demo", team=DEMO_TEAM if role in (Role.COLLECTOR, Role.TEAM_LEAD) else None,
            client=DEMO_CLIENT if role is Role.CLIENT else None, locale="zh-CN", phone=DEMO_PHONES.get(role))
        collector_id = user.id if role is Role.COLLECTOR else collector_id
        phone = f" (phone {user.phone})" if user.phone else ""
        lines.append(f"   {user.username:<11} {DESCRIPTIONS[role]}{phone}")
    async with db.session() as s:
        await s.execute(update(Case).where(Case.id.in_(case_ids)).values(collector_id=collector_id, team_id=team_id))
    lines.append("   the floor: the collector's seat at CONSOLEfloor (a call's case opens by itself); the wallboard,")
    lines.append("            listen / whisper / barge (ringing the supervisor's phone), at CONSOLEwallboard")
    lines.append(f"   scripts: DUNLINE_DATABASE_URL={db_url} dunline user token supervisor --label script,")
    lines.append("            then DUNLINE_API_TOKEN=<token> dunline dial CASE")
    return "\n".join(lines)


async def wait_for_gate(service: Service, timeout: float = 90.0) -> None:
    """The dialing gate opens only after a canary call went through the whole chain."""
    if service.watchdog is None:
        return
    print("== watchdog: a canary call proves the recording chain before the first call ...")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not service.watchdog.gate.is_open:
        if loop.time() > deadline:
            raise RuntimeError(f"the dialing gate stayed closed: {service.watchdog.gate.reason}")
        await asyncio.sleep(0.25)
    canary = service.watchdog.last_canary
    print(f"== watchdog: canary passed in {canary.seconds:.1f} s; dialing gate open" if canary
          else "== watchdog: dialing gate open")


async def proven(service: Service) -> str:
    """The archive checked as an auditor would: against the ledger, its witnesses and the
    pinned key (here the one the first start made, printed for the client to keep)."""
    from recorder.ledger import fingerprint_of
    from recorder.verify import verify_archive

    await service.ledger.checkpoint()
    key = service.ledger.signer.public_key
    report = await verify_archive(service.db, service.archive, key, now=service.clock())
    return (f"ledger key fingerprint (pin it: recording.ledger_key_fingerprint): {fingerprint_of(key)}\n"
            + report.render())


async def summary(service: Service, demos, attempt_ids: list[str]) -> str:
    lines = [f"{'case':<10} {'number':<12} {'expected':<11} {'outcome':<11} {'cause':>5} "
             f"{'recorded':>8}  sha256 / archive file"]
    ok = True
    async with service.db.session() as session:
        for demo, attempt_id in zip(demos, attempt_ids):
            attempt = await repo.get_attempt(session, attempt_id)
            rec = await repo.recording_for_attempt(session, attempt_id)
            assert attempt is not None
            ok &= attempt.outcome == demo.expect
            where = f"{rec.sha256[:16]}… {service.archive.path_of(rec.archive_path)}" if rec else "-"
            recorded = f"{rec.duration_s:.1f}s" if rec else "-"
            lines.append(f"{demo.case_id:<10} {demo.number:<12} {demo.expect:<11} "
                         f"{attempt.outcome or attempt.state:<11} {attempt.hangup_cause or '-':>5} "
                         f"{recorded:>8}  {where}")
    lines.append("all outcomes as expected" if ok else "SOME OUTCOMES DIFFER FROM THE CARRIER PLAN")
    lines.append(f"database: {service.settings.database.url}")
    lines.append(f"archive:  {service.archive.root.resolve()}")
    return "\n".join(lines)
