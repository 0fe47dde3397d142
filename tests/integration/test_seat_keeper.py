"""SeatKeeper: the seats' AMI side, fed events as the link delivers them (the link itself is
played by a recorder of its actions; the real PBX is in tests/e2e/test_floor_e2e.py)."""
from __future__ import annotations

import asyncio

import pytest

from ami.errors import AmiActionError
from ami.events import BridgeEnter, BridgeLeave, ContactStatus, CoreShowChannel, Hangup, Newstate, OriginateResponse
from ami.link import Resynced
from dialer.floor import Floor, SeatState
from dialer.seats import SeatKeeper, SeatNotOpened


class RecordingLink:
    def __init__(self) -> None:
        self.originated: list[dict] = []
        self.actions: list[tuple[str, dict]] = []
        self.refuse = False

    async def originate(self, channel, **kw):
        if self.refuse:
            raise AmiActionError("Originate failed", {"Response": "Error"})
        self.originated.append({"channel": channel, **kw})
        return {"Response": "Success", "ActionID": f"act-{len(self.originated)}"}

    async def action(self, name, **headers):
        self.actions.append((name, headers))
        return {"Response": "Success"}


def _keeper():
    audits: list[dict] = []

    async def audit(**kw):
        audits.append(kw)

    link = RecordingLink()
    keeper = SeatKeeper(link, Floor(), now=asyncio.get_running_loop().time, audit=audit)
    return keeper, link, audits


async def _up(keeper, seat_id, collector="6001"):
    await keeper.handle(Newstate(at=0.0, uniqueid=seat_id, channel=f"PJSIP/{collector}-0001", channel_state=6))


async def test_a_seat_rings_the_phone_and_follows_its_channel_through_a_call():
    keeper, link, audits = _keeper()
    seat_id = await keeper.open_seat("6001")
    assert link.originated[0]["channel"] == "PJSIP/6001" and link.originated[0]["channel_id"] == seat_id
    assert link.originated[0]["context"] == "dunline-seat"
    assert keeper.floor.get(seat_id).state is SeatState.CONNECTING
    await _up(keeper, seat_id)
    assert keeper.floor.get(seat_id).state is SeatState.READY
    seat = await keeper.take("a" * 32, 0.0)
    assert seat.seat_id == seat_id
    await keeper.handle(BridgeEnter(at=0.0, uniqueid=seat_id))
    assert keeper.floor.get(seat_id).state is SeatState.ON_CALL
    await keeper.handle(BridgeLeave(at=0.0, uniqueid=seat_id))
    assert keeper.floor.get(seat_id).state is SeatState.WRAP_UP
    await keeper.handle(Hangup(at=0.0, uniqueid=seat_id, cause=16))
    assert keeper.floor.get(seat_id) is None
    assert [a["action"] for a in audits] == ["seat.opened", "seat.closed"]


async def test_events_of_other_channels_and_forged_bridges_change_no_seat():
    keeper, _, _ = _keeper()
    seat_id = await keeper.open_seat("6001")
    await _up(keeper, seat_id)
    await keeper.handle(BridgeEnter(at=0.0, uniqueid="a" * 32))  # a debtor's channel
    await keeper.handle(Hangup(at=0.0, uniqueid="seat-unknown"))
    await keeper.handle(BridgeEnter(at=0.0, uniqueid=seat_id))  # a bridge nobody reserved: refused
    assert keeper.floor.get(seat_id).state is SeatState.READY


async def test_a_phone_that_unregisters_or_stops_answering_loses_its_seats_at_once():
    keeper, link, audits = _keeper()
    first, second = await keeper.open_seat("6001"), await keeper.open_seat("6001")
    other = await keeper.open_seat("6002")
    for seat_id, collector in ((first, "6001"), (second, "6001"), (other, "6002")):
        await _up(keeper, seat_id, collector)
    await keeper.handle(ContactStatus(at=0.0, aor="6001", status="Reachable"))
    assert len(keeper.floor.seats()) == 3
    await keeper.handle(ContactStatus(at=0.0, aor="6001", status="Removed"))
    assert [s.seat_id for s in keeper.floor.seats()] == [other]
    assert [(name, h["Channel"]) for name, h in link.actions] == [("Hangup", "PJSIP/6001-0001")] * 2
    assert sum(1 for a in audits if a["action"] == "seat.closed") == 2
    assert (await keeper.take("b" * 32, 0.0)).collector == "6002"


async def test_a_seat_whose_originate_failed_or_vanished_in_a_resync_is_closed():
    keeper, link, audits = _keeper()
    seat_id = await keeper.open_seat("6001")
    await keeper.handle(OriginateResponse(at=0.0, action_id="act-1", response="Failure", reason=5))
    assert keeper.floor.get(seat_id) is None
    kept, lost = await keeper.open_seat("6002"), await keeper.open_seat("6003")
    await _up(keeper, kept, "6002")
    await _up(keeper, lost, "6003")
    await keeper.handle(Resynced(channels=(CoreShowChannel(at=0.0, uniqueid=kept, channel="PJSIP/6002-0001"),),
                                 at=0.0))
    assert [s.seat_id for s in keeper.floor.seats()] == [kept]
    link.refuse = True
    with pytest.raises(SeatNotOpened):
        await keeper.open_seat("6004")
    assert [s.seat_id for s in keeper.floor.seats()] == [kept]
    assert audits[-1]["action"] == "seat.failed"


async def test_a_reservation_the_bridge_never_reached_is_released():
    import dialer.seats as seats

    keeper, _, _ = _keeper()
    seat_id = await keeper.open_seat("6001")
    await _up(keeper, seat_id)
    old, seats.RESERVATION_TIMEOUT_S = seats.RESERVATION_TIMEOUT_S, 0.05
    try:
        await keeper.take("c" * 32, 0.0)
        await asyncio.sleep(0.2)
    finally:
        seats.RESERVATION_TIMEOUT_S = old
    assert keeper.floor.get(seat_id).state is SeatState.READY
