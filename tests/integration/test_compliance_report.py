"""The compliance report re-derives breaches from stored attempts only."""
from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dialer.compliance import compliance_report
from dialer.originate import DialBlocked, DialSettings, place_call
from dialer.policy import every_day, profile, with_overrides
from dialer.policy_config import PolicyBook
from dunline.cli import main
from storage import repositories as repo
from storage.lifecycle import Event, Report, Source
from storage.clock import ManualClock
from storage.models import Attempt, Case

BEIJING = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 1, tzinfo=BEIJING)


class Link:
    async def originate(self, channel, **kw):
        return {"Response": "Success", "ActionID": "x"}


async def seed(db, clock):
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        for n in range(3):
            await repo.add_case(s, Case(id=f"C-{n}", client="cu", debtor_name="Zhou", timezone="Asia/Shanghai",
                                        created_at=clock()), [repo.NewPhone(f"1555110000{n}")])


async def test_calls_placed_through_the_policy_audit_clean(db, writer):
    clock = ManualClock(DAY.replace(hour=7).astimezone(timezone.utc))
    await seed(db, clock)
    placed = 0
    for step in range(60):  # every 20 minutes from 07:00 to 03:00 next day, all cases
        for n in range(3):
            try:
                await place_call(db, Link(), DialSettings(), case_id=f"C-{n}", collector="6001",
                                 clock=clock, writer=writer, policy=profile("client-default"))
                placed += 1
            except DialBlocked:
                pass
        clock.advance(20 * 60)
    assert placed == 9, "3 attempts per number per day, inside 08:00-21:00 only"
    report = await compliance_report(db, DAY.astimezone(timezone.utc), (DAY + timedelta(days=2)).astimezone(timezone.utc),
                                     profile("client-default"))
    assert report.clean, report.render()
    assert report.attempts == 9


async def test_a_stored_breach_is_found_and_the_cli_exits_non_zero(db, tmp_path, monkeypatch, capsys):
    clock = ManualClock(DAY.replace(hour=10).astimezone(timezone.utc))
    await seed(db, clock)
    async with db.session() as s:  # a call at 22:00 Beijing time, and one with an unapproved caller ID
        await repo.create_attempt(s, Attempt(id="n" * 32, case_id="C-0", number="15551100000", caller_id="4008001000",
                                             state="ended", created_at=DAY.replace(hour=22).astimezone(timezone.utc)))
        await repo.create_attempt(s, Attempt(id="m" * 32, case_id="C-1", number="15551100001", caller_id="13800000000",
                                             state="ended", created_at=DAY.replace(hour=11).astimezone(timezone.utc)))
    report = await compliance_report(db, DAY.astimezone(timezone.utc), (DAY + timedelta(days=1)).astimezone(timezone.utc),
                                     profile("client-default"))
    assert {(b.attempt_id, b.rule) for b in report.breaches} == {("n" * 32, "window"), ("m" * 32, "caller_id")}
    monkeypatch.setenv("DUNLINE_DATABASE_URL", db.url)
    argv = ["compliance", "report", "--from", "2026-11-30T16:00:00", "--to", "2026-12-01T16:00:00"]
    assert await asyncio.to_thread(main, argv) == 1  # the CLI runs its own event loop
    assert "2 BREACHES" in capsys.readouterr().out


def test_bad_dates_are_named(capsys):
    assert main(["compliance", "report", "--from", "yesterday", "--to", "2026-12-01"]) == 2
    assert "not a date/time" in capsys.readouterr().err


async def test_a_supervisor_clears_a_dispute_and_the_case_is_dialled_again(db, monkeypatch, capsys, writer):
    clock = ManualClock(DAY.replace(hour=10).astimezone(timezone.utc))
    await seed(db, clock)
    monkeypatch.setenv("DUNLINE_DATABASE_URL", db.url)
    assert await asyncio.to_thread(main, ["case", "flag", "C-0", "dispute", "--by", "qc-li", "--why", "debtor disputes"]) == 0
    with pytest.raises(DialBlocked):
        await place_call(db, Link(), DialSettings(), case_id="C-0", collector="6001", clock=clock, writer=writer,
                         policy=profile("client-default"))
    assert await asyncio.to_thread(main, ["case", "show", "C-0"]) == 0
    assert "BLOCKED dispute" in capsys.readouterr().out, "the blocked decision is visible from the CLI"
    assert await asyncio.to_thread(main, ["case", "unflag", "C-0", "dispute", "--by", "sup-wang"]) == 2, "why is required"
    assert await asyncio.to_thread(main, ["case", "unflag", "C-0", "dispute", "--by", "sup-wang", "--why", "bill corrected"]) == 0
    clock.advance(60)
    await place_call(db, Link(), DialSettings(), case_id="C-0", collector="6001", clock=clock, writer=writer,
                     policy=profile("client-default"))
    async with db.session() as s:
        actions = [(e.action, e.actor) for e in await repo.audit_events(s, subject="C-0")]
    assert ("case.flagged", "qc-li") in actions and ("case.unflagged", "sup-wang") in actions


