"""place_call asks the policy at the moment of origination and stores every verdict.

The AMI link is a recording stub here (a protocol edge: what is sent, not how); the real
PBX path is covered by tests/e2e.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dialer.originate import DialBlocked, DialSettings, place_call
from dialer.policy import profile
from storage import repositories as repo
from storage.clock import ManualClock
from storage.models import Attempt, Case, PolicyDecision


class RecordingLink:
    def __init__(self) -> None:
        self.originated: list[dict] = []

    async def originate(self, channel, **kw):
        self.originated.append({"channel": channel, **kw})
        return {"Response": "Success", "ActionID": f"a{len(self.originated)}"}


BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, tzinfo=BEIJING).astimezone(timezone.utc)


async def setup(db, clock, *, flags=(), pool=True):
    async with db.session() as s:
        if pool:
            await repo.approve_caller_id(s, "cu", "4008001000")
        await repo.add_case(s, Case(id="C-P", client="cu", debtor_name="Qian", timezone="Asia/Shanghai",
                                    flags=list(flags), created_at=clock()), [repo.NewPhone("15551100001")])


async def dial(db, link, clock, writer):
    return await place_call(db, link, DialSettings(), case_id="C-P", collector="6001", clock=clock, writer=writer,
                            policy=profile("client-default"))


async def decisions(db):
    async with db.session() as s:
        return (await s.scalars(select(PolicyDecision).order_by(PolicyDecision.id))).all()


async def test_allowed_call_carries_the_approved_caller_id_and_its_decision(db, writer):
    clock = ManualClock(beijing(10))
    await setup(db, clock)
    link = RecordingLink()
    attempt = await dial(db, link, clock, writer)
    assert link.originated[0]["caller_id"] == "4008001000"
    assert attempt.caller_id == "4008001000"
    # the dialplan learns where to bridge from the Originate: bind looks nothing up
    assert link.originated[0]["variables"]["DUNLINE_COLLECTOR"] == "6001"
    assert "DUNLINE_CANARY" not in link.originated[0]["variables"]
    facts = attempt.decision.pop("facts")
    assert attempt.decision == {"allowed": True, "profile": "client-default", "zone": "Asia/Shanghai",
                                "caller_id": "4008001000", "campaign": None}
    assert facts["case"]["status"] == "open" and facts["phone"]["do_not_call"] is False
    [d] = await decisions(db)
    assert d.allowed and d.attempt_id == attempt.id


@pytest.mark.parametrize("when, flags, pool, rule", [
    (beijing(21, 30), (), True, "window"),
    (beijing(7, 59), (), True, "window"),
    (beijing(10), ("dispute",), True, "dispute"),
    (beijing(10), ("fraud",), True, "fraud"),
    (beijing(10), (), False, "caller_id"),
])
async def test_blocked_call_is_stored_and_never_originated(db, when, flags, pool, rule, writer):
    clock = ManualClock(when)
    await setup(db, clock, flags=flags, pool=pool)
    link = RecordingLink()
    with pytest.raises(DialBlocked) as err:
        await dial(db, link, clock, writer)
    assert err.value.decision.rule == rule
    assert link.originated == []
    [d] = await decisions(db)
    assert (d.allowed, d.rule, d.attempt_id) == (False, rule, None)
    async with db.session() as s:
        assert await repo.attempts_for_case(s, "C-P") == []


async def test_min_gap_then_allowed_again(db, writer):
    clock = ManualClock(beijing(10))
    await setup(db, clock)
    link = RecordingLink()
    await dial(db, link, clock, writer)
    clock.advance(60)
    with pytest.raises(DialBlocked) as err:
        await dial(db, link, clock, writer)
    assert err.value.decision.rule == "min_gap"
    assert err.value.decision.next_allowed_at == beijing(10) + timedelta(minutes=15)
    clock.set(beijing(10, 15))
    await dial(db, link, clock, writer)
    assert len(link.originated) == 2


async def test_clock_going_backwards_blocks(db, writer):
    clock = ManualClock(beijing(11))
    await setup(db, clock)
    link = RecordingLink()
    await dial(db, link, clock, writer)
    clock.set(beijing(10))
    with pytest.raises(DialBlocked) as err:
        await dial(db, link, clock, writer)
    assert err.value.decision.rule == "clock"


async def test_the_clients_own_rules_apply(db, writer):
    from datetime import time

    from dialer.policy import every_day, with_overrides
    from dialer.policy_config import PolicyBook

    clock = ManualClock(beijing(20, 30))
    await setup(db, clock)
    link = RecordingLink()
    strict = with_overrides(profile("client-default"), windows=every_day(time(9), time(20)))
    with pytest.raises(DialBlocked) as err:
        await place_call(db, link, DialSettings(), case_id="C-P", collector="6001", clock=clock, writer=writer,
                         policy=PolicyBook(profile("client-default"), {"cu": strict}))
    assert err.value.decision.rule == "window"
    await place_call(db, link, DialSettings(), case_id="C-P", collector="6001", clock=clock, writer=writer,
                     policy=PolicyBook(profile("client-default"), {"other": strict}))
    assert len(link.originated) == 1


async def test_two_dials_of_the_same_number_at_once_place_one_call(db, writer):
    """No lock in the process: the database's per-number lease lets one through; the other
    is refused (the number is being dialled, or the policy's gap), never a second call."""
    import asyncio

    clock = ManualClock(beijing(10))
    await setup(db, clock)
    link = RecordingLink()
    results = await asyncio.gather(*(dial(db, link, clock, writer) for _ in range(5)), return_exceptions=True)
    placed = [r for r in results if isinstance(r, Attempt)]
    refused = [r for r in results if isinstance(r, DialBlocked)]
    assert len(placed) == 1 and len(refused) == 4, results
    assert len(link.originated) == 1
    assert {r.decision.rule for r in refused} <= {"number_busy", "min_gap"}


async def test_a_lease_left_by_a_dead_dialer_expires(db, writer):
    from storage import dial_leases

    clock = ManualClock(beijing(10))
    await setup(db, clock)
    async with db.session() as s:  # another node claimed the number, then died before originating
        assert await dial_leases.claim(s, "15551100001", "dead-node-attempt", clock()) is None
    link = RecordingLink()
    with pytest.raises(DialBlocked) as refused:
        await dial(db, link, clock, writer)
    assert refused.value.decision.rule == "number_busy" and link.originated == []
    clock.advance(dial_leases.LEASE.total_seconds())
    assert (await dial(db, link, clock, writer)).number == "15551100001"


async def test_many_dials_at_once_need_no_process_lock_and_keep_the_decisions_in_time_order(db, writer):
    """Twenty dials of twenty numbers at once with a clock that runs: the first write of each
    dial (its number's lease) takes the database's write lock and the decision's time is read
    after it, so decisions are stored in time order and the policy's "clock went backwards"
    rule never refuses a dial because another one was decided a moment earlier."""
    import asyncio

    from storage.clock import OffsetClock

    clock = OffsetClock(beijing(10))
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        for i in range(20):
            await repo.add_case(s, Case(id=f"C-M{i}", client="cu", debtor_name="Zhou", timezone="Asia/Shanghai",
                                        created_at=clock()), [repo.NewPhone(f"155511{i:05d}")])
    link = RecordingLink()
    results = await asyncio.gather(*(
        place_call(db, link, DialSettings(), case_id=f"C-M{i}", collector="6001", clock=clock, writer=writer,
                   policy=profile("client-default")) for i in range(20)), return_exceptions=True)
    assert all(isinstance(r, Attempt) for r in results), [r for r in results if not isinstance(r, Attempt)]
    assert len(link.originated) == 20
    stored = await decisions(db)
    assert [d.at for d in stored] == sorted(d.at for d in stored)


async def test_the_latest_decision_time_every_dial_reads_uses_an_index(db):
    """Read inside the dial's write transaction: a scan of every decision ever taken would
    grow with the history and keep every other writer waiting."""
    from sqlalchemy import func
    from sqlalchemy.dialects import sqlite

    sql = str(select(func.max(PolicyDecision.at)).compile(dialect=sqlite.dialect()))
    async with db.engine.connect() as conn:
        plan = " | ".join(row[-1] for row in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)).all())
    assert "USING COVERING INDEX ix_policy_decisions_at" in plan or "USING INDEX ix_policy_decisions_at" in plan, plan
