"""The registers on the database and the visits directory (the rules: cases/registers.py).

Every change checks its input first (RegisterRefused: nothing stored), changes its rows in
one transaction, and is an audit event naming who. Audit events name ids, kinds and counts,
never a visit's reason, address or report: those are purged with the visit six months on
(cases/visit_purge.py), and the audit trail must not keep a copy.

A visit's photos and recordings are private files: an upload is streamed into
`<visits dir>/.incoming/` (0640, hashed as it comes), checked, then moved to
`<visits dir>/<visit id>/<random>.<ext>` and made read-only (0440) before its row is
committed; directories are 0750 (storage/files.py). A crash between the move and the
commit leaves a file no row names: the purge of that visit removes its whole directory.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.refusals import case_in_reach
from cases.registers import (MAX_ATTACHMENT_BYTES, Member, RegisterRefused, TemplateFacts, VisitFacts,
                             VisitState, check_approval, check_attachment, check_case, check_decision, check_item,
                             check_reply, check_report, check_request, check_retirement, check_step, check_team,
                             check_template, file_name_of, purge_due_at)
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.files import DIR_MODE, FILE_MODE, READ_ONLY_MODE, make_dirs
from storage.models import Case
from storage.names import case_subject
from storage.people import User
from storage.registers import CorrespondenceItem, FieldVisit, RegisterTemplate, VisitAttachment

INCOMING = ".incoming"
HEAD_BYTES = 64  # enough of a file's start to tell its type


def valid_id(value: object) -> bool:
    """A row id as given in JSON: an int (not a bool) the database can hold."""
    return type(value) is int and 0 < value < 2 ** 53


def template_subject(template_id: int) -> str:
    return f"template:{template_id}"


# -- templates ---------------------------------------------------------------------------

def template_facts(row: RegisterTemplate) -> TemplateFacts:
    return TemplateFacts(row.id, row.kind, row.name, row.created_by, row.approved_at, row.retired_at)


async def _template(session: AsyncSession, template_id: object) -> RegisterTemplate:
    row = await session.get(RegisterTemplate, template_id) if valid_id(template_id) else None
    if row is None:
        raise RegisterRefused("template", id=str(template_id)[:20])
    return row


async def create_template(db: Database, clock: Clock, kind: object, name: object, body: object, *,
                          by: str) -> RegisterTemplate:
    """A template's text, not usable until someone else approves it."""
    new = check_template(kind, name, body)
    async with db.session() as s:
        row = RegisterTemplate(kind=new.kind.value, name=new.name, body=new.body, created_at=clock(), created_by=by)
        s.add(row)
        await s.flush()
        await repo.audit(s, at=clock(), actor=by, action="template.created", subject=template_subject(row.id),
                         kind=row.kind, name=row.name, body_sha256=hashlib.sha256(row.body.encode()).hexdigest())
        return row


async def approve_template(db: Database, clock: Clock, template_id: int, *, by: str) -> RegisterTemplate:
    async with db.session() as s:
        row = await _template(s, template_id)
        check_approval(template_facts(row), by)
        row.approved_at, row.approved_by = clock(), by
        await repo.audit(s, at=clock(), actor=by, action="template.approved", subject=template_subject(row.id),
                         kind=row.kind, name=row.name, author=row.created_by)
        return row


async def retire_template(db: Database, clock: Clock, template_id: int, reason: object, *,
                          by: str) -> RegisterTemplate:
    async with db.session() as s:
        row = await _template(s, template_id)
        why = check_retirement(template_facts(row), reason)
        row.retired_at, row.retired_by, row.retired_reason = clock(), by, why
        await repo.audit(s, at=clock(), actor=by, action="template.retired", subject=template_subject(row.id),
                         kind=row.kind, name=row.name, why=why)
        return row


