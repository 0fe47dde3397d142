"""The complaints' pages: the list (due soon and overdue marked), the registration form, one
complaint's page (its case's calls with their dispositions and notes, its recordings with the
way to play them, the outcome, the follow-up call, closing, a supervisor's leave to dial, the
time left) and the banner every page shows a complaint handler while complaints are due soon
or overdue. Same cores as the API (cases/complaints_store.py), same guard; a refusal is shown
in the reader's language with nothing stored."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from cases import complaints_store as store
from cases.complaints import OUTCOME_MAX, SOURCES, SUMMARY_MAX, ComplaintRefused, pauses_dialing, time_left
from cases.dispositions_store import corrections
from console import i18n
from console.complaints_api import CALLER_ROLES, COMPLAINT_ID, complaint_id_of, free_text_shown, refusal_text
from console.deps import DEPS, principal
from console.dialing import DialNotPossible, DialRefused, request_dial
from console.endpoints import PAGE_EXTRAS, Endpoint, Param
from console.pages import locale_of, read_form, render
from console.scope import case_scope
from people.accounts import Principal
from people.roles import Permission, may
from storage import repositories as repo

log = logging.getLogger("dunline.console")
P = Permission


def left_text(left: timedelta, t: Any, *, closed: bool = False) -> str:
    """`5 h 20 min left`, or `overdue by 1 h 5 min`; closed: how long before the deadline, or after."""
    minutes = int(abs(left.total_seconds()) // 60)
    hours, minutes = divmod(minutes, 60)
    in_time = left.total_seconds() > 0
    if closed:
        return t("complaints.closed_in_time" if in_time else "complaints.closed_late", h=hours, m=minutes)
    return t("complaints.left" if in_time else "complaints.late", h=hours, m=minutes)


async def alarm_banner(request: web.Request, who: Principal) -> dict[str, Any]:
    """For a complaint handler: how many complaints within reach are overdue or due soon (one
    indexed query); nothing when none are (or the database cannot say just now)."""
    if not may(who.role, P.COMPLAINT_MANAGE):
        return {}
    deps = request.app[DEPS]
    try:
        async with deps.db.session() as s:
            overdue, due_soon = await store.alarm_counts(s, deps.clock(), case_scope(who))
    except SQLAlchemyError as exc:
        log.warning("complaint banner left out: %s", exc)
        return {}
    return {"complaint_alarms": {"overdue": overdue, "due_soon": due_soon}} if overdue or due_soon else {}


async def refresh_banner(request: web.Request, who: Principal) -> None:
    extras = {k: v for k, v in request.get(PAGE_EXTRAS, {}).items() if k != "complaint_alarms"}
    request[PAGE_EXTRAS] = {**extras, **await alarm_banner(request, who)}


# -- the list and registering -------------------------------------------------------------

async def complaints_page(request: web.Request, *, status: int = 200, message: str | None = None,
                          error: bool = False) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    showing = request.query.get("status", "open")
    showing = showing if showing in ("open", "closed", "all") else "open"
    now = deps.clock()
    rows = await store.list_complaints(deps.db, now, case_scope(who), status=showing)
    async with deps.db.session() as s:
        await repo.audit(s, at=now, actor=who.username, action="complaints.listed", subject="complaints",
                         complaints=[r.complaint.id for r in rows], page=True)
    t = i18n.translator(locale_of(request, who))
    return render(request, "complaints.html", status=status, message=message, error=error, rows=rows, showing=showing,
                  left_of=lambda c: left_text(time_left(store.clock_facts(c), now), t),
                  text_of=lambda text: free_text_shown(who, text))


async def new_complaint_page(request: web.Request, *, status: int = 200, message: str | None = None,
                             error: bool = False, entered: dict[str, str] | None = None) -> web.Response:
    entered = entered or {"case_id": request.query.get("case", "")[:64]}
    return render(request, "complaint_new.html", status=status, message=message, error=error, entered=entered,
                  sources=SOURCES, summary_max=SUMMARY_MAX)


async def register_form(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    form = await read_form(request)
    entered = {k: form.get(k, "") for k in ("source", "summary", "case_id", "collector")}
    try:
        c = await store.register(deps.db, deps.clock, entered, by=who.username, scope=case_scope(who),
                                 caller_roles=CALLER_ROLES)
    except ComplaintRefused as exc:
        return await new_complaint_page(request, status=400, error=True, entered=entered,
                                        message=_refusal(request, who, exc))
    # to the complaint's own address: reloading it registers nothing twice
    raise web.HTTPSeeOther(f"/complaints/{c.id}?registered=1")


def _refusal(request: web.Request, who: Principal, exc: ComplaintRefused) -> str:
    locale = locale_of(request, who)
    return i18n.translator(locale)("error", message=refusal_text(exc, locale))


# -- one complaint ----------------------------------------------------------------------

async def show_complaint(request: web.Request, complaint_id: int, *, status: int = 200, message: str | None = None,
                         error: bool = False) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    try:
        g = await store.gather(deps.db, deps.clock, complaint_id, by=who.username, scope=case_scope(who), page=True)
    except LookupError:
        raise web.HTTPNotFound(text=f"no complaint {complaint_id}") from None
    c, now = g.complaint, deps.clock()
    t = i18n.translator(locale_of(request, who))
    if request.method == "POST":  # the banner as this change left it (the guard asked before the change)
        await refresh_banner(request, who)
    can = {name: may(who.role, perm) for name, perm in (
        ("dial", P.CASE_DIAL), ("allow", P.COMPLAINT_ALLOW_DIALING), ("recordings", P.RECORDING_ACCESS),
        ("case", P.CASE_VIEW))}
    numbers = g.numbers
    return render(request, "complaint.html", status=status, message=message, error=error, g=g, c=c,
                  can=can, left=left_text(time_left(store.clock_facts(c), now), t, closed=c.closed_at is not None),
                  paused=pauses_dialing(c.case_id, c.closed_at, c.dialing_allowed_at),
                  text_of=lambda text: free_text_shown(who, text, numbers),
                  corrected=corrections([d for rows in g.dispositions.values() for d in rows]),
                  recordings_why=t("complaint.recordings_why", id=c.id), outcome_max=OUTCOME_MAX)


async def complaint_page(request: web.Request) -> web.Response:
    complaint_id = complaint_id_of(request)
    t = i18n.translator(locale_of(request, principal(request)))
    registered = request.query.get("registered") == "1"
    return await show_complaint(request, complaint_id,
                                message=t("complaint.registered", id=complaint_id) if registered else None)


def complaint_action(work: Any) -> Any:
    """A form on the complaint's page: do it, then show the complaint with what came of it."""
    async def handler(request: web.Request) -> web.Response:
        complaint_id, who = complaint_id_of(request), principal(request)
        t = i18n.translator(locale_of(request, who))
        form = await read_form(request)
        try:
            done = await work(request, complaint_id, who, form)
        except LookupError:
            raise web.HTTPNotFound(text=f"no complaint {complaint_id}") from None
        except ComplaintRefused as exc:
            status = 409 if exc.key in ("closed", "outcome_set", "no_outcome", "allowed_already", "no_case") else 400
            return await show_complaint(request, complaint_id, status=status, error=True,
                                        message=_refusal(request, who, exc))
        except _DialFailed as exc:
            return await show_complaint(request, complaint_id, status=exc.status, error=True, message=str(exc))
        return await show_complaint(request, complaint_id, message=done or t("done"))

    handler.__name__ = work.__name__
    return handler


