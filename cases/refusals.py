"""What every hand change to the case book shares: a refusal (nothing changed, the message
says why), the reason a person must give, and a case looked up within the reader's reach."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage import repositories as repo
from storage.models import Case

MIN_REASON, MAX_REASON = 4, 500


class Refused(ValueError):
    """The change is refused (the message says why); nothing changed."""


def reason_given(reason: object, refused: type[Refused] = Refused) -> str:
    """The reason, stripped, if it is one (4 to 500 characters), else `refused` saying so."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not MIN_REASON <= len(text) <= MAX_REASON:
        raise refused(f"give a reason ({MIN_REASON} to {MAX_REASON} characters)")
    return text


async def case_in_reach(session: AsyncSession, case_id: str, scope: repo.CaseScope) -> Case:
    """The case, or LookupError when there is none within `scope` (not theirs = not there)."""
    try:
        return await repo.get_case(session, case_id, scope)
    except repo.NotFound:
        raise LookupError(f"no case {case_id}") from None
