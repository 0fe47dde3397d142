"""The `bind` and `ended` routes over a real socket, Asterisk played by a script.

The contract: the dialplan started MixMonitor at answer, before `bind`; a call is bridged
(DUNLINE_BOUND=1) only when its attempt exists, the channel is the attempt's, and
MixMonitor has opened the recording file; otherwise the call is hung up and an audit event
says why. A file that then does not grow gets the call hung up (on_recording_failed)
within the growth bound. Bind sends the PBX one command (DUNLINE_BOUND) and writes once.
"""
from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest

from agi_scripts.routes import CallRoutes, PbxChannel, RecordingTarget
from agi_scripts.server import FastAgiServer
from storage import repositories as repo
from storage.call_tokens import CallTokens
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, Case

GOOD = "a1" * 16
TOKENS = CallTokens(b"k" * 32)


def signed(route: str, attempt_id: str) -> str:
    """The request the dialplan makes: the attempt and its token."""
    return f"{route}?attempt={attempt_id}&token={TOKENS.token_for(attempt_id)}"


class ScriptedPbx:
    """Plays Asterisk's side of one FastAGI session; answers every command. Before it asks,
    the dialplan has started MixMonitor (`mixmonitor_opens`: the file is there; with
    `mixmonitor_writes` past its header)."""

    def __init__(self, spool: Path, *, mixmonitor_writes: bool = True, mixmonitor_opens: bool = True,
                 variables=None) -> None:
        self.spool = spool
        self.mixmonitor_writes = mixmonitor_writes
        self.mixmonitor_opens = mixmonitor_opens
        self.variables = dict(variables or {})
        self.commands: list[str] = []

    async def run(self, port: int, script: str, uniqueid: str) -> None:
        if script.startswith("bind") and self.mixmonitor_opens and not (self.spool / f"{uniqueid}.wav").exists():
            grown = b"\1" * 32768 if self.mixmonitor_writes else b""
            (self.spool / f"{uniqueid}.wav").write_bytes(b"RIFF" + b"\0" * 40 + grown)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"agi_network: yes\nagi_network_script: {script}\n"
                      f"agi_request: agi://127.0.0.1:{port}/{script}\n"
                      f"agi_channel: PJSIP/carrier-0001\nagi_uniqueid: {uniqueid}\n\n").encode())
        await writer.drain()
        while line := (await reader.readline()).decode().strip():
            if line == "FAILURE":  # the server refused: AGISTATUS=FAILURE
                self.commands.append(line)
                break
            words = shlex.split(line)
            self.commands.append(" ".join(words))
            if words[:2] == ["GET", "VARIABLE"]:
                name = words[2]
                value = self.variables.get(name)
                writer.write(f"200 result=1 ({value})\n".encode() if value is not None else b"200 result=0\n")
            else:
                writer.write(b"200 result=0\n")
            await writer.drain()
            if words[0] == "HANGUP":
                break
        writer.close()


@pytest.fixture
async def routes_server(db, clock, tmp_path, writer):
    spool = tmp_path / "spool"
    spool.mkdir()
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-R", client="cu", debtor_name="Sun", created_at=clock()),
                            [repo.NewPhone("15551100001")])
        await repo.create_attempt(s, Attempt(id=GOOD, case_id="C-R", number="15551100001",
                                             collector="6001", state="originated", created_at=clock()))
    ended: list[str] = []  # attempts whose recording the stored reports made due for ingest
    cut: list[tuple[str, str]] = []

    async def on_report(result):
        if result.ingest_due:
            ended.append(result.attempt_id)

    writer.on_report = on_report

    async def on_recording_failed(attempt_id, channel):
        cut.append((attempt_id, channel))

    incidents: list[tuple[str, str]] = []
    routes = CallRoutes(db=db, recording=RecordingTarget(dir_host=spool,
                                                          start_timeout_s=0.3, grow_timeout_s=0.5),
                        clock=clock, writer=writer, tokens=TOKENS, on_recording_failed=on_recording_failed,
                        on_recording_incident=lambda attempt_id, reason: incidents.append((attempt_id, reason)))
    server = FastAgiServer(routes.routes(), port=0, authorize=routes.authorize, on_refused=routes.refused)
    await server.start()
    server.spool, server.ended, server.cut, server.call_routes = spool, ended, cut, routes
    server.incidents = incidents
    yield server
    await server.close()
    await routes.close()


async def audit_reasons(db):
    async with db.session() as s:
        return [e.detail.get("reason") for e in await repo.audit_events(s) if e.action == "bind.rejected"]


