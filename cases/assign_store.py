"""Assignment against the database: the workload view, a rule's plan applied to a set of
cases (cases/assignment.py decides), a case moved by hand. A team lead's `team` limits
both the cases (their team's) and the collectors (their team's); every change is audited.
A case given to a collector joins the collector's team."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update

from cases.assignment import CaseToPlace, CollectorLoad, Plan, Rule, plan
from cases.refusals import Refused
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.models import Case
from storage.names import case_subject
from storage.people import Team, User

MAX_CASES = 200_000


class AssignRefused(Refused):
    """Refused (the message says why); nothing changed."""


@dataclass(frozen=True, slots=True)
class Workload:
    user_id: int
    username: str
    display_name: str
    team: str | None
    open_cases: int
    arrears_cents: int


async def _collectors(s: Any, team_id: int | None) -> list[User]:
    query = select(User).where(User.role == "collector", User.disabled_at.is_(None)).order_by(User.id)
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    return list((await s.scalars(query)).all())


async def workload(db: Database, team_id: int | None = None) -> list[Workload]:
    """Each active collector (of the team, if given): open cases and their arrears."""
    async with db.session() as s:
        collectors = await _collectors(s, team_id)
        teams = {t.id: t.name for t in (await s.scalars(select(Team))).all()}
        loads = {row[0]: (row[1], row[2]) for row in await s.execute(
            select(Case.collector_id, func.count(Case.id), func.coalesce(func.sum(Case.amount_due_cents), 0))
            .where(Case.status == "open", Case.collector_id.is_not(None)).group_by(Case.collector_id))}
    return [Workload(u.id, u.username, u.display_name, teams.get(u.team_id) if u.team_id else None,
                     int(loads.get(u.id, (0, 0))[0]), int(loads.get(u.id, (0, 0))[1])) for u in collectors]


async def assign(db: Database, clock: Clock, *, by: str, rule: str, scope: repo.CaseScope,
                 case_ids: Sequence[str] | None = None, batch_id: int | None = None,
                 collector_ids: Sequence[int] | None = None, routes: Mapping[str, Sequence[int]] | None = None,
                 only_unassigned: bool = True, team_limit: int | None = None) -> Plan:
    """Apply a rule to the open cases named (by id, or a batch's) within `scope`, among the
    collectors named (default: every active collector, or the lead's team's)."""
    try:
        chosen_rule = Rule(rule)
    except ValueError:
        raise AssignRefused(f"rule: one of {', '.join(r.value for r in Rule)}") from None
    if (case_ids is None) == (batch_id is None):
        raise AssignRefused("name the cases: case_ids or batch_id")
    if case_ids is not None and len(case_ids) > MAX_CASES:
        raise AssignRefused(f"at most {MAX_CASES} cases at once")
    async with db.session() as s:
        pool = await _collectors(s, team_limit)
        if collector_ids is not None:
            wanted = set(collector_ids)
            unknown = wanted - {u.id for u in pool}
            if unknown:
                raise AssignRefused(f"not an active collector{' of your team' if team_limit else ''}: "
                                    f"{', '.join(map(str, sorted(unknown)))}")
            pool = [u for u in pool if u.id in wanted]
        if routes is not None:
            routed = {cid for ids in routes.values() for cid in ids}
            if not routed <= {u.id for u in pool}:
                raise AssignRefused("routes name someone who is not among the collectors")
        query = select(Case.id, Case.amount_due_cents, Case.overdue_since, Case.region).where(
            Case.status == "open", scope.criteria())
        query = query.where(Case.batch_id == batch_id) if batch_id is not None else query.where(
            Case.id.in_(list(case_ids or [])))
        if only_unassigned:
            query = query.where(Case.collector_id.is_(None))
        cases = [CaseToPlace(*row) for row in await s.execute(query.order_by(Case.id))]
        loads = dict((await s.execute(select(Case.collector_id, func.count(Case.id)).where(
            Case.status == "open", Case.collector_id.in_([u.id for u in pool])).group_by(Case.collector_id))).all())
        result = plan(cases, [CollectorLoad(u.id, int(loads.get(u.id, 0))) for u in pool], chosen_rule,
                      clock().date(), routes)
        team_of = {u.id: u.team_id for u in pool}
        by_collector: dict[int, list[str]] = {}
        for case_id, collector_id in result.placed.items():
            by_collector.setdefault(collector_id, []).append(case_id)
        for collector_id, ids in by_collector.items():
            for start in range(0, len(ids), 500):
                await s.execute(update(Case).where(Case.id.in_(ids[start:start + 500]))
                                .values(collector_id=collector_id, team_id=team_of[collector_id]))
        await repo.audit(s, at=clock(), actor=by, action="cases.assigned", subject="cases", rule=chosen_rule.value,
                         batch_id=batch_id, placed=len(result.placed), unrouted=len(result.unrouted),
                         to={str(k): len(v) for k, v in by_collector.items()})
    return result


async def reassign(db: Database, clock: Clock, case_id: str, *, by: str, scope: repo.CaseScope,
                   collector_id: int | None = None, team_id: int | None = None, why: object = "",
                   team_limit: int | None = None) -> dict[str, int | None]:
    """Move one case to a collector (and their team), or to a team (no collector yet)."""
    if (collector_id is None) == (team_id is None):
        raise AssignRefused("give collector_id or team_id")
    reason = why.strip() if isinstance(why, str) else ""
    if len(reason) > 500:
        raise AssignRefused("why: at most 500 characters")
    async with db.session() as s:
        try:
            case = await repo.get_case(s, case_id, scope)
        except repo.NotFound:
            raise LookupError(f"no case {case_id}") from None
        if collector_id is not None:
            user = await s.get(User, collector_id)
            if user is None or user.role != "collector" or user.disabled_at is not None \
                    or (team_limit is not None and user.team_id != team_limit):
                raise AssignRefused(f"not an active collector{' of your team' if team_limit else ''}: {collector_id}")
            new_team = user.team_id
        else:
            if team_limit is not None and team_id != team_limit:
                raise AssignRefused("a team lead moves cases within their team")
            if await s.get(Team, team_id) is None:
                raise AssignRefused(f"no team {team_id}")
            new_team = team_id
        before = {"collector_id": case.collector_id, "team_id": case.team_id}
        await s.execute(update(Case).where(and_(Case.id == case.id)).values(collector_id=collector_id,
                                                                            team_id=new_team))
        await repo.audit(s, at=clock(), actor=by, action="case.reassigned", subject=case_subject(case.id),
                         before=before, collector_id=collector_id, team_id=new_team, why=reason)
        return {"collector_id": collector_id, "team_id": new_team}
