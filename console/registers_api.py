"""The registers over the API: templates, letters / SMS / lawyer letters, field visits
(cases/registers.py holds the rules, cases/registers_store.py stores and audits them).

    GET  /api/templates[?kind=K&usable=1]                 -> the templates
    POST /api/templates  {"kind", "name", "body"}          -> 201 a template (not usable until approved)
    POST /api/templates/{template_id}/approve              -> approved (by someone other than its author)
    POST /api/templates/{template_id}/retire {"reason"}    -> retired: no longer used
    GET  /api/cases/{case_id}/correspondence               -> the case's items, newest first
    POST /api/cases/{case_id}/correspondence {"template_id", "recipient_name", "relation", "channel",
                                              "address", "sent_at"?}      -> 201 the item
    POST /api/correspondence/{item_id}/reply {"reply", "reply_at"?}      -> the item with its reply
    GET  /api/cases/{case_id}/visits                      -> the case's field visits
    POST /api/cases/{case_id}/visits {"reason", "address", "team": [2 user names]} -> 201 the visit
    GET  /api/visits/{visit_id}                           -> a visit: times, report, attachments
    POST /api/visits/{visit_id}/decision {"decision": approve|refuse, "note"?}
    POST /api/visits/{visit_id}/steps {"step": departed|arrived|left|returned, "at"?}
    POST /api/visits/{visit_id}/report {"report"}
    POST /api/visits/{visit_id}/attachments?kind=photo|recording   multipart `file` -> 201
    GET  /api/visits/{visit_id}/attachments/{attachment_id}        -> the file (its reading audited)

A refusal is a 400 `{"error": <English>, "problem": <key>}` and nothing is stored; a case or
visit outside the reader's reach is a 404. Times are ISO 8601 with their offset.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from cases import registers_store as store
from cases.registers import STEPS, Channel, Kind, Recipient, RegisterRefused, moment_of
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param, json_object
from console.params import CASE_ID_PARAM, case_id_of, id_number_of
from console.scope import case_scope, phone_shown
from people.accounts import Principal
from people.roles import Permission, may
from storage import repositories as repo
from storage.names import case_subject
from storage.registers import CorrespondenceItem, FieldVisit, RegisterTemplate, VisitAttachment

ID_SCHEMA = {"type": "string", "pattern": r"^[0-9]{1,12}$"}
TEMPLATE_ID = Param("template_id", "path", ID_SCHEMA)
ITEM_ID = Param("item_id", "path", ID_SCHEMA)
VISIT_ID = Param("visit_id", "path", ID_SCHEMA)
ATTACHMENT_ID = Param("attachment_id", "path", ID_SCHEMA)
TIME = {"type": "string", "maxLength": 40, "description": "ISO 8601 with its offset, e.g. 2026-12-01T10:00+08:00"}

TEMPLATE_BODY = {"type": "object", "additionalProperties": False, "required": ["kind", "name", "body"],
                 "properties": {"kind": {"type": "string", "enum": [k.value for k in Kind]},
                                "name": {"type": "string", "maxLength": 100},
                                "body": {"type": "string", "maxLength": 20000}}}
REASON_BODY = {"type": "object", "additionalProperties": False, "required": ["reason"],
               "properties": {"reason": {"type": "string", "minLength": 4, "maxLength": 500}}}
ITEM_BODY = {"type": "object", "additionalProperties": False,
             "required": ["template_id", "recipient_name", "relation", "channel", "address"],
             "properties": {"template_id": {"type": "integer", "minimum": 1},
                            "recipient_name": {"type": "string", "maxLength": 100},
                            "relation": {"type": "string", "enum": [r.value for r in Recipient],
                                         "description": "never the employer / work unit, the authorities "
                                                        "or the residents' committee"},
                            "channel": {"type": "string", "enum": [c.value for c in Channel],
                                        "description": "never fax, never a postcard"},
                            "address": {"type": "string", "maxLength": 300,
                                        "description": "the postal address, e-mail address or mobile number"},
                            "sent_at": TIME}}
REPLY_BODY = {"type": "object", "additionalProperties": False, "required": ["reply"],
              "properties": {"reply": {"type": "string", "maxLength": 2000}, "reply_at": TIME}}
VISIT_BODY = {"type": "object", "additionalProperties": False, "required": ["reason", "address", "team"],
              "properties": {"reason": {"type": "string", "maxLength": 1000},
                             "address": {"type": "string", "maxLength": 300},
                             "team": {"type": "array", "items": {"type": "string", "maxLength": 32},
                                      "minItems": 2, "maxItems": 2, "description": "two user names"}}}
DECISION_BODY = {"type": "object", "additionalProperties": False, "required": ["decision"],
                 "properties": {"decision": {"type": "string", "enum": ["approve", "refuse"]},
                                "note": {"type": "string", "maxLength": 500,
                                         "description": "a refusal's reason (required), an approval's note"}}}
STEP_BODY = {"type": "object", "additionalProperties": False, "required": ["step"],
             "properties": {"step": {"type": "string", "enum": list(STEPS)}, "at": TIME}}
REPORT_BODY = {"type": "object", "additionalProperties": False, "required": ["report"],
               "properties": {"report": {"type": "string", "maxLength": 20000}}}


# -- shared by the pages ---------------------------------------------------------------

def reach_of(who: Principal) -> store.VisitReach:
    return store.VisitReach(case_scope(who), who.user_id)


def makes_visits(role: str) -> bool:
    """Whose role may be on a visit's team: those who may ask for one (they report its steps)."""
    return may(role, Permission.VISIT_REQUEST)