async def test_bind_confirms_the_recording_then_bridges(routes_server, db, clock):
    pbx = ScriptedPbx(routes_server.spool)
    await pbx.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert pbx.commands == ["SET VARIABLE DUNLINE_BOUND 1"], "one command: the collector came with the Originate"
    async with db.session() as s:
        attempt = await repo.get_attempt(s, GOOD)
        actions = [e.action for e in await repo.audit_events(s, subject=GOOD)]
    assert attempt.state == "bound" and attempt.recording_name == GOOD
    assert attempt.answered_at == attempt.bound_at == clock()
    assert actions == ["call.bound"]


@pytest.mark.parametrize("script, uniqueid, reason", [
    (signed("bind", "b2" * 16), "b2" * 16, "unknown attempt"),
    (signed("bind", GOOD), "1764380000.7", "is not the attempt's"),
])
async def test_bind_rejects_and_hangs_up(routes_server, db, script, uniqueid, reason):
    pbx = ScriptedPbx(routes_server.spool)
    await pbx.run(routes_server.port, script, uniqueid)
    assert pbx.commands == ["HANGUP"]
    assert any(reason in (r or "") for r in await audit_reasons(db))
    async with db.session() as s:
        assert (await repo.get_attempt(s, GOOD)).state == "originated"


async def refusals(db):
    async with db.session() as s:
        return [e for e in await repo.audit_events(s) if e.action == "agi.refused"]


@pytest.mark.parametrize("script, uniqueid, reason", [
    (f"bind?attempt={GOOD}", GOOD, "no valid token"),  # the id is known (the console lists it), no token
    (f"bind?attempt={GOOD}&token=" + "0" * 64, GOOD, "no valid token"),
    (f"bind?attempt={GOOD}&token=" + TOKENS.token_for("b2" * 16), GOOD, "no valid token"),  # another's token
    (f"ended?attempt={GOOD}", GOOD, "no valid token"),
    ("bind?attempt=../../etc/passwd", "x", "garbled attempt id"),
    ("bind", "x", "garbled attempt id"),
    (f"admin?attempt={GOOD}", GOOD, "unknown route"),
])
async def test_only_the_pbx_speaks_fastagi(routes_server, db, script, uniqueid, reason):
    """A forged request is refused before any handler runs: not one command, the dialplan's
    AGISTATUS is FAILURE, and the refusal is audited; the attempt is untouched."""
    pbx = ScriptedPbx(routes_server.spool)
    await pbx.run(routes_server.port, script, uniqueid)
    assert pbx.commands == ["FAILURE"]
    await routes_server.call_routes.close()  # the audit is written in the background
    [refusal] = await refusals(db)
    assert reason in refusal.detail["reason"] and refusal.detail["route"] == script.split("?")[0]
    async with db.session() as s:
        attempt = await repo.get_attempt(s, GOOD)
    assert (attempt.state, attempt.answered_at, attempt.ended_at) == ("originated", None, None)
    assert routes_server.stats.refused == 1


async def test_a_forged_end_of_a_live_call_changes_nothing(routes_server, db):
    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    forged = ScriptedPbx(routes_server.spool, variables={"HANGUPCAUSE": "16"})
    await forged.run(routes_server.port, f"ended?attempt={GOOD}", GOOD)
    assert forged.commands == ["FAILURE"]
    async with db.session() as s:
        assert (await repo.get_attempt(s, GOOD)).state == "bound"
    assert routes_server.ended == [], "nothing queued for ingest while MixMonitor writes"


async def test_bind_needs_the_channel_ami_reports_for_the_attempt(routes_server, db):
    """With AMI watching, the speaking channel must be the one AMI reports for the attempt,
    and answered; a request with a valid token on another channel is rejected."""
    routes = routes_server.call_routes
    views = {GOOD: PbxChannel("PJSIP/carrier-0002", answered=True)}
    object.__setattr__(routes, "pbx_view", views.get)
    object.__setattr__(routes, "pbx_watching", lambda: True)
    object.__setattr__(routes, "confirm_timeout_s", 0.1)
    pbx = ScriptedPbx(routes_server.spool)  # speaks as PJSIP/carrier-0001
    await pbx.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert pbx.commands == ["HANGUP"]
    assert any("the attempt's channel is PJSIP/carrier-0002" in (r or "") for r in await audit_reasons(db))
    views[GOOD] = PbxChannel("PJSIP/carrier-0001", answered=False)
    pbx = ScriptedPbx(routes_server.spool)
    await pbx.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert pbx.commands == ["HANGUP"] and any("not report the call answered" in (r or "")
                                              for r in await audit_reasons(db))
    views[GOOD] = PbxChannel("PJSIP/carrier-0001", answered=True)
    pbx = ScriptedPbx(routes_server.spool)
    await pbx.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert pbx.commands[-1] == "SET VARIABLE DUNLINE_BOUND 1"


