"""The registers' rules, from the client's plan (pure: no I/O, no clock; `now` is given).

Letters (催缴函), SMS (短信) and lawyer letters (律师函):
- only a template the client allowed is used (必须使用经委托联通公司许可的模板): approved by
  someone other than its author, not retired, approved before the item was sent;
- never to the debtor's employer or work unit, nor to the police, procuratorate or courts,
  nor to the residents' or village committee (严禁向公检法等司法部门或欠费人工作单位、所属街道
  居委会/村委会发送催收函件): the recipient is the debtor, their family or a third party;
- never by fax or on a postcard (不得以传真或明信片的方式发送);
- each item is registered: to whom (name, relation), when, how (channel, address or number),
  and its reply (登记备案, 回复);
- nothing is sent on a case that is not open, or while collection is paused on it (a
  dispute or a fraud suspicion).

Field visits (外访):
- a request with its reason, the address and a team of two (以2人小组形式外访), approved
  or refused by a supervisor (审批后);
- departure, arrival, leaving and return are each reported (外访出门、到达、离开、回抵过程均报
  告后台), in that order, their times never running backwards;
- the visit report, with at least one photo and one recording (实地调查必须具备所有录音、照片
  及外访报告);
- its data is kept six months (所有数据保存6个月), counted as RETENTION = 183 days from the
  return (from the request when the visit never returned), then purged.

A refusal is a `RegisterRefused`: `key` names the problem (one of PROBLEMS; the console's
catalog words it as `reg.problem.<key>`), `values` fill its blanks, str() is the English.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from cases.intake import normalise_phone
from cases.refusals import Refused

RETENTION = timedelta(days=183)  # "6 months": half of a leap year, so never less than six calendar months
MAX_ATTACHMENT_BYTES = 256 * 1024 * 1024  # an hour of WAV at 16 kHz is ~115 MB
PAUSING_FLAGS = ("dispute", "fraud")  # collection pauses (the plan: 暂停催收); care does not


class Kind(StrEnum):
    LETTER = "letter"  # 催缴函
    SMS = "sms"  # 催收短信
    LAWYER_LETTER = "lawyer_letter"  # 律师函


class Channel(StrEnum):
    POST = "post"
    REGISTERED_MAIL = "registered_mail"
    COURIER = "courier"
    EMAIL = "email"
    SMS = "sms"
    IN_PERSON = "in_person"  # handed to the debtor (直接送达)


class Recipient(StrEnum):
    DEBTOR = "debtor"
    FAMILY = "family"
    THIRD_PARTY = "third_party"


# what the plan forbids, each with its own words
REFUSED_CHANNELS: dict[str, str] = {"fax": "channel_fax", "postcard": "channel_postcard"}
REFUSED_RECIPIENTS: dict[str, str] = {
    "employer": "recipient_employer", "work": "recipient_employer", "work_unit": "recipient_employer",
    "court": "recipient_authority", "police": "recipient_authority", "procuratorate": "recipient_authority",
    "residents_committee": "recipient_community", "village_committee": "recipient_community",
}
CHANNELS_OF: dict[Kind, tuple[Channel, ...]] = {
    Kind.LETTER: (Channel.POST, Channel.REGISTERED_MAIL, Channel.COURIER, Channel.EMAIL, Channel.IN_PERSON),
    Kind.LAWYER_LETTER: (Channel.POST, Channel.REGISTERED_MAIL, Channel.COURIER, Channel.EMAIL, Channel.IN_PERSON),
    Kind.SMS: (Channel.SMS,),
}
POSTAL = (Channel.POST, Channel.REGISTERED_MAIL, Channel.COURIER, Channel.IN_PERSON)

NAME_MAX, RECIPIENT_MAX, ADDRESS_MIN, ADDRESS_MAX = 100, 100, 6, 300
BODY_MIN, BODY_MAX, SMS_MAX = 10, 20000, 500
REPLY_MAX, REASON_MIN, REASON_MAX, NOTE_MAX = 2000, 4, 1000, 500
REPORT_MIN, REPORT_MAX = 20, 20000

PROBLEMS: dict[str, str] = {
    "kind": "kind: one of {kinds}",
    "name": "name: 2 to {max} characters",
    "body": "body: {min} to {max} characters",
    "sms_body": "an SMS template: at most {max} characters",
    "template": "template: no template {id}",
    "template_unapproved": "the template {name} is not approved: only approved templates are used",
    "template_retired": "the template {name} was retired on {when}: it is no longer used",
    "approved_already": "the template {name} is already approved",
    "approve_retired": "the template {name} is retired: it cannot be approved",
    "approve_own": "a template is approved by someone other than its author ({by})",
    "retired_already": "the template {name} is already retired",
    "reason": "give a reason ({min} to {max} characters)",
    "recipient_name": "recipient_name: 1 to {max} characters",
    "relation": "relation: one of {relations}",
    "recipient_employer": "never to the debtor's employer or work unit",
    "recipient_authority": "never to the police, the procuratorate or the courts",
    "recipient_community": "never to the residents' or village committee",
    "channel": "channel: one of {channels}",
    "channel_fax": "never by fax",
    "channel_postcard": "never on a postcard",
    "channel_kind": "a {kind} goes by {channels}",
    "address": "address: the postal address it went to ({min} to {max} characters)",
    "email": "address: the e-mail address it went to",
    "mobile": "address: the mobile number the SMS went to",
    "time": "{field}: a date and time with its offset, e.g. 2026-12-01T10:00+08:00",
    "future": "{field}: not in the future",
    "before_approval": "sent_at: before the template was approved ({approved})",
    "case_closed": "the case is {status}: nothing more is sent and no visit is made",
    "case_paused": "collection is paused on this case ({flag}): nothing is sent and no visit is made until it is cleared",
    "reply": "reply: 1 to {max} characters",
    "reply_twice": "the item already has its reply (registered {when})",
    "reply_before_sent": "reply_at: before the item was sent ({sent})",
    "visit_reason": "reason: why the visit is needed ({min} to {max} characters)",
    "visit_address": "address: where the team goes ({min} to {max} characters)",
    "team_size": "team: exactly two people",
    "team_same": "team: two different people",
    "team_unknown": "team: no user {name}",
    "team_disabled": "team: {name} is disabled",
    "team_role": "team: {name}'s role ({role}) does not make field visits",
    "visit_own": "a visit is approved or refused by someone who neither asked for it nor makes it ({by})",
    "note": "note: at most {max} characters",
    "state": "the visit is {state}: it cannot be {action} now",
    "purged": "the visit's data was purged on {when}",
    "step": "step: one of {steps}",
    "step_order": "{step} at {at} is before {previous} at {previous_at}",
    "report": "report: {min} to {max} characters",
    "report_evidence": "a visit report comes with its evidence: attach at least one photo and one recording first",
    "attachment_kind": "kind: photo or recording",
    "attachment_type": "a {kind} is one of {types}: this file is not",
    "attachment_empty": "the file is empty",
    "attachment_large": "the file is larger than {max_mb} MB",
}


class RegisterRefused(Refused):
    """What was asked is refused; nothing is stored. `key` is one of PROBLEMS."""

    def __init__(self, key: str, **values: object) -> None:
        assert key in PROBLEMS, key
        self.key = key
        self.values = values
        super().__init__(PROBLEMS[key].format(**values))


def _text(value: object, key: str, low: int, high: int, **values: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not low <= len(text) <= high or "\x00" in text:
        raise RegisterRefused(key, **values)
    return text


def _names(items: object) -> str:
    return ", ".join(str(i) for i in items)  # type: ignore[attr-defined]


def moment_of(field: str, value: object, *, naive_zone: tzinfo | None = None) -> datetime | None:
    """A date and time as typed (ISO 8601), aware; None when none is given. A time without
    its offset is read in `naive_zone` (a page's datetime-local field), else refused."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RegisterRefused("time", field=field) from None
    else:
        raise RegisterRefused("time", field=field)
    if at.tzinfo is None:
        if naive_zone is None:
            raise RegisterRefused("time", field=field)
        at = at.replace(tzinfo=naive_zone)
    return at


def _not_future(field: str, at: datetime, now: datetime) -> datetime:
    if at > now:
        raise RegisterRefused("future", field=field)
    return at


def check_case(status: str, flags: list[str] | tuple[str, ...]) -> None:
    """Letters, SMS and visits only for an open case on which collection is not paused."""
    if status != "open":
        raise RegisterRefused("case_closed", status=status)
    for flag in PAUSING_FLAGS:
        if flag in flags:
            raise RegisterRefused("case_paused", flag=flag)


# -- templates ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NewTemplate:
    kind: Kind
    name: str
    body: str


@dataclass(frozen=True, slots=True)
class TemplateFacts:
    id: int
    kind: str
    name: str
    created_by: str
    approved_at: datetime | None
    retired_at: datetime | None


def kind_of(value: object) -> Kind:
    try:
        return Kind(value)  # type: ignore[arg-type]
    except ValueError:
        raise RegisterRefused("kind", kinds=_names(Kind)) from None


def check_template(kind: object, name: object, body: object) -> NewTemplate:
    k = kind_of(kind)
    text = _text(name, "name", 2, NAME_MAX, max=NAME_MAX)
    content = body.strip() if isinstance(body, str) and "\x00" not in body else ""
    if k is Kind.SMS and len(content) > SMS_MAX:
        raise RegisterRefused("sms_body", max=SMS_MAX)
    if not BODY_MIN <= len(content) <= BODY_MAX:
        raise RegisterRefused("body", min=BODY_MIN, max=BODY_MAX)
    return NewTemplate(k, text, content)


def check_approval(template: TemplateFacts, by: str) -> None:
    """A template is approved once, by someone other than its author, and never once retired."""
    if template.retired_at is not None:
        raise RegisterRefused("approve_retired", name=template.name)
    if template.approved_at is not None:
        raise RegisterRefused("approved_already", name=template.name)
    if template.created_by == by:
        raise RegisterRefused("approve_own", by=by)


def check_retirement(template: TemplateFacts, reason: object) -> str:
    if template.retired_at is not None:
        raise RegisterRefused("retired_already", name=template.name)
    return reason_of(reason)


def reason_of(reason: object, low: int = REASON_MIN, high: int = 500) -> str:
    return _text(reason, "reason", low, high, min=low, max=high)


def usable(template: TemplateFacts, at: datetime) -> None:
    """May this template be used for an item sent at `at`? Approved at or before it, retired
    neither before it nor since (a retired template is used no more, whenever it was)."""
    if template.approved_at is None:
        raise RegisterRefused("template_unapproved", name=template.name)
    if template.retired_at is not None:
        raise RegisterRefused("template_retired", name=template.name, when=template.retired_at.isoformat())
    if at < template.approved_at:
        raise RegisterRefused("before_approval", approved=template.approved_at.isoformat())


# -- correspondence --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NewItem:
    kind: Kind
    template_id: int
    recipient_name: str
    relation: Recipient
    channel: Channel
    address: str
    sent_at: datetime


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def relation_of(value: object) -> Recipient:
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in REFUSED_RECIPIENTS:
        raise RegisterRefused(REFUSED_RECIPIENTS[text])
    try:
        return Recipient(text)
    except ValueError:
        raise RegisterRefused("relation", relations=_names(Recipient)) from None


def channel_of(value: object) -> Channel:
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in REFUSED_CHANNELS:
        raise RegisterRefused(REFUSED_CHANNELS[text])
    try:
        return Channel(text)
    except ValueError:
        raise RegisterRefused("channel", channels=_names(Channel)) from None


def address_for(channel: Channel, value: object) -> str:
    """The address as kept: a postal address, an e-mail address, a mobile number (normalised)."""
    text = value.strip() if isinstance(value, str) and "\x00" not in value else ""
    if channel is Channel.SMS:
        number = normalise_phone(text) if len(text) <= 40 else None
        if number is None or number.startswith("0"):  # a landline takes no SMS
            raise RegisterRefused("mobile")
        return number
    if channel is Channel.EMAIL:
        if len(text) > 254 or not _EMAIL.fullmatch(text):
            raise RegisterRefused("email")
        return text
    return _text(text, "address", ADDRESS_MIN, ADDRESS_MAX, min=ADDRESS_MIN, max=ADDRESS_MAX)


def check_item(template: TemplateFacts, *, recipient_name: object, relation: object, channel: object,
               address: object, sent_at: datetime | None, now: datetime) -> NewItem:
    """One letter, SMS or lawyer letter as it is registered (RegisterRefused: why not)."""
    who = _text(recipient_name, "recipient_name", 1, RECIPIENT_MAX, max=RECIPIENT_MAX)
    to = relation_of(relation)
    how = channel_of(channel)
    kind = kind_of(template.kind)
    if how not in CHANNELS_OF[kind]:
        raise RegisterRefused("channel_kind", kind=kind.value, channels=_names(CHANNELS_OF[kind]))
    where = address_for(how, address)
    when = _not_future("sent_at", sent_at or now, now)
    usable(template, when)
    return NewItem(kind, template.id, who, to, how, where, when)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    at: datetime


def check_reply(*, sent_at: datetime, replied_at: datetime | None, registered_at: datetime | None,
                text: object, at: datetime | None, now: datetime) -> Reply:
    """The reply to an item, registered once, not before the item was sent nor in the future."""
    if replied_at is not None:
        raise RegisterRefused("reply_twice", when=(registered_at or replied_at).isoformat())
    reply = _text(text, "reply", 1, REPLY_MAX, max=REPLY_MAX)
    when = _not_future("reply_at", at or now, now)
    if when < sent_at:
        raise RegisterRefused("reply_before_sent", sent=sent_at.isoformat())
    return Reply(reply, when)


# -- field visits ----------------------------------------------------------------------

class VisitState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"
    DEPARTED = "departed"
    ARRIVED = "arrived"
    LEFT = "left"
    RETURNED = "returned"
    REPORTED = "reported"
    PURGED = "purged"


S = VisitState
# a step reported from the field: the state it follows, the state it makes, the time's column
STEPS: dict[str, tuple[VisitState, VisitState, str]] = {
    "departed": (S.APPROVED, S.DEPARTED, "departed_at"),
    "arrived": (S.DEPARTED, S.ARRIVED, "arrived_at"),
    "left": (S.ARRIVED, S.LEFT, "left_at"),
    "returned": (S.LEFT, S.RETURNED, "returned_at"),
}
ATTACHING = (S.DEPARTED, S.ARRIVED, S.LEFT, S.RETURNED)  # photos and recordings: from departure to the report
MOVES: dict[VisitState, tuple[VisitState, ...]] = {  # the whole machine (a test walks it)
    S.REQUESTED: (S.APPROVED, S.REFUSED, S.PURGED),
    S.APPROVED: (S.DEPARTED, S.PURGED),
    S.REFUSED: (S.PURGED,),
    S.DEPARTED: (S.ARRIVED, S.PURGED),
    S.ARRIVED: (S.LEFT, S.PURGED),
    S.LEFT: (S.RETURNED, S.PURGED),
    S.RETURNED: (S.REPORTED, S.PURGED),
    S.REPORTED: (S.PURGED,),
    S.PURGED: (),
}


@dataclass(frozen=True, slots=True)
class Member:
    """A user named for a visit's team, as the store found them."""

    id: int
    username: str
    role: str
    disabled: bool
    makes_visits: bool  # their role may take part in a visit (people.roles: visit.request)


@dataclass(frozen=True, slots=True)
class NewVisit:
    reason: str
    address: str
    team: tuple[int, int]


@dataclass(frozen=True, slots=True)
class VisitFacts:
    state: VisitState
    requested_at: datetime
    requested_by: str
    team: tuple[str, str]  # usernames
    decided_at: datetime | None = None
    departed_at: datetime | None = None
    arrived_at: datetime | None = None
    left_at: datetime | None = None
    returned_at: datetime | None = None
    purged_at: datetime | None = None
    photos: int = 0
    recordings: int = 0


def team_of(names: object) -> tuple[str, str]:
    """Two distinct user names, as given."""
    if not isinstance(names, (list, tuple)) or len(names) != 2 or not all(isinstance(n, str) for n in names):
        raise RegisterRefused("team_size")
    a, b = (n.strip() for n in names)
    if not a or not b:
        raise RegisterRefused("team_size")
    if a == b:
        raise RegisterRefused("team_same")
    return a, b


def check_team(names: tuple[str, str], found: dict[str, Member]) -> tuple[int, int]:
    """The team of two as stored: each an active user whose role makes visits."""
    for name in names:
        member = found.get(name)
        if member is None:
            raise RegisterRefused("team_unknown", name=name)
        if member.disabled:
            raise RegisterRefused("team_disabled", name=name)
        if not member.makes_visits:
            raise RegisterRefused("team_role", name=name, role=member.role)
    a, b = found[names[0]], found[names[1]]
    if a.id == b.id:
        raise RegisterRefused("team_same")
    return a.id, b.id


def check_request(reason: object, address: object, names: object) -> tuple[str, str, tuple[str, str]]:
    """A visit's request as typed: its reason, where, the team's two names."""
    why = _text(reason, "visit_reason", REASON_MIN, REASON_MAX, min=REASON_MIN, max=REASON_MAX)
    where = _text(address, "visit_address", ADDRESS_MIN, ADDRESS_MAX, min=ADDRESS_MIN, max=ADDRESS_MAX)
    return why, where, team_of(names)


def _alive(visit: VisitFacts) -> None:
    if visit.state is S.PURGED or visit.purged_at is not None:
        raise RegisterRefused("purged", when=(visit.purged_at or visit.requested_at).isoformat())


def check_decision(visit: VisitFacts, approve: bool, note: object, by: str) -> str | None:
    """Approve (note optional) or refuse (a reason) a requested visit; not by who asked or goes."""
    _alive(visit)
    if visit.state is not S.REQUESTED:
        raise RegisterRefused("state", state=visit.state.value, action="approved" if approve else "refused")
    if by == visit.requested_by or by in visit.team:
        raise RegisterRefused("visit_own", by=by)
    if not approve:
        return reason_of(note)
    text = note.strip() if isinstance(note, str) else ""
    if len(text) > NOTE_MAX or "\x00" in text:
        raise RegisterRefused("note", max=NOTE_MAX)
    return text or None


@dataclass(frozen=True, slots=True)
class StepDone:
    state: VisitState
    column: str
    at: datetime


def check_step(visit: VisitFacts, step: object, at: datetime | None, now: datetime) -> StepDone:
    """departed, arrived, left, returned: each after the one before, none in the future."""
    _alive(visit)
    if not isinstance(step, str) or step not in STEPS:
        raise RegisterRefused("step", steps=_names(STEPS))
    before, after, column = STEPS[step]
    if visit.state is not before:
        raise RegisterRefused("state", state=visit.state.value, action=step)
    when = _not_future(step, at or now, now)
    previous = {"departed": ("approved", visit.decided_at), "arrived": ("departed", visit.departed_at),
                "left": ("arrived", visit.arrived_at), "returned": ("left", visit.left_at)}[step]
    if previous[1] is not None and when < previous[1]:
        raise RegisterRefused("step_order", step=step, at=when.isoformat(), previous=previous[0],
                              previous_at=previous[1].isoformat())
    return StepDone(after, column, when)


def check_report(visit: VisitFacts, text: object) -> str:
    """The report, once the team is back, with at least one photo and one recording."""
    _alive(visit)
    if visit.state is not S.RETURNED:
        raise RegisterRefused("state", state=visit.state.value, action="reported")
    report = _text(text, "report", REPORT_MIN, REPORT_MAX, min=REPORT_MIN, max=REPORT_MAX)
    if visit.photos < 1 or visit.recordings < 1:
        raise RegisterRefused("report_evidence")
    return report


# -- attachments -----------------------------------------------------------------------

class AttachmentKind(StrEnum):
    PHOTO = "photo"
    RECORDING = "recording"


def _ftyp(head: bytes, brands: tuple[bytes, ...]) -> bool:
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in brands


# (media type, file extension, does the file's start say it is one)
FORMATS: dict[AttachmentKind, tuple[tuple[str, str, object], ...]] = {
    AttachmentKind.PHOTO: (
        ("image/jpeg", "jpg", lambda h: h.startswith(b"\xff\xd8\xff")),
        ("image/png", "png", lambda h: h.startswith(b"\x89PNG\r\n\x1a\n")),
        ("image/heic", "heic", lambda h: _ftyp(h, (b"heic", b"heix", b"mif1", b"msf1"))),
    ),
    AttachmentKind.RECORDING: (
        ("audio/wav", "wav", lambda h: h.startswith(b"RIFF") and h[8:12] == b"WAVE"),
        ("audio/mpeg", "mp3", lambda h: h.startswith(b"ID3") or (len(h) > 1 and h[0] == 0xFF and h[1] & 0xE0 == 0xE0)),
        ("audio/mp4", "m4a", lambda h: _ftyp(h, (b"M4A ", b"mp42", b"isom", b"3gp4", b"3gp5"))),
        ("audio/amr", "amr", lambda h: h.startswith(b"#!AMR")),
        ("audio/ogg", "ogg", lambda h: h.startswith(b"OggS")),
    ),
}


@dataclass(frozen=True, slots=True)
class AttachmentType:
    kind: AttachmentKind
    media_type: str
    extension: str


def check_attachment(visit: VisitFacts, kind: object, head: bytes, size: int) -> AttachmentType:
    """A photo or recording of a visit under way (departed up to its report), its type told by
    its first bytes, not by its name."""
    _alive(visit)
    try:
        k = AttachmentKind(kind)  # type: ignore[arg-type]
    except ValueError:
        raise RegisterRefused("attachment_kind") from None
    if visit.state not in ATTACHING:
        raise RegisterRefused("state", state=visit.state.value, action="given attachments")
    if size <= 0:
        raise RegisterRefused("attachment_empty")
    if size > MAX_ATTACHMENT_BYTES:
        raise RegisterRefused("attachment_large", max_mb=MAX_ATTACHMENT_BYTES // (1024 * 1024))
    for media_type, extension, looks in FORMATS[k]:
        if looks(head):  # type: ignore[operator]
            return AttachmentType(k, media_type, extension)
    raise RegisterRefused("attachment_type", kind=k.value, types=_names(e for _m, e, _l in FORMATS[k]))


def file_name_of(value: object) -> str:
    """The uploaded file's name as shown (never a path: only its last part, at most 200 characters)."""
    text = value if isinstance(value, str) else ""
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(ch for ch in text if ch.isprintable())
    return text[-200:] or "upload"


# -- retention -------------------------------------------------------------------------

def purge_due_at(requested_at: datetime, returned_at: datetime | None = None) -> datetime:
    """When a visit's data goes: RETENTION after the team's return, or after the request for
    a visit that never returned (refused, never made, abandoned)."""
    return (returned_at or requested_at) + RETENTION


def due_for_purge(due_at: datetime, purged_at: datetime | None, now: datetime) -> bool:
    """Kept for the whole RETENTION, due at its very end (exactly 183 days after: due)."""
    return purged_at is None and now >= due_at
