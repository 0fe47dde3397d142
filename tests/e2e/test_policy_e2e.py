"""The dialing policy on the real sandbox, with an injected clock: only the calls the rules
allow reach the carrier (its own call log says so), and the audit report is clean."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from dialer.compliance import compliance_report
from dialer.originate import DialBlocked
from storage import repositories as repo
from storage.models import Appointment, Attempt
from tests.e2e.conftest import start_harness

pytestmark = pytest.mark.e2e
BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 2, hour, minute, tzinfo=BEIJING).astimezone(timezone.utc)


def assert_only_the_injected_clock_is_named(report, attempt_id: str, unverified: tuple[str, ...] = ()) -> None:
    """By the dialer's own clock no call broke a rule. But this service runs on a clock set
    to another day (OffsetClock) while the PBX keeps the real time: the audit's clock witness
    names exactly the call placed, with the PBX's own time of it."""
    assert report.rule_breaches == (), report.render()
    assert [(b.attempt_id, b.rule) for b in report.clock_breaches] == [(attempt_id, "clock_vs_pbx")], report.render()
    assert report.clock_unverified == unverified, "the PBX's time of every call it placed is known"


async def try_dial(h, case_id):
    try:
        return await h.service.dial(case_id)
    except DialBlocked as exc:
        return exc.decision


async def test_only_allowed_calls_reach_the_carrier(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path / "evening", start=beijing(20, 50))
    try:
        await h.add_case("P-SH", "15555200021")                                # Beijing 20:50: inside
        await h.add_case("P-NY", "15555200022", timezone="America/New_York")   # 07:50 in New York
        await h.add_case("P-DISPUTE", "15555200023", flags=("dispute",))
        await h.add_case("P-CAP", "15555200024")
        async with h.service.db.session() as s:  # three attempts already today
            for hour in (9, 12, 15):
                await repo.create_attempt(s, Attempt(
                    id=f"{hour:02d}" * 16, case_id="P-CAP", number="15555200024", caller_id="4008002000",
                    state="ended", outcome="no_answer", created_at=beijing(hour)))
        results = {c: await try_dial(h, c) for c in ("P-SH", "P-NY", "P-DISPUTE", "P-CAP")}
        assert isinstance(results["P-SH"], Attempt)
        assert results["P-NY"].rule == "window"
        assert results["P-NY"].next_allowed_at == datetime(2026, 12, 2, 8, tzinfo=ZoneInfo("America/New_York"))
        assert results["P-DISPUTE"].rule == "dispute" and results["P-DISPUTE"].next_allowed_at is None
        assert results["P-CAP"].rule == "attempts_per_number_per_day"
        # both reports of the end in: the hang-up handler's, then AMI's with the PBX's own start time
        await h.wait_attempt(results["P-SH"].id, until=lambda a: a.pbx_started_at is not None)
        report = await compliance_report(h.service.db, beijing(0), beijing(23, 59), h.service.policy)
        assert_only_the_injected_clock_is_named(report, results["P-SH"].id)
    finally:
        await h.service.stop(drain_timeout=30)
    assert h.carrier_calls("15555200021") == 1
    for number in ("15555200022", "15555200023", "15555200024"):
        assert h.carrier_calls(number) == 0, number


async def test_an_agreed_time_after_hours_is_honoured_and_nothing_else(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path / "late", start=beijing(21, 30))
    try:
        await h.add_case("P-APPT", "15555200025")
        await h.add_case("P-LATE", "15555200026")
        async with h.service.db.session() as s:
            await repo.create_attempt(s, Attempt(
                id="ab" * 16, case_id="P-APPT", number="15555200025", caller_id="4008002000",
                state="ended", outcome="answered", answered_at=beijing(10), bridged_seconds=60.0,
                created_at=beijing(10)))
            s.add(Appointment(case_id="P-APPT", at=beijing(21, 30), agreed_by="debtor",
                              recorded_attempt_id="ab" * 16, created_at=beijing(10, 2)))
        allowed = await try_dial(h, "P-APPT")
        late = await try_dial(h, "P-LATE")
        assert isinstance(allowed, Attempt), allowed
        assert late.rule == "window"
        await h.wait_attempt(allowed.id, until=lambda a: a.pbx_started_at is not None)  # both ends reported
        report = await compliance_report(h.service.db, beijing(0), beijing(23, 59), h.service.policy)
        assert_only_the_injected_clock_is_named(report, allowed.id, unverified=("ab" * 16,))  # made up above
    finally:
        await h.service.stop(drain_timeout=30)
    assert h.carrier_calls("15555200025") == 1
    assert h.carrier_calls("15555200026") == 0
