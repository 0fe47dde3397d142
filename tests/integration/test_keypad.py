"""A number dialled on a collector's phone (FastAGI `keypad` over a real socket, Asterisk played
by a script; the console's `keypad_dial` on real SQLite): placed only when the PBX vouches for
the very channel, the phone is a user's who may dial, and the number is a phone of an open
case within their reach; every refusal audited, nothing dialled."""
from __future__ import annotations

import asyncio

import pytest

from agi_scripts.routes import CallRoutes, RecordingTarget
from agi_scripts.server import FastAgiServer
from console.keypad import keypad_dial
from storage import repositories as repo
from storage.call_tokens import CallTokens
from storage.models import Case
from tests.console_kit import cheap_accounts, deps_for

PHONE_CHANNEL = "PJSIP/6001-0000002a"
UNIQUEID = "1733600000.42"


async def ask(port: int, script: str, channel: str = PHONE_CHANNEL) -> list[str]:
    """One FastAGI request as the PBX makes it; the commands the service sent back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1:{port}/{script}\n"
                  f"agi_channel: {channel}\nagi_uniqueid: {UNIQUEID}\n\n").encode())
    await writer.drain()
    commands = []
    while line := (await reader.readline()).decode().strip():
        commands.append(line)
        if line == "FAILURE":
            break
        writer.write(b"200 result=1\n")
        await writer.drain()
    writer.close()
    return commands


@pytest.fixture
async def keypad_server(db, clock, tmp_path, writer):
    asked: list[tuple[str, str]] = []
    vouched: dict[str, bool] = {"ok": True}

    async def vouch(channel: str, uniqueid: str) -> bool:
        return vouched["ok"] and channel == PHONE_CHANNEL and uniqueid == UNIQUEID

    async def dial(phone: str, number: str) -> str | None:
        asked.append((phone, number))
        return None if number.startswith("1555") else "no_such_case: not yours"

    routes = CallRoutes(db=db, recording=RecordingTarget(dir_host=tmp_path), clock=clock, writer=writer,
                        tokens=CallTokens(b"k" * 32), on_recording_failed=lambda *a: asyncio.sleep(0),
                        keypad_vouched=vouch, keypad_dial=dial)
    server = FastAgiServer(routes.routes(), port=0, authorize=routes.authorize, on_refused=routes.refused)
    await server.start()
    server.asked, server.vouched = asked, vouched
    yield server
    await server.close()
    await routes.close()


async def test_a_vouched_phone_channel_gets_its_number_placed(keypad_server):
    commands = await ask(keypad_server.port, "keypad?number=15551100001")
    assert keypad_server.asked == [("6001", "15551100001")]
    assert commands == ['SET VARIABLE "DUNLINE_KEYPAD" "placed"']


async def test_a_refused_number_is_said_so(keypad_server):
    commands = await ask(keypad_server.port, "keypad?number=13900000000")
    assert commands == ['SET VARIABLE "DUNLINE_KEYPAD" "refused"']


async def test_a_channel_the_pbx_does_not_vouch_for_dials_nothing_and_is_audited(keypad_server, db):
    keypad_server.vouched["ok"] = False
    commands = await ask(keypad_server.port, "keypad?number=15551100001")
    assert commands == ['SET VARIABLE "DUNLINE_KEYPAD" "refused"'] and keypad_server.asked == []
    async with db.session() as s:
        events = [e for e in await repo.audit_events(s, subject="phone:6001") if e.action == "keypad.refused"]
    assert events and "does not report" in events[0].detail["reason"]


@pytest.mark.parametrize("script, channel", [
    ("keypad?number=15551100001", "PJSIP/carrier-0000002a-x"),  # not a phone's channel
    ("keypad?number=15551100001", "Local/6001@x-00000001;1"),
    ("keypad", PHONE_CHANNEL),  # no number
    ("keypad?number=1555;DROP", PHONE_CHANNEL),
    ("keypad?number=%2B%2B1", PHONE_CHANNEL),
])
async def test_a_malformed_keypad_request_is_refused_before_any_handler(keypad_server, script, channel):
    commands = await ask(keypad_server.port, script, channel)
    assert commands == ["FAILURE"] and keypad_server.asked == []


# -- the console's side: who may dial what from their phone -----------------------------------

class Dialled(Exception):
    pass


@pytest.fixture
async def book(db, clock):
    accounts = cheap_accounts(db, clock)
    me = await accounts.add_user(username="kim", display_name="Kim", role="collector", password="pw-Keypad-2026",
                                 by="test", phone="6001")
    await accounts.add_user(username="ann", display_name="Ann", role="admin", password="pw-Keypad-2026",
                            by="test", phone="6009")
    other = await accounts.add_user(username="bo", display_name="Bo", role="collector", password="pw-Keypad-2026",
                                    by="test", phone="6002")
    async with db.session() as s:
        for case_id, number, owner, status in (("K-MINE", "15551100001", me.id, "open"),
                                               ("K-THEIRS", "15551100002", other.id, "open"),
                                               ("K-CLOSED", "15551100003", me.id, "closed")):
            await repo.add_case(s, Case(id=case_id, client="cu", debtor_name="D", collector_id=owner, status=status,
                                        created_at=clock()), [repo.NewPhone(number)])
    calls: list[tuple] = []

    async def dial(case_id, number, *, requested_by=None, collector=None, campaign_id=None):
        calls.append((case_id, number, requested_by, collector))
        raise Dialled()  # request_dial re-raises anything it does not map: the test sees the call

    return deps_for(db, accounts, 0, dial=dial), calls


async def test_the_collector_dials_their_own_case_from_their_phone(book):
    deps, calls = book
    with pytest.raises(Dialled):
        await keypad_dial(deps, "6001", "15551100001")
    assert calls == [("K-MINE", "15551100001", "kim", "6001")]


@pytest.mark.parametrize("phone, number, why", [
    ("6001", "15551100002", "within the caller's reach"),  # someone else's case
    ("6001", "15551100003", "within the caller's reach"),  # a closed case
    ("6001", "13900000000", "within the caller's reach"),  # nobody's number
    ("6009", "15551100001", "may not dial"),  # an admin's phone
    ("6999", "15551100001", "nobody works from phone"),
])
async def test_what_the_keypad_may_not_dial_is_refused_and_audited(book, db, phone, number, why):
    deps, calls = book
    reason = await keypad_dial(deps, phone, number)
    assert why in reason and calls == []
    async with db.session() as s:
        events = [e for e in await repo.audit_events(s, subject=f"phone:{phone}") if e.action == "keypad.refused"]
    assert events and events[-1].detail["dialled"] == number
