"""Complaints' rules without I/O (cases/complaints.py): the 24-hour deadline, the alarms exactly
at their boundaries with an injected time, each raised once, and what a registration, an
outcome, a closing, a supervisor's leave and a follow-up call must be; and the dialing
policy's rule `complaint`."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases.complaints import (DEADLINE, SUMMARY_MAX, WARN_BEFORE, Alarm, ClockFacts, ComplaintRefused,
                              Registration, Stage, State, alarm_due, check_allow_dialing, check_close,
                              check_follow_up, check_outcome, deadline_of, pauses_dialing, stage, time_left,
                              validate_outcome, validate_registration)
from dialer.policy import Blocked, CaseFacts, PhoneFacts, decide, profile, with_overrides
from dialer.policy.audit import AuditedAttempt, audit
from dialer.policy.model import AttemptRecord

T0 = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)


def facts(**kw) -> ClockFacts:
    return ClockFacts(registered_at=T0, deadline_at=deadline_of(T0), **kw)


def test_the_deadline_is_24_hours_from_registration():
    assert DEADLINE == timedelta(hours=24) and WARN_BEFORE == timedelta(hours=2)
    assert deadline_of(T0) == datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        deadline_of(datetime(2026, 12, 1, 9, 30))  # a naive time is a bug, not a deadline


def test_the_alarms_exactly_at_their_boundaries():
    f = facts()
    warn, deadline = f.deadline_at - WARN_BEFORE, f.deadline_at
    assert alarm_due(f, T0) is None
    assert alarm_due(f, warn - MICRO) is None
    assert alarm_due(f, warn) is Alarm.DUE_SOON, "due soon at deadline - 2 h exactly"
    assert alarm_due(f, deadline - MICRO) is Alarm.DUE_SOON
    assert alarm_due(f, deadline) is Alarm.OVERDUE, "overdue at the deadline exactly"
    assert alarm_due(f, deadline + timedelta(days=30)) is Alarm.OVERDUE
    assert [stage(f, t) for t in (T0, warn - MICRO, warn, deadline - MICRO, deadline)] == \
        [Stage.OPEN, Stage.OPEN, Stage.DUE_SOON, Stage.DUE_SOON, Stage.OVERDUE]


def test_each_alarm_is_raised_once_and_none_for_a_closed_complaint():
    f = facts()
    warn, deadline = f.deadline_at - WARN_BEFORE, f.deadline_at
    warned = replace(f, warned_at=warn)
    assert alarm_due(warned, warn + SECOND) is None, "warned once"
    assert alarm_due(warned, deadline) is Alarm.OVERDUE
    both = replace(warned, overdue_at=deadline)
    assert alarm_due(both, deadline + timedelta(hours=5)) is None, "overdue once"
    closed = replace(f, closed_at=warn - SECOND)
    assert alarm_due(closed, deadline) is None and stage(closed, deadline) is Stage.CLOSED
    # first looked at after the deadline (the service was down): only the overdue alarm
    assert alarm_due(f, deadline + timedelta(hours=1)) is Alarm.OVERDUE
    assert alarm_due(replace(f, overdue_at=deadline + timedelta(hours=1)), deadline + timedelta(hours=2)) is None


@settings(max_examples=200, deadline=None)
@given(ticks=st.lists(st.integers(0, 30 * 3600), min_size=1, max_size=40))
def test_whatever_the_passes_each_alarm_is_raised_at_most_once_and_never_early(ticks):
    """Passes at any moments (sorted), each marking what it raised: due soon at most once,
    never before deadline - 2 h, never after overdue; overdue once, not before the deadline."""
    f = facts()
    raised: list[tuple[Alarm, datetime]] = []
    for tick in sorted(ticks):
        now = T0 + timedelta(seconds=tick)
        alarm = alarm_due(f, now)
        if alarm is Alarm.DUE_SOON:
            f = replace(f, warned_at=now)
        elif alarm is Alarm.OVERDUE:
            f = replace(f, overdue_at=now)
        if alarm is not None:
            raised.append((alarm, now))
    kinds = [a for a, _ in raised]
    assert kinds in ([], [Alarm.DUE_SOON], [Alarm.OVERDUE], [Alarm.DUE_SOON, Alarm.OVERDUE])
    for alarm, at in raised:
        assert at >= (f.deadline_at if alarm is Alarm.OVERDUE else f.deadline_at - WARN_BEFORE)
        if alarm is Alarm.DUE_SOON:
            assert at < f.deadline_at
    if sorted(ticks)[-1] >= 24 * 3600:
        assert Alarm.OVERDUE in kinds


def test_time_left_counts_down_and_stops_at_closing():
    f = facts()
    assert time_left(f, T0) == timedelta(hours=24)
    assert time_left(f, f.deadline_at + timedelta(minutes=5)) == -timedelta(minutes=5)
    closed = replace(f, closed_at=T0 + timedelta(hours=3))
    assert time_left(closed, T0 + timedelta(days=9)) == timedelta(hours=21)


def test_a_registration_names_its_source_a_summary_and_a_case_or_a_collector():
    ok = validate_registration({"source": "debtor", "summary": "  rude on the phone  ", "case_id": "C-1"})
    assert ok == Registration("debtor", "rude on the phone", "C-1", None)
    assert validate_registration({"source": "client", "summary": "called at night", "collector": "collector1",
                                  "case_id": ""}) == Registration("client", "called at night", None, "collector1")
    problems = [
        ({"source": "neighbour", "summary": "loud", "case_id": "C-1"}, "source"),
        ({"summary": "loud", "case_id": "C-1"}, "source"),
        ({"source": "debtor", "summary": "no", "case_id": "C-1"}, "summary"),
        ({"source": "debtor", "summary": "x" * (SUMMARY_MAX + 1), "case_id": "C-1"}, "summary"),
        ({"source": "debtor", "summary": "bad\x00byte", "case_id": "C-1"}, "summary"),
        ({"source": "debtor", "summary": "lone \ud800 surrogate", "case_id": "C-1"}, "summary"),
        ({"source": "debtor", "summary": 42, "case_id": "C-1"}, "summary"),
        ({"source": "debtor", "summary": "rude", "case_id": "", "collector": "  "}, "target"),
        ({"source": "debtor", "summary": "rude"}, "target"),
        ({"source": "debtor", "summary": "rude", "case_id": "C" * 65}, "case_id"),
        ({"source": "debtor", "summary": "rude", "collector": "c\n1"}, "collector"),
    ]
    for raw, key in problems:
        with pytest.raises(ComplaintRefused) as refused:
            validate_registration(raw)
        assert refused.value.key == key, raw


def test_outcome_closing_leave_and_follow_up_follow_the_complaints_state():
    open_ = State(case_id="C-1", registered_at=T0)
    assert validate_outcome("  apologised; the collector was retrained ") == "apologised; the collector was retrained"
    for bad in ("ok", "", None, "x" * 2001):
        with pytest.raises(ComplaintRefused, match="outcome"):
            validate_outcome(bad)
    check_outcome(open_)
    with_outcome = replace(open_, outcome="done")
    for check, state, key in [
        (check_outcome, with_outcome, "outcome_set"),
        (check_outcome, replace(open_, closed_at=T0), "closed"),
        (check_close, open_, "no_outcome"),
        (check_close, replace(with_outcome, closed_at=T0), "closed"),
        (check_allow_dialing, replace(open_, dialing_allowed_at=T0), "allowed_already"),
        (check_allow_dialing, replace(open_, case_id=None), "no_case"),
        (check_allow_dialing, replace(open_, closed_at=T0), "closed"),
    ]:
        with pytest.raises(ComplaintRefused) as refused:
            check(state)
        assert refused.value.key == key
    check_close(with_outcome)
    check_allow_dialing(open_)
    check_follow_up(open_, "C-1", T0)
    for args, key in [(("C-2", T0 + SECOND), "follow_up_case"), (("C-1", T0 - SECOND), "follow_up_early")]:
        with pytest.raises(ComplaintRefused) as refused:
            check_follow_up(open_, *args)
        assert refused.value.key == key
    with pytest.raises(ComplaintRefused, match="closed"):
        check_follow_up(replace(open_, closed_at=T0), "C-1", T0)


def test_an_open_complaint_on_a_case_pauses_it_until_closed_or_allowed():
    assert pauses_dialing("C-1", None, None)
    assert not pauses_dialing("C-1", T0, None)
    assert not pauses_dialing("C-1", None, T0)
    assert not pauses_dialing(None, None, None), "a complaint against a collector alone pauses no case"


# -- the dialing policy's rule `complaint` ------------------------------------------------

RULES = with_overrides(profile("client-default"), caller_id_pool=("4008001000",))
CASE = CaseFacts("C-1", "cu", "Guangdong", "Asia/Shanghai", "open")
PHONE = PhoneFacts("13800000001")


def test_the_policy_blocks_a_case_an_open_complaint_pauses_until_a_person_lifts_it():
    assert not isinstance(decide(CASE, PHONE, T0, [], RULES), Blocked)
    blocked = decide(replace(CASE, complaint_pause=True), PHONE, T0, [], RULES)
    assert isinstance(blocked, Blocked) and blocked.rule == "complaint" and blocked.next_allowed_at is None
    # a dispute is still told first; the complaint only adds to the pause
    assert decide(replace(CASE, complaint_pause=True, flags=frozenset({"dispute"})), PHONE, T0, [], RULES).rule \
        == "dispute"


def test_the_audit_finds_a_call_placed_while_a_complaint_paused_the_case():
    paused = replace(CASE, complaint_pause=True)
    attempts = [AuditedAttempt("placed", AttemptRecord(T0, "C-1", PHONE.number), paused, PHONE, "4008001000"),
                AuditedAttempt("fine", AttemptRecord(T0 + timedelta(days=2), "C-1", PHONE.number), CASE, PHONE,
                               "4008001000")]
    report = audit(attempts, RULES)
    assert [(b.attempt_id, b.rule) for b in report.breaches] == [("placed", "complaint")]
    assert report.checked["complaint"] == 2


def test_the_alarm_settings_default_to_a_minute_and_the_watchdogs_webhook():
    from dunline.settings import SettingsError, load_settings

    settings = load_settings(env={})
    assert settings.complaints.check_interval_s == 60 and settings.complaints.webhook_url == ""
    for env, name in (({"DUNLINE_COMPLAINTS_CHECK_INTERVAL_S": "0"}, "complaints.check_interval_s"),
                      ({"DUNLINE_COMPLAINTS_CHECK_INTERVAL_S": "3600"}, "complaints.check_interval_s"),
                      ({"DUNLINE_COMPLAINTS_WEBHOOK_URL": "ftp://x"}, "complaints.webhook_url")):
        with pytest.raises(SettingsError, match=name.replace(".", r"\.")):
            load_settings(env=env)
