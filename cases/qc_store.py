"""Quality control stored: the thin I/O around cases/qc.py.

- `create_samples(week)`: for every collector, the week's sample of their recorded calls,
  made once (unique per week and collector: a re-run changes nothing and says so). The
  candidates are the recordings, not purged, whose call ended within the ISO week on the
  floor's clock (Asia/Shanghai: Monday 00:00 to Monday 00:00) and whose attempt names the
  collector's phone (`attempts.collector` is the SIP endpoint the call was put through to;
  `users.phone` maps it to the person). The phone is read when the sample is made: a collector
  who changed phones during the week is sampled on their current phone only (out of scope).
  A week is sampled once it is over; a recording ingested after its week's sample was made
  does not join it. Every collector (role `collector`, enabled, with a phone) gets a sample,
  an empty one when the week had no recorded call of theirs; anyone else with a phone (a team
  lead who takes calls) gets one when the week had calls of theirs. Audited `qc.sampled`.
- `save_score(item)`: a checked scorecard, its row and its ledger entry (action `qc_score`,
  subject the recording, detail: scorer, total, `score_digest`) in one transaction, through
  the ledger the caller passes (recorder's `Ledger`: cases does not import recorder); audited
  `qc.scored`. A second score of an item must name the one it revises.
- `queue`, `item`, `scores`, `report`: what the console shows, each within a `QcScope` (a
  collector their own, a team lead their team's, QC and supervisors everyone).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cases.qc import (DEFAULT_SAMPLE_SIZE, ITEM_KEYS, ITEMS, QcRefused, Result, Week, candidates_digest, check_seed, check_size,
                      check_week_over, parse_week, pick_sample, revises_of, validate)
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.models import CANARY_CASE, Attempt, Recording
from storage.names import recording_subject
from storage.people import User
from storage.qc import QcItem, QcSample, QcScore, score_digest

LEDGER_ACTION = "qc_score"


class LedgerLike(Protocol):
    """What saving a score needs of the ledger (recorder.ledger_store.Ledger): a transaction
    and an entry appended in it."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...

    async def append(self, session: AsyncSession, *, actor: str, action: str, subject: str,
                     detail: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class QcScope:
    """Whose QC a reader sees: a collector (user id), a team, everyone (both None), or nobody."""

    user_id: int | None = None
    team_id: int | None = None
    nobody: bool = False


ALL = QcScope()
NOBODY = QcScope(nobody=True)


def _scoped(stmt: Select[Any], scope: QcScope) -> Select[Any]:
    """`stmt` (which joins QcSample and User as the collector) limited to the scope."""
    if scope.nobody:
        return stmt.where(QcSample.id.is_(None))
    if scope.user_id is not None:
        stmt = stmt.where(QcSample.collector_user_id == scope.user_id)
    if scope.team_id is not None:
        stmt = stmt.where(User.team_id == scope.team_id)
    return stmt


# -- samples ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SampleInfo:
    id: int
    week: str
    collector: str  # username
    collector_user_id: int
    phone: str
    seed: str
    size: int
    candidates: int
    candidates_sha256: str
    picked: tuple[str, ...]  # attempt ids
    created: bool  # made by this run (False: it was there already)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "week": self.week, "collector": self.collector, "phone": self.phone,
                "seed": self.seed, "size": self.size, "candidates": self.candidates,
                "candidates_sha256": self.candidates_sha256, "picked": list(self.picked), "created": self.created}


@dataclass(frozen=True, slots=True)
class Sampling:
    week: str
    samples: tuple[SampleInfo, ...]

    @property
    def created(self) -> tuple[SampleInfo, ...]:
        return tuple(s for s in self.samples if s.created)

    def as_json(self) -> dict[str, Any]:
        return {"week": self.week, "created": len(self.created), "existing": len(self.samples) - len(self.created),
                "samples": [s.as_json() for s in self.samples]}


async def candidates(s: AsyncSession, week: Week, phones: Sequence[str]) -> dict[str, list[tuple[str, int]]]:
    """The week's recorded calls by collector phone: phone -> [(attempt id, recording id)], sorted."""
    if not phones:
        return {}
    rows = (await s.execute(
        select(Attempt.collector, Recording.attempt_id, Recording.id)
        .join(Attempt, Attempt.id == Recording.attempt_id)
        .where(Recording.call_ended_at >= week.starts_at, Recording.call_ended_at < week.ends_at,
               Recording.purged_at.is_(None), Recording.case_id != CANARY_CASE,
               Attempt.collector.in_(list(phones))))).all()
    out: dict[str, list[tuple[str, int]]] = {}
    for phone, attempt_id, recording_id in rows:
        out.setdefault(phone, []).append((attempt_id, recording_id))
    return {phone: sorted(found) for phone, found in out.items()}


