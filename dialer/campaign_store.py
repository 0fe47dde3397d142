"""Campaigns in the database: create, change status (audited), the next cases to dial, and
each campaign's counts over a period (dialer/campaigns.py holds the rules)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case as when, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from dialer.campaigns import RELATIONS, CampaignError, CampaignSpec, Mode, Selection, Status, move, next_phone
from dialer.pacing.snapshot import CallCounts
from storage import repositories as repo
from storage.campaigns import Campaign
from storage.lifecycle import OPEN_STATES
from storage.models import Attempt, Case, Phone

WINDOW_DAYS = 30


class NoSuchCampaign(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Candidate:
    """A case the campaign may dial now, and the phone to try."""

    case_id: str
    number: str
    phone_id: int


def campaign_json(c: Campaign) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "client": c.client, "mode": c.mode, "status": c.status,
            "selection": c.selection, "phone_order": c.phone_order, "retry_spacing_s": c.retry_spacing_s,
            "caller_ids": c.caller_ids, "amd": c.amd, "target_abandon_rate": c.target_abandon_rate,
            "created_by": c.created_by, "created_at": c.created_at.isoformat(),
            "status_changed_by": c.status_changed_by,
            "status_changed_at": c.status_changed_at.isoformat() if c.status_changed_at else None}


async def create(session: AsyncSession, spec: CampaignSpec, *, by: str, now: datetime) -> Campaign:
    """A new campaign, in draft (nothing is dialled until someone starts it)."""
    if await session.scalar(select(Campaign.id).where(Campaign.name == spec.name)) is not None:
        raise CampaignError(f"a campaign named {spec.name!r} exists")
    campaign = Campaign(name=spec.name, client=spec.client, mode=spec.mode.value, status=Status.DRAFT.value,
                        selection=spec.selection.to_json(), phone_order=list(spec.phone_order),
                        retry_spacing_s=spec.retry_spacing_s, caller_ids=list(spec.caller_ids), amd=spec.amd,
                        target_abandon_rate=spec.target_abandon_rate, created_by=by, created_at=now)
    session.add(campaign)
    try:
        await session.flush()
    except IntegrityError:  # the same name, created at the same moment elsewhere
        raise CampaignError(f"a campaign named {spec.name!r} exists") from None
    await repo.audit(session, at=now, actor=by, action="campaign.created", subject=f"campaign:{campaign.id}",
                     name=spec.name, mode=spec.mode.value)
    return campaign


async def get(session: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise NoSuchCampaign(f"no campaign {campaign_id}")
    return campaign


async def all_campaigns(session: AsyncSession, *, include_stopped: bool = True) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.id)
    if not include_stopped:
        query = query.where(Campaign.status != Status.STOPPED.value)
    return list((await session.scalars(query)).all())


async def dialling(session: AsyncSession) -> list[Campaign]:
    """The campaigns the engine paces now: running, not preview."""
    return list((await session.scalars(
        select(Campaign).where(Campaign.status == Status.RUNNING.value, Campaign.mode != Mode.PREVIEW.value)
        .order_by(Campaign.id))).all())


async def change_status(session: AsyncSession, campaign_id: int, verb: str, *, by: str, now: datetime) -> Campaign:
    """Start, pause or stop; audited `campaign.<verb>`. The row is locked on PostgreSQL so
    that two people's changes take turns."""
    campaign = await session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
    if campaign is None:
        raise NoSuchCampaign(f"no campaign {campaign_id}")
    before = campaign.status
    campaign.status = move(before, verb).value
    campaign.status_changed_by, campaign.status_changed_at = by, now
    await repo.audit(session, at=now, actor=by, action=f"campaign.{verb}", subject=f"campaign:{campaign.id}",
                     name=campaign.name, before=before, after=campaign.status)
    return campaign


async def counts(session: AsyncSession, campaign_ids: list[int], since: datetime) -> dict[int, CallCounts]:
    """Per campaign since `since`: attempts placed, answered, abandoned (one indexed query)."""
    if not campaign_ids:
        return {}
    rows = (await session.execute(
        select(Attempt.campaign_id, func.count(),
               func.count(Attempt.answered_at),
               func.sum(when((Attempt.abandoned.is_(True), 1), else_=0)))
        .where(Attempt.campaign_id.in_(campaign_ids), Attempt.created_at >= since)
        .group_by(Attempt.campaign_id))).all()
    found = {cid: CallCounts(placed, answered, int(abandoned or 0)) for cid, placed, answered, abandoned in rows}
    return {cid: found.get(cid, CallCounts()) for cid in campaign_ids}


async def window_counts(session: AsyncSession, campaign_ids: list[int], now: datetime) -> dict[int, CallCounts]:
    return await counts(session, campaign_ids, now - timedelta(days=WINDOW_DAYS))


