"""The single entry point: may this number of this case be dialled now?

Order of checks (the first that blocks wins):

1. clock: ``now`` naive, or earlier than ``last_decision_at``;
2. case status other than ``open``;
3. case flags: an unknown flag (fail closed), dispute (until a supervisor clears it),
   fraud, care (unless ``care_approved_until >= now``); an open complaint (until it is
   closed or a supervisor lets dialing go on);
4. phone: do-not-call; retired (a wrong number); a third party who refused;
5. caller ID: the approved pool is empty;
6. zone: no candidate zone can be derived;
7. window (hours, weekday, holiday, last-dial margin) in every candidate zone;
8. frequency caps (min gap, per-number, per-case, 7-day, quiet period).

Appointments: an agreed time within ``appointment_tolerance_min`` of ``now`` lifts the
window (7) and the quiet period only.  It never lifts suppressions (1-6) or the other
caps: consent to a time is not consent to be called more often.

Any unexpected exception yields ``Blocked(..., rule='error')``: the policy fails closed.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from .limits import check_caps
from .model import (
    CASE_FLAGS,
    Allowed,
    Appointment,
    AttemptRecord,
    Blocked,
    CaseFacts,
    Decision,
    PhoneFacts,
    PolicySettings,
)
from .window import next_window_open, window_violation
from .zones import candidate_zones

RULE_CLOCK = "clock"
RULE_STATUS = "case_status"
RULE_FLAGS = "case_flags"
RULE_DISPUTE = "dispute"
RULE_FRAUD = "fraud"
RULE_CARE = "care"
RULE_COMPLAINT = "complaint"
RULE_DNC = "do_not_call"
RULE_REFUSED = "third_party_refused"
RULE_RETIRED = "phone_retired"
RULE_CALLER_ID = "caller_id"
RULE_ZONE = "zone"
RULE_WINDOW = "window"
RULE_ERROR = "error"


def _aware(t: datetime | None) -> bool:
    return t is not None and t.tzinfo is not None and t.utcoffset() is not None


def appointment_now(
    now: datetime, appointments: Sequence[Appointment], tolerance_min: int
) -> Appointment | None:
    """The first valid appointment within ``±tolerance`` of ``now``, if any."""
    tol = timedelta(minutes=tolerance_min)
    for appt in appointments:
        if not appt.recorded_attempt_id or not appt.agreed_by or not _aware(appt.at):
            continue
        if abs(now - appt.at) <= tol:
            return appt
    return None


def suppression(case: CaseFacts, phone: PhoneFacts, now: datetime) -> Blocked | None:
    """Case status, flags and phone suppressions (steps 2-4)."""
    if case.status != "open":
        return Blocked(f"case is {case.status}", RULE_STATUS, None)
    unknown = set(case.flags) - CASE_FLAGS
    if unknown:
        return Blocked(f"unknown case flag(s): {', '.join(sorted(map(repr, unknown)))}", RULE_FLAGS, None)
    if "dispute" in case.flags:
        return Blocked("debt disputed: paused until a supervisor clears it", RULE_DISPUTE, None)
    if "fraud" in case.flags:
        return Blocked("suspected fraud: referred to the client", RULE_FRAUD, None)
    if "care" in case.flags:
        until = case.care_approved_until
        if until is None or not _aware(until) or until < now:
            return Blocked("care flag: no current supervisor approval", RULE_CARE, None)
    if case.complaint_pause:
        return Blocked("an open complaint: paused until it is closed or a supervisor allows dialing",
                       RULE_COMPLAINT, None)
    if phone.do_not_call:
        return Blocked(f"{phone.number} is on the do-not-call list", RULE_DNC, None)
    if phone.retired:
        return Blocked(f"{phone.number} is retired for this case (a wrong number)", RULE_RETIRED, None)
    if phone.kind == "third_party" and phone.refused:
        return Blocked(f"third party at {phone.number} refused", RULE_REFUSED, None)
    if phone.kind not in ("debtor", "third_party"):
        return Blocked(f"unknown phone kind {phone.kind!r}", "phone_kind", None)
    return None


def _decide(
    case: CaseFacts,
    phone: PhoneFacts,
    now: datetime,
    history: Sequence[AttemptRecord],
    settings: PolicySettings,
    appointments: Sequence[Appointment],
    last_decision_at: datetime | None,
) -> Decision:
    if not _aware(now):
        return Blocked("clock is not timezone-aware (naive now)", RULE_CLOCK, None)
    if last_decision_at is not None and now < last_decision_at:
        return Blocked("clock went backwards", RULE_CLOCK, None)
    blocked = suppression(case, phone, now)
    if blocked is not None:
        return blocked
    if not settings.caller_id_pool:
        return Blocked("no approved caller ID", RULE_CALLER_ID, None)
    zones = candidate_zones(case.timezone, case.region, phone.number, settings.extra_regions,
                            third_party=phone.kind != "debtor")
    if not zones:
        return Blocked("unknown zone", RULE_ZONE, None)
    appt = appointment_now(now, appointments, settings.appointment_tolerance_min)
    if appt is None:
        reason = window_violation(now, zones, settings)
        if reason is not None:
            return Blocked(reason, RULE_WINDOW, next_window_open(now, zones, settings))
    blocked = check_caps(settings.caps, now, zones, history, case.case_id, phone.number,
                         skip_quiet=appt is not None)
    if blocked is not None:
        return blocked
    return Allowed(zone=sorted(zones)[0], caller_id=settings.caller_id_pool[0])


def decide(
    case: CaseFacts,
    phone: PhoneFacts,
    now: datetime,
    history: Sequence[AttemptRecord],
    settings: PolicySettings,
    *,
    appointments: Sequence[Appointment] = (),
    last_decision_at: datetime | None = None,
) -> Decision:
    """Allowed (zone, caller ID) or Blocked (reason, rule, next_allowed_at).

    ``settings`` are assumed validated (``validate_settings``).  With several candidate
    zones, ``Allowed.zone`` is the alphabetically first; the caller ID is the first of
    the pool.
    """
    try:
        return _decide(case, phone, now, history, settings, appointments, last_decision_at)
    except Exception as exc:  # fail closed: a bug must never turn into a call
        return Blocked(f"policy error: {type(exc).__name__}: {exc}", RULE_ERROR, None)