async def templates(db: Database, *, kind: str | None = None, usable_only: bool = False) -> Sequence[RegisterTemplate]:
    query = select(RegisterTemplate).order_by(RegisterTemplate.kind, RegisterTemplate.id)
    if kind is not None:
        query = query.where(RegisterTemplate.kind == kind)
    if usable_only:
        query = query.where(RegisterTemplate.approved_at.is_not(None), RegisterTemplate.retired_at.is_(None))
    async with db.session() as s:
        return (await s.scalars(query)).all()


# -- correspondence --------------------------------------------------------------------

async def register_item(db: Database, clock: Clock, case_id: str, *, template_id: object, recipient_name: object,
                        relation: object, channel: object, address: object, sent_at: datetime | None, by: str,
                        scope: repo.CaseScope = repo.ALL_CASES) -> CorrespondenceItem:
    """One letter, SMS or lawyer letter sent for a case, registered (LookupError: no such
    case within reach; RegisterRefused: the rules say no, nothing stored)."""
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        check_case(case.status, list(case.flags or ()))
        template = await _template(s, template_id)
        item = check_item(template_facts(template), recipient_name=recipient_name, relation=relation,
                          channel=channel, address=address, sent_at=sent_at, now=clock())
        if item.channel.value == "sms" and any(p.number == item.address and p.relation == "work" for p in case.phones):
            raise RegisterRefused("recipient_employer")  # the number is the work unit's, as the client's file says
        row = CorrespondenceItem(case_id=case.id, kind=item.kind.value, template_id=template.id,
                                 recipient_name=item.recipient_name, recipient_relation=item.relation.value,
                                 channel=item.channel.value, address=item.address, sent_at=item.sent_at,
                                 registered_at=clock(), registered_by=by)
        s.add(row)
        await s.flush()
        await repo.audit(s, at=clock(), actor=by, action="correspondence.registered", subject=case_subject(case.id),
                         item_id=row.id, kind=row.kind, template_id=template.id, relation=row.recipient_relation,
                         channel=row.channel, sent_at=row.sent_at.isoformat())
        return row


async def _item_in_reach(s: AsyncSession, item_id: int, scope: repo.CaseScope) -> CorrespondenceItem:
    row = await s.scalar(select(CorrespondenceItem).join(Case, Case.id == CorrespondenceItem.case_id)
                         .where(CorrespondenceItem.id == item_id, scope.criteria()))
    if row is None:
        raise LookupError(f"no correspondence item {item_id}")
    return row


async def register_reply(db: Database, clock: Clock, item_id: int, reply: object, reply_at: datetime | None, *,
                         by: str, scope: repo.CaseScope = repo.ALL_CASES,
                         case_id: str | None = None) -> CorrespondenceItem:
    """The reply to an item, registered once."""
    async with db.session() as s:
        row = await _item_in_reach(s, item_id, scope)
        if case_id is not None and row.case_id != case_id:
            raise LookupError(f"no correspondence item {item_id} of case {case_id}")
        done = check_reply(sent_at=row.sent_at, replied_at=row.reply_at, registered_at=row.reply_registered_at,
                           text=reply, at=reply_at, now=clock())
        row.reply, row.reply_at, row.reply_registered_at, row.reply_registered_by = done.text, done.at, clock(), by
        await repo.audit(s, at=clock(), actor=by, action="correspondence.reply_registered",
                         subject=case_subject(row.case_id), item_id=row.id, reply_at=done.at.isoformat())
        return row


async def items_of_case(db: Database, case_id: str, scope: repo.CaseScope = repo.ALL_CASES
                        ) -> tuple[Sequence[CorrespondenceItem], dict[int, RegisterTemplate]]:
    """A case's items, newest first, with their templates (LookupError: no case within reach)."""
    async with db.session() as s:
        await case_in_reach(s, case_id, scope)
        items = (await s.scalars(select(CorrespondenceItem).where(CorrespondenceItem.case_id == case_id)
                                 .order_by(CorrespondenceItem.sent_at.desc(), CorrespondenceItem.id.desc()))).all()
        ids = {i.template_id for i in items}
        rows = (await s.scalars(select(RegisterTemplate).where(RegisterTemplate.id.in_(ids)))).all() if ids else []
        return items, {t.id: t for t in rows}


