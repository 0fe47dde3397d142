"""Changes a collector or lead makes to a case by hand: a phone found by tracing, and
returning (退案) or closing a case with a reason. Each checks its input first, changes
one case in one transaction, and is an audit event naming who and why."""
from __future__ import annotations

from dataclasses import dataclass

from cases.intake import Relation, normalise_phone
from cases.refusals import Refused, case_in_reach, reason_given
from cases.rule_inputs import mark_listed_phones
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.models import Phone
from storage.names import case_subject

STATUSES = ("open", "returned", "closed")  # returned: handed back to the client; closed: done here


class CaseworkRefused(Refused):
    """The change is refused (the message says why); nothing changed."""


@dataclass(frozen=True, slots=True)
class AddedPhone:
    id: int
    number: str
    relation: str
    kind: str


async def add_phone(db: Database, clock: Clock, case_id: str, number: object, relation: object, *, by: str,
                    source: str = "", scope: repo.CaseScope = repo.ALL_CASES) -> AddedPhone:
    """A number found by tracing (修复): dialled under the policy's rules for its kind."""
    normal = normalise_phone(number) if isinstance(number, str) and len(number) <= 40 else None
    if normal is None:
        raise CaseworkRefused("not a phone number (a mobile, a landline with its area code, or +country)")
    try:
        kind = Relation(relation)
    except ValueError:
        raise CaseworkRefused(f"relation: one of {', '.join(r.value for r in Relation)}") from None
    if not isinstance(source, str) or len(source) > 200:
        raise CaseworkRefused("source: at most 200 characters")
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        if case.status != "open":
            raise CaseworkRefused(f"the case is {case.status}; reopen it first")
        if any(p.number == normal for p in case.phones):
            raise CaseworkRefused("the case already has this number")
        phone = Phone(case_id=case.id, number=normal, kind=kind.policy_kind, relation=kind.value,
                      label=source or None, added_at=clock(), added_by=by)
        s.add(phone)
        await s.flush()
        await mark_listed_phones(s, [normal])
        await repo.audit(s, at=clock(), actor=by, action="case.phone_added", subject=case_subject(case.id),
                         phone_id=phone.id, relation=kind.value, source=source)
        return AddedPhone(phone.id, normal, kind.value, kind.policy_kind)


async def set_status(db: Database, clock: Clock, case_id: str, status: object, reason: object, *, by: str,
                     scope: repo.CaseScope = repo.ALL_CASES) -> str:
    """Return a case to the client, close it, or reopen it; the reason is kept on the case
    and in the audit. A case that is not open is never dialled (the policy's case_status)."""
    if status not in STATUSES:
        raise CaseworkRefused(f"status: one of {', '.join(STATUSES)}")
    why = reason_given(reason, CaseworkRefused)
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        if case.status == status:
            raise CaseworkRefused(f"the case is already {status}")
        before = case.status
        case.status, case.status_reason, case.status_changed_at = str(status), why, clock()
        await repo.audit(s, at=clock(), actor=by, action="case.status_changed", subject=case_subject(case.id),
                         before=before, after=status, why=why)
        return before

