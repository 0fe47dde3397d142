"""A person's dial request, from the console's API or its case page: one home for what the
dialer's answer means to them (placed, refused by a rule, held back, the database busy).

The dial itself writes its own record (the attempt and its audit, or the refusal and its
decision) in one transaction, naming who asked (`requested_by`). The console's
`case.dial_requested` audit entry comes after that: a database too busy to take it must not
turn a placed call into an error page (the caller would try again) nor hide a refusal's
reason, so its failure is logged and the answer stands.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import OperationalError

from console.deps import ConsoleDeps
from console.scope import masked_text
from people.accounts import Principal
from storage import repositories as repo
from storage.models import Attempt, Case
from storage.names import case_subject

log = logging.getLogger("dunline.console")

DATABASE_BUSY = "database_busy"
CAMPAIGN_NOT_RUNNING = "campaign_not_running"


@dataclass(frozen=True, slots=True)
class DialRefused:
    """Not dialled, and why: the rule, a reason fit for this reader, the HTTP status."""

    rule: str
    reason: str
    status: int  # 409: a rule says no; 503: try again later (gate, back-pressure, busy database)
    retry_after_s: int | None = None
    next_allowed_at: str | None = None  # ISO 8601, when a rule names it


class DialNotPossible(Exception):
    """The case has no such phone, or vanished meanwhile (a 404 to the caller)."""


async def request_dial(deps: ConsoleDeps, who: Principal, case: Case, number: str | None,
                       campaign_id: int | None = None, **audit_detail: Any) -> Attempt | DialRefused:
    from dialer.originate import CampaignNotDialling, DialBlocked, DialError  # local: only dialling needs them
    from recorder.watchdog.gate import DialsHeldBack, GateClosed

    numbers = [p.number for p in case.phones]
    try:
        for_campaign = {"campaign_id": campaign_id} if campaign_id is not None else {}
        attempt = await deps.dial(case.id, number, requested_by=who.username, collector=who.phone, **for_campaign)
    except CampaignNotDialling as exc:
        outcome = DialRefused(CAMPAIGN_NOT_RUNNING, str(exc), 409)
    except DialBlocked as exc:
        d = exc.decision
        outcome: Attempt | DialRefused = DialRefused(
            d.rule, masked_text(who, d.reason, numbers), 409,
            next_allowed_at=d.next_allowed_at.isoformat() if d.next_allowed_at else None)
    except DialError as exc:
        raise DialNotPossible(str(exc)) from None
    except GateClosed as exc:  # no recording chain, no call: try again when the gate opens
        outcome = DialRefused("dialing_gate", str(exc), 503, retry_after_s=15)
    except DialsHeldBack as exc:  # back-pressure: busy, not broken; the gate stays open
        outcome = DialRefused(exc.rule, str(exc), 503, retry_after_s=exc.retry_after_s)
    except OperationalError:  # the database kept the dial's write waiting past its busy timeout
        log.warning("dial of %s: the database is busy; refused with 503", case.id)
        outcome = DialRefused(DATABASE_BUSY, "the database is busy: nothing was stored or dialled; try again",
                              503, retry_after_s=2)
    else:
        outcome = attempt
    detail = {"attempt_id": outcome.id} if isinstance(outcome, Attempt) else {"blocked": outcome.rule}
    await _audit_request(deps, who, case.id, **detail, **audit_detail)
    return outcome


async def _audit_request(deps: ConsoleDeps, who: Principal, case_id: str, **detail: Any) -> None:
    try:
        async with deps.db.session() as s:
            await repo.audit(s, at=deps.clock(), actor=who.username, action="case.dial_requested",
                             subject=case_subject(case_id), **detail)
    except OperationalError as exc:  # the dial's own record names the requester
        log.warning("dial request of %s by %s not audited (database busy: %s); the dial's record names them",
                    case_id, who.username, exc)
