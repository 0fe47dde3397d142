"""Place one call: the Attempt row is written first, then an async Originate.

The attempt id (32 hex digits) is the Originate ChannelId, so the call is known by that
id in every AMI event and in the dialplan before Asterisk says anything. An Originate
whose fate is unknown (the AMI link dropped after sending it) is never re-sent: the
attempt is reported `unknown` and not dialled again until reconciled. Everything after the
write-ahead row is a report to the attempt lifecycle (storage/lifecycle.py).
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ami.errors import AmiError, AmiOutcomeUnknown
from dialer.policy import Blocked, PolicySettings, decide
from dialer.policy_config import PolicyBook
from dialer.policy_store import (current_case_facts, decision_json, facts_json, phone_facts, policy_inputs,
                                 record_decision)
from storage import dial_leases
from storage import repositories as repo
from storage.attempt_reports import FactWriter
from storage.call_tokens import CallTokens
from storage.campaigns import Campaign
from storage.clock import Clock
from storage.db import Database
from storage.lifecycle import Event, Report, Source
from storage.models import CANARY_CASE, CANARY_CLIENT, Attempt, Case, Phone

log = logging.getLogger("dunline.dialer")
RULE_BUSY = "number_busy"  # not a policy rule: another attempt is being placed to the number right now


class DialError(RuntimeError):
    """The call could not be placed (no such case or phone); nothing was originated."""


class CampaignNotDialling(DialError):
    """The campaign named is not running (paused, stopped, a draft) or does not cover the case:
    nothing was stored or originated."""


class DialBlocked(DialError):
    """The dialing policy said no; the verdict is stored, nothing was originated."""

    def __init__(self, decision: Blocked) -> None:
        when = decision.next_allowed_at.isoformat() if decision.next_allowed_at else "when a person lifts it"
        super().__init__(f"blocked by rule {decision.rule}: {decision.reason} (next allowed: {when})")
        self.decision = decision


@dataclass(frozen=True, slots=True)
class DialSettings:
    trunk: str = "carrier"
    context: str = "dunline-outbound"
    ring_timeout_s: int = 30
    tokens: CallTokens | None = None  # each call's DUNLINE_TOKEN (its FastAGI requests' proof)


def new_attempt_id() -> str:
    """A fresh attempt id (matches storage.models.ATTEMPT_ID_PATTERN)."""
    return uuid.uuid4().hex


async def place_call(
    db: Database,
    link: object,
    settings: DialSettings,
    *,
    case_id: str,
    collector: str | None,
    clock: Clock,
    policy: PolicySettings | PolicyBook,
    writer: FactWriter,
    number: str | None = None,
    on_queued: Callable[[str, str], None] | None = None,
    requested_by: str | None = None,
    campaign_id: int | None = None,
) -> Attempt:
    """Ask the policy at this very moment; if allowed, write the attempt, originate it and
    return the attempt as it then stands. A Blocked verdict is stored and raised. Who asked
    (`requested_by`: a person through the console) is in the decision's audit entry. A dial for
    a campaign (`campaign_id`) is refused unless the campaign is running, in the same
    transaction that writes the attempt (a paused campaign places no new call, whoever asks);
    its rules override set is the campaign's name and its caller-ID pool narrows the client's."""
    who = {"requested_by": requested_by} if requested_by else {}
    blocked: Blocked | None = None
    attempt_id = new_attempt_id()
    async with db.session() as session:
        try:
            case = await repo.get_case(session, case_id)
        except repo.NotFound as exc:
            raise DialError(str(exc)) from None
        phones = [p for p in case.phones if number is None or p.number == number]
        if not phones:
            raise DialError(f"case {case_id} has no phone {number or ''}".strip())
        phone = phones[0]
        now = clock()
        # the number's lease first: a concurrent dial of it (this process or another node)
        # waits for this transaction and then finds the number taken
        busy_until = await dial_leases.claim(session, phone.number, attempt_id, now)
        now = clock()  # after the claim, which may have waited for another dial's transaction
        # read after the claim (this transaction's first write): a pause committed before it is seen;
        # a refusal raises, and the transaction (the claim with it) is rolled back
        campaign = await _dialling_campaign(session, campaign_id, case) if campaign_id is not None else None
        policy = PolicyBook.of(policy).for_case(case.client, campaign.name if campaign else case.campaign)
        history, appointments, effective, last = await policy_inputs(session, case, phone.number, now, policy)
        if campaign is not None and campaign.caller_ids:  # narrows the client's approved pool, never widens it
            effective = replace(effective, caller_id_pool=tuple(
                c for c in effective.caller_id_pool if c in set(campaign.caller_ids)))
        facts = (await current_case_facts(session, case), phone_facts(phone))
        decision = decide(*facts, now, history, effective, appointments=appointments,
                          last_decision_at=last)
        if isinstance(decision, Blocked):
            blocked = decision
            await record_decision(session, at=now, case_id=case.id, number=phone.number, decision=decision)
            await repo.audit(session, at=now, actor="dialer", action="dial.blocked", subject=case.id,
                             number=phone.number, rule=decision.rule, reason=decision.reason, **who)
            if busy_until is None:
                await dial_leases.release(session, phone.number, attempt_id)
        elif busy_until is not None:  # allowed, but another attempt is being placed to it: nothing stored
            raise DialBlocked(Blocked(f"{phone.number} is being dialled by another attempt", RULE_BUSY, busy_until))
        else:
            attempt = Attempt(
                id=attempt_id, case_id=case.id, phone_id=phone.id, number=phone.number,
                collector=collector, caller_id=decision.caller_id, state="created", created_at=now,
                decision={**decision_json(decision, policy.name, facts_json(*facts)),
                          "campaign": campaign.name if campaign else case.campaign,
                          **({"amd": True} if campaign is not None and campaign.amd else {})},
                campaign_id=campaign.id if campaign else None,
            )
            await _write_ahead(session, attempt, now, **who)
            await record_decision(session, at=now, case_id=case.id, number=phone.number,
                                  decision=decision, attempt_id=attempt.id)
    if blocked is not None:
        raise DialBlocked(blocked)
    return await _originate(db, link, settings, attempt, clock, writer, on_queued)


async def _dialling_campaign(session: AsyncSession, campaign_id: int, case: Case) -> Campaign:
    """The campaign, read in the dial's transaction: running, and covering the case's client."""
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise CampaignNotDialling(f"no campaign {campaign_id}")
    if campaign.status != "running":
        raise CampaignNotDialling(f"campaign {campaign.name} is {campaign.status}: it places no call")
    if campaign.client and campaign.client != case.client:
        raise CampaignNotDialling(f"case {case.id} is not of campaign {campaign.name}'s client")
    return campaign


async def place_canary(
    db: Database,
    link: object,
    settings: DialSettings,
    *,
    number: str,
    clock: Clock,
    writer: FactWriter,
    caller_id: str | None = None,
    on_queued: Callable[[str, str], None] | None = None,
) -> Attempt:
    """A test call of the recording chain (the watchdog's canary), not a debtor call.

    It bypasses the dialing policy and the dialing gate (it is what re-opens the gate) but
    not the write-ahead: its Attempt row on the reserved case CANARY (client
    dunline-canary, created on first use; the number is added to it when new) carries
    `decision={"canary": True}` and no collector, so `bind` plays a known prompt instead
    of bridging and the compliance audit leaves it out."""
    if not number:
        raise DialError("no canary number")
    for last_try in (False, True):
        now = clock()
        try:
            async with db.session() as session:
                phone = await _canary_phone(session, number, now)
                attempt = Attempt(
                    id=new_attempt_id(), case_id=CANARY_CASE, phone_id=phone.id, number=number,
                    collector=None, caller_id=caller_id, state="created", created_at=now,
                    decision={"canary": True},
                )
                await _write_ahead(session, attempt, now, canary=True)
            break
        except IntegrityError:  # a concurrent first canary created the case: use it
            if last_try:
                raise
    return await _originate(db, link, settings, attempt, clock, writer, on_queued)


async def _canary_phone(session: AsyncSession, number: str, now: datetime) -> Phone:
    """The CANARY case's phone row for `number`, creating the case or the phone if new."""
    case = await session.get(Case, CANARY_CASE)
    if case is None:
        case = await repo.add_case(session, Case(id=CANARY_CASE, client=CANARY_CLIENT,
                                                 debtor_name="dunline canary (test calls)",
                                                 status="canary", created_at=now), [])
    phone = await session.scalar(select(Phone).where(Phone.case_id == CANARY_CASE, Phone.number == number))
    if phone is None:
        phone = Phone(case_id=CANARY_CASE, number=number, kind="canary", label="watchdog canary")
        session.add(phone)
        await session.flush()
    return phone


async def _write_ahead(session: AsyncSession, attempt: Attempt, now: datetime, **audit_detail: object) -> None:
    """The Attempt row and its audit event: no dial without a record."""
    await repo.create_attempt(session, attempt)
    await repo.audit(session, at=now, actor="dialer", action="attempt.created", subject=attempt.id,
                     case_id=attempt.case_id, number=attempt.number, **audit_detail)


async def _originate(
    db: Database, link: object, settings: DialSettings, attempt: Attempt, clock: Clock, writer: FactWriter,
    on_queued: Callable[[str, str], None] | None,
) -> Attempt:
    """Originate a written attempt once; return the attempt as it then stands."""
    variables = {"DUNLINE_ATTEMPT": attempt.id, "DUNLINE_CASE": attempt.case_id}
    # what the dialplan does once bind has confirmed the recording: ring the collector, or
    # (the watchdog's canary) play the known prompt; bind itself then needs no lookup
    if (attempt.decision or {}).get("canary"):
        variables["DUNLINE_CANARY"] = "1"
    elif attempt.collector:
        variables["DUNLINE_COLLECTOR"] = attempt.collector
    if (attempt.decision or {}).get("amd"):  # the campaign asks for answering-machine detection
        variables["DUNLINE_AMD"] = "1"
    if settings.tokens is not None:
        variables["DUNLINE_TOKEN"] = settings.tokens.token_for(attempt.id)
    try:
        response = await link.originate(  # type: ignore[attr-defined]
            f"PJSIP/{attempt.number}@{settings.trunk}",
            context=settings.context, exten="s", priority=1, channel_id=attempt.id,
            variables=variables, caller_id=attempt.caller_id,
            timeout_ms=settings.ring_timeout_s * 1000,
        )
    except AmiOutcomeUnknown as exc:
        report = Report(event=Event.ORIGINATE_UNKNOWN, source=Source.DIALER, at=clock(),
                        note=f"originate outcome unknown: {exc}")
    except AmiError as exc:
        report = Report(event=Event.ORIGINATE_FAILED, source=Source.DIALER, at=clock(),
                        note=f"originate failed: {exc}")
    else:
        if on_queued is not None:  # lets the monitor match an OriginateResponse without Uniqueid
            on_queued(response.get("ActionID", ""), attempt.id)
        report = Report(event=Event.ORIGINATE_QUEUED, source=Source.DIALER, at=clock())
    await writer.report(attempt.id, report)
    async with db.session() as session:
        refreshed = await repo.get_attempt(session, attempt.id)
    assert refreshed is not None
    return refreshed