async def test_a_recording_that_never_starts_means_no_call(routes_server, db):
    pbx = ScriptedPbx(routes_server.spool, mixmonitor_opens=False)
    await pbx.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert pbx.commands[-1] == "HANGUP"
    assert not any("DUNLINE_BOUND" in c for c in pbx.commands)
    assert any("recording did not start" in (r or "") for r in await audit_reasons(db))
    assert routes_server.incidents == [(GOOD, "recording did not start")], "the watchdog is told"


async def test_a_recording_that_does_not_grow_gets_the_call_cut(routes_server, db):
    pbx = ScriptedPbx(routes_server.spool, mixmonitor_writes=False)
    await pbx.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert pbx.commands[-1] == "SET VARIABLE DUNLINE_BOUND 1"
    for _ in range(40):
        if routes_server.cut:
            break
        await asyncio.sleep(0.05)
    assert routes_server.cut == [(GOOD, "PJSIP/carrier-0001")]
    async with db.session() as s:
        actions = [e.action for e in await repo.audit_events(s, subject=GOOD)]
    assert "recording.not_growing" in actions
    assert routes_server.incidents == [(GOOD, "recording not growing")]


async def keep_growing(path, every=0.15, steps=8):
    for _ in range(steps):
        await asyncio.sleep(every)
        with path.open("ab") as handle:
            handle.write(b"\1" * 32768)  # MixMonitor's 32 KB flushes


async def test_a_growing_recording_is_left_alone(routes_server, db):
    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    await keep_growing(routes_server.spool / f"{GOOD}.wav")  # 1.2 s, past the 0.5 s bound twice
    assert routes_server.cut == [] and routes_server.incidents == []


async def test_a_recording_that_stops_growing_mid_call_gets_the_call_cut(routes_server, db):
    """A disk filling mid-call: MixMonitor's writes fail silently and the file stops."""
    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    await keep_growing(routes_server.spool / f"{GOOD}.wav", steps=3)
    for _ in range(40):
        if routes_server.cut:
            break
        await asyncio.sleep(0.05)
    assert routes_server.cut == [(GOOD, "PJSIP/carrier-0001")]
    assert routes_server.incidents == [(GOOD, "recording not growing")]


async def test_a_finished_call_may_stop_growing(routes_server, db, clock, writer):
    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    await keep_growing(routes_server.spool / f"{GOOD}.wav", steps=2)
    await writer.report(GOOD, Report(event=Event.HUNG_UP, source=Source.AMI, at=clock(), answered=True,
                                    hangup_cause=16))
    await asyncio.sleep(0.8)
    assert routes_server.cut == [] and routes_server.incidents == []


async def test_second_bind_of_the_same_attempt_is_refused(routes_server, db):
    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    again = ScriptedPbx(routes_server.spool)
    await again.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert again.commands[-1] == "HANGUP"
    assert any("already bound" in (r or "") for r in await audit_reasons(db))


async def test_ended_reports_cause_and_bridged_time(routes_server, db):
    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    pbx = ScriptedPbx(routes_server.spool, variables={"HANGUPCAUSE": "16", "DIALSTATUS": "ANSWER",
                                                      "ANSWEREDTIME": "42"})
    await pbx.run(routes_server.port, signed("ended", GOOD), GOOD)
    async with db.session() as s:
        attempt = await repo.get_attempt(s, GOOD)
    assert (attempt.state, attempt.outcome, attempt.hangup_cause) == ("ended", "answered", 16)
    assert attempt.answered_seconds == 42.0 and attempt.dial_status == "ANSWER"
    assert routes_server.ended == [GOOD]


async def test_a_canary_is_bound_like_any_call(routes_server, db, clock):
    """The Originate told the dialplan it is a canary (DUNLINE_CANARY=1): bind needs nothing
    more than for any call."""
    canary = "c1" * 16
    async with db.session() as s:
        await repo.create_attempt(s, Attempt(id=canary, case_id="C-R", number="15551100000", collector=None,
                                             state="originated", created_at=clock(), decision={"canary": True}))
    pbx = ScriptedPbx(routes_server.spool)
    await pbx.run(routes_server.port, signed("bind", canary), canary)
    assert pbx.commands == ["SET VARIABLE DUNLINE_BOUND 1"]
    async with db.session() as s:
        attempt = await repo.get_attempt(s, canary)
    assert attempt.state == "bound" and attempt.recording_name == canary


