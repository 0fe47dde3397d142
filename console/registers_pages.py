"""The registers' pages: templates and the visits under way (/registers), a case's letters,
SMS, lawyer letters and visits (/cases/{id}/registers), a visit's own page (/visits/{id}:
its decision, its steps, its report, its photos and recordings). Same cores as the API
(cases/registers_store.py), same guard; a refusal is shown in the reader's language with
nothing stored. Times typed on a page are the floor's clock (Beijing)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cases import registers_store as store
from cases.registers import (ATTACHING, CHANNELS_OF, RETENTION, STEPS, AttachmentKind, Kind, Recipient,
                             RegisterRefused, VisitState, moment_of)
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint
from console.pages import locale_of, read_form, render
from console.params import CASE_ID_PARAM, case_id_of
from console.registers_api import (ITEM_ID, TEMPLATE_ID, VISIT_ID, _id, address_shown, makes_visits,
                                   reach_of, refusal_text, staged_upload, visits_dir_of)
from console.scope import case_scope
from people.roles import Permission, may
from storage import repositories as repo
from storage.names import case_subject

P = Permission
ZONE = i18n.DISPLAY_ZONE


def _can(who: Any) -> dict[str, bool]:
    return {name: may(who.role, perm) for name, perm in (
        ("approve_template", P.TEMPLATE_APPROVE), ("register", P.CORRESPONDENCE),
        ("request_visit", P.VISIT_REQUEST), ("approve_visit", P.VISIT_APPROVE), ("work_visit", P.VISIT_REQUEST))}


# -- /registers: templates and visits under way --------------------------------------------

async def registers_page(request: web.Request, *, status: int = 200, message: str | None = None,
                         error: bool = False) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    rows = await store.templates(deps.db)
    under_way = await store.visits_under_way(deps.db, reach_of(who))
    return render(request, "registers.html", status=status, message=message, error=error, templates=rows,
                  kinds=[k.value for k in Kind], visits=under_way, can=_can(who))


def _template_action(work: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        who = principal(request)
        locale = locale_of(request, who)
        form = await read_form(request)
        try:
            done = await work(request, who, form)
        except RegisterRefused as exc:
            status = 404 if exc.key == "template" else 400
            return await registers_page(request, status=status, message=i18n.translator(locale)(
                "error", message=refusal_text(exc, locale)), error=True)
        return await registers_page(request, message=done)

    handler.__name__ = work.__name__
    return handler


async def template_add(request: web.Request, who: Any, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    row = await store.create_template(deps.db, deps.clock, form.get("kind"), form.get("name"), form.get("body"),
                                      by=who.username)
    return i18n.translator(locale_of(request, who))("reg.template_saved", id=row.id, name=row.name)


async def template_approve(request: web.Request, who: Any, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    row = await store.approve_template(deps.db, deps.clock, _id(request, "template_id"), by=who.username)
    return i18n.translator(locale_of(request, who))("reg.template_approved", name=row.name)


async def template_retire(request: web.Request, who: Any, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    row = await store.retire_template(deps.db, deps.clock, _id(request, "template_id"), form.get("reason"),
                                      by=who.username)
    return i18n.translator(locale_of(request, who))("reg.template_retired", name=row.name)


# -- a case's registers ----------------------------------------------------------------

async def show_case_registers(request: web.Request, case_id: str, *, status: int = 200,
                              message: str | None = None, error: bool = False) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    scope = case_scope(who)
    try:
        async with deps.db.session() as s:
            case = await repo.get_case(s, case_id, scope)
        items, templates = await store.items_of_case(deps.db, case_id, scope)
        visits = await store.visits_of_case(deps.db, case_id, scope)
    except (LookupError, repo.NotFound):
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="correspondence.listed",
                         subject=case_subject(case_id), items=[i.id for i in items], visits=[v.id for v in visits],
                         page=True)
    usable = await store.templates(deps.db, usable_only=True)
    channels = sorted({c.value for kind in Kind for c in CHANNELS_OF[kind]}, key=lambda c: c != "post")
    return render(request, "case_registers.html", status=status, message=message, error=error, case=case,
                  items=items, templates=templates, usable=usable, visits=visits, can=_can(who),
                  relations=[r.value for r in Recipient], channels=channels,
                  address_of=lambda i: address_shown(who, i))


async def case_registers_page(request: web.Request) -> web.Response:
    return await show_case_registers(request, case_id_of(request))


def _case_action(work: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        case_id, who = case_id_of(request), principal(request)
        locale = locale_of(request, who)
        form = await read_form(request)
        try:
            done = await work(request, case_id, who, form)
        except LookupError:
            raise web.HTTPNotFound(text=f"no case {case_id}") from None
        except RegisterRefused as exc:
            return await show_case_registers(request, case_id, status=400, message=i18n.translator(locale)(
                "error", message=refusal_text(exc, locale)), error=True)
        if isinstance(done, web.StreamResponse):
            return done
        return await show_case_registers(request, case_id, message=done)

    handler.__name__ = work.__name__
    return handler


def _typed_id(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 12 else None


async def item_add(request: web.Request, case_id: str, who: Any, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    row = await store.register_item(
        deps.db, deps.clock, case_id, template_id=_typed_id(form.get("template_id")),
        recipient_name=form.get("recipient_name"), relation=form.get("relation"), channel=form.get("channel"),
        address=form.get("address"), sent_at=moment_of("sent_at", form.get("sent_at"), naive_zone=ZONE),
        by=who.username, scope=case_scope(who))
    return i18n.translator(locale_of(request, who))("reg.item_saved", id=row.id)


async def reply_add(request: web.Request, case_id: str, who: Any, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    item_id = _id(request, "item_id")
    await store.register_reply(deps.db, deps.clock, item_id, form.get("reply"),
                               moment_of("reply_at", form.get("reply_at"), naive_zone=ZONE), by=who.username,
                               scope=case_scope(who), case_id=case_id)
    return i18n.translator(locale_of(request, who))("reg.reply_saved", id=item_id)


async def visit_request(request: web.Request, case_id: str, who: Any, form: dict[str, str]) -> web.StreamResponse:
    deps = request.app[DEPS]
    row = await store.request_visit(deps.db, deps.clock, case_id, reason=form.get("reason"),
                                    address=form.get("address"), team=[form.get("member_a", ""),
                                                                       form.get("member_b", "")],
                                    by=who.username, makes_visits=makes_visits, scope=case_scope(who))
    raise web.HTTPSeeOther(f"/visits/{row.id}")


# -- a visit ---------------------------------------------------------------------------

async def show_visit(request: web.Request, visit_id: int, *, status: int = 200, message: str | None = None,
                     error: bool = False) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    try:
        page = await store.visit_page(deps.db, deps.clock, visit_id, reach=reach_of(who), by=who.username, page=True)
    except LookupError:
        raise web.HTTPNotFound(text=f"no visit {visit_id}") from None
    visit = page.visit
    state = VisitState(visit.state)
    next_step = next((name for name, (before, _after, _col) in STEPS.items() if before is state), None)
    return render(request, "visit.html", status=status, message=message, error=error, visit=visit, team=page.team,
                  attachments=page.attachments, can=_can(who), next_step=next_step, steps=list(STEPS),
                  attaching=state in ATTACHING, reporting=state is VisitState.RETURNED,
                  deciding=state is VisitState.REQUESTED, kinds=[k.value for k in AttachmentKind],
                  retention_days=RETENTION.days, photos=sum(a.kind == "photo" for a in page.attachments),
                  recordings=sum(a.kind == "recording" for a in page.attachments))


async def visit_page(request: web.Request) -> web.Response:
    return await show_visit(request, _id(request, "visit_id"))


class _PageRefused(Exception):
    """Refused before the core was asked (an unreadable or too large upload): the message, shown."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _visit_action(work: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        who, visit_id = principal(request), _id(request, "visit_id")
        locale = locale_of(request, who)
        try:
            done = await work(request, visit_id, who)
        except LookupError:
            raise web.HTTPNotFound(text=f"no visit {visit_id}") from None
        except RegisterRefused as exc:
            return await show_visit(request, visit_id, status=400, message=i18n.translator(locale)(
                "error", message=refusal_text(exc, locale)), error=True)
        except _PageRefused as exc:
            return await show_visit(request, visit_id, status=exc.status, message=str(exc), error=True)
        return await show_visit(request, visit_id, message=done)

    handler.__name__ = work.__name__
    return handler


