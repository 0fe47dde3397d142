"""What the signed-in user may see of the case book, from their role's reach (people/roles.py)
and what their role may read in full (debtor ID and phone numbers, else masked)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cases import dispositions_store
from people.accounts import Principal
from people.roles import Reach, reach, sees_unmasked
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.dispositions import Disposition
from storage.models import Attempt, Case, PolicyDecision, Recording
from storage.names import case_subject
from storage.repositories import ALL_CASES, CaseScope


def case_scope(who: Principal) -> CaseScope:
    match reach(who.role):
        case Reach.ALL:
            return ALL_CASES
        case Reach.OWN:
            return CaseScope(collector_id=who.user_id)
        case Reach.TEAM:
            return CaseScope(team_id=who.team_id) if who.team_id is not None else CaseScope()
        case Reach.CLIENT:
            return CaseScope(client=who.client) if who.client else CaseScope()
    return CaseScope()


def client_only(who: Principal) -> str | None:
    """The client a client user's batches and imports are limited to (None: every client)."""
    return (who.client or "\x00none") if reach(who.role) is Reach.CLIENT else None


def team_limit(who: Principal) -> int | None:
    """A team lead's team, beyond which they may not assign (None: a role that reaches every case)."""
    if reach(who.role) is Reach.ALL:
        return None
    if who.team_id is None:
        raise web.HTTPForbidden(text="you lead no team")
    return who.team_id


def report_scope(who: Principal) -> CaseScope:
    """Which cases a reader's reports count: their reach, except that the admin (who reads no
    debtor's data) sees the aggregates of every case."""
    return ALL_CASES if reach(who.role) is Reach.NONE and who.role == "admin" else case_scope(who)


def mask_phone(number: str) -> str:
    """155****0001: the first three and last four digits (enough to tell a person's numbers apart)."""
    if len(number) <= 7:
        return "*" * max(len(number) - 2, 0) + number[-2:]
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_id_number(value: str) -> str:
    """110***********1234: the first three and last four characters of an ID number."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def phone_shown(who: Principal, number: str) -> str:
    return number if sees_unmasked(who.role) else mask_phone(number)


def id_number_shown(who: Principal, value: str | None) -> str | None:
    if value is None:
        return None
    return value if sees_unmasked(who.role) else mask_id_number(value)


def masked_text(who: Principal, text: str | None, numbers: Iterable[str]) -> str | None:
    """A text about a case (a policy decision's reason) with the case's numbers shown as
    this reader may see them."""
    if text is None or sees_unmasked(who.role):
        return text
    for number in sorted(set(numbers), key=len, reverse=True):
        if number:
            text = text.replace(number, mask_phone(number))
    return text


@dataclass(frozen=True, slots=True)
class CaseView:
    """What a reader sees of one case: the case (with phones), its calls, recordings and
    the policy's decisions, each call's dispositions; `numbers` are every number the texts
    may name (for masking)."""

    case: Case
    attempts: Sequence[Attempt]
    recordings: Sequence[Recording]
    decisions: Sequence[PolicyDecision]
    dispositions: Mapping[str, Sequence[Disposition]] = field(default_factory=dict)  # by attempt id

    @property
    def numbers(self) -> list[str]:
        return [p.number for p in self.case.phones] + [d.number for d in self.decisions]


async def view_case(db: Database, clock: Clock, who: Principal, case_id: str, *,
                    scope: repo.CaseScope | None = None, **audit: Any) -> CaseView:
    """One case within the reader's reach (or `scope`: the floor's screen pop shows a collector
    the case of the call on their seat, whoever's it is), its reading audited (LookupError:
    not theirs, or none)."""
    async with db.session() as s:
        try:
            case = await repo.get_case(s, case_id, scope or case_scope(who))
        except repo.NotFound:
            raise LookupError(case_id) from None
        view = CaseView(case, await repo.attempts_for_case(s, case_id), await repo.recordings_for_case(s, case_id),
                        await repo.decisions_for_case(s, case_id), await dispositions_store.for_case(s, case_id))
        await repo.audit(s, at=clock(), actor=who.username, action="case.viewed", subject=case_subject(case_id),
                         **audit)
    return view
