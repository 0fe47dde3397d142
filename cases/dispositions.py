"""Dispositions: what came of a call, as coded data (the client's case flow,
../shared/seed/: 有联 / 无联, 承诺缴费, 谈判无效, 否认欠费, 涉嫌欺诈、伪冒, 第三方, 重大疾病、
怀有身孕, 错号, 约定时间). Pure: no I/O, no clock (``now`` is passed in).

Two functions hold every rule:

- ``validate(raw, context) -> Disposition`` checks what a person entered (the form's or
  the API's strings) against the call it is about, or raises ``DispositionRefused``
  naming the problem (its ``key``: the console's catalog words it, ``dispo.problem.<key>``,
  in zh-CN and English);
- ``effects(disposition, case, phone, corrected) -> tuple[Change, ...]`` says what the
  disposition changes in the dialing policy's inputs. The table ``EFFECTS`` below is the
  whole of it; cases/dispositions_store.py applies the changes, nothing else decides them.

Effects only make the policy stricter, except an agreed time (which lifts the window
near that time, never a suppression). A correction is a new disposition naming the one
it corrects: it undoes only what is safe to undo by itself (the agreed time the corrected
one made is cancelled; a corrected promise stops being a follow-up); a dispute, fraud or
care flag, a refusal or a retired phone stays until a supervisor lifts it (fail closed).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo


class Code(StrEnum):
    CONTACTED = "contacted"  # 有联: reached the debtor
    NOT_CONTACTED = "not_contacted"  # 无联: no answer, or nobody who could speak for the debt
    PROMISE_TO_PAY = "promise_to_pay"  # 承诺缴费: an amount by a date
    NEGOTIATION_FAILED = "negotiation_failed"  # 谈判无效
    DISPUTE = "dispute"  # 否认欠费 / 对金额有异议: collection pauses
    FRAUD = "fraud"  # 涉嫌欺诈、伪冒 (identity theft): back to the client
    THIRD_PARTY_CONSENTED = "third_party_consented"  # 第三方同意配合
    THIRD_PARTY_REFUSED = "third_party_refused"  # 第三方不愿提供: not called again
    ILLNESS_OR_PREGNANCY = "illness_or_pregnancy"  # 重大疾病、怀有身孕: care
    WRONG_NUMBER = "wrong_number"  # 错号: not the debtor's, nor anyone who knows them
    CALL_BACK = "call_back"  # 约定时间: a time the person on the line agreed to


CODES: tuple[str, ...] = tuple(c.value for c in Code)
NOTES_MAX = 2000
NOTES_MIN_WHEN_NEEDED = 4
PROMISE_WITHIN_DAYS = 90
AGREED_WITHIN_DAYS = 60  # an agreed call time: in the next 60 days (cases/rule_inputs.py's too)
MAX_AMOUNT_CENTS = 100_000_000_000  # a typo guard when the arrears are unknown (1e9 yuan)
FLOOR_ZONE = "Asia/Shanghai"  # whose "today" a promise date is judged by when the debtor's zone is unknown

# every code but "not contacted" reports a conversation: the call must have been answered
NEEDS_ANSWER: frozenset[Code] = frozenset(Code) - {Code.NOT_CONTACTED}
# the supervisor (dispute), the client (fraud) and whoever calls next (care) need to know what was said
NEEDS_NOTES: frozenset[Code] = frozenset({Code.DISPUTE, Code.FRAUD, Code.ILLNESS_OR_PREGNANCY})

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# every problem validation names: the console's catalog (console/i18n.py) words each one,
# `dispo.problem.<key>`, in zh-CN and English (a test holds them equal to this set)
PROBLEMS: frozenset[str] = frozenset({
    "code", "needs_answer", "amount", "amount_over", "promise_date", "promise_past", "promise_far",
    "callback_at", "callback_zone", "callback_past", "callback_far", "refusal_on_debtor", "notes",
    "notes_needed", "corrects", "corrected_already",
})


class DispositionRefused(ValueError):
    """What was entered is refused; nothing is stored. ``key`` names the problem (one of
    ``PROBLEMS``: the catalog's ``dispo.problem.<key>`` words it), ``values`` fill its blanks."""

    def __init__(self, key: str, **values: object) -> None:
        assert key in PROBLEMS, key
        self.key = key
        self.values = values
        super().__init__(f"{key}: {values}" if values else key)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What validation needs to know about the call a disposition is about."""

    now: datetime  # aware
    answered: bool
    phone_kind: str  # "debtor" | "third_party"
    zone: str | None = None  # the callee's IANA zone when there is exactly one, else None
    arrears_cents: int | None = None
    open_ids: frozenset[int] = frozenset()  # this call's dispositions not yet corrected
    corrected: Mapping[int, int] = field(default_factory=dict)  # this call's corrected ones: id -> by


@dataclass(frozen=True, slots=True)
class Disposition:
    """A checked disposition: only the fields its code uses are set."""

    code: Code
    notes: str = ""
    amount_cents: int | None = None
    promise_date: date | None = None
    callback_at: datetime | None = None  # aware
    corrects: int | None = None


def _text(raw: Mapping[str, object], name: str) -> str | None:
    """A field as text; absent, None and blank are all "not given"."""
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "\x00"  # never valid: true/false is not a value of any field
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return "\x00"
    value = value.strip()
    return value or None


def _amount(text: str | None, arrears_cents: int | None) -> int:
    if text is None or not _AMOUNT.fullmatch(text):
        raise DispositionRefused("amount")
    try:
        cents = int(Decimal(text) * 100)
    except InvalidOperation:  # pragma: no cover  (the pattern admits only decimals)
        raise DispositionRefused("amount") from None
    if cents <= 0 or cents > MAX_AMOUNT_CENTS:
        raise DispositionRefused("amount")
    if arrears_cents is not None and arrears_cents > 0 and cents > arrears_cents:
        raise DispositionRefused("amount_over", arrears=f"{Decimal(arrears_cents) / 100:.2f}")
    return cents


def _local_today(now: datetime, zone: str | None) -> date:
    return now.astimezone(ZoneInfo(zone or FLOOR_ZONE)).date()


def _promise_date(text: str | None, ctx: CallContext) -> date:
    if text is None or not _DATE.fullmatch(text):
        raise DispositionRefused("promise_date")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DispositionRefused("promise_date") from None
    today = _local_today(ctx.now, ctx.zone)
    if day < today:
        raise DispositionRefused("promise_past", today=today.isoformat())
    if day > today + timedelta(days=PROMISE_WITHIN_DAYS):
        raise DispositionRefused("promise_far", days=PROMISE_WITHIN_DAYS)
    return day


def _callback_at(text: str | None, ctx: CallContext) -> datetime:
    """The agreed time: the debtor's local wall-clock time (a form's datetime-local), or an
    ISO time with its offset (the API). Naive needs the callee's one known zone."""
    if text is None or len(text) > 40:
        raise DispositionRefused("callback_at")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise DispositionRefused("callback_at") from None
    if when.tzinfo is None:
        if not _LOCAL_TIME.fullmatch(text):
            raise DispositionRefused("callback_at")
        if ctx.zone is None:
            raise DispositionRefused("callback_zone")
        when = when.replace(tzinfo=ZoneInfo(ctx.zone))
    if when <= ctx.now:
        raise DispositionRefused("callback_past")
    if when > ctx.now + timedelta(days=AGREED_WITHIN_DAYS):
        raise DispositionRefused("callback_far", days=AGREED_WITHIN_DAYS)
    return when