async def visit_decide(request: web.Request, visit_id: int, who: Any) -> str:
    deps, form = request.app[DEPS], await read_form(request)
    approve = form.get("decision") == "approve"
    if form.get("decision") not in ("approve", "refuse"):
        raise web.HTTPBadRequest(text="decision: approve or refuse")
    row = await store.decide_visit(deps.db, deps.clock, visit_id, approve, form.get("note"), by=who.username,
                                   reach=reach_of(who))
    return i18n.translator(locale_of(request, who))("reg.decided", state=i18n.translator(
        locale_of(request, who))(f"reg.state.{row.state}"))


async def visit_step(request: web.Request, visit_id: int, who: Any) -> str:
    deps, form = request.app[DEPS], await read_form(request)
    step = form.get("step", "")
    row = await store.record_step(deps.db, deps.clock, visit_id, step,
                                  moment_of(step or "at", form.get("at"), naive_zone=ZONE), by=who.username,
                                  reach=reach_of(who))
    t = i18n.translator(locale_of(request, who))
    return t("reg.step_saved", step=t(f"reg.step.{step}"), at=i18n.moment(getattr(row, STEPS[step][2]),
                                                                         locale_of(request, who)))


async def visit_report(request: web.Request, visit_id: int, who: Any) -> str:
    deps, form = request.app[DEPS], await read_form(request)
    await store.submit_report(deps.db, deps.clock, visit_id, form.get("report"), by=who.username,
                              reach=reach_of(who))
    return i18n.translator(locale_of(request, who))("reg.report_saved")


