"""The dispositions' pages: the form on a case's page (one per call), the promises due
(by collector), a supervisor lifting a retired phone. Same cores as the API
(cases/dispositions_store.py, cases/rule_inputs.py), same guard; a refusal is shown in the
reader's language on the case's page, with nothing stored."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cases import dispositions_store as store
from cases import rule_inputs as rules
from cases.dispositions import DispositionRefused
from console import i18n
from console.deps import DEPS, principal
from console.dispositions_api import ATTEMPT_ID, due_of, refusal_text, today_on_the_floor
from console.endpoints import Endpoint, Param
from console.pages import case_action, locale_of, read_form, render, show_case
from console.params import CASE_ID_PARAM, case_id_of, id_number_of
from console.scope import case_scope
from people.accounts import Principal
from people.roles import Permission
from storage import repositories as repo
from storage.models import ATTEMPT_ID_PATTERN

FORM_FIELDS = ("code", "notes", "amount", "promise_date", "callback_at", "corrects")


def change_text(change: dict[str, Any], t: Any) -> str:
    """One change a disposition made, in words."""
    kind = change.get("change")
    if kind == "flag":
        return t("dispo.change.flag", flag=t(f"flag.{change.get('flag')}"))
    return t(f"dispo.change.{kind}")


async def dispose(request: web.Request) -> web.Response:
    """The disposition form of one call on the case's page."""
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    attempt_id = request.match_info["attempt_id"]
    if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
        raise web.HTTPNotFound(text="no such call")
    form = await read_form(request)
    entered = {name: form[name] for name in FORM_FIELDS if name in form}
    try:
        done = await store.record(deps.db, deps.clock, attempt_id, entered, by=who.username,
                                  scope=case_scope(who), case_id=case_id, phone=who.phone)
    except LookupError:
        raise web.HTTPNotFound(text=f"no such call of case {case_id}") from None
    except DispositionRefused as exc:
        message = t("error", message=refusal_text(exc, locale_of(request, who)))
        return await show_case(request, case_id, status=400, message=message, error=True, open_attempt=attempt_id)
    changes = "; ".join(change_text(c, t) for c in done.changes) or t("dispo.change.none")
    return await show_case(request, case_id, message=t("dispo.saved", id=done.id, code=t(f"dispo.code.{done.code}"),
                                                         changes=changes))


async def lift_retirement_form(request: web.Request, case_id: str, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    phone_id = id_number_of(request.match_info["phone_id"])
    if phone_id is None:
        raise LookupError(case_id)
    await rules.lift_retirement(deps.db, deps.clock, case_id, phone_id, form.get("why"), by=who.username,
                                scope=case_scope(who))
    return ""


async def follow_ups_page(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    try:
        due = due_of(request.query.get("due"), today_on_the_floor(request))
    except web.HTTPBadRequest:
        due = today_on_the_floor(request)
    rows = await store.promises_due(deps.db, due, case_scope(who))
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="follow_ups.listed", subject="cases",
                         due=due.isoformat(), cases=[r.case_id for r in rows], page=True)
    by_collector: dict[str | None, list[store.FollowUp]] = {}
    for r in rows:
        by_collector.setdefault(r.collector, []).append(r)
    return render(request, "follow_ups.html", due=due, by_collector=by_collector)


P = Permission


def _page(method: str, path: str, handler: Any, permission: Permission, summary: str, **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, permission, summary, page=True, produces="text/html", **extra)


ENDPOINTS = [
    _page("POST", "/cases/{case_id}/attempts/{attempt_id}/dispositions", dispose, P.CASE_DISPOSE,
          "Record what came of a call (form)", params=(CASE_ID_PARAM, ATTEMPT_ID)),
    _page("POST", "/cases/{case_id}/phones/{phone_id}/retirement/lift", case_action(lift_retirement_form),
          P.CASE_CLEAR, "Put a retired phone back in use (form)",
          params=(CASE_ID_PARAM, Param("phone_id", "path", {"type": "string"}))),
    _page("GET", "/follow-ups", follow_ups_page, P.CASE_VIEW, "Promises to pay due on a day, by collector",
          params=(Param("due", "query", {"type": "string"}),)),
]