def _corrects(raw: Mapping[str, object], ctx: CallContext) -> int | None:
    value = raw.get("corrects")
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise DispositionRefused("corrects")
    if value in ctx.corrected:
        raise DispositionRefused("corrected_already", id=value, by=ctx.corrected[value])
    if value not in ctx.open_ids:
        raise DispositionRefused("corrects")
    return value


def validate(raw: Mapping[str, object], ctx: CallContext) -> Disposition:
    """The disposition entered (strings as a form sends them, or JSON values), checked
    against the call. Fields its code does not use are ignored (a form sends its hidden
    fields too); the first problem found is raised."""
    try:
        code = Code(raw.get("code"))  # type: ignore[arg-type]
    except ValueError:
        raise DispositionRefused("code", codes=", ".join(CODES)) from None
    notes = raw.get("notes")
    if notes is None:
        notes = ""
    if not isinstance(notes, str) or len(notes) > NOTES_MAX:
        raise DispositionRefused("notes", max=NOTES_MAX)
    notes = _CONTROL.sub("", notes).strip()
    if code in NEEDS_ANSWER and not ctx.answered:
        raise DispositionRefused("needs_answer", code=code.value)
    if code in NEEDS_NOTES and len(notes) < NOTES_MIN_WHEN_NEEDED:
        raise DispositionRefused("notes_needed", min=NOTES_MIN_WHEN_NEEDED, code=code.value)
    if code is Code.THIRD_PARTY_REFUSED and ctx.phone_kind != "third_party":
        raise DispositionRefused("refusal_on_debtor")
    corrects = _corrects(raw, ctx)
    if code is Code.PROMISE_TO_PAY:
        return Disposition(code, notes, amount_cents=_amount(_text(raw, "amount"), ctx.arrears_cents),
                           promise_date=_promise_date(_text(raw, "promise_date"), ctx), corrects=corrects)
    if code is Code.CALL_BACK:
        return Disposition(code, notes, callback_at=_callback_at(_text(raw, "callback_at"), ctx),
                           corrects=corrects)
    return Disposition(code, notes, corrects=corrects)