def refusal_text(exc: RegisterRefused, locale: str) -> str:
    """The refusal in the reader's language (the API answers in English), states, steps and
    kinds by their names."""
    t = i18n.translator(locale)
    values = dict(exc.values)
    if exc.key == "state":
        values["state"] = t(f"reg.state.{values['state']}")
        if values.get("action") in STEPS:
            values["action"] = t(f"reg.step.{values['action']}")
    if exc.key == "channel_kind":
        values["kind"] = t(f"reg.kind.{values['kind']}")
    if exc.key == "attachment_type":
        values["kind"] = t(f"reg.attachment_kind.{values['kind']}")
    return t(f"reg.problem.{exc.key}", **values)


def refused(exc: RegisterRefused, status: int = 400) -> web.Response:
    return web.json_response({"error": str(exc), "problem": exc.key}, status=status)


def address_shown(who: Principal, item: CorrespondenceItem) -> str:
    """An SMS's number masked like every phone number; an address as it is."""
    return phone_shown(who, item.address) if item.channel == Channel.SMS.value else item.address


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _id(request: web.Request, name: str) -> int:
    value = id_number_of(request.match_info[name])
    if value is None:
        raise web.HTTPBadRequest(text=f"invalid {name.replace('_', ' ')}")
    return value


def template_json(t: RegisterTemplate) -> dict[str, Any]:
    return {"id": t.id, "kind": t.kind, "name": t.name, "body": t.body, "created_by": t.created_by,
            "created_at": _iso(t.created_at), "approved_by": t.approved_by, "approved_at": _iso(t.approved_at),
            "retired_by": t.retired_by, "retired_at": _iso(t.retired_at), "retired_reason": t.retired_reason,
            "usable": t.approved_at is not None and t.retired_at is None}


def item_json(i: CorrespondenceItem, who: Principal, template: RegisterTemplate | None = None) -> dict[str, Any]:
    return {"id": i.id, "case_id": i.case_id, "kind": i.kind, "template_id": i.template_id,
            "template_name": template.name if template else None, "recipient_name": i.recipient_name,
            "relation": i.recipient_relation, "channel": i.channel, "address": address_shown(who, i),
            "sent_at": _iso(i.sent_at), "registered_by": i.registered_by, "registered_at": _iso(i.registered_at),
            "reply": i.reply, "reply_at": _iso(i.reply_at), "reply_registered_by": i.reply_registered_by}


