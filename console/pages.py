"""The console's pages: server-rendered HTML (Jinja2, autoescaped), zh-CN or English, no
JavaScript. Each page is an `Endpoint` with `page=True` behind the same guard as the API
(signed out: to the sign-in page; a role that may not: 403); forms carry the session's
CSRF token. Pages call the same cores as the API (cases/*, people/*), and every view of a
debtor's data is audited like the API's.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from cases import rule_inputs as rules
from cases.assign_store import assign, workload
from cases.assignment import Rule
from cases.batches import BatchImporter, batch_summaries, import_errors
from cases.casework import STATUSES, add_phone, set_status
from cases.dispositions import CODES, NOTES_MAX
from cases.dispositions_store import callee_zone, corrections
from cases.intake import Relation
from cases.payments import balance_cents
from cases.payments_store import payments_for_case
from cases.refusals import Refused
from console import i18n
from console.batches_api import read_upload, run_import
from console.deps import DEPS, PRINCIPAL, principal
from console.dialing import DialNotPossible, DialRefused, request_dial
from console.endpoints import PAGE_EXTRAS, Endpoint, Param
from console.params import CASE_ID_PARAM, case_id_of, id_number_of
from console.scope import (case_scope, client_only, id_number_shown, masked_text, phone_shown, team_limit,
                           view_case)
from console.session_api import clear_session_cookie, set_session_cookie, start_session
from dialer.policy.model import CASE_FLAGS
from people.accounts import AccountError, Principal, SignInRefused
from people.roles import Permission, Role, may
from storage import repositories as repo
from storage.intake import BatchImport

HERE = Path(__file__).resolve().parent
LANG_COOKIE = "dunline_lang"
PAGE_SIZE = 50
LISTED_STATUSES = (*STATUSES, "settled")  # settled: paid in full (cases/payments_store.py), never set by hand
ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
P = Permission
NAV: list[tuple[str, str, Permission]] = [
    ("/cases", "nav.cases", P.CASE_VIEW), ("/batches", "nav.batches", P.BATCH_VIEW),
    ("/assignment", "nav.assignment", P.ASSIGN), ("/rules/do-not-call", "nav.rules", P.SUPPRESSION_MANAGE),
    ("/rules/caller-ids", "nav.rules", P.CALLER_ID_MANAGE), ("/users", "nav.users", P.USER_MANAGE),
    ("/reports", "nav.reports", P.REPORT_VIEW), ("/follow-ups", "nav.follow_ups", P.CASE_VIEW),
    ("/payments", "nav.payments", P.PAYMENT_IMPORT),
    ("/floor", "nav.floor", P.FLOOR_WORK), ("/wallboard", "nav.wallboard", P.FLOOR_VIEW),
    ("/campaigns", "nav.campaigns", P.FLOOR_VIEW),
    ("/registers", "nav.registers", P.CASE_VIEW),
    ("/qc/queue", "nav.qc_queue", P.QC_SCORE), ("/qc/scores", "nav.qc_scores", P.QC_VIEW),
    ("/complaints", "nav.complaints", P.COMPLAINT_MANAGE),
]


def locale_of(request: web.Request, who: Principal | None = None) -> str:
    return i18n.pick_locale(request.cookies.get(LANG_COOKIE), who.locale if who else None,
                            accept_language=request.headers.get("Accept-Language", ""))


def render(request: web.Request, template: str, *, status: int = 200, message: str | None = None,
           error: bool = False, **context: Any) -> web.Response:
    who: Principal | None = context.pop("who", None) or _maybe_principal(request)
    locale = locale_of(request, who)
    token = who.csrf_token if who else ""
    html = ENV.get_template(template).render(
        who=who, locale=locale, t=i18n.translator(locale), here=request.path_qs,
        nav=[(href, key) for href, key, perm in NAV if who and may(who.role, perm)],
        active="/" + request.path.strip("/").split("/")[0] if request.path != "/" else "/",
        money=lambda cents: i18n.money(cents, locale), day=lambda d: i18n.day(d, locale),
        moment=lambda m: i18n.moment(m, locale), number=lambda n: i18n.number(n, locale),
        shown=(lambda n: phone_shown(who, n)) if who else (lambda n: n),
        csrf=lambda: Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)}">'),
        message=message, message_kind="error" if error else "ok", **{**request.get(PAGE_EXTRAS, {}), **context})
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def _maybe_principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def _safe_next(value: str | None) -> str:
    """Only a path of this console (never //evil.example or https://...)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


async def read_form(request: web.Request) -> dict[str, str]:
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# -- sign-in --------------------------------------------------------------------------

async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_safe_next(request.query.get("next")))