async def visit_attach(request: web.Request, visit_id: int, who: Any) -> str:
    deps = request.app[DEPS]
    visits_dir = visits_dir_of(request)
    t = i18n.translator(locale_of(request, who))
    try:
        file_name, staged, fields = await staged_upload(request, visits_dir)
    except web.HTTPException as exc:
        if exc.status in (400, 413):
            raise _PageRefused(t("error", message=exc.text or ""), exc.status) from None
        raise
    row = await store.add_attachment(deps.db, deps.clock, visits_dir, visit_id, fields.get("kind"), file_name,
                                     staged, by=who.username, reach=reach_of(who))
    return t("reg.attached", kind=t(f"reg.attachment_kind.{row.kind}"), name=row.file_name or "")


def _page(method: str, path: str, handler: Any, permission: Permission, summary: str, **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, permission, summary, page=True, produces="text/html", **extra)


ENDPOINTS = [
    _page("GET", "/registers", registers_page, P.CASE_VIEW, "Templates and the field visits under way"),
    _page("POST", "/registers/templates", _template_action(template_add), P.TEMPLATE_APPROVE,
          "Write a template (form)"),
    _page("POST", "/registers/templates/{template_id}/approve", _template_action(template_approve),
          P.TEMPLATE_APPROVE, "Approve a template (form)", params=(TEMPLATE_ID,)),
    _page("POST", "/registers/templates/{template_id}/retire", _template_action(template_retire),
          P.TEMPLATE_APPROVE, "Retire a template (form)", params=(TEMPLATE_ID,)),
    _page("GET", "/cases/{case_id}/registers", case_registers_page, P.CASE_VIEW,
          "A case's letters, SMS, lawyer letters and field visits", params=(CASE_ID_PARAM,)),
    _page("POST", "/cases/{case_id}/correspondence", _case_action(item_add), P.CORRESPONDENCE,
          "Register a letter, SMS or lawyer letter (form)", params=(CASE_ID_PARAM,)),
    _page("POST", "/cases/{case_id}/correspondence/{item_id}/reply", _case_action(reply_add), P.CORRESPONDENCE,
          "Register a reply (form)", params=(CASE_ID_PARAM, ITEM_ID)),
    _page("POST", "/cases/{case_id}/visits", _case_action(visit_request), P.VISIT_REQUEST,
          "Ask for a field visit (form)", params=(CASE_ID_PARAM,)),
    _page("GET", "/visits/{visit_id}", visit_page, P.CASE_VIEW, "A field visit", params=(VISIT_ID,)),
    _page("POST", "/visits/{visit_id}/decision", _visit_action(visit_decide), P.VISIT_APPROVE,
          "Approve or refuse a field visit (form)", params=(VISIT_ID,)),
    _page("POST", "/visits/{visit_id}/steps", _visit_action(visit_step), P.VISIT_REQUEST,
          "Report a visit's step (form)", params=(VISIT_ID,)),
    _page("POST", "/visits/{visit_id}/report", _visit_action(visit_report), P.VISIT_REQUEST,
          "The visit report (form)", params=(VISIT_ID,)),
    _page("POST", "/visits/{visit_id}/attachments", _visit_action(visit_attach), P.VISIT_REQUEST,
          "Attach a photo or recording (form)", params=(VISIT_ID,), upload=True),
]