# -- field visits ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VisitReach:
    """Which visits a reader reaches: those of the cases in their scope, and those they are
    on the team of (a colleague's case: they went)."""

    scope: repo.CaseScope
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class VisitPage:
    visit: FieldVisit
    team: tuple[str, str]  # usernames
    attachments: Sequence[VisitAttachment]


def _facts(row: FieldVisit, team: tuple[str, str], attachments: Sequence[VisitAttachment] = ()) -> VisitFacts:
    return VisitFacts(VisitState(row.state), row.requested_at, row.requested_by, team, decided_at=row.decided_at,
                      departed_at=row.departed_at, arrived_at=row.arrived_at, left_at=row.left_at,
                      returned_at=row.returned_at, purged_at=row.purged_at,
                      photos=sum(a.kind == "photo" for a in attachments),
                      recordings=sum(a.kind == "recording" for a in attachments))


async def _team(s: AsyncSession, row: FieldVisit) -> tuple[str, str]:
    names = {user_id: name for user_id, name in (await s.execute(
        select(User.id, User.username).where(User.id.in_((row.member_a_id, row.member_b_id))))).all()}
    return names.get(row.member_a_id, "?"), names.get(row.member_b_id, "?")


async def _visit_in_reach(s: AsyncSession, visit_id: int, reach: VisitReach) -> FieldVisit:
    mine = [FieldVisit.member_a_id == reach.user_id, FieldVisit.member_b_id == reach.user_id] \
        if reach.user_id is not None else []
    row = await s.scalar(select(FieldVisit).join(Case, Case.id == FieldVisit.case_id)
                         .where(FieldVisit.id == visit_id, or_(reach.scope.criteria(), *mine)))
    if row is None:
        raise LookupError(f"no visit {visit_id}")
    return row


async def _attachments(s: AsyncSession, visit_id: int) -> Sequence[VisitAttachment]:
    return (await s.scalars(select(VisitAttachment).where(VisitAttachment.visit_id == visit_id)
                            .order_by(VisitAttachment.id))).all()


async def request_visit(db: Database, clock: Clock, case_id: str, *, reason: object, address: object,
                        team: object, by: str, makes_visits: Callable[[str], bool],
                        scope: repo.CaseScope = repo.ALL_CASES) -> FieldVisit:
    """A field visit asked for, with its team of two (`makes_visits(role)`: may that role go)."""
    why, where, names = check_request(reason, address, team)
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        check_case(case.status, list(case.flags or ()))
        users = (await s.scalars(select(User).where(User.username.in_(names)))).all()
        found = {u.username: Member(u.id, u.username, u.role, u.disabled_at is not None, makes_visits(u.role))
                 for u in users}
        a, b = check_team(names, found)
        now = clock()
        row = FieldVisit(case_id=case.id, state=VisitState.REQUESTED.value, reason=why, address=where,
                         requested_at=now, requested_by=by, member_a_id=a, member_b_id=b,
                         purge_due_at=purge_due_at(now))
        s.add(row)
        await s.flush()
        await repo.audit(s, at=now, actor=by, action="visit.requested", subject=case_subject(case.id),
                         visit_id=row.id, team=list(names))
        return row


async def decide_visit(db: Database, clock: Clock, visit_id: int, approve: bool, note: object, *, by: str,
                       reach: VisitReach) -> FieldVisit:
    async with db.session() as s:
        row = await _visit_in_reach(s, visit_id, reach)
        text = check_decision(_facts(row, await _team(s, row)), approve, note, by)
        row.state = (VisitState.APPROVED if approve else VisitState.REFUSED).value
        row.decided_at, row.decided_by, row.decision_note = clock(), by, text
        await repo.audit(s, at=clock(), actor=by, action="visit.approved" if approve else "visit.refused",
                         subject=case_subject(row.case_id), visit_id=row.id)
        return row


