"""The dialing policy's inputs, set by people: case flags (dispute, fraud, care) and the
care approval, a third party's refusal, the do-not-call list, the clients' approved
caller IDs, and agreed call times. Each change checks its input first, happens in one
transaction, and is an audit event with who and why; the policy (dialer/policy) reads
the result at the next dial.

Who may do which is the role matrix's (people/roles.py): raising a flag or a refusal is
`case.flag`; clearing dispute or fraud, approving care and lifting a refusal or a retired
phone is `case.clear`; the do-not-call list is `suppression.manage`; caller IDs
`caller_id.manage`.

A disposition (cases/dispositions_store.py) changes the same inputs through the same
session-level helpers below (`flag_case`, `refuse_phone`, `retire_phone`, `add_appointment`,
`cancel_appointment`): one way to make each change, with the same audit event.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.dispositions import AGREED_WITHIN_DAYS
from cases.intake import CLIENT_PATTERN, cell_text, normalise_phone
from cases.intake_files import UnreadableFile, read_table
from cases.refusals import Refused, case_in_reach, reason_given
from dialer.policy.model import CASE_FLAGS
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.models import ApprovedCallerId, Appointment, Attempt, Case, Phone
from storage.names import case_subject
from storage.suppressions import Suppression

MAX_CARE_DAYS = 90
DNC_HEADERS = {"phone", "number", "号码", "电话", "手机"}
DNC_REASON_HEADERS = {"reason", "原因"}


class RuleInputRefused(Refused):
    """Refused (the message says why); nothing changed."""


def _why(why: object) -> str:
    return reason_given(why, RuleInputRefused)


# -- the changes themselves, inside the caller's transaction -----------------------------

async def flag_case(s: AsyncSession, case: Case, flag: str, why: str, *, by: str, now: datetime,
                    **detail: object) -> None:
    """Raise `flag` on `case` (not already raised: the caller checks), audited."""
    case.flags = sorted({*(case.flags or []), flag})
    if flag == "care":
        case.care_approved_until = None  # a new care situation needs a new approval
    await repo.audit(s, at=now, actor=by, action="case.flagged", subject=case_subject(case.id), flag=flag,
                     why=why, **detail)


async def refuse_phone(s: AsyncSession, case: Case, phone: Phone, refused: bool, why: str, *, by: str,
                       now: datetime, **detail: object) -> None:
    phone.refused = refused
    await repo.audit(s, at=now, actor=by, action="phone.refused" if refused else "phone.refusal_lifted",
                     subject=case_subject(case.id), phone_id=phone.id, why=why, **detail)


async def retire_phone(s: AsyncSession, case: Case, phone: Phone, retired: bool, why: str, *, by: str,
                       now: datetime, **detail: object) -> None:
    """A wrong number: not dialled for this case again (the policy's phone_retired), or back."""
    phone.retired_at, phone.retired_by = (now, by) if retired else (None, None)
    await repo.audit(s, at=now, actor=by, action="phone.retired" if retired else "phone.retirement_lifted",
                     subject=case_subject(case.id), phone_id=phone.id, why=why, **detail)


async def add_appointment(s: AsyncSession, case: Case, when: datetime, agreed_by: str, attempt: Attempt, *,
                          by: str, now: datetime, **detail: object) -> Appointment:
    """An agreed time bound to the answered call `attempt` (its recording proves it)."""
    row = Appointment(case_id=case.id, at=when, agreed_by=agreed_by, recorded_attempt_id=attempt.id,
                      created_at=now)
    s.add(row)
    await s.flush()
    await repo.audit(s, at=now, actor=by, action="case.time_agreed", subject=case_subject(case.id),
                     appointment_id=row.id, at_time=when.isoformat(), agreed_by=agreed_by, attempt_id=attempt.id,
                     **detail)
    return row


async def cancel_appointment(s: AsyncSession, row: Appointment, why: str, *, by: str, now: datetime,
                             **detail: object) -> None:
    """The agreed time no longer counts for the policy (the row stays)."""
    row.cancelled_at, row.cancelled_by = now, by
    await repo.audit(s, at=now, actor=by, action="case.time_cancelled", subject=case_subject(row.case_id),
                     appointment_id=row.id, why=why, **detail)


# -- case flags ----------------------------------------------------------------------

async def raise_flag(db: Database, clock: Clock, case_id: str, flag: object, why: object, *, by: str,
                     scope: repo.CaseScope = repo.ALL_CASES) -> list[str]:
    """Pause a case: dispute (the debt is contested), fraud (not the debtor's), care
    (illness, bereavement, hardship: dialled again only with a supervisor's approval)."""
    if not isinstance(flag, str) or flag not in CASE_FLAGS:
        raise RuleInputRefused(f"flag: one of {', '.join(sorted(CASE_FLAGS))}")
    reason = _why(why)
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        if flag in (case.flags or []):
            raise RuleInputRefused(f"the case is already flagged {flag}")
        await flag_case(s, case, flag, reason, by=by, now=clock())
        return list(case.flags)


async def clear_flag(db: Database, clock: Clock, case_id: str, flag: object, why: object, *, by: str,
                     scope: repo.CaseScope = repo.ALL_CASES) -> list[str]:
    if not isinstance(flag, str) or flag not in CASE_FLAGS:
        raise RuleInputRefused(f"flag: one of {', '.join(sorted(CASE_FLAGS))}")
    reason = _why(why)
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        if flag not in (case.flags or []):
            raise RuleInputRefused(f"the case is not flagged {flag}")
        case.flags = sorted(set(case.flags) - {flag})
        if flag == "care":
            case.care_approved_until = None
        await repo.audit(s, at=clock(), actor=by, action="case.unflagged", subject=case_subject(case.id),
                         flag=flag, why=reason)
        return list(case.flags)


async def approve_care(db: Database, clock: Clock, case_id: str, days: object, why: object, *, by: str,
                       scope: repo.CaseScope = repo.ALL_CASES) -> datetime:
    """A supervisor's approval to call a care case again, for `days` (1 to 90)."""
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_CARE_DAYS:
        raise RuleInputRefused(f"days: 1 to {MAX_CARE_DAYS}")
    reason = _why(why)
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        if "care" not in (case.flags or []):
            raise RuleInputRefused("the case has no care flag to approve")
        until = clock() + timedelta(days=days)
        case.care_approved_until = until
        await repo.audit(s, at=clock(), actor=by, action="case.care_approved", subject=case_subject(case.id),
                         until=until.isoformat(), why=reason)
        return until


# -- a third party's refusal -----------------------------------------------------------

async def set_refusal(db: Database, clock: Clock, case_id: str, phone_id: int, refused: bool, why: object, *,
                      by: str, scope: repo.CaseScope = repo.ALL_CASES) -> None:
    """A third party asked not to be called about this debt again (or, lifted by a
    supervisor, agreed to be called after all). Only third parties' phones refuse."""
    reason = _why(why)
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        phone = next((p for p in case.phones if p.id == phone_id), None)
        if phone is None:
            raise LookupError(f"case {case_id} has no phone {phone_id}")
        if phone.kind != "third_party":
            raise RuleInputRefused("only a third party's phone can refuse (the debtor's: the do-not-call list)")
        if phone.refused == refused:
            raise RuleInputRefused("already so")
        await refuse_phone(s, case, phone, refused, reason, by=by, now=clock())


async def lift_retirement(db: Database, clock: Clock, case_id: str, phone_id: int, why: object, *, by: str,
                          scope: repo.CaseScope = repo.ALL_CASES) -> None:
    """A phone retired as a wrong number (by a disposition) is the debtor's after all: a
    supervisor puts it back in use for the case."""
    reason = _why(why)
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        phone = next((p for p in case.phones if p.id == phone_id), None)
        if phone is None:
            raise LookupError(f"case {case_id} has no phone {phone_id}")
        if phone.retired_at is None:
            raise RuleInputRefused("the phone is not retired")
        await retire_phone(s, case, phone, False, reason, by=by, now=clock())


# -- the do-not-call list --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ListedNumber:
    number: str
    client: str | None
    reason: str


def _listed_where(number: str, client: str | None):  # noqa: ANN202  (a SQL criterion)
    covers = Suppression.client.is_(None) if client is None else or_(Suppression.client.is_(None),
                                                                      Suppression.client == client)
    return Suppression.number == number, Suppression.removed_at.is_(None), covers


async def is_listed(s: AsyncSession, number: str, client: str) -> bool:
    """Is `number` on the do-not-call list for `client` (its own entries or everyone's)?"""
    return await s.scalar(select(Suppression.id).where(*_listed_where(number, client)).limit(1)) is not None


async def _sync_phones(s: AsyncSession, number: str) -> int:
    """Every phone with `number`: do_not_call exactly when an active entry covers its case's client."""
    phones = (await s.execute(select(Phone, Case.client).join(Case, Case.id == Phone.case_id)
                              .where(Phone.number == number))).all()
    changed = 0
    for phone, client in phones:
        listed = await is_listed(s, number, client)
        if phone.do_not_call != listed:
            phone.do_not_call = listed
            changed += 1
    return changed


def _dnc_number(raw: object) -> str:
    number = normalise_phone(raw) if isinstance(raw, str) and len(raw) <= 40 else None
    if number is None:
        raise RuleInputRefused("not a phone number")
    return number


def _dnc_client(client: object) -> str | None:
    if client in (None, ""):
        return None
    if not isinstance(client, str) or not CLIENT_PATTERN.fullmatch(client):
        raise RuleInputRefused("client: lower-case letters, digits and '-'")
    return client


async def add_suppression(db: Database, clock: Clock, number: object, reason: object, *, by: str,
                          client: object = None, case_id: str | None = None, source: str = "manual") -> int:
    """Put a number on the list (for one client, or every client when none is given);
    every phone with it stops being dialled at once. Returns the entry's id."""
    normal, whose, why = _dnc_number(number), _dnc_client(client), _why(reason)
    async with db.session() as s:
        if await s.scalar(select(Suppression.id).where(
                Suppression.number == normal, Suppression.removed_at.is_(None),
                Suppression.client.is_(None) if whose is None else Suppression.client == whose)) is not None:
            raise RuleInputRefused("the number is already on the list")
        entry = Suppression(number=normal, client=whose, reason=why, source=source, added_at=clock(), added_by=by,
                            case_id=case_id)
        s.add(entry)
        await s.flush()
        phones = await _sync_phones(s, normal)
        await repo.audit(s, at=clock(), actor=by, action="suppression.added", subject=f"number:{normal}",
                         suppression_id=entry.id, client=whose, why=why, phones=phones,
                         **({"case_id": case_id} if case_id else {}))
        return entry.id


async def remove_suppression(db: Database, clock: Clock, suppression_id: int, why: object, *, by: str) -> None:
    reason = _why(why)
    async with db.session() as s:
        entry = await s.get(Suppression, suppression_id)
        if entry is None or entry.removed_at is not None:
            raise LookupError(f"no active entry {suppression_id}")
        entry.removed_at, entry.removed_by, entry.removed_why = clock(), by, reason
        await s.flush()
        phones = await _sync_phones(s, entry.number)
        await repo.audit(s, at=clock(), actor=by, action="suppression.removed", subject=f"number:{entry.number}",
                         suppression_id=entry.id, why=reason, phones=phones)


@dataclass(slots=True)
class ListImport:
    added: int = 0
    already: int = 0
    errors: list[tuple[int, str]] | None = None


async def import_suppressions(db: Database, clock: Clock, data: bytes, filename: str, reason: object, *, by: str,
                              client: object = None) -> ListImport:
    """A do-not-call list file (a phone / 号码 column, optionally a reason column): every
    good number listed, all in one transaction; bad lines reported, the rest still listed."""
    default_why, whose = _why(reason), _dnc_client(client)
    try:
        table = read_table(data, filename)
    except UnreadableFile as exc:
        raise RuleInputRefused(str(exc)) from None
    keys = [cell_text(h).lower() for h in table.headers]
    number_at = next((i for i, k in enumerate(keys) if k in DNC_HEADERS), None)
    reason_at = next((i for i, k in enumerate(keys) if k in DNC_REASON_HEADERS), None)
    if number_at is None:
        raise RuleInputRefused("no phone column (phone / number / 号码 / 电话)")
    result = ListImport(errors=[])
    wanted: dict[str, str] = {}
    for row, cells in table.rows:
        raw = cell_text(cells[number_at]) if number_at < len(cells) else ""
        if not raw:
            continue
        number = normalise_phone(raw)
        if number is None:
            result.errors.append((row, f"not a phone number: {raw[:40]!r}"))
            continue
        why = cell_text(cells[reason_at])[:500] if reason_at is not None and reason_at < len(cells) else ""
        wanted.setdefault(number, why or default_why)
    async with db.session() as s:
        for number, why in wanted.items():
            if await s.scalar(select(Suppression.id).where(
                    Suppression.number == number, Suppression.removed_at.is_(None),
                    Suppression.client.is_(None) if whose is None else Suppression.client == whose)) is not None:
                result.already += 1
                continue
            s.add(Suppression(number=number, client=whose, reason=why, source=f"import:{filename[:50]}",
                              added_at=clock(), added_by=by))
            result.added += 1
        await s.flush()
        for number in wanted:
            await _sync_phones(s, number)
        await repo.audit(s, at=clock(), actor=by, action="suppression.imported", subject="suppressions",
                         file=filename[:100], added=result.added, already=result.already,
                         refused=len(result.errors), client=whose)
    return result


async def suppressions(db: Database, include_removed: bool = False) -> Sequence[Suppression]:
    async with db.session() as s:
        query = select(Suppression).order_by(Suppression.id.desc()).limit(1000)
        if not include_removed:
            query = query.where(Suppression.removed_at.is_(None))
        return (await s.scalars(query)).all()


async def mark_listed_phones(s: AsyncSession, numbers: Sequence[str]) -> None:
    """Phones just added (a batch, a traced number): listed ones are do-not-call at once."""
    unique = sorted(set(numbers))
    for start in range(0, len(unique), 500):
        listed = (await s.scalars(select(Suppression.number).distinct().where(
            Suppression.number.in_(unique[start:start + 500]), Suppression.removed_at.is_(None)))).all()
        for number in listed:
            await _sync_phones(s, number)


# -- caller IDs ------------------------------------------------------------------------

async def add_caller_id(db: Database, clock: Clock, client: object, number: object, why: object, *, by: str) -> int:
    """A work number the client approved for showing to debtors (no pool, no call)."""
    whose = _dnc_client(client)
    if whose is None:
        raise RuleInputRefused("client: whose caller ID")
    normal, reason = _dnc_number(number), _why(why)
    async with db.session() as s:
        row = await s.scalar(select(ApprovedCallerId).where(ApprovedCallerId.client == whose,
                                                            ApprovedCallerId.number == normal))
        if row is not None and row.active:
            raise RuleInputRefused("already approved")
        if row is None:
            row = ApprovedCallerId(client=whose, number=normal, active=True, added_by=by, added_at=clock())
            s.add(row)
        else:
            row.active, row.added_by, row.added_at = True, by, clock()
        await s.flush()
        await repo.audit(s, at=clock(), actor=by, action="caller_id.approved", subject=f"client:{whose}",
                         number=normal, why=reason)
        return row.id


async def withdraw_caller_id(db: Database, clock: Clock, caller_id: int, why: object, *, by: str) -> None:
    reason = _why(why)
    async with db.session() as s:
        row = await s.get(ApprovedCallerId, caller_id)
        if row is None or not row.active:
            raise LookupError(f"no approved caller ID {caller_id}")
        row.active = False
        await repo.audit(s, at=clock(), actor=by, action="caller_id.withdrawn", subject=f"client:{row.client}",
                         number=row.number, why=reason)


async def caller_ids(db: Database) -> Sequence[ApprovedCallerId]:
    async with db.session() as s:
        return (await s.scalars(select(ApprovedCallerId).order_by(ApprovedCallerId.client,
                                                                   ApprovedCallerId.id))).all()


# -- agreed times ----------------------------------------------------------------------

async def agree_time(db: Database, clock: Clock, case_id: str, at: object, agreed_by: object, attempt_id: object,
                     *, by: str, scope: repo.CaseScope = repo.ALL_CASES) -> int:
    """A time the debtor (or a third party) agreed to be called, in the answered call
    `attempt_id` (whose recording proves it): the policy allows a call near it even outside
    the usual window (never more often than the caps)."""
    if not isinstance(at, str):
        raise RuleInputRefused("at: an ISO time with its offset, e.g. 2026-12-04T19:30:00+08:00")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise RuleInputRefused("at: an ISO time with its offset, e.g. 2026-12-04T19:30:00+08:00") from None
    if when.tzinfo is None:
        raise RuleInputRefused("at: give the offset (+08:00): whose 19:30?")
    now = clock()
    if not now < when <= now + timedelta(days=AGREED_WITHIN_DAYS):
        raise RuleInputRefused(f"at: in the next {AGREED_WITHIN_DAYS} days")
    if agreed_by not in ("debtor", "third_party"):
        raise RuleInputRefused("agreed_by: debtor or third_party")
    async with db.session() as s:
        case = await case_in_reach(s, case_id, scope)
        attempt = await repo.get_attempt(s, attempt_id) if isinstance(attempt_id, str) and len(attempt_id) < 65 \
            else None
        if attempt is None or attempt.case_id != case.id or attempt.answered_at is None:
            raise RuleInputRefused("attempt_id: the answered, recorded call of this case in which it was agreed")
        row = await add_appointment(s, case, when, str(agreed_by), attempt, by=by, now=now)
        return row.id