def attachment_json(a: VisitAttachment) -> dict[str, Any]:
    return {"id": a.id, "kind": a.kind, "media_type": a.media_type, "file_name": a.file_name, "sha256": a.sha256,
            "size": a.size, "uploaded_by": a.uploaded_by, "uploaded_at": _iso(a.uploaded_at),
            "purged_at": _iso(a.purged_at),
            "href": None if a.path is None else f"/api/visits/{a.visit_id}/attachments/{a.id}"}


def visit_json(v: FieldVisit, team: tuple[str, str] | None = None,
               attachments: list[VisitAttachment] | None = None) -> dict[str, Any]:
    out = {"id": v.id, "case_id": v.case_id, "state": v.state, "reason": v.reason, "address": v.address,
           "requested_by": v.requested_by, "requested_at": _iso(v.requested_at),
           "decided_by": v.decided_by, "decided_at": _iso(v.decided_at), "decision_note": v.decision_note,
           "departed_at": _iso(v.departed_at), "arrived_at": _iso(v.arrived_at), "left_at": _iso(v.left_at),
           "returned_at": _iso(v.returned_at), "report": v.report, "reported_by": v.reported_by,
           "reported_at": _iso(v.reported_at), "purge_due_at": _iso(v.purge_due_at), "purged_at": _iso(v.purged_at)}
    if team is not None:
        out["team"] = list(team)
    if attachments is not None:
        out["attachments"] = [attachment_json(a) for a in attachments]
    return out


async def staged_upload(request: web.Request, visits_dir: Path) -> tuple[str, store.Staged, dict[str, str]]:
    """The `file` part of a multipart upload streamed into the visits' incoming directory,
    with the short text fields sent before it (a malformed body: 400; too large: 413)."""
    if request.content_type != "multipart/form-data":
        raise web.HTTPBadRequest(text="send the file as multipart/form-data, field 'file'")
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        async for part in reader:
            name = getattr(part, "name", None)
            if name != "file":
                if name and len(fields) < 20 and not getattr(part, "filename", None):
                    fields[name] = (await part.read_chunk(1024)).decode("utf-8", "replace")  # type: ignore[union-attr]
                continue

            async def chunks(part: Any = part) -> AsyncIterator[bytes]:
                while chunk := await part.read_chunk(256 * 1024):
                    yield chunk

            try:
                staged = await store.stage_upload(chunks(), visits_dir)
            except RegisterRefused as exc:
                raise web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=str(exc)) from None
            return getattr(part, "filename", None) or "upload", staged, fields
    except (ValueError, AssertionError, aiohttp.ClientPayloadError, HttpProcessingError) as exc:
        raise web.HTTPBadRequest(text=f"not a readable multipart upload ({type(exc).__name__})") from None
    raise web.HTTPBadRequest(text="no 'file' field in the upload")


def visits_dir_of(request: web.Request) -> Path:
    visits_dir = request.app[DEPS].visits_dir
    if visits_dir is None:
        raise web.HTTPServiceUnavailable(text="visit attachments are not configured (visits.dir)")
    return visits_dir


# -- templates ---------------------------------------------------------------------------

async def list_templates(request: web.Request) -> web.Response:
    kind = request.query.get("kind") or None
    if kind is not None and kind not in {k.value for k in Kind}:
        raise web.HTTPBadRequest(text=f"kind: one of {', '.join(k.value for k in Kind)}")
    rows = await store.templates(request.app[DEPS].db, kind=kind, usable_only=request.query.get("usable") == "1")
    return web.json_response([template_json(t) for t in rows])


