"""A call dialled on a collector's own phone (its keypad): the same dial as the console's.

The PBX sends the number a phone dialled (`dunline-collectors`, FastAGI `keypad`); the user
who works from that phone (`users.phone`) must be allowed to dial, and the number must be a
phone of an open case within their reach (every call is a case's: the policy decides on its
facts). Then it is `request_dial` as from the case page: the gate, the policy, the recording,
the audit (`case.dial_requested`, `via` keypad). The phone's own call only asks: the PBX says
thank you and hangs up, and the debtor's call is placed; when the debtor answers it comes to
the collector (their seat first, or their phone rings). A refusal is audited
`keypad.refused` and the PBX says the call cannot be completed.
"""
from __future__ import annotations

from sqlalchemy import select

from console.deps import ConsoleDeps
from console.dialing import DialNotPossible, DialRefused, request_dial
from console.scope import case_scope
from people.roles import Permission, may
from storage import repositories as repo
from storage.models import Case, Phone


async def keypad_dial(deps: ConsoleDeps, phone: str, number: str) -> str | None:
    """Place the call a phone's keypad asked for; None when placed, else why not."""
    who = await deps.accounts.phone_principal(phone)
    reason = None
    if who is None:
        reason = f"nobody works from phone {phone}"
    elif not may(who.role, Permission.CASE_DIAL):
        reason = f"{who.username} may not dial"
    else:
        async with deps.db.session() as s:
            case_id = await s.scalar(
                select(Case.id).join(Phone, Phone.case_id == Case.id)
                .where(Phone.number == number, Case.status == "open", case_scope(who).criteria())
                .order_by(Case.id).limit(1))
            case = await repo.get_case(s, case_id, case_scope(who)) if case_id is not None else None
        if case is None:
            reason = "the number is no phone of an open case within the caller's reach"
        else:
            try:
                outcome = await request_dial(deps, who, case, number, via="keypad")
            except DialNotPossible as exc:
                reason = str(exc)
            else:
                if not isinstance(outcome, DialRefused):
                    return None
                reason = f"{outcome.rule}: {outcome.reason}"
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username if who else "pbx", action="keypad.refused",
                         subject=f"phone:{phone}", reason=reason, dialled=number)
    return reason