async def _sample_info(s: AsyncSession, sample: QcSample, username: str, created: bool) -> SampleInfo:
    picked = (await s.scalars(select(Recording.attempt_id).join(QcItem, QcItem.recording_id == Recording.id)
                              .where(QcItem.sample_id == sample.id).order_by(QcItem.id))).all()
    return SampleInfo(sample.id, sample.week, username, sample.collector_user_id, sample.collector_phone,
                      sample.seed, sample.size, sample.candidates, sample.candidates_sha256, tuple(picked), created)


async def create_samples(db: Database, clock: Clock, week: object, *, by: str, size: object = None,
                         seed: object = None, default_size: int | None = None) -> Sampling:
    """Make the week's sample of every collector that has none yet (see the module docstring).
    Refused (QcRefused, nothing stored): a bad week, size or seed, a week not over yet."""
    checked = parse_week(week)
    chosen_size = check_size(size, default_size or DEFAULT_SAMPLE_SIZE)
    chosen_seed = check_seed(seed, checked)
    check_week_over(checked, clock())
    try:
        return await _create_samples(db, clock, checked, by=by, size=chosen_size, seed=chosen_seed)
    except IntegrityError:  # another run made some of them meanwhile: this run finds them made
        return await _create_samples(db, clock, checked, by=by, size=chosen_size, seed=chosen_seed)


async def _create_samples(db: Database, clock: Clock, week: Week, *, by: str, size: int, seed: str) -> Sampling:
    now = clock()
    async with db.session() as s:
        users = (await s.scalars(select(User).where(User.phone.is_not(None)).order_by(User.username))).all()
        existing = {row.collector_user_id: row for row in
                    (await s.scalars(select(QcSample).where(QcSample.week == str(week)))).all()}
        found = await candidates(s, week, [u.phone for u in users if u.phone])
        infos: list[SampleInfo] = []
        for user in users:
            calls = found.get(user.phone or "", [])
            if user.id in existing:
                infos.append(await _sample_info(s, existing[user.id], user.username, False))
                continue
            is_collector = user.role == "collector" and user.disabled_at is None
            if not calls and not is_collector:
                continue
            ids = [attempt_id for attempt_id, _ in calls]
            picked = pick_sample(ids, seed=seed, week=week, collector=user.username, size=size)
            recording_of = dict(calls)
            sample = QcSample(week=str(week), collector_user_id=user.id, collector_phone=user.phone or "", seed=seed,
                              size=size, candidates=len(ids), candidates_sha256=candidates_digest(ids),
                              created_at=now, created_by=by)
            s.add(sample)
            await s.flush()
            for attempt_id in picked:
                s.add(QcItem(sample_id=sample.id, recording_id=recording_of[attempt_id], state="pending"))
            await s.flush()
            await repo.audit(s, at=now, actor=by, action="qc.sampled", subject=f"qc:{week}",
                             collector=user.username, phone=user.phone, seed=seed, size=size, candidates=len(ids),
                             candidates_sha256=sample.candidates_sha256, picked=list(picked))
            infos.append(SampleInfo(sample.id, str(week), user.username, user.id, user.phone or "", seed, size,
                                    len(ids), sample.candidates_sha256, picked, True))
    return Sampling(str(week), tuple(infos))


# -- scores -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ScoreView:
    id: int
    item_id: int
    attempt_id: str
    case_id: str
    call_ended_at: datetime
    week: str
    collector: str
    version: str
    items: Mapping[str, str]
    total: int
    comments: str
    scored_by: str
    scored_at: datetime
    revises_id: int | None
    ledger_seq: int | None

    @property
    def fails(self) -> tuple[str, ...]:
        return tuple(k for k in ITEM_KEYS if self.items.get(k) == Result.FAIL.value)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "item_id": self.item_id, "attempt_id": self.attempt_id, "case_id": self.case_id,
                "call_ended_at": self.call_ended_at.isoformat(), "week": self.week, "collector": self.collector,
                "version": self.version, "items": dict(self.items), "total": self.total, "comments": self.comments,
                "scored_by": self.scored_by, "scored_at": self.scored_at.isoformat(), "revises": self.revises_id,
                "ledger_seq": self.ledger_seq}