class _DialFailed(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def outcome_form(request: web.Request, complaint_id: int, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    await store.set_outcome(deps.db, deps.clock, complaint_id, form.get("outcome"), by=who.username,
                            scope=case_scope(who))
    return ""


async def close_form(request: web.Request, complaint_id: int, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    await store.close(deps.db, deps.clock, complaint_id, by=who.username, scope=case_scope(who))
    return ""


async def allow_dialing_form(request: web.Request, complaint_id: int, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    await store.allow_dialing(deps.db, deps.clock, complaint_id, form.get("why"), by=who.username,
                              scope=case_scope(who))
    return ""


async def follow_up_form(request: web.Request, complaint_id: int, who: Principal, form: dict[str, str]) -> str:
    """The follow-up call, placed as any dial of the case (the policy, the gate, the recording),
    then linked to the complaint. A reader who handles no complaints finds none here."""
    deps = request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    if not may(who.role, P.COMPLAINT_MANAGE):
        raise LookupError(complaint_id)
    complaint, case = await store.complaint_and_case(deps.db, complaint_id, case_scope(who))
    if complaint.closed_at is not None or case is None:
        raise ComplaintRefused("closed" if complaint.closed_at is not None else "no_case")
    phone = next((p for p in case.phones if str(p.id) == form.get("phone", "")), None)
    if phone is None:
        raise _DialFailed(t("error", message=t("complaint.choose_phone")), 400)
    try:
        outcome = await request_dial(deps, who, case, phone.number, page=True, complaint_id=complaint_id)
    except DialNotPossible as exc:
        raise _DialFailed(t("error", message=str(exc)), 404) from None
    if isinstance(outcome, DialRefused):
        raise _DialFailed(t("case.dial_refused", rule=outcome.rule, reason=outcome.reason), outcome.status)
    await store.link_follow_up(deps.db, deps.clock, complaint_id, outcome.id, by=who.username, scope=case_scope(who))
    return t("complaint.follow_up_placed", id=outcome.id)


def _page(method: str, path: str, handler: Any, permission: Permission, summary: str, **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, permission, summary, page=True, produces="text/html", **extra)


ENDPOINTS = [
    _page("GET", "/complaints", complaints_page, P.COMPLAINT_MANAGE, "Complaints (due soon and overdue marked)",
          params=(Param("status", "query", {"type": "string", "enum": ["open", "closed", "all"]}),)),
    _page("GET", "/complaints/new", new_complaint_page, P.COMPLAINT_MANAGE, "Register a complaint (the form)",
          params=(Param("case", "query", {"type": "string"}),)),
    _page("POST", "/complaints", register_form, P.COMPLAINT_MANAGE, "Register a complaint (form)"),
    _page("GET", "/complaints/{complaint_id}", complaint_page, P.COMPLAINT_MANAGE,
          "A complaint with its case's calls, dispositions, notes and recordings",
          params=(COMPLAINT_ID, Param("registered", "query", {"type": "string"}))),
    _page("POST", "/complaints/{complaint_id}/outcome", complaint_action(outcome_form), P.COMPLAINT_MANAGE,
          "Set the outcome (form)", params=(COMPLAINT_ID,)),
    _page("POST", "/complaints/{complaint_id}/follow-up", complaint_action(follow_up_form), P.CASE_DIAL,
          "Place the follow-up call (form)", params=(COMPLAINT_ID,)),
    _page("POST", "/complaints/{complaint_id}/close", complaint_action(close_form), P.COMPLAINT_MANAGE,
          "Close (form)", params=(COMPLAINT_ID,)),
    _page("POST", "/complaints/{complaint_id}/allow-dialing", complaint_action(allow_dialing_form),
          P.COMPLAINT_ALLOW_DIALING, "Let the case be dialled while open (form)", params=(COMPLAINT_ID,)),
]