async def record_step(db: Database, clock: Clock, visit_id: int, step: object, at: datetime | None, *, by: str,
                      reach: VisitReach) -> FieldVisit:
    """departed / arrived / left / returned, reported to the back office (at: when; default now)."""
    async with db.session() as s:
        row = await _visit_in_reach(s, visit_id, reach)
        done = check_step(_facts(row, await _team(s, row)), step, at, clock())
        setattr(row, done.column, done.at)
        row.state = done.state.value
        if done.state is VisitState.RETURNED:
            row.purge_due_at = purge_due_at(row.requested_at, done.at)
        await repo.audit(s, at=clock(), actor=by, action=f"visit.{step}", subject=case_subject(row.case_id),
                         visit_id=row.id, step_at=done.at.isoformat())
        return row


async def submit_report(db: Database, clock: Clock, visit_id: int, report: object, *, by: str,
                        reach: VisitReach) -> FieldVisit:
    async with db.session() as s:
        row = await _visit_in_reach(s, visit_id, reach)
        attachments = await _attachments(s, row.id)
        text = check_report(_facts(row, await _team(s, row), attachments), report)
        row.report, row.reported_at, row.reported_by, row.state = text, clock(), by, VisitState.REPORTED.value
        await repo.audit(s, at=clock(), actor=by, action="visit.reported", subject=case_subject(row.case_id),
                         visit_id=row.id, report_chars=len(text), attachments=[a.id for a in attachments])
        return row


async def visit_page(db: Database, clock: Clock, visit_id: int, *, reach: VisitReach, by: str,
                     **audit: object) -> VisitPage:
    """A visit with its team and attachments, the reading audited (LookupError: not within reach)."""
    async with db.session() as s:
        row = await _visit_in_reach(s, visit_id, reach)
        page = VisitPage(row, await _team(s, row), await _attachments(s, row.id))
        await repo.audit(s, at=clock(), actor=by, action="visit.viewed", subject=case_subject(row.case_id),
                         visit_id=row.id, **audit)
        return page


async def visits_of_case(db: Database, case_id: str, scope: repo.CaseScope = repo.ALL_CASES
                         ) -> Sequence[FieldVisit]:
    async with db.session() as s:
        await case_in_reach(s, case_id, scope)
        return (await s.scalars(select(FieldVisit).where(FieldVisit.case_id == case_id)
                                .order_by(FieldVisit.id.desc()))).all()


async def visits_under_way(db: Database, reach: VisitReach, limit: int = 200) -> Sequence[FieldVisit]:
    """Visits requested, approved or in the field (not reported, refused or purged) within reach,
    oldest first: what waits for a decision or for its team."""
    open_states = [s.value for s in (VisitState.REQUESTED, VisitState.APPROVED, VisitState.DEPARTED,
                                     VisitState.ARRIVED, VisitState.LEFT, VisitState.RETURNED)]
    mine = [FieldVisit.member_a_id == reach.user_id, FieldVisit.member_b_id == reach.user_id] \
        if reach.user_id is not None else []
    async with db.session() as s:
        return (await s.scalars(select(FieldVisit).join(Case, Case.id == FieldVisit.case_id)
                                .where(FieldVisit.state.in_(open_states), or_(reach.scope.criteria(), *mine))
                                .order_by(FieldVisit.id).limit(limit))).all()