def _score_view(row: QcScore, rec: Recording, sample: QcSample, collector: str) -> ScoreView:
    return ScoreView(row.id, row.item_id, rec.attempt_id, rec.case_id, rec.call_ended_at, sample.week, collector,
                     row.version, dict(row.items or {}), row.total, row.comments, row.scored_by, row.scored_at,
                     row.revises_id, row.ledger_seq)


def _current() -> Any:
    """Scores no later score revises: each item's current one."""
    later = aliased(QcScore)
    return ~exists(select(later.id).where(later.revises_id == QcScore.id))


async def save_score(db: Database, ledger: LedgerLike, clock: Clock, item_id: int, raw_items: Mapping[str, object],
                     comments: object, *, by: str, revises: object = None) -> ScoreView:
    """Check the scorecard, then store it with its ledger entry (see the module docstring).
    QcRefused: the scorecard, or a second score not naming the current one; LookupError: no
    such item."""
    card = validate(raw_items, comments)
    revises_id = revises_of(revises)
    try:
        async with ledger.transaction() as s:
            return await _save(s, ledger, clock, item_id, card, by=by, revises_id=revises_id)
    except IntegrityError:  # another score of the item won the race
        raise QcRefused("scored_already", id="?") from None


async def _save(s: AsyncSession, ledger: LedgerLike, clock: Clock, item_id: int, card: Any, *, by: str,
                revises_id: int | None) -> ScoreView:
    item = await s.get(QcItem, item_id)
    if item is None:
        raise LookupError(f"no QC item {item_id}")
    rec = await s.get(Recording, item.recording_id)
    sample = await s.get(QcSample, item.sample_id)
    collector = await s.get(User, sample.collector_user_id) if sample else None
    if rec is None or sample is None or collector is None:  # pragma: no cover  (foreign keys)
        raise LookupError(f"no QC item {item_id}")
    current = await s.scalar(select(QcScore).where(QcScore.item_id == item.id, _current()))
    if current is None and revises_id is not None:
        raise QcRefused("revises")
    if current is not None and revises_id != current.id:
        raise QcRefused("scored_already", id=current.id)
    now = clock()
    row = QcScore(item_id=item.id, recording_id=rec.id, version=card.version, items=card.items, total=card.total,
                  comments=card.comments, scored_by=by, scored_at=now, revises_id=revises_id)
    s.add(row)
    await s.flush()
    digest = score_digest(card.version, card.items, card.comments)
    entry = await ledger.append(s, actor=by, action=LEDGER_ACTION, subject=recording_subject(rec.attempt_id), detail={
        "scorer": by, "total": card.total, "score_digest": digest, "version": card.version, "score_id": row.id,
        "item_id": item.id, "week": sample.week, "collector": collector.username, "revises": revises_id,
        "fails": list(card.fails)})
    row.ledger_seq = entry.seq
    item.state = "scored"
    await repo.audit(s, at=now, actor=by, action="qc.scored", subject=recording_subject(rec.attempt_id),
                     score_id=row.id, item_id=item.id, total=card.total, fails=list(card.fails), revises=revises_id,
                     ledger_seq=entry.seq)
    await s.flush()
    return _score_view(row, rec, sample, collector.username)


# -- what the console shows ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QueueRow:
    item_id: int
    week: str
    collector: str
    collector_name: str
    attempt_id: str
    case_id: str
    call_ended_at: datetime
    duration_s: float
    state: str
    total: int | None  # the current score's

    def as_json(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "week": self.week, "collector": self.collector,
                "attempt_id": self.attempt_id, "case_id": self.case_id,
                "call_ended_at": self.call_ended_at.isoformat(), "duration_s": self.duration_s,
                "state": self.state, "total": self.total}


def _item_rows() -> Select[Any]:
    return (select(QcItem, QcSample, User, Recording)
            .join(QcSample, QcSample.id == QcItem.sample_id)
            .join(User, User.id == QcSample.collector_user_id)
            .join(Recording, Recording.id == QcItem.recording_id))