async def add_template(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, TEMPLATE_BODY)
    try:
        row = await store.create_template(deps.db, deps.clock, body["kind"], body["name"], body["body"],
                                          by=who.username)
    except RegisterRefused as exc:
        return refused(exc)
    return web.json_response(template_json(row), status=201)


async def approve_template(request: web.Request) -> web.Response:
    who, deps, template_id = principal(request), request.app[DEPS], _id(request, "template_id")
    try:
        row = await store.approve_template(deps.db, deps.clock, template_id, by=who.username)
    except RegisterRefused as exc:
        return refused(exc, 404 if exc.key == "template" else 400)
    return web.json_response(template_json(row))


async def retire_template(request: web.Request) -> web.Response:
    who, deps, template_id = principal(request), request.app[DEPS], _id(request, "template_id")
    body = await json_object(request, REASON_BODY)
    try:
        row = await store.retire_template(deps.db, deps.clock, template_id, body["reason"], by=who.username)
    except RegisterRefused as exc:
        return refused(exc, 404 if exc.key == "template" else 400)
    return web.json_response(template_json(row))


# -- correspondence --------------------------------------------------------------------

async def list_items(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    try:
        items, templates = await store.items_of_case(deps.db, case_id, case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="correspondence.listed",
                         subject=case_subject(case_id), items=[i.id for i in items])
    return web.json_response([item_json(i, who, templates.get(i.template_id)) for i in items])


async def add_item(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    body = await json_object(request, ITEM_BODY)
    try:
        row = await store.register_item(
            deps.db, deps.clock, case_id, template_id=body["template_id"], recipient_name=body["recipient_name"],
            relation=body["relation"], channel=body["channel"], address=body["address"],
            sent_at=moment_of("sent_at", body.get("sent_at")), by=who.username, scope=case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    except RegisterRefused as exc:
        return refused(exc)
    return web.json_response(item_json(row, who), status=201)


async def add_reply(request: web.Request) -> web.Response:
    who, deps, item_id = principal(request), request.app[DEPS], _id(request, "item_id")
    body = await json_object(request, REPLY_BODY)
    try:
        row = await store.register_reply(deps.db, deps.clock, item_id, body["reply"],
                                         moment_of("reply_at", body.get("reply_at")), by=who.username,
                                         scope=case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no correspondence item {item_id}") from None
    except RegisterRefused as exc:
        return refused(exc)
    return web.json_response(item_json(row, who))


# -- field visits ----------------------------------------------------------------------

async def list_visits(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    try:
        rows = await store.visits_of_case(deps.db, case_id, case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="visits.listed",
                         subject=case_subject(case_id), visits=[v.id for v in rows])
    return web.json_response([visit_json(v) for v in rows])


async def add_visit(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    body = await json_object(request, VISIT_BODY)
    try:
        row = await store.request_visit(deps.db, deps.clock, case_id, reason=body["reason"], address=body["address"],
                                        team=body["team"], by=who.username, makes_visits=makes_visits,
                                        scope=case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    except RegisterRefused as exc:
        return refused(exc)
    return web.json_response(visit_json(row), status=201)


async def get_visit(request: web.Request) -> web.Response:
    who, deps, visit_id = principal(request), request.app[DEPS], _id(request, "visit_id")
    try:
        page = await store.visit_page(deps.db, deps.clock, visit_id, reach=reach_of(who), by=who.username)
    except LookupError:
        raise web.HTTPNotFound(text=f"no visit {visit_id}") from None
    return web.json_response(visit_json(page.visit, page.team, list(page.attachments)))


async def _visit_change(request: web.Request, schema: dict[str, Any], work: Any) -> web.Response:
    who, deps, visit_id = principal(request), request.app[DEPS], _id(request, "visit_id")
    body = await json_object(request, schema)
    try:
        row = await work(deps, who, visit_id, body)
    except LookupError:
        raise web.HTTPNotFound(text=f"no visit {visit_id}") from None
    except RegisterRefused as exc:
        return refused(exc)
    return web.json_response(visit_json(row))


async def decide(request: web.Request) -> web.Response:
    async def work(deps: Any, who: Principal, visit_id: int, body: dict[str, Any]) -> FieldVisit:
        decision = body["decision"]
        if decision not in ("approve", "refuse"):
            raise web.HTTPBadRequest(text="decision: approve or refuse")
        return await store.decide_visit(deps.db, deps.clock, visit_id, decision == "approve", body.get("note"),
                                        by=who.username, reach=reach_of(who))
    return await _visit_change(request, DECISION_BODY, work)


async def step(request: web.Request) -> web.Response:
    async def work(deps: Any, who: Principal, visit_id: int, body: dict[str, Any]) -> FieldVisit:
        return await store.record_step(deps.db, deps.clock, visit_id, body["step"], moment_of("at", body.get("at")),
                                       by=who.username, reach=reach_of(who))
    return await _visit_change(request, STEP_BODY, work)


async def report(request: web.Request) -> web.Response:
    async def work(deps: Any, who: Principal, visit_id: int, body: dict[str, Any]) -> FieldVisit:
        return await store.submit_report(deps.db, deps.clock, visit_id, body["report"], by=who.username,
                                         reach=reach_of(who))
    return await _visit_change(request, REPORT_BODY, work)


async def add_attachment(request: web.Request) -> web.Response:
    who, deps, visit_id = principal(request), request.app[DEPS], _id(request, "visit_id")
    visits_dir = visits_dir_of(request)
    file_name, staged, fields = await staged_upload(request, visits_dir)
    try:
        row = await store.add_attachment(deps.db, deps.clock, visits_dir, visit_id,
                                         request.query.get("kind") or fields.get("kind"), file_name, staged,
                                         by=who.username, reach=reach_of(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no visit {visit_id}") from None
    except RegisterRefused as exc:
        return refused(exc)
    return web.json_response(attachment_json(row), status=201)


async def get_attachment(request: web.Request) -> web.StreamResponse:
    who, deps = principal(request), request.app[DEPS]
    visit_id, attachment_id = _id(request, "visit_id"), _id(request, "attachment_id")
    visits_dir = visits_dir_of(request)
    try:
        found = await store.attachment_file(deps.db, deps.clock, visits_dir, visit_id, attachment_id,
                                            by=who.username, reach=reach_of(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no attachment {attachment_id} of visit {visit_id}") from None
    if not found.path.is_file():
        raise web.HTTPNotFound(text=f"the file of attachment {attachment_id} is missing")
    name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in found.file_name)
    return web.FileResponse(found.path, headers={"Content-Type": found.media_type,
                                                 "Content-Disposition": f'inline; filename="{name}"'})


P = Permission
TAGS = ("registers",)
ENDPOINTS = [
    Endpoint("GET", "/api/templates", list_templates, P.CASE_VIEW, "Letter, SMS and lawyer-letter templates",
             params=(Param("kind", "query", {"type": "string", "enum": [k.value for k in Kind]}),
                     Param("usable", "query", {"type": "string", "enum": ["0", "1"]},
                           description="1: only approved, not retired")), tags=TAGS),
    Endpoint("POST", "/api/templates", add_template, P.TEMPLATE_APPROVE,
             "Write a template (used once someone else approves it)", body=TEMPLATE_BODY, tags=TAGS,
             responses={201: "the template", 400: "refused: why"}),
    Endpoint("POST", "/api/templates/{template_id}/approve", approve_template, P.TEMPLATE_APPROVE,
             "Approve a template (not one's own)", params=(TEMPLATE_ID,), tags=TAGS,
             responses={200: "approved", 400: "refused: why", 404: "no such template"}),
    Endpoint("POST", "/api/templates/{template_id}/retire", retire_template, P.TEMPLATE_APPROVE,
             "Retire a template: no longer used", params=(TEMPLATE_ID,), body=REASON_BODY, tags=TAGS,
             responses={200: "retired", 400: "refused: why", 404: "no such template"}),
    Endpoint("GET", "/api/cases/{case_id}/correspondence", list_items, P.CASE_VIEW,
             "A case's letters, SMS and lawyer letters, with their replies", params=(CASE_ID_PARAM,), tags=TAGS,
             responses={200: "the items", 404: "no such case"}),
    Endpoint("POST", "/api/cases/{case_id}/correspondence", add_item, P.CORRESPONDENCE,
             "Register a letter, SMS or lawyer letter sent (an approved template; never to the employer; "
             "never by fax or postcard)", params=(CASE_ID_PARAM,), body=ITEM_BODY, tags=TAGS,
             responses={201: "the item", 400: "refused: why", 404: "no such case"}),
    Endpoint("POST", "/api/correspondence/{item_id}/reply", add_reply, P.CORRESPONDENCE,
             "Register the reply to an item (once)", params=(ITEM_ID,), body=REPLY_BODY, tags=TAGS,
             responses={200: "the item with its reply", 400: "refused: why", 404: "no such item"}),
    Endpoint("GET", "/api/cases/{case_id}/visits", list_visits, P.CASE_VIEW, "A case's field visits",
             params=(CASE_ID_PARAM,), tags=TAGS, responses={200: "the visits", 404: "no such case"}),
    Endpoint("POST", "/api/cases/{case_id}/visits", add_visit, P.VISIT_REQUEST,
             "Ask for a field visit, with its team of two", params=(CASE_ID_PARAM,), body=VISIT_BODY, tags=TAGS,
             responses={201: "the visit, requested", 400: "refused: why", 404: "no such case"}),
    Endpoint("GET", "/api/visits/{visit_id}", get_visit, P.CASE_VIEW, "A field visit: times, report, attachments",
             params=(VISIT_ID,), tags=TAGS, responses={200: "the visit", 404: "no such visit"}),
    Endpoint("POST", "/api/visits/{visit_id}/decision", decide, P.VISIT_APPROVE, "Approve or refuse a field visit",
             params=(VISIT_ID,), body=DECISION_BODY, tags=TAGS,
             responses={200: "decided", 400: "refused: why", 404: "no such visit"}),
    Endpoint("POST", "/api/visits/{visit_id}/steps", step, P.VISIT_REQUEST,
             "Report a visit's departure, arrival, leaving or return", params=(VISIT_ID,), body=STEP_BODY,
             tags=TAGS, responses={200: "recorded", 400: "refused: why", 404: "no such visit"}),
    Endpoint("POST", "/api/visits/{visit_id}/report", report, P.VISIT_REQUEST,
             "The visit report (after the return, with its photos and recordings)", params=(VISIT_ID,),
             body=REPORT_BODY, tags=TAGS, responses={200: "reported", 400: "refused: why", 404: "no such visit"}),
    Endpoint("POST", "/api/visits/{visit_id}/attachments", add_attachment, P.VISIT_REQUEST,
             "Attach a photo or recording to a visit (a private file)",
             params=(VISIT_ID, Param("kind", "query", {"type": "string", "enum": ["photo", "recording"]},
                                     required=True)),
             upload=True, tags=TAGS,
             responses={201: "the attachment", 400: "refused: why", 404: "no such visit",
                        413: "the file is too large", 503: "attachments are not configured (visits.dir)"}),
    Endpoint("GET", "/api/visits/{visit_id}/attachments/{attachment_id}", get_attachment, P.CASE_VIEW,
             "A visit's photo or recording (its reading audited)", params=(VISIT_ID, ATTACHMENT_ID), tags=TAGS,
             produces="application/octet-stream",
             responses={200: "the file", 404: "no such attachment, or purged",
                        503: "attachments are not configured (visits.dir)"}),
]