# -- attachments: private files ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Staged:
    """An upload written to the incoming directory: its path, SHA-256, size and first bytes."""

    path: Path
    sha256: str
    size: int
    head: bytes

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _open_private(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # whatever the umask
    return fd


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def stage_upload(chunks: AsyncIterable[bytes], visits_dir: Path,
                       limit: int = MAX_ATTACHMENT_BYTES) -> Staged:
    """Stream an upload into `<visits dir>/.incoming/` (0640), hashing it; larger than `limit`:
    RegisterRefused, nothing kept."""
    incoming = Path(visits_dir) / INCOMING
    await asyncio.to_thread(make_dirs, incoming, DIR_MODE)
    path = incoming / f"{secrets.token_hex(16)}.part"
    fd = await asyncio.to_thread(_open_private, path)
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise RegisterRefused("attachment_large", max_mb=limit // (1024 * 1024))
            if len(head) < HEAD_BYTES:
                head = (head + chunk)[:HEAD_BYTES]
            digest.update(chunk)
            await asyncio.to_thread(os.write, fd, chunk)
        await asyncio.to_thread(os.fsync, fd)
    except BaseException:
        os.close(fd)
        Staged(path, "", 0, b"").discard()
        raise
    os.close(fd)
    return Staged(path, digest.hexdigest(), size, head)


def _place(staged: Staged, target: Path) -> None:
    make_dirs(target.parent, DIR_MODE)
    os.chmod(staged.path, READ_ONLY_MODE)  # evidence: read-only for its owner and group
    os.replace(staged.path, target)
    _fsync_dir(target.parent)


async def add_attachment(db: Database, clock: Clock, visits_dir: Path, visit_id: int, kind: object,
                         file_name: object, staged: Staged, *, by: str, reach: VisitReach) -> VisitAttachment:
    """A staged upload becomes a photo or recording of the visit (refused: the staged file is
    removed, nothing stored)."""
    visits_dir = Path(visits_dir)
    placed: Path | None = None
    try:
        async with db.session() as s:
            row = await _visit_in_reach(s, visit_id, reach)
            kind_checked = check_attachment(_facts(row, await _team(s, row)), kind, staged.head, staged.size)
            relative = Path(str(row.id)) / f"{secrets.token_hex(16)}.{kind_checked.extension}"
            placed = visits_dir / relative
            await asyncio.to_thread(_place, staged, placed)
            attachment = VisitAttachment(visit_id=row.id, kind=kind_checked.kind.value,
                                         media_type=kind_checked.media_type, file_name=file_name_of(file_name),
                                         path=str(relative), sha256=staged.sha256, size=staged.size,
                                         uploaded_at=clock(), uploaded_by=by)
            s.add(attachment)
            await s.flush()
            await repo.audit(s, at=clock(), actor=by, action="visit.attachment_added",
                             subject=case_subject(row.case_id), visit_id=row.id, attachment_id=attachment.id,
                             kind=attachment.kind, sha256=attachment.sha256, size=attachment.size)
        return attachment
    except BaseException:
        if placed is not None:  # not committed: the file goes too
            await asyncio.to_thread(_remove, placed)
        raise
    finally:
        await asyncio.to_thread(staged.discard)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    path: Path
    media_type: str
    file_name: str
    size: int


async def attachment_file(db: Database, clock: Clock, visits_dir: Path, visit_id: int, attachment_id: int, *,
                          by: str, reach: VisitReach) -> AttachmentFile:
    """An attachment's file to read, the reading audited (LookupError: none within reach, or purged)."""
    async with db.session() as s:
        row = await _visit_in_reach(s, visit_id, reach)
        attachment = await s.get(VisitAttachment, attachment_id)
        if attachment is None or attachment.visit_id != row.id or attachment.path is None:
            raise LookupError(f"no attachment {attachment_id} of visit {visit_id}")
        await repo.audit(s, at=clock(), actor=by, action="visit.attachment_read", subject=case_subject(row.case_id),
                         visit_id=row.id, attachment_id=attachment.id)
        return AttachmentFile(Path(visits_dir) / attachment.path, attachment.media_type,
                              attachment.file_name or f"attachment-{attachment.id}", attachment.size)