async def samples(session: AsyncSession, campaign_id: int, since: datetime, limit: int = 300
                  ) -> tuple[list[float], list[float]]:
    """The campaign's latest calls since `since` (at most `limit`): seconds with a collector of
    the connected ones, and originate -> answer seconds of the answered ones (the pacer's fit)."""
    rows = (await session.execute(
        select(Attempt.bridged_seconds, Attempt.originated_at, Attempt.answered_at)
        .where(Attempt.campaign_id == campaign_id, Attempt.created_at >= since, Attempt.answered_at.is_not(None))
        .order_by(Attempt.created_at.desc()).limit(limit))).all()
    talk = [b for b, _, _ in rows if b]
    ring = [(a - o).total_seconds() for _, o, a in rows if o is not None and a is not None and a >= o]
    return talk, ring


def _selected(campaign: Campaign, now: datetime) -> list[Any]:
    """The campaign's selection as SQL conditions on cases (open ones only)."""
    s = Selection(**{k: tuple(v) if isinstance(v, list) else v for k, v in (campaign.selection or {}).items()})
    where: list[Any] = [Case.status == "open"]
    if campaign.client:
        where.append(Case.client == campaign.client)
    if s.batches:
        where.append(Case.batch_id.in_(s.batches))
    if s.teams:
        where.append(Case.team_id.in_(s.teams))
    if s.collectors:
        where.append(Case.collector_id.in_(s.collectors))
    if s.min_amount_cents is not None:
        where.append(Case.amount_due_cents >= s.min_amount_cents)
    if s.max_amount_cents is not None:
        where.append(Case.amount_due_cents <= s.max_amount_cents)
    today = now.date()
    if s.min_overdue_days is not None:
        where.append(Case.overdue_since <= today - timedelta(days=s.min_overdue_days))
    if s.max_overdue_days is not None:
        where.append(Case.overdue_since >= today - timedelta(days=s.max_overdue_days))
    if s.segments:
        where.append(Case.segment.in_(s.segments))
    if s.regions:
        where.append(Case.region.in_(s.regions))
    return where


async def candidates(session: AsyncSession, campaign: Campaign, now: datetime, *, limit: int,
                     exclude: frozenset[str] | set[str] = frozenset(), where: tuple[Any, ...] = ()
                     ) -> list[Candidate]:
    """Up to `limit` cases to dial now, the ones the campaign tried longest ago (or never)
    first, each with the phone to try: cases of the selection with no call in progress and
    none placed by the campaign within its retry spacing (`where`: more conditions, e.g. a
    preview collector's reach). The policy still decides every dial."""
    last = (select(Attempt.case_id.label("case_id"), func.max(Attempt.created_at).label("at"))
            .where(Attempt.campaign_id == campaign.id).group_by(Attempt.case_id).subquery())
    in_progress = exists().where(Attempt.case_id == Case.id, Attempt.state.in_([s.value for s in OPEN_STATES]))
    # a case with no phone the campaign may try is not a candidate (it would take a place in
    # the limit for nothing, and hide the cases behind it); the same rule as `next_phone`
    relation = when((Phone.relation.in_(RELATIONS), Phone.relation), (Phone.kind == "debtor", "own"),
                    else_="third_party")
    has_phone = exists().where(Phone.case_id == Case.id, Phone.do_not_call.is_(False), Phone.refused.is_(False),
                               Phone.retired_at.is_(None), relation.in_(list(campaign.phone_order)))
    query = (select(Case).outerjoin(last, last.c.case_id == Case.id)
             .where(*_selected(campaign, now), *where, ~in_progress, has_phone,
                    or_(last.c.at.is_(None), last.c.at <= now - timedelta(seconds=campaign.retry_spacing_s)))
             .order_by(last.c.at.is_not(None), last.c.at, Case.id)
             .options(selectinload(Case.phones)))
    if exclude:
        query = query.where(Case.id.not_in(exclude))
    cases = (await session.scalars(query.limit(limit))).all()
    if not cases:
        return []
    tried: dict[str, dict[int, datetime]] = defaultdict(dict)
    for case_id, phone_id, at in (await session.execute(
            select(Attempt.case_id, Attempt.phone_id, func.max(Attempt.created_at))
            .where(and_(Attempt.campaign_id == campaign.id, Attempt.case_id.in_([c.id for c in cases])))
            .group_by(Attempt.case_id, Attempt.phone_id))).all():
        if phone_id is not None:
            tried[case_id][phone_id] = at
    out = []
    for case in cases:
        phone = next_phone(case.phones, campaign.phone_order, tried[case.id])
        if phone is not None:
            out.append(Candidate(case.id, phone.number, phone.id))
    return out