# -- effects ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CaseState:
    """The case as the effects see it."""

    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PhoneState:
    """The phone called, as the effects see it."""

    id: int
    kind: str = "debtor"
    refused: bool = False
    retired: bool = False


@dataclass(frozen=True, slots=True)
class Corrected:
    """The disposition a correction corrects: what it left that a correction may undo."""

    code: Code
    appointment_id: int | None = None
    appointment_live: bool = False  # its agreed time still stands (not cancelled)


@dataclass(frozen=True, slots=True)
class RaiseFlag:
    """Pause the case: dispute (until a supervisor clears it), fraud (referred to the
    client), care (until a supervisor approves calls)."""

    flag: str


@dataclass(frozen=True, slots=True)
class RefuseThirdParty:
    """The third party at this phone is not called again about this debt."""

    phone_id: int


@dataclass(frozen=True, slots=True)
class RetirePhone:
    """The number is not the debtor's, nor anyone's who knows them: not dialled for this case."""

    phone_id: int


@dataclass(frozen=True, slots=True)
class AddAppointment:
    """An agreed time, bound to the recorded call it was agreed in: the policy allows a call
    near it even outside the calling window."""

    at: datetime
    agreed_by: str  # "debtor" | "third_party"


@dataclass(frozen=True, slots=True)
class CancelAppointment:
    """The agreed time a corrected disposition made no longer stands."""

    appointment_id: int


Change = RaiseFlag | RefuseThirdParty | RetirePhone | AddAppointment | CancelAppointment


def _flag(name: str):  # noqa: ANN202  (an effect rule)
    def rule(d: Disposition, case: CaseState, phone: PhoneState) -> tuple[Change, ...]:
        return () if name in case.flags else (RaiseFlag(name),)
    return rule


def _refuse(d: Disposition, case: CaseState, phone: PhoneState) -> tuple[Change, ...]:
    return () if phone.refused or phone.kind != "third_party" else (RefuseThirdParty(phone.id),)


def _retire(d: Disposition, case: CaseState, phone: PhoneState) -> tuple[Change, ...]:
    return () if phone.retired else (RetirePhone(phone.id),)


def _appointment(d: Disposition, case: CaseState, phone: PhoneState) -> tuple[Change, ...]:
    assert d.callback_at is not None  # validate() set it for this code
    return (AddAppointment(d.callback_at, "third_party" if phone.kind == "third_party" else "debtor"),)


# code -> what it changes in the policy's inputs (codes not here change none of them:
# contacted, not contacted, negotiation failed, a third party's consent; a promise to pay
# is kept on the disposition itself and becomes a follow-up due on its date)
EFFECTS = {
    Code.DISPUTE: _flag("dispute"),
    Code.FRAUD: _flag("fraud"),
    Code.ILLNESS_OR_PREGNANCY: _flag("care"),
    Code.THIRD_PARTY_REFUSED: _refuse,
    Code.WRONG_NUMBER: _retire,
    Code.CALL_BACK: _appointment,
}


def effects(d: Disposition, case: CaseState, phone: PhoneState,
            corrected: Corrected | None = None) -> tuple[Change, ...]:
    """What entering ``d`` changes, in order: first what the correction undoes, then what
    its code does. A change already in place is not repeated (a second dispute on a
    disputed case changes nothing)."""
    undo: tuple[Change, ...] = ()
    if corrected is not None and corrected.appointment_id is not None and corrected.appointment_live:
        undo = (CancelAppointment(corrected.appointment_id),)
    rule = EFFECTS.get(d.code)
    return undo + (rule(d, case, phone) if rule else ())


def change_json(change: Change) -> dict[str, object]:
    """A change as kept with the disposition and in the audit."""
    match change:
        case RaiseFlag(flag):
            return {"change": "flag", "flag": flag}
        case RefuseThirdParty(phone_id):
            return {"change": "third_party_refused", "phone_id": phone_id}
        case RetirePhone(phone_id):
            return {"change": "phone_retired", "phone_id": phone_id}
        case AddAppointment(at, agreed_by):
            return {"change": "appointment", "at": at.isoformat(), "agreed_by": agreed_by}
        case CancelAppointment(appointment_id):
            return {"change": "appointment_cancelled", "appointment_id": appointment_id}
    raise TypeError(change)  # pragma: no cover
