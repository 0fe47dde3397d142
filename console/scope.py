"""What the signed-in user may see of the case book, from their role's reach (people/roles.py)
and what their role may read in full (debtor ID and phone numbers, else masked)."""
from __future__ import annotations

from people.accounts import Principal
from people.roles import Reach, reach, sees_unmasked
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