async def test_a_call_answered_but_refused_is_still_archived(routes_server, db):
    """The dialplan recorded from the answer; bind refused the call (here: another channel
    claims the attempt). The hang-up handler's report names the recording: it is archived."""
    routes = routes_server.call_routes
    object.__setattr__(routes, "pbx_view", {GOOD: PbxChannel("PJSIP/carrier-0001", answered=True)}.get)
    object.__setattr__(routes, "pbx_watching", lambda: True)
    forged = ScriptedPbx(routes_server.spool)
    await forged.run(routes_server.port, signed("bind", GOOD), "1764380000.7")
    assert forged.commands == ["HANGUP"]
    pbx = ScriptedPbx(routes_server.spool, variables={"HANGUPCAUSE": "16", "ANSWEREDTIME": "2"})
    await pbx.run(routes_server.port, signed("ended", GOOD), GOOD)
    async with db.session() as s:
        attempt = await repo.get_attempt(s, GOOD)
    assert (attempt.state, attempt.outcome, attempt.recording_name) == ("ended", "answered", GOOD)
    assert routes_server.ended == [GOOD], "due for ingest"


async def test_a_call_ended_while_the_database_keeps_writes_waiting_is_not_called_not_growing(routes_server, db,
                                                                                            tmp_path):
    """The hang-up handler's report waits on a write lock; meanwhile MixMonitor has closed the
    file and the growth watch looks: the end is known (in flight), so no false alarm."""
    import sqlite3
    import threading

    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    await keep_growing(routes_server.spool / f"{GOOD}.wav", steps=2)
    holder = sqlite3.connect(tmp_path / "dunline.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.5, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        pbx = ScriptedPbx(routes_server.spool, variables={"HANGUPCAUSE": "16", "ANSWEREDTIME": "3"})
        await pbx.run(routes_server.port, signed("ended", GOOD), GOOD)  # waits for the lock, then stores
    finally:
        release.join()
        holder.close()
    await asyncio.sleep(0.6)  # past the growth bound once more
    assert routes_server.cut == [] and routes_server.incidents == [], "no false 'not growing'"
    async with db.session() as s:
        assert (await repo.get_attempt(s, GOOD)).state == "ended"


def ami_vouches(routes, views):
    object.__setattr__(routes, "pbx_view", views.get)
    object.__setattr__(routes, "pbx_watching", lambda: True)
    object.__setattr__(routes, "confirm_timeout_s", 0.1)


async def test_when_ami_vouches_the_bridge_does_not_wait_for_the_database(routes_server, db, tmp_path):
    """A burst of answers keeps the database busy: bind bridges on AMI's word (and the token),
    and stores the binding after; the call is bound once the write lands."""
    import sqlite3
    import threading

    ami_vouches(routes_server.call_routes, {GOOD: PbxChannel("PJSIP/carrier-0001", answered=True)})
    holder = sqlite3.connect(tmp_path / "dunline.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release():
        holder.execute("ROLLBACK")
        released.set()

    timer = threading.Timer(1.5, release)
    timer.start()
    try:
        pbx = ScriptedPbx(routes_server.spool)
        await pbx.run(routes_server.port, signed("bind", GOOD), GOOD)
        bridged_while_locked = not released.is_set()
    finally:
        timer.join()
        holder.close()
    assert pbx.commands == ["SET VARIABLE DUNLINE_BOUND 1"] and bridged_while_locked
    await routes_server.call_routes.close()  # the binding lands after the bridge
    async with db.session() as s:
        attempt = await repo.get_attempt(s, GOOD)
    assert attempt.state == "bound" and attempt.recording_name == GOOD


async def test_a_binding_refused_after_the_bridge_hangs_the_call_up(routes_server, db):
    """AMI reports the channel and the token is right, but the database knows no such attempt
    (or it was bound before): the bridged call is hung up and the refusal audited."""
    stranger = "b2" * 16
    routes = routes_server.call_routes
    ami_vouches(routes, {stranger: PbxChannel("PJSIP/carrier-0001", answered=True)})
    cut = []

    async def hang_up(attempt_id, channel, reason):
        cut.append((attempt_id, channel, reason))

    object.__setattr__(routes, "hang_up", hang_up)
    pbx = ScriptedPbx(routes_server.spool)
    await pbx.run(routes_server.port, signed("bind", stranger), stranger)
    assert pbx.commands == ["SET VARIABLE DUNLINE_BOUND 1"]
    await routes.close()
    assert cut == [(stranger, "PJSIP/carrier-0001", "unknown attempt")]
    async with db.session() as s:
        rejected = [e for e in await repo.audit_events(s, subject=stranger) if e.action == "bind.rejected"]
    assert rejected and rejected[0].detail["after_bridge"] is True


async def test_a_replayed_bind_of_a_bridged_call_is_rejected(routes_server, db):
    ami_vouches(routes_server.call_routes, {GOOD: PbxChannel("PJSIP/carrier-0001", answered=True)})
    await ScriptedPbx(routes_server.spool).run(routes_server.port, signed("bind", GOOD), GOOD)
    again = ScriptedPbx(routes_server.spool)
    await again.run(routes_server.port, signed("bind", GOOD), GOOD)
    assert again.commands == ["HANGUP"]
    assert any("already bound" in (r or "") for r in await audit_reasons(db))