async def test_each_client_is_judged_by_its_own_rules_and_caller_ids(db):
    clock = ManualClock(DAY.replace(hour=10).astimezone(timezone.utc))
    await seed(db, clock)  # client "cu" approves 4008001000
    async with db.session() as s:
        await repo.approve_caller_id(s, "bank", "4008009000")
        await repo.add_case(s, Case(id="B-1", client="bank", debtor_name="Ma", timezone="Asia/Shanghai",
                                    created_at=clock()), [repo.NewPhone("15551109999")])
        # the bank's call shows the telecom's number; both calls are at 20:30
        await repo.create_attempt(s, Attempt(id="b" * 32, case_id="B-1", number="15551109999", caller_id="4008001000",
                                             state="ended", created_at=DAY.replace(hour=20, minute=30).astimezone(timezone.utc)))
        await repo.create_attempt(s, Attempt(id="c" * 32, case_id="C-2", number="15551100002", caller_id="4008001000",
                                             state="ended", created_at=DAY.replace(hour=20, minute=30).astimezone(timezone.utc)))
    strict = with_overrides(profile("client-default"), windows=every_day(time(9), time(20)))
    report = await compliance_report(db, DAY.astimezone(timezone.utc), (DAY + timedelta(days=1)).astimezone(timezone.utc),
                                     PolicyBook(profile("client-default"), {"bank": strict}))
    assert {(b.attempt_id, b.rule) for b in report.breaches} == {("b" * 32, "caller_id"), ("b" * 32, "window")}


async def test_a_campaigns_rules_apply_to_its_cases_as_dialled(db, writer):
    clock = ManualClock(DAY.replace(hour=20, minute=30).astimezone(timezone.utc))
    await seed(db, clock)  # cases C-0.. of client "cu"
    async with db.session() as s:
        (await repo.get_case(s, "C-1")).campaign = "early-stage"
    early = with_overrides(profile("client-default"), windows=every_day(time(9), time(20)))
    book = PolicyBook(profile("client-default"), campaigns={(None, "early-stage"): early})
    with pytest.raises(DialBlocked) as err:  # 20:30 is outside the campaign's window
        await place_call(db, Link(), DialSettings(), case_id="C-1", collector="6001", clock=clock, writer=writer, policy=book)
    assert err.value.decision.rule == "window"
    attempt = await place_call(db, Link(), DialSettings(), case_id="C-2", collector="6001", clock=clock, writer=writer,
                               policy=book)
    assert attempt.decision["campaign"] is None
    async with db.session() as s:  # the audit judges C-2's call by the campaign it was dialled in
        (await repo.get_case(s, "C-2")).campaign = "early-stage"
    report = await compliance_report(db, DAY.astimezone(timezone.utc),
                                     (DAY + timedelta(days=1)).astimezone(timezone.utc), book)
    assert report.clean, report.render()


async def test_a_dialer_whose_clock_is_hours_off_does_not_pass_its_own_audit(db, writer):
    """Its clock says 15:00 in Beijing, so the window allows the call; the PBX made it at 23:00.
    By its own times every rule holds; the PBX's clock names the call. A decision written
    after others but dated earlier is named too."""
    wrong = ManualClock(DAY.replace(hour=15).astimezone(timezone.utc))
    await seed(db, wrong)
    attempt = await place_call(db, Link(), DialSettings(), case_id="C-1", collector="6001", clock=wrong, writer=writer,
                               policy=profile("client-default"))
    real_start = DAY.replace(hour=23).astimezone(timezone.utc)
    await writer.report(attempt.id, Report(event=Event.HUNG_UP, source=Source.AMI, at=wrong(), hangup_cause=17,
                                           pbx_started_at=real_start))
    wrong.set(DAY.replace(hour=14).astimezone(timezone.utc))  # and then set back an hour
    with pytest.raises(DialBlocked, match="clock"):  # decide() refuses it; its verdict is kept, dated back
        await place_call(db, Link(), DialSettings(), case_id="C-2", collector="6001", clock=wrong, writer=writer,
                         policy=profile("client-default"))
    report = await compliance_report(db, DAY.astimezone(timezone.utc), (DAY + timedelta(days=1)).astimezone(timezone.utc),
                                     profile("client-default"))
    assert report.rule_breaches == (), "by its own clock it broke no rule"
    assert {(b.attempt_id, b.rule) for b in report.clock_breaches} >= {(attempt.id, "clock_vs_pbx")}
    assert any(b.rule == "clock_order" for b in report.clock_breaches)
    assert not report.clean and "8.0 h later" in report.render()
