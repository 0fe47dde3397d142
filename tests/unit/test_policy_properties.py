"""Property tests of the policy: decide() never allows what the rules forbid, and the
independent audit() agrees with it over simulated histories."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from dialer.policy import (
    Allowed,
    Appointment,
    AttemptRecord,
    AuditedAttempt,
    Caps,
    CaseFacts,
    PhoneFacts,
    audit,
    candidate_zones,
    decide,
    every_day,
    profile,
    with_overrides,
)

UTC = timezone.utc
POOL = ("02150000001",)
START = datetime(2026, 1, 1, tzinfo=UTC)
FAST = settings(max_examples=150, deadline=None)

SETTINGS_VARIANTS = [
    with_overrides(profile("client-default"), caller_id_pool=POOL),
    with_overrides(profile("cn-banking-2026"), caller_id_pool=POOL, last_dial_margin_min=30,
                   holidays=frozenset({date(2026, 10, 1), date(2026, 7, 4), date(2026, 3, 8)})),
    with_overrides(profile("us-reg-f"), caller_id_pool=POOL,
                   windows=tuple(every_day(time(9), time(20))[:5]) + (None, None)),
]

# (timezone, region, number) triples covering explicit, region, number and ambiguous zones.
WHERE = [
    (None, "Guangdong", "13812345678"),
    ("America/New_York", None, "+12125550100"),
    (None, "TX", "+15125550100"),
    (None, None, "+18505550100"),
    (None, "CA", "+14155550100"),
    ("Europe/London", None, "+442079460000"),
]

instants = st.integers(0, 365 * 24 * 60).map(lambda m: START + timedelta(minutes=m))


def outside_reason(now: datetime, zones: frozenset[str], s) -> bool:
    """Independent oracle: is `now` outside the window in any zone?"""
    for z in zones:
        local = now.astimezone(ZoneInfo(z))
        w = s.windows[local.weekday()]
        if local.date() in s.holidays or w is None:
            return True
        end = datetime.combine(local.date(), w.end) - timedelta(minutes=s.last_dial_margin_min)
        naive = local.replace(tzinfo=None)
        if not (datetime.combine(local.date(), w.start) <= naive < end):
            return True
    return False


@FAST
@given(now=instants, where=st.sampled_from(WHERE), s=st.sampled_from(SETTINGS_VARIANTS),
       appt_offset=st.one_of(st.none(), st.integers(-2000, 2000)),
       kind=st.sampled_from(["debtor", "third_party"]))
def test_a_never_allowed_outside_the_window_without_an_appointment(now, where, s, appt_offset, kind):
    tz, region, number = where
    case = CaseFacts("C1", "bank", region, tz, "open")
    appts = []
    if appt_offset is not None:
        if abs(appt_offset) <= s.appointment_tolerance_min:
            appt_offset = s.appointment_tolerance_min + 1  # keep it out of tolerance
        appts = [Appointment(now + timedelta(minutes=appt_offset), "debtor", "a1")]
    result = decide(case, PhoneFacts(number, kind), now, [], s, appointments=appts)
    zones = candidate_zones(tz, region, number, third_party=kind != "debtor")
    if outside_reason(now, zones, s):
        assert not isinstance(result, Allowed)
    else:
        assert isinstance(result, Allowed) and result.zone in zones


@st.composite
def suppressed(draw):
    kind = draw(st.sampled_from(["status", "dispute", "fraud", "care", "complaint", "dnc", "retired", "refused"]))
    now = draw(instants)
    flags = set(draw(st.sets(st.sampled_from(["dispute", "fraud", "care"]))))
    care_until = draw(st.one_of(st.none(), instants))
    status, phone = "open", PhoneFacts("13812345678", "debtor")
    if kind == "status":
        status = draw(st.sampled_from(["settled", "returned", "closed"]))
    elif kind in ("dispute", "fraud"):
        flags.add(kind)
    elif kind == "care":
        flags.add("care")
        care_until = draw(st.one_of(st.none(), st.just(now - timedelta(seconds=1))))
    elif kind == "dnc":
        phone = replace(phone, do_not_call=True)
    elif kind == "retired":
        phone = replace(phone, kind=draw(st.sampled_from(["debtor", "third_party"])), retired=True)
    else:
        phone = PhoneFacts("13900000000", "third_party", refused=True)
    case = CaseFacts("C1", "bank", "Guangdong", None, status, frozenset(flags), care_until,
                     complaint_pause=kind == "complaint" or draw(st.booleans()))
    return case, phone, now


@FAST
@given(data=suppressed(), s=st.sampled_from(SETTINGS_VARIANTS), with_appt=st.booleans())
def test_b_never_allowed_for_suppressed_cases_or_phones(data, s, with_appt):
    case, phone, now = data
    appts = [Appointment(now, "debtor", "a1")] if with_appt else []
    assert not isinstance(decide(case, phone, now, [], s, appointments=appts), Allowed)


CAPS = Caps(attempts_per_number_per_day=3, attempts_per_case_per_day=4,
            connected_per_case_per_day=2, unanswered_per_number_per_day=2,
            max_per_case_7d=7, quiet_days_after_conversation=1, min_gap_minutes=15)
SIM_SETTINGS = with_overrides(profile("client-default"), caller_id_pool=POOL, caps=CAPS,
                              last_dial_margin_min=10, holidays=frozenset({date(2026, 10, 1)}))
NUMBERS = ("13812345678", "13900000000")

steps = st.lists(
    st.tuples(st.one_of(st.integers(1, 90), st.integers(90, 2 * 24 * 60)),  # minutes forward
              st.sampled_from(NUMBERS),
              st.booleans(), st.booleans(),  # connected, conversation (if connected)
              st.integers(0, 9)),  # 0 = an appointment at this instant
    min_size=1, max_size=60)


def direct_cap_check(placed: list[AuditedAttempt], zones: frozenset[str]) -> None:
    recs = [a.record for a in placed]
    appt = {a.attempt_id: bool(a.appointments) for a in placed}
    for z in zones:
        tz = ZoneInfo(z)
        days: dict[date, list[AttemptRecord]] = {}
        for r in recs:
            days.setdefault(r.at.astimezone(tz).date(), []).append(r)
        for day_recs in days.values():
            assert len(day_recs) <= CAPS.attempts_per_case_per_day
            assert sum(r.connected for r in day_recs) <= CAPS.connected_per_case_per_day
            for n in NUMBERS:
                mine = [r for r in day_recs if r.number == n]
                assert len(mine) <= CAPS.attempts_per_number_per_day
                assert sum(not r.connected for r in mine) <= CAPS.unanswered_per_number_per_day
    for i, r in enumerate(recs):
        assert sum(1 for p in recs if r.at - timedelta(days=7) < p.at <= r.at) <= CAPS.max_per_case_7d
        same = [p for p in recs[:i] if p.number == r.number]
        if same:
            assert r.at - same[-1].at >= timedelta(minutes=CAPS.min_gap_minutes)
        talks = [p for p in recs[:i] if p.conversation]
        if talks and not appt[placed[i].attempt_id]:
            assert r.at - talks[-1].at >= timedelta(days=CAPS.quiet_days_after_conversation)


@settings(max_examples=120, deadline=None)
@given(start=instants, where=st.sampled_from(WHERE[:4]), plan=steps)
def test_c_simulated_history_respects_caps_and_audits_clean(start, where, plan):
    tz, region, _ = where
    case = CaseFacts("C1", "bank", region, tz, "open")
    now, history, placed, last = start, [], [], None
    for minutes, number, connected, talked, appt_roll in plan:
        now += timedelta(minutes=minutes)
        phone = PhoneFacts(number if tz or region else where[2])
        appts = (Appointment(now, "debtor", f"rec-{len(placed)}"),) if appt_roll == 0 else ()
        result = decide(case, phone, now, history, SIM_SETTINGS, appointments=appts,
                        last_decision_at=last)
        last = now
        if isinstance(result, Allowed):
            rec = AttemptRecord(now, case.case_id, phone.number, connected, connected and talked)
            history.append(rec)
            placed.append(AuditedAttempt(f"a{len(placed)}", rec, case, phone, result.caller_id, appts))
    zones = candidate_zones(tz, region, placed[0].phone.number) if placed else frozenset()
    direct_cap_check(placed, zones)
    report = audit(placed, SIM_SETTINGS)
    assert report.clean, report.breaches


def test_d_audit_flags_hand_made_breaches():
    s = SETTINGS_VARIANTS[0]  # 08:00-21:00, 3 per number per day, 15-minute gap
    case = CaseFacts("C1", "bank", "Guangdong", None, "open")
    phone = PhoneFacts("13812345678")

    def at(hour_sh: int, minute: int = 0, caller: str = POOL[0], aid: str = "") -> AuditedAttempt:
        when = datetime(2026, 6, 2, hour_sh, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
        return AuditedAttempt(aid or f"{hour_sh}:{minute}", AttemptRecord(when, "C1", phone.number),
                              case, phone, caller)

    attempts = [at(9), at(10), at(11), at(12, aid="fourth"), at(22, aid="late"),
                at(13, caller="999", aid="spoofed"), at(13, 5, aid="quick")]
    report = audit(attempts, s)
    assert not report.clean
    by_rule = {rule: {b.attempt_id for b in bs} for rule, bs in report.by_rule().items()}
    assert "late" in by_rule["window"]
    assert "fourth" in by_rule["attempts_per_number_per_day"]
    assert by_rule["caller_id"] == {"spoofed"}
    assert "quick" in by_rule["min_gap"]
    assert {"9:0", "10:0", "11:0"}.isdisjoint(set().union(*by_rule.values()))
    assert report.checked["window"] == len(attempts)
    assert report.checked["calls_per_case_7d"] == 0  # no such cap in this profile


def test_d_audit_honours_appointments_and_stored_facts():
    s = SETTINGS_VARIANTS[0]
    case = CaseFacts("C1", "bank", "Guangdong", None, "open")
    phone = PhoneFacts("13812345678")
    late = datetime(2026, 6, 2, 13, 30, tzinfo=UTC)  # 21:30 Shanghai
    ok = AuditedAttempt("ok", AttemptRecord(late, "C1", phone.number), case, phone, POOL[0],
                        (Appointment(late, "debtor", "rec-1"),))
    disputed = AuditedAttempt("disp", AttemptRecord(late + timedelta(days=1), "C1", phone.number),
                              replace(case, flags=frozenset({"dispute"})), phone, POOL[0],
                              (Appointment(late + timedelta(days=1), "debtor", "rec-2"),))
    retired = AuditedAttempt("gone", AttemptRecord(late + timedelta(days=2), "C1", phone.number), case,
                             replace(phone, retired=True), POOL[0],
                             (Appointment(late + timedelta(days=2), "debtor", "rec-3"),))
    report = audit([ok, disputed, retired], s)
    assert [(b.attempt_id, b.rule) for b in report.breaches] == [("disp", "dispute"), ("gone", "phone_retired")]


@FAST
@given(now=instants, where=st.sampled_from(WHERE), s=st.sampled_from(SETTINGS_VARIANTS))
def test_window_block_points_at_the_earliest_open_minute(now, where, s):
    from dialer.policy import in_window

    tz, region, number = where
    result = decide(CaseFacts("C1", "bank", region, tz, "open"), PhoneFacts(number), now, [], s)
    if getattr(result, "rule", None) != "window":
        return
    nxt = result.next_allowed_at
    assert nxt is not None and nxt > now
    zones = candidate_zones(tz, region, number)
    assert in_window(nxt, zones, s)
    assert not in_window(nxt - timedelta(minutes=1), zones, s)


@FAST
@given(tz=st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["UTC", "Asia/Shanghai", "../etc"])),
       region=st.one_of(st.none(), st.text(max_size=20)),
       number=st.text(max_size=20), status=st.text(max_size=8),
       flags=st.frozensets(st.text(max_size=8), max_size=3), now=instants)
def test_decide_never_raises_on_odd_facts(tz, region, number, status, flags, now):
    case = CaseFacts("C1", "bank", region, tz, status, flags)
    result = decide(case, PhoneFacts(number), now, [], SETTINGS_VARIANTS[0])
    assert isinstance(result, Allowed) or result.rule != "error", result


def test_d_audit_judges_a_third_party_by_its_own_number():
    s = SETTINGS_VARIANTS[0]
    case = CaseFacts("C1", "bank", None, "America/New_York", "open")
    noon_sh = datetime(2026, 6, 2, 4, 0, tzinfo=UTC)  # 00:00 in New York
    debtor = PhoneFacts("+12125550100", "debtor")
    reference = PhoneFacts("+8613912345678", "third_party")
    attempts = [AuditedAttempt("debtor", AttemptRecord(noon_sh, "C1", debtor.number), case, debtor, POOL[0]),
                AuditedAttempt("reference", AttemptRecord(noon_sh, "C1", reference.number), case,
                               reference, POOL[0])]
    report = audit(attempts, s)
    assert [(b.attempt_id, b.rule) for b in report.breaches] == [("debtor", "window")]