async def login_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    next_path = _safe_next(form.get("next"))
    t = i18n.translator(locale_of(request))
    try:
        signed = await start_session(request, form.get("username", ""), form.get("password", ""))
    except SignInRefused as exc:
        key = "login.throttled" if exc.retry_after is not None else "login.refused"
        return render(request, "login.html", status=429 if exc.retry_after else 401, next=next_path,
                      message=t(key), error=True)
    except AccountError:
        return render(request, "login.html", status=400, next=next_path, message=t("login.refused"), error=True)
    response = web.HTTPSeeOther(next_path)
    set_session_cookie(request, response, signed.token)
    raise response


async def logout(request: web.Request) -> web.Response:
    await request.app[DEPS].accounts.sign_out(principal(request))
    response = web.HTTPSeeOther("/login")
    clear_session_cookie(response)
    raise response


async def switch_language(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    response = web.HTTPSeeOther(_safe_next(request.query.get("next")))
    if code in i18n.LOCALES:
        response.set_cookie(LANG_COOKIE, code, httponly=True, samesite="Strict", path="/", max_age=365 * 86400)
    raise response


async def home(request: web.Request) -> web.Response:
    return render(request, "home.html")


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=(HERE / "static" / "dunline.css").read_bytes(), content_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})


# -- cases ----------------------------------------------------------------------------

