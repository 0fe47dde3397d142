"""Dispositions stored: the thin I/O around cases/dispositions.py.

`record()` does it all in one transaction: finds the call within the person's reach (the
case's reach, or the collector who made the call), checks what was entered (`validate`),
works out its effects (`effects`), writes the disposition row (with the attempt, so with
its recording; who and when; the effects it had), applies each effect through the same
helpers as the hand-made changes (cases/rule_inputs.py: same audit events) and audits
`disposition.entered`. Refused input raises `DispositionRefused` before anything is written.

`promises_due()` is the follow-up list: promises to pay due on a day, by collector.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cases import rule_inputs as rules
from cases.dispositions import (AddAppointment, CallContext, CancelAppointment, CaseState, Change, Code,
                                Corrected, DispositionRefused, PhoneState, RaiseFlag, RefuseThirdParty,
                                RetirePhone, change_json, effects, validate)
from dialer.policy.zones import candidate_zones
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.dispositions import Disposition
from storage.models import CANARY_CASE, Appointment, Attempt, Case, Phone
from storage.names import case_subject
from storage.people import User


def callee_zone(case: Case, phone: Phone) -> str | None:
    """The one time zone of the person at `phone` (the policy's own evidence), else None."""
    zones = candidate_zones(case.timezone, case.region, phone.number, third_party=phone.kind != "debtor")
    return next(iter(zones)) if len(zones) == 1 else None


async def call_in_reach(s: AsyncSession, attempt_id: object, scope: repo.CaseScope, by: str,
                        phone: str | None = None) -> tuple[Attempt, Case]:
    """The call and its case, if the case is within `scope` or `by` made the call (the
    collector the dialer connected: the attempt names their phone, `phone`, or their name);
    LookupError otherwise (not theirs = not there)."""
    attempt = await repo.get_attempt(s, attempt_id) if isinstance(attempt_id, str) and len(attempt_id) <= 64 \
        else None
    if attempt is None or attempt.case_id == CANARY_CASE:  # the watchdog's test calls have no debtor
        raise LookupError(f"no call {str(attempt_id)[:64]}")
    try:
        case = await repo.get_case(s, attempt.case_id, scope)
    except repo.NotFound:
        if not attempt.collector or attempt.collector not in (by, phone):
            raise LookupError(f"no call {attempt_id}") from None
        case = await repo.get_case(s, attempt.case_id)
    return attempt, case


def _phone_of(case: Case, attempt: Attempt) -> Phone:
    phone = next((p for p in case.phones if p.id == attempt.phone_id), None) \
        or next((p for p in case.phones if p.number == attempt.number), None)
    if phone is None:
        raise LookupError(f"the number of call {attempt.id} is not one of case {case.id}'s phones")
    return phone


@dataclass(frozen=True, slots=True)
class Recorded:
    id: int
    attempt_id: str
    case_id: str
    code: str
    changes: tuple[dict[str, Any], ...]


async def record(db: Database, clock: Clock, attempt_id: object, raw: Mapping[str, object], *, by: str,
                 scope: repo.CaseScope = repo.ALL_CASES, case_id: str | None = None,
                 phone: str | None = None) -> Recorded:
    """Store one disposition of a call and apply its effects (see the module docstring);
    `case_id`, when given, is the case the call must be of (a page's address)."""
    try:
        async with db.session() as s:
            return await _record(s, clock, attempt_id, raw, by=by, scope=scope, case_id=case_id, phone=phone)
    except IntegrityError:  # another correction of the same disposition won the race
        raise DispositionRefused("corrects") from None


async def _record(s: AsyncSession, clock: Clock, attempt_id: object, raw: Mapping[str, object], *, by: str,
                  scope: repo.CaseScope, case_id: str | None, phone: str | None = None) -> Recorded:
    attempt, case = await call_in_reach(s, attempt_id, scope, by, phone)
    if case_id is not None and case.id != case_id:
        raise LookupError(f"case {case_id} has no call {attempt.id}")
    phone = _phone_of(case, attempt)
    earlier = (await s.scalars(select(Disposition).where(Disposition.attempt_id == attempt.id)
                               .order_by(Disposition.id))).all()
    corrected_by = {d.corrects_id: d.id for d in earlier if d.corrects_id is not None}
    now = clock()
    ctx = CallContext(now=now, answered=attempt.answered_at is not None, phone_kind=phone.kind,
                      zone=callee_zone(case, phone), arrears_cents=case.amount_due_cents,
                      open_ids=frozenset(d.id for d in earlier if d.id not in corrected_by),
                      corrected=corrected_by)
    entered = validate(raw, ctx)
    corrected = None
    if entered.corrects is not None:
        old = next(d for d in earlier if d.id == entered.corrects)
        appointment = await s.get(Appointment, old.appointment_id) if old.appointment_id else None
        corrected = Corrected(Code(old.code), old.appointment_id,
                              appointment is not None and appointment.cancelled_at is None)
    changes = effects(entered, CaseState(frozenset(case.flags or ())),
                      PhoneState(phone.id, phone.kind, phone.refused, phone.retired_at is not None), corrected)
    row = Disposition(attempt_id=attempt.id, case_id=case.id, phone_id=phone.id, code=entered.code.value,
                      notes=entered.notes, amount_cents=entered.amount_cents, promise_date=entered.promise_date,
                      callback_at=entered.callback_at, corrects_id=entered.corrects, entered_by=by, entered_at=now,
                      effects=[change_json(c) for c in changes])
    s.add(row)
    await s.flush()
    why = f"disposition #{row.id} ({entered.code.value})" + (f": {entered.notes}" if entered.notes else "")
    for change in changes:
        await _apply(s, change, case, phone, attempt, row, why[:500], by=by, now=now)
    await repo.audit(s, at=now, actor=by, action="disposition.entered", subject=case_subject(case.id),
                     disposition_id=row.id, attempt_id=attempt.id, code=row.code, corrects=row.corrects_id,
                     effects=row.effects)
    return Recorded(row.id, attempt.id, case.id, row.code, tuple(row.effects))


async def _apply(s: AsyncSession, change: Change, case: Case, phone: Phone, attempt: Attempt, row: Disposition,
                 why: str, *, by: str, now: datetime) -> None:
    detail = {"disposition_id": row.id}
    match change:
        case RaiseFlag(flag):
            await rules.flag_case(s, case, flag, why, by=by, now=now, **detail)
        case RefuseThirdParty():
            await rules.refuse_phone(s, case, phone, True, why, by=by, now=now, **detail)
        case RetirePhone():
            await rules.retire_phone(s, case, phone, True, why, by=by, now=now, **detail)
        case AddAppointment(at, agreed_by):
            appointment = await rules.add_appointment(s, case, at, agreed_by, attempt, by=by, now=now, **detail)
            row.appointment_id = appointment.id  # the row is being created: this is not an edit
        case CancelAppointment(appointment_id):
            appointment = await s.get(Appointment, appointment_id)
            assert appointment is not None  # effects() asked for a live one
            await rules.cancel_appointment(s, appointment, why, by=by, now=now, **detail)


# -- reading ---------------------------------------------------------------------------

async def for_case(s: AsyncSession, case_id: str) -> dict[str, list[Disposition]]:
    """A case's dispositions by attempt, in the order they were entered."""
    rows = (await s.scalars(select(Disposition).where(Disposition.case_id == case_id)
                            .order_by(Disposition.entered_at, Disposition.id))).all()
    out: dict[str, list[Disposition]] = {}
    for row in rows:
        out.setdefault(row.attempt_id, []).append(row)
    return out


async def for_attempt(s: AsyncSession, attempt_id: str) -> list[Disposition]:
    return list((await s.scalars(select(Disposition).where(Disposition.attempt_id == attempt_id)
                                 .order_by(Disposition.entered_at, Disposition.id))).all())


def corrections(rows: Sequence[Disposition]) -> dict[int, int]:
    """Which of `rows` were corrected, and by which: corrected id -> correcting id."""
    return {r.corrects_id: r.id for r in rows if r.corrects_id is not None}


@dataclass(frozen=True, slots=True)
class FollowUp:
    collector: str | None  # the case's collector now (None: unassigned)
    case_id: str
    debtor_name: str
    flags: tuple[str, ...]
    amount_cents: int
    promise_date: date
    disposition_id: int
    attempt_id: str
    entered_by: str


async def promises_due(db: Database, day: date, scope: repo.CaseScope = repo.ALL_CASES) -> list[FollowUp]:
    """The promises to pay due on `day` of open cases within `scope`, by collector: each
    case's latest promise only (a later one replaces it), a corrected one never. Reads the
    day's promises by their index, not every disposition."""
    later, fix, later_fix = aliased(Disposition), aliased(Disposition), aliased(Disposition)
    promise = Code.PROMISE_TO_PAY.value
    corrected = exists().where(fix.corrects_id == Disposition.id)
    replaced = exists().where(and_(later.case_id == Disposition.case_id, later.code == promise,
                                   later.id > Disposition.id,
                                   ~exists().where(later_fix.corrects_id == later.id)))
    query = (select(Disposition, Case, User.username).join(Case, Case.id == Disposition.case_id)
             .outerjoin(User, User.id == Case.collector_id)
             .where(Disposition.promise_date == day, Disposition.code == promise, ~corrected, ~replaced,
                    Case.status == "open", scope.criteria())
             .order_by(User.username, Case.id))
    async with db.session() as s:
        rows = (await s.execute(query)).all()
    return [FollowUp(username, case.id, case.debtor_name, tuple(case.flags or ()), d.amount_cents or 0,
                     d.promise_date, d.id, d.attempt_id, d.entered_by) for d, case, username in rows]