async def queue(db: Database, *, week: Week | None = None, state: str | None = None,
                limit: int = 500) -> list[QueueRow]:
    """The QC queue: pending items first, then by week (latest first), collector and call."""
    stmt = _item_rows()
    if week is not None:
        stmt = stmt.where(QcSample.week == str(week))
    if state is not None:
        stmt = stmt.where(QcItem.state == state)
    stmt = stmt.order_by((QcItem.state == "scored"), QcSample.week.desc(), User.username,
                         Recording.call_ended_at, QcItem.id).limit(limit)
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
        totals = dict((await s.execute(select(QcScore.item_id, QcScore.total).where(
            QcScore.item_id.in_([r[0].id for r in rows]), _current()))).all()) if rows else {}
    return [QueueRow(item.id, sample.week, user.username, user.display_name, rec.attempt_id, rec.case_id,
                     rec.call_ended_at, rec.duration_s, item.state, totals.get(item.id))
            for item, sample, user, rec in rows]


@dataclass(frozen=True, slots=True)
class ItemView:
    item_id: int
    week: str
    state: str
    collector: str
    collector_name: str
    collector_user_id: int
    attempt_id: str
    case_id: str
    number: str
    call_ended_at: datetime
    answered_at: datetime | None
    duration_s: float
    legs: tuple[str, ...]  # "rx" (the debtor), "tx" (the collector)
    flags: tuple[str, ...]
    purged: bool
    scores: tuple[ScoreView, ...] = field(default=())  # oldest first

    @property
    def current(self) -> ScoreView | None:
        revised = {sc.revises_id for sc in self.scores}
        live = [sc for sc in self.scores if sc.id not in revised]
        return live[-1] if live else None

    def as_json(self, number: str) -> dict[str, Any]:
        current = self.current
        return {"item_id": self.item_id, "week": self.week, "state": self.state, "collector": self.collector,
                "attempt_id": self.attempt_id, "case_id": self.case_id, "number": number,
                "call_ended_at": self.call_ended_at.isoformat(),
                "answered_at": self.answered_at.isoformat() if self.answered_at else None,
                "duration_s": self.duration_s, "legs": list(self.legs), "flags": list(self.flags),
                "purged": self.purged, "score": current.as_json() if current else None,
                "history": [sc.as_json() for sc in self.scores]}


async def item(db: Database, item_id: int, scope: QcScope = ALL) -> ItemView:
    """One queue item with its call and its scores; LookupError when none is within the scope."""
    async with db.session() as s:
        row = (await s.execute(_scoped(_item_rows(), scope).add_columns(Attempt.number, Attempt.answered_at)
                               .join(Attempt, Attempt.id == Recording.attempt_id)
                               .where(QcItem.id == item_id))).first()
        if row is None:
            raise LookupError(f"no QC item {item_id}")
        it, sample, user, rec, number, answered_at = row
        scored = (await s.scalars(select(QcScore).where(QcScore.item_id == it.id).order_by(QcScore.id))).all()
    return ItemView(it.id, sample.week, it.state, user.username, user.display_name, user.id, rec.attempt_id,
                    rec.case_id, number, rec.call_ended_at, answered_at, rec.duration_s,
                    tuple(str(g.get("leg")) for g in rec.legs or ()), tuple(rec.flags or ()), rec.purged_at is not None,
                    tuple(_score_view(sc, rec, sample, user.username) for sc in scored))


async def scores(db: Database, scope: QcScope, *, week: Week | None = None, collector_user_id: int | None = None,
                 limit: int = 500) -> list[tuple[ScoreView, str]]:
    """The current scores within the scope (with the collector's name shown), latest call first."""
    stmt = _scoped(select(QcScore, Recording, QcSample, User)
                   .join(QcItem, QcItem.id == QcScore.item_id)
                   .join(QcSample, QcSample.id == QcItem.sample_id)
                   .join(User, User.id == QcSample.collector_user_id)
                   .join(Recording, Recording.id == QcScore.recording_id)
                   .where(_current()), scope)
    if week is not None:
        stmt = stmt.where(QcSample.week == str(week))
    if collector_user_id is not None:
        stmt = stmt.where(QcSample.collector_user_id == collector_user_id)
    stmt = stmt.order_by(Recording.call_ended_at.desc(), QcScore.id.desc()).limit(limit)
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return [(_score_view(sc, rec, sample, user.username), user.display_name) for sc, rec, sample, user in rows]


