"""Supervision's AMI side (listen / whisper / barge), fed events as the link delivers them;
the real PBX is in tests/e2e/test_floor_e2e.py."""
from __future__ import annotations

import asyncio

import pytest

from ami.events import Hangup, Newstate, OriginateResponse
from dialer.floor import Floor
from dialer.supervision import NotOnTheFloor, SpyMode, Supervision
from tests.integration.test_seat_keeper import RecordingLink

ATTEMPT = "d" * 32


def _floor_with_a_call() -> Floor:
    floor = Floor()
    floor.open("seat-1", "6001", 0.0)
    floor.answered("seat-1", "PJSIP/6001-00000007", 0.0)
    floor.reserve(ATTEMPT, 1.0)
    floor.bridged("seat-1", 1.0)
    return floor


def _supervision(floor: Floor):
    entries: list[dict] = []

    async def record(**kw):
        entries.append(kw)

    link = RecordingLink()
    return Supervision(link, floor, now=asyncio.get_running_loop().time, record=record), link, entries


@pytest.mark.parametrize("mode", list(SpyMode))
async def test_a_session_rings_the_supervisors_phone_onto_the_collectors_channel_and_is_ledgered(mode):
    supervision, link, entries = _supervision(_floor_with_a_call())
    session = await supervision.start(ATTEMPT, mode, phone="6009", by="sup1")
    [originate] = link.originated
    assert originate["channel"] == "PJSIP/6009" and originate["context"] == "dunline-spy"
    assert originate["channel_id"] == session.spy_id
    assert originate["variables"] == {"DUNLINE_SPY_TARGET": "PJSIP/6001-00000007", "DUNLINE_SPY_MODE": mode.value}
    await supervision.handle(Newstate(at=0.0, uniqueid=session.spy_id, channel="PJSIP/6009-01", channel_state=6))
    await supervision.handle(Hangup(at=0.0, uniqueid=session.spy_id, cause=16))
    assert [(e["actor"], e["action"], e["subject"]) for e in entries] == [
        ("sup1", "monitor", ATTEMPT), ("sup1", "monitor_end", ATTEMPT)]
    assert entries[0]["detail"] == {"session": session.spy_id, "mode": mode.value, "phone": "6009",
                                    "collector": "6001"}
    assert entries[1]["detail"]["how"] == "hung up" and supervision.sessions() == ()


async def test_only_a_call_on_a_collectors_seat_can_be_joined():
    floor = _floor_with_a_call()
    supervision, link, entries = _supervision(floor)
    with pytest.raises(NotOnTheFloor):
        await supervision.start("e" * 32, SpyMode.LISTEN, phone="6009", by="sup1")
    floor.unbridged("seat-1", 5.0)  # the call left the seat
    with pytest.raises(NotOnTheFloor):
        await supervision.start(ATTEMPT, SpyMode.LISTEN, phone="6009", by="sup1")
    assert link.originated == [] and entries == []


async def test_a_supervisor_phone_that_never_answers_still_closes_the_ledgered_session():
    supervision, link, entries = _supervision(_floor_with_a_call())
    session = await supervision.start(ATTEMPT, SpyMode.WHISPER, phone="6009", by="sup1")
    await supervision.handle(OriginateResponse(at=0.0, action_id="act-1", response="Failure", reason=3))
    assert [e["action"] for e in entries] == ["monitor", "monitor_end"]
    assert entries[1]["detail"]["seconds"] == 0.0 and "did not answer" in entries[1]["detail"]["how"]
    assert session.spy_id not in {s.spy_id for s in supervision.sessions()}
