"""decide(): order of checks, suppressions, appointments, fail-closed (pure)."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from dialer.policy import (
    Allowed,
    Appointment,
    AttemptRecord,
    Blocked,
    CaseFacts,
    PhoneFacts,
    decide,
    profile,
    with_overrides,
)

UTC = timezone.utc
SETTINGS = with_overrides(profile("client-default"), caller_id_pool=("02150000001", "02150000002"))
CASE = CaseFacts("C1", "bank-a", "Guangdong", None, "open")
PHONE = PhoneFacts("13812345678", "debtor")
NOON_SH = datetime(2026, 6, 2, 4, 0, tzinfo=UTC)  # 12:00 Shanghai


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_allowed_carries_zone_and_first_caller_id():
    assert decide(CASE, PHONE, NOON_SH, [], SETTINGS) == Allowed("Asia/Shanghai", "02150000001")


def test_profile_without_caller_ids_blocks():
    blocked = decide(CASE, PHONE, NOON_SH, [], profile("client-default"))
    assert blocked == Blocked("no approved caller ID", "caller_id", None)


@pytest.mark.parametrize("now, last", [
    (datetime(2026, 6, 2, 12, 0), None),  # naive
    (NOON_SH, NOON_SH + timedelta(seconds=1)),  # went backwards
])
def test_bad_clock(now, last):
    blocked = decide(CASE, PHONE, now, [], SETTINGS, last_decision_at=last)
    assert isinstance(blocked, Blocked) and blocked.rule == "clock"


def test_same_instant_as_last_decision_is_fine():
    assert isinstance(decide(CASE, PHONE, NOON_SH, [], SETTINGS, last_decision_at=NOON_SH), Allowed)


@pytest.mark.parametrize("status", ["settled", "returned", "closed", "weird"])
def test_case_status(status):
    blocked = decide(replace(CASE, status=status), PHONE, NOON_SH, [], SETTINGS)
    assert blocked.rule == "case_status" and blocked.next_allowed_at is None


@pytest.mark.parametrize("flag", ["dispute", "fraud", "care"])
def test_flags_block_without_a_next_time(flag):
    blocked = decide(replace(CASE, flags=frozenset({flag})), PHONE, NOON_SH, [], SETTINGS)
    assert blocked.rule == flag and blocked.next_allowed_at is None


def test_unknown_flag_fails_closed():
    assert decide(replace(CASE, flags=frozenset({"vip"})), PHONE, NOON_SH, [], SETTINGS).rule == "case_flags"


def test_care_with_current_approval_is_allowed_and_expires():
    case = replace(CASE, flags=frozenset({"care"}), care_approved_until=NOON_SH)
    assert isinstance(decide(case, PHONE, NOON_SH, [], SETTINGS), Allowed)
    later = NOON_SH + timedelta(minutes=1)
    assert decide(case, PHONE, later, [], SETTINGS).rule == "care"


def test_dispute_wins_over_care_approval():
    case = replace(CASE, flags=frozenset({"care", "dispute"}), care_approved_until=NOON_SH + timedelta(days=1))
    assert decide(case, PHONE, NOON_SH, [], SETTINGS).rule == "dispute"


def test_do_not_call_and_refused_third_party():
    assert decide(CASE, replace(PHONE, do_not_call=True), NOON_SH, [], SETTINGS).rule == "do_not_call"
    third = PhoneFacts("13900000000", "third_party", refused=True)
    assert decide(CASE, third, NOON_SH, [], SETTINGS).rule == "third_party_refused"
    assert isinstance(decide(CASE, replace(third, refused=False), NOON_SH, [], SETTINGS), Allowed)
    # A debtor's "refused" is not a stop rule by itself.
    assert isinstance(decide(CASE, replace(PHONE, refused=True), NOON_SH, [], SETTINGS), Allowed)


def test_a_retired_phone_is_blocked_whoever_it_belongs_to_and_whatever_was_agreed():
    appointment = [Appointment(NOON_SH, "debtor", "a1")]
    for phone in (replace(PHONE, retired=True), PhoneFacts("13900000000", "third_party", retired=True)):
        blocked = decide(CASE, phone, NOON_SH, [], SETTINGS, appointments=appointment)
        assert blocked == Blocked(f"{phone.number} is retired for this case (a wrong number)", "phone_retired", None)
    assert isinstance(decide(CASE, PHONE, NOON_SH, [], SETTINGS), Allowed)


def test_unknown_zone():
    case = replace(CASE, region=None)
    blocked = decide(case, PhoneFacts("+44 20 7946 0000"), NOON_SH, [], SETTINGS)
    assert blocked == Blocked("unknown zone", "zone", None)
    assert decide(replace(CASE, timezone="Nowhere/City"), PHONE, NOON_SH, [], SETTINGS).rule == "zone"


def test_a_third_party_is_called_in_its_own_local_hours():
    case = replace(CASE, region=None, timezone="America/New_York")  # 00:00 in New York
    assert decide(case, PHONE, NOON_SH, [], SETTINGS).rule == "window"
    reference = PhoneFacts("+8613912345678", "third_party")  # noon where the reference lives
    assert decide(case, reference, NOON_SH, [], SETTINGS) == Allowed("Asia/Shanghai", "02150000001")


def test_window_block_reports_next_open():
    night = utc(2026, 6, 2, 14, 0)  # 22:00 Shanghai
    blocked = decide(CASE, PHONE, night, [], SETTINGS)
    assert blocked.rule == "window" and blocked.next_allowed_at == utc(2026, 6, 3, 0, 0)


def test_ambiguous_texas_case():
    case = replace(CASE, region="TX")
    phone = PhoneFacts("+15125550100")
    assert decide(case, phone, utc(2026, 6, 15, 13, 30), [], SETTINGS).rule == "window"
    allowed = decide(case, phone, utc(2026, 6, 15, 14, 0), [], SETTINGS)
    assert allowed == Allowed("America/Chicago", "02150000001")


APPT_AT = utc(2026, 6, 2, 13, 30)  # 21:30 Shanghai
APPT = Appointment(APPT_AT, "debtor", "att-41")


def test_appointment_allows_a_call_outside_the_window_within_tolerance():
    tol = SETTINGS.appointment_tolerance_min
    for delta in (-tol, 0, tol):
        now = APPT_AT + timedelta(minutes=delta)
        assert isinstance(decide(CASE, PHONE, now, [], SETTINGS, appointments=[APPT]), Allowed)
    too_late = APPT_AT + timedelta(minutes=tol + 1)  # 21:31 + tolerance
    assert decide(CASE, PHONE, too_late, [], SETTINGS, appointments=[APPT]).rule == "window"
    assert decide(CASE, PHONE, APPT_AT, [], SETTINGS).rule == "window"


def test_appointment_without_a_recorded_attempt_does_not_count():
    unproven = replace(APPT, recorded_attempt_id="")
    assert decide(CASE, PHONE, APPT_AT, [], SETTINGS, appointments=[unproven]).rule == "window"


def test_appointment_does_not_lift_suppressions_or_caps():
    assert decide(replace(CASE, flags=frozenset({"dispute"})), PHONE, APPT_AT, [], SETTINGS,
                  appointments=[APPT]).rule == "dispute"
    history = [AttemptRecord(APPT_AT - timedelta(minutes=5), "C1", PHONE.number)]
    assert decide(CASE, PHONE, APPT_AT, history, SETTINGS, appointments=[APPT]).rule == "min_gap"


def test_appointment_lifts_the_quiet_period():
    s = with_overrides(profile("us-reg-f"), caller_id_pool=("+12125550000",))
    case = replace(CASE, region="NY")
    talk = AttemptRecord(utc(2026, 6, 1, 15), "C1", PHONE.number, True, True)
    when = utc(2026, 6, 3, 15)  # 11:00 New York
    assert decide(case, PHONE, when, [talk], s).rule == "quiet_period"
    appt = Appointment(when, "debtor", "att-1")
    assert isinstance(decide(case, PHONE, when, [talk], s, appointments=[appt]), Allowed)


def test_caps_through_decide():
    history = [AttemptRecord(utc(2026, 6, 2, h), "C1", PHONE.number) for h in (0, 1, 2)]
    blocked = decide(CASE, PHONE, utc(2026, 6, 2, 5), history, SETTINGS)
    assert blocked.rule == "attempts_per_number_per_day"
    assert blocked.next_allowed_at == utc(2026, 6, 2, 16, 0)


def test_unexpected_errors_fail_closed():
    naive_history = [AttemptRecord(datetime(2026, 6, 2, 3, 50), "C1", PHONE.number)]
    blocked = decide(CASE, PHONE, NOON_SH, naive_history, SETTINGS)
    assert blocked.rule == "error" and blocked.reason.startswith("policy error:")
    assert decide(CASE, PHONE, NOON_SH, [], None).rule == "error"  # type: ignore[arg-type]
