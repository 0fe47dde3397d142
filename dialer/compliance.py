"""The independent compliance report: stored attempts in, breaches out.

It re-derives every rule from the attempts as stored (time, number, outcome, caller ID,
and the case/phone facts kept with the attempt when it was placed) through
`dialer.policy.audit`, which shares no rule code with `decide()`. Attempts from the
eight days before the period are included as history so rolling caps are judged right;
breaches are reported for the period only. Each client's attempts are judged by that
client's rules and approved caller IDs (per-number caps therefore count per client).
Canary attempts (the watchdog's test calls, `decision.canary`) are not debtor calls and
are left out.

The dialer's own clock is checked too (dialer/policy/clock_witness.py): decision times
never run backwards, and each call's decision time agrees with the time the PBX created
its channel by the PBX's own clock; calls without such a record are listed as unverified.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from dialer.policy import AuditedAttempt, Breach, PolicySettings, audit
from dialer.policy.clock_witness import CLOCK_RULES, TimedCall, TimedDecision, check_clock
from dialer.policy.model import Appointment, CaseFacts, PhoneFacts
from dialer.policy_config import PolicyBook
from dialer.policy_store import HISTORY_DAYS, attempt_record, case_facts, phone_facts
from storage.db import Database
from storage.models import Appointment as AppointmentRow
from storage.models import ApprovedCallerId, Attempt, Case, Phone, PolicyDecision


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    start: datetime
    end: datetime
    attempts: int
    checked: dict[str, int]
    breaches: tuple[Breach, ...]
    clock_unverified: tuple[str, ...] = ()  # calls with no PBX time to check the dialer's clock by

    @property
    def clean(self) -> bool:
        return not self.breaches

    @property
    def rule_breaches(self) -> tuple[Breach, ...]:
        return tuple(b for b in self.breaches if b.rule not in CLOCK_RULES)

    @property
    def clock_breaches(self) -> tuple[Breach, ...]:
        return tuple(b for b in self.breaches if b.rule in CLOCK_RULES)

    def render(self) -> str:
        lines = [f"compliance report {self.start.isoformat()} .. {self.end.isoformat()}: "
                 f"{self.attempts} attempts in the period",
                 f"{'rule':<32} {'checks':>7} {'breaches':>9}"]
        for rule, count in self.checked.items():
            n = sum(1 for b in self.breaches if b.rule == rule)
            lines.append(f"{rule:<32} {count:>7} {n:>9}")
        if self.clock_unverified:
            lines.append(f"{len(self.clock_unverified)} call(s) without a PBX time: the dialer's clock is unchecked "
                         f"for them: {', '.join(self.clock_unverified[:5])}")
        for b in self.breaches:
            lines.append(f"BREACH {b.attempt_id} {b.rule}: {b.reason}")
        lines.append("clean: no call broke a rule" if self.clean else f"{len(self.breaches)} BREACHES")
        return "\n".join(lines)


def _snapshot(attempt: Attempt, case: Case, phone: Phone | None) -> tuple[CaseFacts, PhoneFacts]:
    """The facts kept with the attempt; the current ones where none were kept."""
    current_case = case_facts(case)
    current_phone = phone_facts(phone) if phone else PhoneFacts(number=attempt.number)
    facts: dict[str, Any] = (attempt.decision or {}).get("facts") or {}
    c, p = facts.get("case"), facts.get("phone")
    if c:
        until = c.get("care_approved_until")
        current_case = CaseFacts(case_id=case.id, client=case.client, region=c.get("region"),
                                 timezone=c.get("timezone"), status=c.get("status", "open"),
                                 flags=frozenset(c.get("flags", ())),
                                 care_approved_until=datetime.fromisoformat(until) if until else None,
                                 complaint_pause=bool(c.get("complaint_pause")))
    if p:
        current_phone = PhoneFacts(number=attempt.number, kind=p.get("kind", "debtor"),
                                   do_not_call=bool(p.get("do_not_call")), refused=bool(p.get("refused")),
                                   retired=bool(p.get("retired")))
    return current_case, current_phone


async def compliance_report(db: Database, start: datetime, end: datetime,
                            rules: PolicySettings | PolicyBook, *, clock_tolerance_s: float = 60.0) -> ComplianceReport:
    """Audit the period; each case's attempts against its campaign's or client's rules and
    the client's approved caller IDs; the dialer's clock against the decisions' order and
    the PBX's clock (within `clock_tolerance_s`)."""
    book = PolicyBook.of(rules)
    async with db.session() as s:
        rows = (await s.execute(
            select(Attempt, Case, Phone).join(Case, Case.id == Attempt.case_id)
            .outerjoin(Phone, Phone.id == Attempt.phone_id)
            .where(Attempt.created_at >= start - timedelta(days=HISTORY_DAYS), Attempt.created_at < end)
            .order_by(Attempt.created_at))).all()
        appointments = (await s.scalars(select(AppointmentRow))).all()
        pools: dict[str, set[str]] = {}
        for row in (await s.scalars(select(ApprovedCallerId))).all():
            pools.setdefault(row.client, set()).add(row.number)
        decisions = await _decisions_in_write_order(s, start, end)
    # an agreed time counts for the calls placed before it was cancelled (a corrected disposition)
    by_case: dict[str, list[tuple[Appointment, datetime | None]]] = {}
    for a in appointments:
        by_case.setdefault(a.case_id, []).append(
            (Appointment(at=a.at, agreed_by=a.agreed_by, recorded_attempt_id=a.recorded_attempt_id or ""),
             a.cancelled_at))
    by_rules: dict[tuple[str, str], list[AuditedAttempt]] = {}
    in_period: set[str] = set()
    for attempt, case, phone in rows:
        if (attempt.decision or {}).get("canary"):  # the watchdog's test call: no debtor, no policy
            continue
        case_f, phone_f = _snapshot(attempt, case, phone)
        campaign = (attempt.decision or {}).get("campaign", case.campaign) or ""  # as dialled
        by_rules.setdefault((case.client, campaign), []).append(AuditedAttempt(
            attempt_id=attempt.id, record=attempt_record(attempt), case=case_f, phone=phone_f,
            caller_id=attempt.caller_id or "",
            appointments=tuple(ap for ap, cancelled in by_case.get(case.id, ())
                               if cancelled is None or cancelled > attempt.created_at)))
        if attempt.created_at >= start:
            in_period.add(attempt.id)
    checked: dict[str, int] = {}
    breaches: list[Breach] = []
    for (client, campaign), audited in sorted(by_rules.items()):
        settings = book.for_case(client, campaign or None)
        result = audit(audited, replace(settings, caller_id_pool=tuple(sorted(pools.get(client, ())))))
        for rule, count in result.checked.items():
            checked[rule] = checked.get(rule, 0) + count
        breaches.extend(b for b in result.breaches if b.attempt_id in in_period)
    clock = check_clock(
        [TimedDecision(d.attempt_id or f"decision #{d.id}", d.at) for d in decisions],
        [TimedCall(a.id, a.created_at, a.pbx_started_at) for a, _, _ in rows
         if a.id in in_period and _reached_the_pbx(a) and not (a.decision or {}).get("canary")],
        tolerance_s=clock_tolerance_s)
    checked.update(clock.checked)
    breaches.extend(clock.breaches)
    return ComplianceReport(start=start, end=end, attempts=len(in_period), checked=checked,
                            breaches=tuple(breaches), clock_unverified=clock.unverified)


async def _decisions_in_write_order(session: Any, start: datetime, end: datetime) -> list[PolicyDecision]:
    """The decisions written from the first to the last one dated in the period, in the
    order they were written (by id, whatever their dates: a clock set back dates a
    decision outside the period), with the one written just before them."""
    first, last = (await session.execute(select(func.min(PolicyDecision.id), func.max(PolicyDecision.id)).where(
        PolicyDecision.at >= start, PolicyDecision.at < end))).one()
    if first is None:
        return []
    return list((await session.scalars(select(PolicyDecision).where(
        PolicyDecision.id >= first - 1, PolicyDecision.id <= last).order_by(PolicyDecision.id))).all())


def _reached_the_pbx(attempt: Attempt) -> bool:
    """A call the PBX made a channel for (so it has, or should have, its own time of it)."""
    return attempt.pbx_started_at is not None or attempt.hangup_cause is not None or attempt.answered_at is not None
