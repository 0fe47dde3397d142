"""The dialing policy's I/O: facts read from storage, verdicts written back.

`decide()` (dialer/policy) is pure; this module is its thin adapter. It reads what the
policy needs as of `now` (the case, whether an open complaint pauses it, the phone, the last
eight days of attempts, the case's appointments not cancelled, the client's approved caller
IDs, the time of the last decision for the clock check), and stores every verdict as a
PolicyDecision row, allowed or not.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.policy.model import (Allowed, Appointment, AttemptRecord, Blocked, CaseFacts,
                                 PhoneFacts, PolicySettings)
from storage.complaints import Complaint
from storage.models import ApprovedCallerId, Attempt, Case, Phone, PolicyDecision
from storage.models import Appointment as AppointmentRow

HISTORY_DAYS = 8  # the longest rolling rule is 7 days; one more covers local-day edges


def case_facts(case: Case, *, complaint_pause: bool = False) -> CaseFacts:
    return CaseFacts(case_id=case.id, client=case.client, region=case.region,
                     timezone=case.timezone, status=case.status, flags=frozenset(case.flags or ()),
                     care_approved_until=case.care_approved_until, complaint_pause=complaint_pause)


async def paused_by_complaint(session: AsyncSession, case_id: str) -> bool:
    """Is there an open complaint on the case that no supervisor has let dialing go on past?
    (One look-up by the complaints' case index.)"""
    found = await session.scalar(
        select(Complaint.id).where(Complaint.case_id == case_id, Complaint.closed_at.is_(None),
                                   Complaint.dialing_allowed_at.is_(None)).limit(1))
    return found is not None


async def current_case_facts(session: AsyncSession, case: Case) -> CaseFacts:
    """The case's facts as the policy sees them now, the complaints' pause included."""
    return case_facts(case, complaint_pause=await paused_by_complaint(session, case.id))


def phone_facts(phone: Phone) -> PhoneFacts:
    return PhoneFacts(number=phone.number, kind=phone.kind, do_not_call=phone.do_not_call,
                      refused=phone.refused, retired=phone.retired_at is not None)


def attempt_record(attempt: Attempt) -> AttemptRecord:
    """A stored attempt as the policy counts it; an unknown outcome counts as connected."""
    connected = attempt.answered_at is not None or attempt.state == "unknown"
    conversation = connected and (attempt.bridged_seconds or 0) > 0
    return AttemptRecord(at=attempt.created_at, case_id=attempt.case_id, number=attempt.number,
                         connected=connected, conversation=conversation)


async def policy_inputs(session: AsyncSession, case: Case, number: str, now: datetime,
                        settings: PolicySettings
                        ) -> tuple[list[AttemptRecord], list[Appointment], PolicySettings, datetime | None]:
    """History (this case's attempts and every attempt to this number, for the per-person
    rules), appointments, settings with the client's caller-ID pool, last decision time."""
    since = now - timedelta(days=HISTORY_DAYS)
    attempts = (await session.scalars(
        select(Attempt).where(or_(Attempt.case_id == case.id, Attempt.number == number),
                              Attempt.created_at >= since)
        .order_by(Attempt.created_at))).all()
    appointments = (await session.scalars(
        select(AppointmentRow).where(AppointmentRow.case_id == case.id,
                                     AppointmentRow.cancelled_at.is_(None)))).all()
    pool = (await session.scalars(
        select(ApprovedCallerId.number).where(ApprovedCallerId.client == case.client,
                                              ApprovedCallerId.active.is_(True))
        .order_by(ApprovedCallerId.id))).all()
    last = await session.scalar(select(func.max(PolicyDecision.at)))
    return (
        [attempt_record(a) for a in attempts],
        [Appointment(at=a.at, agreed_by=a.agreed_by, recorded_attempt_id=a.recorded_attempt_id or "")
         for a in appointments],
        replace(settings, caller_id_pool=tuple(pool)),
        last,
    )


def facts_json(case: CaseFacts, phone: PhoneFacts) -> dict[str, Any]:
    """The facts a decision was taken on, kept with the attempt for the later audit."""
    return {
        "case": {"status": case.status, "flags": sorted(case.flags), "region": case.region,
                 "timezone": case.timezone, "care_approved_until":
                 case.care_approved_until.isoformat() if case.care_approved_until else None,
                 "complaint_pause": case.complaint_pause},
        "phone": {"kind": phone.kind, "do_not_call": phone.do_not_call, "refused": phone.refused,
                  "retired": phone.retired},
    }


def decision_json(decision: Allowed | Blocked, profile: str,
                  facts: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(decision, Allowed):
        return {"allowed": True, "profile": profile, "zone": decision.zone,
                "caller_id": decision.caller_id, **({"facts": facts} if facts else {})}
    return {"allowed": False, "profile": profile, "rule": decision.rule, "reason": decision.reason,
            "next_allowed_at": decision.next_allowed_at.isoformat() if decision.next_allowed_at else None}


async def record_decision(session: AsyncSession, *, at: datetime, case_id: str, number: str,
                          decision: Allowed | Blocked, attempt_id: str | None = None) -> None:
    blocked = decision if isinstance(decision, Blocked) else None
    session.add(PolicyDecision(
        at=at, case_id=case_id, number=number, allowed=blocked is None,
        rule=blocked.rule if blocked else None, reason=blocked.reason if blocked else None,
        next_allowed_at=blocked.next_allowed_at if blocked else None, attempt_id=attempt_id))
