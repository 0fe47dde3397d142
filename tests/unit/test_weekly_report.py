"""The weekly report's figures on a small dataset built by hand (cases/weekly_report.py's
docstring defines each one): the week's edges on Beijing's clock, cases opened and closed
around the week, corrected promises, kept / broken / pending promises, recovery by the
credited collector, the compliance summary's every kind of call, zero divisions."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from cases.weekly_report import (REPORT_ZONE, AgreedTime, AttemptRow, CaseRow, ComplaintRow, DispositionRow,
                                 Grouping, PaymentRow, StatusChange, Week, WeekError, WeeklyInputs, half_up,
                                 open_in_week, weekly_report)

W48 = Week(2026, 48)
AS_OF = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Beijing, the week after


def bj(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=REPORT_ZONE)


def allowed(zone: str = "Asia/Shanghai", kind: str = "debtor") -> dict:
    return {"allowed": True, "zone": zone, "facts": {"case": {"timezone": zone, "region": None},
                                                     "phone": {"kind": kind}}}


def attempt(aid, case, at, *, batch="cu/B1", team="north", case_collector="alice", caller=None, decision=None,
            answered=False, bridged=None, sha=None, ledger=None, job=None, number="13800000001"):
    action, subject, detail = ledger if ledger else (None, None, None)
    return AttemptRow(aid, case, batch, team, case_collector, caller, at, number,
                      allowed() if decision is None else decision, answered, bridged, sha, action, subject, detail, job)


def ingest_entry(aid: str, sha: str) -> tuple[str, str, str]:
    return "ingest", f"recording:{aid}", json.dumps({"files": {"mixed": {"sha256": sha}}})


CASES = [
    CaseRow("C1", "cu/B1", "north", "alice", 100_000, bj(1, 9), "open"),
    CaseRow("C2", "cu/B1", "north", "bob", 50_000, bj(1, 9), "closed"),  # closed in the week: counts
    CaseRow("C3", "cu/B2", "south", None, 30_000, bj(1, 9), "closed"),  # closed before the week
    CaseRow("C4", None, None, "alice", None, bj(29, 23, 59), "open"),  # created on the week's last minute
    CaseRow("C5", "cu/B1", "north", "alice", 1_000, bj(30, 0), "open"),  # created as the next week begins
    CaseRow("C6", "cu/B2", "south", None, 20_000, bj(1, 9), "open"),  # returned before, reopened in the week
    CaseRow("C7", "cu/B2", "south", None, 40_000, bj(1, 9), "open"),  # returned before, reopened after
]
CHANGES = [
    StatusChange("C2", bj(25, 10), "open", "closed"),
    StatusChange("C3", bj(20, 10), "open", "closed"),
    StatusChange("C6", bj(10, 10), "open", "returned"), StatusChange("C6", bj(26, 10), "returned", "open"),
    StatusChange("C7", bj(10, 10), "open", "returned"), StatusChange("C7", bj(2, 10, month=12), "returned", "open"),
]
ATTEMPTS = [
    # alice's call, answered, talked 60.4 s, recorded and the ledger names its hash
    attempt("a1", "C1", bj(23, 9), caller="alice", answered=True, bridged=60.4, sha="h1",
            ledger=ingest_entry("a1", "h1"), job="archived"),
    # for alice's case, no collector on the call (unanswered), one second before 21:00
    attempt("a2", "C1", bj(24, 20, 59, 59)),
    # bob's, at 21:00 sharp (outside), answered, recorded, but its ledger entry names another hash
    attempt("a3", "C2", bj(25, 21), case_collector="bob", caller="bob", answered=True, bridged=30.2, sha="h3",
            ledger=ingest_entry("a3", "other"), job="archived"),
    # 07:58, excused by the time agreed at 08:00; answered, no collector in time, its recording being archived
    attempt("a4", "C2", bj(26, 7, 58), case_collector="bob", caller="bob", answered=True, bridged=None, job="due"),
    # carol took a call of a case without batch or team; the verdict was "blocked"; no recording, resolved
    attempt("a5", "C4", bj(27, 10), batch=None, team=None, caller="carol", decision={"allowed": False},
            answered=True, bridged=100.0, job="resolved"),
    # no stored decision at all
    attempt("a8", "C6", bj(28, 12), batch="cu/B2", team="south", case_collector=None, decision={}),
    # the debtor is in New York: 10:00 in Beijing is 21:00 there
    attempt("a9", "C1", bj(28, 10), caller="alice", decision=allowed("America/New_York")),
    # outside the week: Sunday 23:59 before it, Monday 00:00 after it
    attempt("a6", "C1", bj(22, 23, 59), caller="alice", answered=True, bridged=500.0),
    attempt("a7", "C1", bj(30, 0), caller="alice", answered=True, bridged=500.0),
]
AGREED = [AgreedTime("C2", bj(26, 8), "debtor", "a0", None)]


def promise(did, case, at, *, amount=None, due=None, code="promise_to_pay", corrects=None, batch="cu/B1",
            team="north", collector="alice"):
    return DispositionRow(did, case, batch, team, collector, code, amount, due, corrects, at)


DISPOSITIONS = [
    promise(1, "C1", bj(23, 9, 5), amount=20_000, due=date(2026, 11, 26)),  # kept: paid in full by the 29th
    # bob's promise, corrected, and the correction corrected (after the week) into "contacted": none
    promise(2, "C2", bj(23, 10), amount=30_000, due=date(2026, 11, 24), collector="bob"),
    promise(3, "C2", bj(23, 10, 5), amount=10_000, due=date(2026, 11, 25), corrects=2, collector="bob"),
    promise(4, "C2", bj(1, 9, month=12), code="contacted", corrects=3, collector="bob"),
    # carol's promise corrected to 60.00: one promise of 60.00, due in December (pending)
    promise(5, "C4", bj(27, 11), amount=5_000, due=date(2026, 12, 20), batch=None, team=None, collector="carol"),
    promise(6, "C4", bj(27, 11, 2), amount=6_000, due=date(2026, 12, 20), corrects=5, batch=None, team=None,
            collector="carol"),
    # due on the 24th, nothing paid: broken (the grace ended on the 27th)
    promise(7, "C6", bj(24, 12), amount=1_000, due=date(2026, 11, 24), batch="cu/B2", team="south", collector=None),
    # a correction in the week of a promise entered the week before: that week's
    promise(9, "C1", bj(23, 8), amount=1_000, due=date(2026, 12, 1), corrects=8),
    promise(10, "C1", bj(24, 9), code="contacted"),
    promise(11, "C1", bj(30, 0), amount=1_000, due=date(2026, 12, 1)),  # the next week's
]
PAYMENTS = [
    PaymentRow("C1", "cu/B1", "north", "alice", 15_000, date(2026, 11, 24)),
    PaymentRow("C1", "cu/B1", "north", "alice", 5_000, date(2026, 11, 29)),
    PaymentRow("C2", "cu/B1", "north", "bob", 7_000, date(2026, 11, 30)),  # the next week
    PaymentRow("C3", "cu/B2", "south", None, 2_500, date(2026, 11, 23)),  # a closed case's payment still counts
    PaymentRow("C1", "cu/B1", "north", "alice", 9_999, date(2026, 11, 10)),  # W46: the chart's
]
COMPLAINTS = [
    ComplaintRow(1, "cu/B1", "north", "alice", bj(23, 0)),
    ComplaintRow(2, None, "north", "bob", bj(29, 23, 59, 59)),  # no case: bob's team
    ComplaintRow(3, "cu/B1", "north", "alice", bj(30, 0)),
]
ROWS = WeeklyInputs(cases=CASES, status_changes=CHANGES, attempts=ATTEMPTS, agreed_times=AGREED,
                    dispositions=DISPOSITIONS, payments=PAYMENTS, complaints=COMPLAINTS)


@pytest.fixture(scope="module")
def report():
    return weekly_report(W48, AS_OF, ROWS)


def by(report, grouping):
    return {f.group: f for f in report.groups[grouping]}


def test_the_week_is_monday_to_monday_in_beijing():
    week = Week.parse("2026-W48")
    assert week == W48 and week.label == "2026-W48" and str(week) == "2026-W48"
    assert week.start == datetime(2026, 11, 22, 16, 0, tzinfo=timezone.utc)
    assert week.end == datetime(2026, 11, 29, 16, 0, tzinfo=timezone.utc)
    assert (week.first_day, week.last_day) == (date(2026, 11, 23), date(2026, 11, 29))
    assert week.holds(datetime(2026, 11, 22, 16, 0, tzinfo=timezone.utc))
    assert not week.holds(datetime(2026, 11, 22, 15, 59, 59, tzinfo=timezone.utc))
    assert not week.holds(week.end) and week.holds(week.end - timedelta(microseconds=1))
    assert Week.of(datetime(2026, 11, 22, 15, 59, tzinfo=timezone.utc)) == Week(2026, 47)
    assert Week.last_complete(AS_OF) == W48 and Week.of(AS_OF) == Week(2026, 49)
    assert W48.shift(1) == Week(2026, 49) and W48.shift(-48) == Week(2025, 52)
    assert Week(2026, 1).first_day == date(2025, 12, 29) and Week(2026, 53).shift(1) == Week(2027, 1)
    assert [w.label for w in W48.history(3)] == ["2026-W46", "2026-W47", "2026-W48"]


@pytest.mark.parametrize("text", ["2026-48", "2026-W4", "2025-W53", "2026-W00", "1999-W10", "", None, 202648,
                                  "2026-W48x", "２０２６-W48"])
def test_a_malformed_week_is_refused_with_a_reason(text):
    with pytest.raises(WeekError):
        Week.parse(text)


def test_cases_open_at_any_time_in_the_week(report):
    changes = {}
    for c in CHANGES:
        changes.setdefault(c.case_id, []).append(c)
    counted = {c.case_id for c in CASES if open_in_week(c, changes.get(c.case_id, ()), W48)}
    assert counted == {"C1", "C2", "C4", "C6"}
    assert (report.total.cases, report.total.arrears_cents) == (4, 100_000 + 50_000 + 0 + 20_000)
    batches = by(report, Grouping.BATCH)
    assert (batches["cu/B1"].cases, batches["cu/B1"].arrears_cents) == (2, 150_000)
    assert (batches["cu/B2"].cases, batches[None].cases) == (1, 1)
    collectors = by(report, Grouping.COLLECTOR)
    assert (collectors["alice"].cases, collectors["bob"].cases, collectors[None].cases) == (2, 1, 1)


def test_attempts_contacts_and_talk_time(report):
    t = report.total
    assert (t.attempts, t.contacts) == (7, 3)
    assert t.contact_rate == pytest.approx(3 / 7)
    assert t.talk_seconds == 191  # 60.4 + 30.2 + 100.0 = 190.6, rounded after summing
    collectors = by(report, Grouping.COLLECTOR)
    # the call's collector, else the case's (a2 is alice's case with no collector on the call)
    assert {k: (f.attempts, f.contacts, f.talk_seconds) for k, f in collectors.items()} == {
        "alice": (3, 1, 60), "bob": (2, 1, 30), "carol": (1, 1, 100), None: (1, 0, 0)}
    teams = by(report, Grouping.TEAM)
    assert (teams["north"].attempts, teams["south"].attempts, teams[None].attempts) == (5, 1, 1)


def test_promises_once_per_correction_chain_kept_broken_pending(report):
    t = report.total
    assert (t.promises, t.promised_cents) == (3, 20_000 + 6_000 + 1_000)
    assert (t.promises_kept, t.promises_broken, t.promises_pending) == (1, 1, 1)
    assert t.promise_kept_rate == 0.5  # of the two due; the pending one is neither
    collectors = by(report, Grouping.COLLECTOR)
    assert (collectors["alice"].promises, collectors["alice"].promises_kept) == (1, 1)
    assert collectors["bob"].promises == 0  # corrected into "contacted"
    assert (collectors["carol"].promises, collectors["carol"].promised_cents,
            collectors["carol"].promises_pending) == (1, 6_000, 1)
    assert (collectors[None].promises_broken, collectors[None].promise_kept_rate) == (1, 0.0)
    assert collectors["carol"].promise_kept_rate is None  # nothing due yet


def test_a_promise_is_kept_only_in_full_within_the_grace():
    rows = WeeklyInputs(dispositions=[promise(1, "C1", bj(23, 9), amount=10_000, due=date(2026, 11, 24))],
                        payments=[PaymentRow("C1", "b", "t", "alice", 4_000, date(2026, 11, 22)),  # before the promise
                                  PaymentRow("C1", "b", "t", "alice", 5_000, date(2026, 11, 27)),  # the grace's last day
                                  PaymentRow("C1", "b", "t", "alice", 5_000, date(2026, 11, 28))])  # too late
    assert weekly_report(W48, AS_OF, rows).total.promises_broken == 1
    on_time = WeeklyInputs(dispositions=rows.dispositions,
                           payments=[*rows.payments, PaymentRow("C1", "b", "t", None, 5_000, date(2026, 11, 23))])
    assert weekly_report(W48, AS_OF, on_time).total.promises_kept == 1
    # as of the promise's day, the grace still open: pending, then broken the day after the grace
    early = weekly_report(W48, bj(24, 12), rows).total
    assert (early.promises_pending, early.promises_broken) == (1, 0)
    assert weekly_report(W48, bj(27, 23, 59), rows).total.promises_pending == 1
    assert weekly_report(W48, bj(28, 0), rows).total.promises_broken == 1


def test_recovered_by_payment_date_and_credited_collector(report):
    t = report.total
    assert t.recovered_cents == 15_000 + 5_000 + 2_500
    assert t.recovery_rate == pytest.approx(22_500 / 170_000)
    collectors = by(report, Grouping.COLLECTOR)
    assert (collectors["alice"].recovered_cents, collectors[None].recovered_cents) == (20_000, 2_500)
    assert collectors["bob"].recovered_cents == 0  # paid on Monday after the week
    batches = by(report, Grouping.BATCH)
    assert batches["cu/B2"].recovered_cents == 2_500 and batches["cu/B2"].recovery_rate == 2_500 / 20_000
    assert [(r.week.label, r.recovered_cents) for r in report.recovery_by_week][-3:] == [
        ("2026-W46", 9_999), ("2026-W47", 0), ("2026-W48", 22_500)]
    assert len(report.recovery_by_week) == 8


def test_complaints_registered_in_the_week(report):
    assert report.total.complaints == 2
    assert by(report, Grouping.COLLECTOR)["bob"].complaints == 1
    assert by(report, Grouping.TEAM)["north"].complaints == 2
    assert by(report, Grouping.BATCH)[None].complaints == 1


def test_the_compliance_summary(report):
    c = report.compliance
    assert c.attempts == 7
    assert (c.not_allowed, c.outside_window, c.outside_rules) == (2, 2, 4)
    assert set(c.outside_rules_ids) == {"a3", "a5", "a8", "a9"}  # a4 at 07:58 had an agreed time
    assert (c.answered, c.recorded, c.in_ingest, c.unrecorded, c.recordings_verified) == (4, 2, 1, 1, 1)
    assert c.unrecorded_ids == ("a5",) and c.unverified_ids == ("a3",) and not c.clean


def test_an_agreed_time_excuses_only_near_it_and_not_once_cancelled():
    late = attempt("x", "C2", bj(26, 7, 54))  # six minutes before the agreed 08:00
    rows = WeeklyInputs(attempts=[late], agreed_times=AGREED)
    assert weekly_report(W48, AS_OF, rows).compliance.outside_window == 1
    near = attempt("y", "C2", bj(26, 7, 56))
    cancelled = [AgreedTime("C2", bj(26, 8), "debtor", "a0", bj(26, 7))]
    assert weekly_report(W48, AS_OF, WeeklyInputs(attempts=[near], agreed_times=AGREED)).compliance.clean
    assert weekly_report(W48, AS_OF, WeeklyInputs(attempts=[near], agreed_times=cancelled)
                         ).compliance.outside_window == 1
    unrecorded = [AgreedTime("C2", bj(26, 8), "debtor", None, None)]  # not recorded with a call: not agreed
    assert weekly_report(W48, AS_OF, WeeklyInputs(attempts=[near], agreed_times=unrecorded)
                         ).compliance.outside_window == 1


def test_zones_from_the_decisions_facts():
    third_party_us = attempt("t", "C1", bj(24, 12), number="+12125550100", decision=allowed("Asia/Shanghai", "third_party"))
    no_zone = attempt("z", "C1", bj(24, 12), number="999", decision={"allowed": True})
    named_only = attempt("n", "C1", bj(24, 12), number="999", decision={"allowed": True, "zone": "Asia/Shanghai"})
    result = weekly_report(W48, AS_OF, WeeklyInputs(attempts=[third_party_us, no_zone, named_only])).compliance
    # noon in Beijing is 23:00 in New York (the third party's own number); no zone at all: outside
    assert set(result.outside_rules_ids) == {"t", "z"}


def test_nothing_to_count_divides_by_nothing():
    empty = weekly_report(W48, AS_OF, WeeklyInputs())
    assert empty.total.cases == 0 and empty.groups[Grouping.BATCH] == ()
    assert (empty.total.contact_rate, empty.total.promise_kept_rate, empty.total.recovery_rate) == (None, None, None)
    assert empty.compliance.clean and empty.compliance.recordings_verified == 0
    assert empty.as_json()["total"]["contact_rate"] is None


def test_groups_are_sorted_none_last_and_every_grouping_adds_up_to_the_total(report):
    for grouping in Grouping:
        rows = report.groups[grouping]
        assert rows[-1].group is None and [r.group for r in rows[:-1]] == sorted(r.group for r in rows[:-1])
        for figure in ("cases", "arrears_cents", "attempts", "contacts", "promises", "promises_kept",
                       "recovered_cents", "complaints"):
            assert sum(getattr(r, figure) for r in rows) == getattr(report.total, figure), (grouping, figure)


def test_half_up_rounding():
    assert (half_up(0.5), half_up(1.49), half_up(2.5), half_up(0.0)) == (1, 1, 3, 0)


def test_json_of_one_grouping(report):
    out = report.as_json(Grouping.TEAM)
    assert list(out["groups"]) == ["team"] and out["week"] == "2026-W48"
    assert out["compliance"]["outside_rules"] == 4 and out["total"]["talk_seconds"] == 191
    assert out["start"] == "2026-11-23T00:00:00+08:00"