async def cases_page(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    q = request.query.get("q", "").strip()[:64]
    status = request.query.get("status") or None
    status = status if status in LISTED_STATUSES else None
    after = request.query.get("after") or None
    async with deps.db.session() as s:
        cases = await repo.list_cases(s, PAGE_SIZE + 1, case_scope(who), text=q, status=status,
                                      after=after[:64] if after else None)
        shown = list(cases[:PAGE_SIZE])
        await repo.audit(s, at=deps.clock(), actor=who.username, action="cases.listed", subject="cases",
                         cases=[c.id for c in shown], page=True)
    return render(request, "cases.html", cases=shown, q=q, status_filter=status, statuses=LISTED_STATUSES,
                  next_after=shown[-1].id if len(cases) > PAGE_SIZE else None)


async def show_case(request: web.Request, case_id: str, *, status: int = 200, message: str | None = None,
                     error: bool = False, open_attempt: str | None = None,
                     on_call: str | None = None) -> web.Response:
    """The case's page; `on_call`: the floor's screen pop of that call on the reader's seat
    (the case shown whoever's it is, the call's disposition form open, the floor's live script)."""
    who, deps = principal(request), request.app[DEPS]
    try:
        view = await (view_case(deps.db, deps.clock, who, case_id, page=True) if on_call is None else
                      view_case(deps.db, deps.clock, who, case_id, scope=repo.ALL_CASES, page=True,
                                screen_pop=on_call))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    can = {name: may(who.role, perm) for name, perm in (
        ("dial", P.CASE_DIAL), ("edit", P.CASE_EDIT), ("flag", P.CASE_FLAG), ("clear", P.CASE_CLEAR),
        ("close", P.CASE_CLOSE), ("assign", P.ASSIGN), ("recordings", P.RECORDING_ACCESS),
        ("dispose", P.CASE_DISPOSE))}
    case = view.case
    corrected = corrections([d for rows in view.dispositions.values() for d in rows])
    payments = await payments_for_case(deps.db, case.id)
    return render(request, "case.html", status=status, message=message, error=error, case=case,
                  attempts=view.attempts, recordings=len(view.recordings), decisions=list(view.decisions)[-20:],
                  can=can, reason_of=lambda d: masked_text(who, d.reason, view.numbers),
                  id_number=id_number_shown(who, case.id_number), relations=[r.value for r in Relation],
                  flags=sorted(CASE_FLAGS), statuses=STATUSES,
                  dispositions=view.dispositions, corrected=corrected, codes=CODES, notes_max=NOTES_MAX,
                  note_of=lambda d: masked_text(who, d.notes, view.numbers),
                  open_attempt=open_attempt or on_call, on_call=on_call,
                  zone_of={p.id: callee_zone(case, p) for p in case.phones},
                  payments=payments, balance=balance_cents(case.amount_due_cents, case.paid_cents))


async def case_page(request: web.Request) -> web.Response:
    return await show_case(request, case_id_of(request))


Action = Callable[[web.Request, str, Principal, dict[str, str]], Awaitable[str]]


def case_action(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A case form: do it, then show the case with what came of it (refused: why, 400)."""
    async def handler(request: web.Request) -> web.Response:
        case_id, who = case_id_of(request), principal(request)
        t = i18n.translator(locale_of(request, who))
        form = await read_form(request)
        try:
            done = await action(request, case_id, who, form)
        except LookupError:
            raise web.HTTPNotFound(text=f"no case {case_id}") from None
        except Refused as exc:
            return await show_case(request, case_id, status=400, message=t("error", message=str(exc)), error=True)
        except _Refused as exc:
            return await show_case(request, case_id, status=exc.status, message=str(exc), error=True)
        return await show_case(request, case_id, message=done or t("done"))

    handler.__name__ = action.__name__
    return handler


class _Refused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def dial(request: web.Request, case_id: str, who: Principal, form: dict[str, str]) -> str:
    deps, t = request.app[DEPS], i18n.translator(locale_of(request, who))
    async with deps.db.session() as s:
        case = await repo.get_case(s, case_id, case_scope(who))
    phone = next((p for p in case.phones if str(p.id) == form.get("phone", "")), None)
    if phone is None:
        raise Refused("choose one of the case's phones")

    try:
        outcome = await request_dial(deps, who, case, phone.number, page=True)
    except DialNotPossible as exc:
        raise _Refused(t("error", message=str(exc)), 404) from None
    if isinstance(outcome, DialRefused):
        raise _Refused(t("case.dial_refused", rule=outcome.rule, reason=outcome.reason), outcome.status)
    return t("case.dialled", id=outcome.id)


async def add_phone_form(request: web.Request, case_id: str, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    await add_phone(deps.db, deps.clock, case_id, form.get("number", ""), form.get("relation", ""),
                    by=who.username, scope=case_scope(who))
    return ""


async def raise_flag_form(request: web.Request, case_id: str, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    await rules.raise_flag(deps.db, deps.clock, case_id, form.get("flag"), form.get("why"), by=who.username,
                           scope=case_scope(who))
    return ""


async def clear_flag_form(request: web.Request, case_id: str, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    await rules.clear_flag(deps.db, deps.clock, case_id, request.match_info["flag"], form.get("why"),
                           by=who.username, scope=case_scope(who))
    return ""


async def dnc_form(request: web.Request, case_id: str, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    async with deps.db.session() as s:
        case = await repo.get_case(s, case_id, case_scope(who))
    phone = next((p for p in case.phones if str(p.id) == request.match_info["phone_id"]), None)
    if phone is None:
        raise LookupError(case_id)
    await rules.add_suppression(deps.db, deps.clock, phone.number, form.get("why"), by=who.username,
                                client=case.client, case_id=case_id, source="case")
    return ""


async def status_form(request: web.Request, case_id: str, who: Principal, form: dict[str, str]) -> str:
    deps = request.app[DEPS]
    await set_status(deps.db, deps.clock, case_id, form.get("status"), form.get("reason"), by=who.username,
                     scope=case_scope(who))
    return ""


async def recordings_page(request: web.Request) -> web.Response:
    """A case's recordings, listed (and each one played) only with a reason, in the ledger."""
    from recorder.retrieval import find_recordings
    from recorder.retrieval_query import InvalidRequest, RecordingQuery, Requester

    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    why = request.query.get("why", "").strip()[:200]
    if not why:
        return render(request, "recordings.html", case_id=case_id, why="", recordings=[])
    if deps.ledger is None:
        raise web.HTTPServiceUnavailable(text="the recording archive is not configured")
    try:
        page = await find_recordings(deps.db, deps.ledger, RecordingQuery.from_text(case=case_id, limit="200"),
                                     Requester.of(who.username, why))
    except InvalidRequest as exc:
        return render(request, "recordings.html", status=400, case_id=case_id, why="", recordings=[],
                      message=str(exc), error=True)
    return render(request, "recordings.html", case_id=case_id, why=why, recordings=page.recordings)


# -- batches --------------------------------------------------------------------------

async def batches_page(request: web.Request) -> web.Response:
    who = principal(request)
    batches = await batch_summaries(request.app[DEPS].db, client_only(who))
    return render(request, "batches.html", batches=batches, can_import=may(who.role, P.BATCH_IMPORT))


async def upload_page(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    client = request.query.get("client", "")
    batch = request.query.get("batch") or None
    try:
        filename, data, fields = await read_upload(request, with_fields=True)
        client = fields.get("client") or client
        batch = fields.get("batch") or batch
        importer = BatchImporter(deps.db, deps.clock)
        import_id = await importer.start(client=client, filename=filename, data=data, by=who.username)
    except (Refused, web.HTTPBadRequest) as exc:
        batches = await batch_summaries(deps.db, client_only(who))
        return render(request, "batches.html", status=400, batches=batches, can_import=True,
                      message=t("error", message=getattr(exc, "text", None) or str(exc)), error=True)
    run_import(request.app, importer, import_id, data, batch)
    raise web.HTTPSeeOther(f"/batches/imports/{import_id}")


async def import_page(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    raw = request.match_info["import_id"]
    import_id = id_number_of(raw)
    if import_id is None:
        raise web.HTTPBadRequest(text="invalid import id")
    async with deps.db.session() as s:
        record = await s.get(BatchImport, import_id)
    only = client_only(who)
    if record is None or (only is not None and record.client != only):
        raise web.HTTPNotFound(text="no such import")
    errors = await import_errors(deps.db, record.id) if may(who.role, P.BATCH_IMPORT) else []
    running = record.state in ("checking", "importing")
    return render(request, "batch_import.html", record=record, errors=errors[:500], refresh=1 if running else None)


# -- assignment, rules, users -----------------------------------------------------------

async def assignment_page(request: web.Request, *, status: int = 200, message: str | None = None,
                          error: bool = False) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    rows = await workload(deps.db, team_limit(who))
    batches = await batch_summaries(deps.db)
    return render(request, "assignment.html", status=status, message=message, error=error, workload=rows,
                  batches=batches, rules=[r.value for r in Rule])


async def assignment_submit(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    form = await read_form(request)
    batch = form.get("batch_id", "")
    if id_number_of(batch) is None:
        return await assignment_page(request, status=400, message=t("error", message="batch"), error=True)
    try:
        result = await assign(deps.db, deps.clock, by=who.username, rule=form.get("rule", ""),
                              scope=case_scope(who), batch_id=int(batch), team_limit=team_limit(who))
    except Refused as exc:
        return await assignment_page(request, status=400, message=t("error", message=str(exc)), error=True)
    return await assignment_page(request, message=t("assign.done", placed=len(result.placed),
                                                    unrouted=len(result.unrouted)))


async def dnc_page(request: web.Request, *, status: int = 200, message: str | None = None,
                   error: bool = False) -> web.Response:
    entries = await rules.suppressions(request.app[DEPS].db)
    return render(request, "dnc.html", status=status, message=message, error=error, entries=entries)


def _rules_action(work: Callable[[web.Request, Principal, dict[str, str]], Awaitable[Any]],
                  page: Callable[..., Awaitable[web.Response]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        who = principal(request)
        t = i18n.translator(locale_of(request, who))
        try:
            await work(request, who, await read_form(request))
        except Refused as exc:
            return await page(request, status=400, message=t("error", message=str(exc)), error=True)
        except LookupError as exc:
            return await page(request, status=404, message=t("error", message=str(exc)), error=True)
        except AccountError as exc:
            return await page(request, status=400, message=t("error", message=str(exc)), error=True)
        return await page(request, message=t("done"))

    handler.__name__ = work.__name__
    return handler


def _entry_id(request: web.Request) -> int:
    raw = request.match_info["entry_id"]
    entry = id_number_of(raw)
    if entry is None:
        raise LookupError("no such entry")
    return entry


async def dnc_add(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    deps = request.app[DEPS]
    await rules.add_suppression(deps.db, deps.clock, form.get("number"), form.get("why"), by=who.username,
                                client=form.get("client") or None)


async def dnc_remove(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    deps = request.app[DEPS]
    await rules.remove_suppression(deps.db, deps.clock, _entry_id(request), form.get("why"), by=who.username)


async def caller_ids_page(request: web.Request, *, status: int = 200, message: str | None = None,
                          error: bool = False) -> web.Response:
    rows = await rules.caller_ids(request.app[DEPS].db)
    return render(request, "caller_ids.html", status=status, message=message, error=error, rows=rows)


async def caller_id_add(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    deps = request.app[DEPS]
    await rules.add_caller_id(deps.db, deps.clock, form.get("client"), form.get("number"), form.get("why"),
                              by=who.username)


async def caller_id_withdraw(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    deps = request.app[DEPS]
    await rules.withdraw_caller_id(deps.db, deps.clock, _entry_id(request), form.get("why"), by=who.username)


async def users_page(request: web.Request, *, status: int = 200, message: str | None = None,
                     error: bool = False) -> web.Response:
    accounts = request.app[DEPS].accounts
    teams = await accounts.teams()
    return render(request, "users.html", status=status, message=message, error=error, users=await accounts.users(),
                  teams=teams, team_names={t.id: t.name for t in teams}, roles=[r.value for r in Role])


async def user_add(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    await request.app[DEPS].accounts.add_user(
        username=form.get("username", ""), display_name=form.get("display_name") or form.get("username", ""),
        role=form.get("role", ""), password=form.get("password", ""), by=who.username,
        team=form.get("team") or None, client=form.get("client") or None, locale=locale_of(request, who))


async def user_disable(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    await _set_disabled(request, who, form, True)


async def user_enable(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    await _set_disabled(request, who, form, False)


async def _set_disabled(request: web.Request, who: Principal, form: dict[str, str], disabled: bool) -> None:
    username = request.match_info["username"]
    if username == who.username and disabled:
        raise AccountError("you cannot disable yourself")
    why = form.get("why", "").strip()
    if len(why) < 4:
        raise AccountError("give a reason (at least 4 characters)")
    await request.app[DEPS].accounts.set_disabled(username, disabled, by=who.username, why=why)


async def team_add(request: web.Request, who: Principal, form: dict[str, str]) -> None:
    await request.app[DEPS].accounts.add_team(form.get("name", ""), by=who.username)


# -- the routes -----------------------------------------------------------------------

IMPORT_ID = Param("import_id", "path", {"type": "string"})
ENTRY_ID = Param("entry_id", "path", {"type": "string"})
PHONE_ID = Param("phone_id", "path", {"type": "string"})
FLAG = Param("flag", "path", {"type": "string"})
USERNAME = Param("username", "path", {"type": "string"})


def _page(method: str, path: str, handler: Any, permission: Permission | None, summary: str,
          **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, permission, summary, page=True, produces="text/html", **extra)


ENDPOINTS = [
    _page("GET", "/login", login_page, None, "Sign-in page"),
    _page("POST", "/login", login_submit, None, "Sign in (form)", csrf_exempt=True),
    _page("POST", "/logout", logout, P.SIGNED_IN, "Sign out (form)"),
    _page("GET", "/lang/{code}", switch_language, None, "Switch the language (zh-CN, en)",
          params=(Param("code", "path", {"type": "string"}),)),
    _page("GET", "/static/dunline.css", stylesheet, None, "The stylesheet"),
    _page("GET", "/", home, P.SIGNED_IN, "Home"),
    _page("GET", "/cases", cases_page, P.CASE_VIEW, "Cases"),
    _page("GET", "/cases/{case_id}", case_page, P.CASE_VIEW, "A case", params=(CASE_ID_PARAM,)),
    _page("POST", "/cases/{case_id}/dial", case_action(dial), P.CASE_DIAL, "Dial (form)", params=(CASE_ID_PARAM,)),
    _page("POST", "/cases/{case_id}/phones", case_action(add_phone_form), P.CASE_EDIT, "Add a phone (form)",
          params=(CASE_ID_PARAM,)),
    _page("POST", "/cases/{case_id}/flags", case_action(raise_flag_form), P.CASE_FLAG, "Raise a flag (form)",
          params=(CASE_ID_PARAM,)),
    _page("POST", "/cases/{case_id}/flags/{flag}/clear", case_action(clear_flag_form), P.CASE_CLEAR,
          "Clear a flag (form)", params=(CASE_ID_PARAM, FLAG)),
    _page("POST", "/cases/{case_id}/phones/{phone_id}/do-not-call", case_action(dnc_form), P.CASE_FLAG,
          "A phone on the do-not-call list (form)", params=(CASE_ID_PARAM, PHONE_ID)),
    _page("POST", "/cases/{case_id}/status", case_action(status_form), P.CASE_CLOSE, "Return / close (form)",
          params=(CASE_ID_PARAM,)),
    _page("GET", "/cases/{case_id}/recordings", recordings_page, P.RECORDING_ACCESS,
          "A case's recordings (with a reason, ledgered)", params=(CASE_ID_PARAM,)),
    _page("GET", "/batches", batches_page, P.BATCH_VIEW, "Batches"),
    _page("POST", "/batches/upload", upload_page, P.BATCH_IMPORT, "Upload a batch (form)", upload=True),
    _page("GET", "/batches/imports/{import_id}", import_page, P.BATCH_VIEW, "An import's progress and errors",
          params=(IMPORT_ID,)),
    _page("GET", "/assignment", assignment_page, P.ASSIGN, "Assignment and workload"),
    _page("POST", "/assignment", assignment_submit, P.ASSIGN, "Assign a batch by a rule (form)"),
    _page("GET", "/rules/do-not-call", dnc_page, P.SUPPRESSION_MANAGE, "The do-not-call list"),
    _page("POST", "/rules/do-not-call", _rules_action(dnc_add, dnc_page), P.SUPPRESSION_MANAGE, "Add (form)"),
    _page("POST", "/rules/do-not-call/{entry_id}/remove", _rules_action(dnc_remove, dnc_page), P.SUPPRESSION_MANAGE,
          "Remove (form)", params=(ENTRY_ID,)),
    _page("GET", "/rules/caller-ids", caller_ids_page, P.CALLER_ID_MANAGE, "Caller IDs"),
    _page("POST", "/rules/caller-ids", _rules_action(caller_id_add, caller_ids_page), P.CALLER_ID_MANAGE,
          "Approve (form)"),
    _page("POST", "/rules/caller-ids/{entry_id}/withdraw", _rules_action(caller_id_withdraw, caller_ids_page),
          P.CALLER_ID_MANAGE, "Withdraw (form)", params=(ENTRY_ID,)),
    _page("GET", "/users", users_page, P.USER_MANAGE, "Users and teams"),
    _page("POST", "/users", _rules_action(user_add, users_page), P.USER_MANAGE, "Add a user (form)"),
    _page("POST", "/teams", _rules_action(team_add, users_page), P.USER_MANAGE, "Add a team (form)"),
    _page("POST", "/users/{username}/disable", _rules_action(user_disable, users_page), P.USER_MANAGE,
          "Disable a user (form)", params=(USERNAME,)),
    _page("POST", "/users/{username}/enable", _rules_action(user_enable, users_page), P.USER_MANAGE,
          "Enable a user (form)", params=(USERNAME,)),
]
