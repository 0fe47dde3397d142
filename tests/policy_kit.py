"""The dialing policy's verdict on a stored case's phone, as originate would reach it
(the stored facts, history and caller-ID pool through dialer/policy_store.py)."""
from __future__ import annotations

from datetime import datetime

from dialer.policy import profile
from dialer.policy.decide import decide
from dialer.policy_store import current_case_facts, phone_facts, policy_inputs
from storage import repositories as repo
from storage.db import Database


async def verdict(db: Database, case_id: str, now: datetime, phone_index: int = 0):
    async with db.session() as s:
        case = await repo.get_case(s, case_id)
        phone = case.phones[phone_index]
        history, appointments, settings, last = await policy_inputs(s, case, phone.number, now,
                                                                    profile("client-default"))
        facts = await current_case_facts(s, case)
    return decide(facts, phone_facts(phone), now, history, settings, appointments=appointments,
                  last_decision_at=last)


def rule_of(decision) -> str | None:
    """The rule that blocked, or None when the call is allowed."""
    return getattr(decision, "rule", None)