@dataclass(frozen=True, slots=True)
class CollectorReport:
    collector_user_id: int
    collector: str
    name: str
    team_id: int | None
    weeks: tuple[str, ...]
    candidates: int  # recorded calls in the sampled weeks
    sampled: int
    scored: int
    average_total: float | None
    fails: Mapping[str, int]  # item key -> current scores failing it
    zero_totals: int  # current scores with a critical fail

    def as_json(self) -> dict[str, Any]:
        return {"collector": self.collector, "name": self.name, "weeks": list(self.weeks),
                "candidates": self.candidates, "sampled": self.sampled, "scored": self.scored,
                "average_total": self.average_total, "fails": dict(self.fails), "zero_totals": self.zero_totals}


async def report(db: Database, scope: QcScope, *, from_week: Week | None = None,
                 to_week: Week | None = None) -> list[CollectorReport]:
    """Per collector within the scope, over the sampled weeks from..to (inclusive): calls,
    sampled, scored, the average of the current totals, the fails by item."""
    samples_stmt = _scoped(select(QcSample, User).join(User, User.id == QcSample.collector_user_id), scope)
    items_stmt = _scoped(select(QcItem.id, QcSample.collector_user_id)
                         .join(QcSample, QcSample.id == QcItem.sample_id)
                         .join(User, User.id == QcSample.collector_user_id), scope)
    scores_stmt = _scoped(select(QcScore, QcSample.collector_user_id)
                          .join(QcItem, QcItem.id == QcScore.item_id)
                          .join(QcSample, QcSample.id == QcItem.sample_id)
                          .join(User, User.id == QcSample.collector_user_id).where(_current()), scope)
    for bound, op in ((from_week, "ge"), (to_week, "le")):
        if bound is not None:
            condition = QcSample.week >= str(bound) if op == "ge" else QcSample.week <= str(bound)
            samples_stmt, items_stmt, scores_stmt = (samples_stmt.where(condition), items_stmt.where(condition),
                                                     scores_stmt.where(condition))
    async with db.session() as s:
        sample_rows = (await s.execute(samples_stmt)).all()
        item_rows = (await s.execute(items_stmt)).all()
        score_rows = (await s.execute(scores_stmt)).all()
    people: dict[int, User] = {}
    weeks: dict[int, set[str]] = {}
    calls: dict[int, int] = {}
    for sample, user in sample_rows:
        people[user.id] = user
        weeks.setdefault(user.id, set()).add(sample.week)
        calls[user.id] = calls.get(user.id, 0) + sample.candidates
    sampled: dict[int, int] = {}
    for _, user_id in item_rows:
        sampled[user_id] = sampled.get(user_id, 0) + 1
    totals: dict[int, list[int]] = {}
    fails: dict[int, dict[str, int]] = {}
    for sc, user_id in score_rows:
        totals.setdefault(user_id, []).append(sc.total)
        counted = fails.setdefault(user_id, {k: 0 for k in ITEM_KEYS})
        for key, result in (sc.items or {}).items():
            if result == Result.FAIL.value and key in counted:
                counted[key] += 1
    critical = {i.key for i in ITEMS if i.critical}
    zero: dict[int, int] = {}
    for sc, user_id in score_rows:
        if any((sc.items or {}).get(key) == Result.FAIL.value for key in critical):
            zero[user_id] = zero.get(user_id, 0) + 1
    out = []
    for user_id, user in sorted(people.items(), key=lambda p: p[1].username):
        got = totals.get(user_id, [])
        out.append(CollectorReport(user_id, user.username, user.display_name, user.team_id,
                                   tuple(sorted(weeks[user_id])), calls.get(user_id, 0), sampled.get(user_id, 0),
                                   len(got), round(sum(got) / len(got), 1) if got else None,
                                   fails.get(user_id, {k: 0 for k in ITEM_KEYS}), zero.get(user_id, 0)))
    return out


def week_or_none(value: object) -> Week | None:
    """A week filter as typed (blank: none); QcRefused('week') when it is not one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_week(value)


__all__ = ["ALL", "NOBODY", "CollectorReport", "ItemView", "LEDGER_ACTION", "LedgerLike", "QcRefused", "QcScope",
           "QueueRow", "SampleInfo", "Sampling", "ScoreView", "create_samples", "item", "queue", "report",
           "save_score", "scores", "week_or_none"]
