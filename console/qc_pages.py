"""The quality-control pages: the QC queue with the week's sample form, one item's page (the
call's players, mixed and each side, through the recordings API with the reason `qc`; the
scorecard form), the scores within the reader's reach ("my QC" for a collector, the team's
for a lead) and the QC report per collector. Same cores as the API (cases/qc_store.py), same
guard; a refusal is shown in the reader's language with nothing stored."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cases import qc_store
from cases.qc import COMMENTS_MAX, ITEMS, MAX_SAMPLE_SIZE, QcRefused, Result, week_of
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.pages import locale_of, read_form, render
from console.qc_api import ITEM, QC_REASON, audited_scores, item_id_of, load_item, qc_scope, refusal_text
from people.roles import Permission, Reach, reach

LEGS = (("mixed", "qc.leg.mixed"), ("rx", "qc.leg.rx"), ("tx", "qc.leg.tx"))
RESULT_KEYS = {Result.PASS.value: "qc.result.pass", Result.FAIL.value: "qc.result.fail", Result.NA.value: "qc.result.na"}


def _common() -> dict[str, Any]:
    """What every QC template needs: the scorecard's items with their words' keys."""
    return {"items": [{"key": i.key, "label": f"qc.item.{i.key}", "short": f"qc.short.{i.key}", "rule": i.rule,
                       "weight": i.weight,
                       "na": i.na_allowed, "critical": i.critical} for i in ITEMS],
            "labels": {i.key: f"qc.item.{i.key}" for i in ITEMS}, "result_keys": RESULT_KEYS}


def _week_filter(request: web.Request, name: str = "week") -> tuple[str, Any]:
    text = (request.query.get(name) or "").strip()[:8]
    try:
        return text, qc_store.week_or_none(text)
    except QcRefused:
        return "", None


async def queue_page(request: web.Request, *, status: int = 200, message: str | None = None,
                     error: bool = False, form: dict[str, str] | None = None) -> web.Response:
    deps = request.app[DEPS]
    week_text, week = _week_filter(request)
    state = request.query.get("state") if request.query.get("state") in ("pending", "scored") else None
    rows = await qc_store.queue(deps.db, week=week, state=state)
    last_week = str(week_of(deps.clock()).previous())
    return render(request, "qc_queue.html", status=status, message=message, error=error, rows=rows,
                  week_filter=week_text, state_filter=state, form=form or {"week": last_week},
                  default_size=deps.qc_sample_size, max_size=MAX_SAMPLE_SIZE)


async def queue_get(request: web.Request) -> web.Response:
    return await queue_page(request)


async def samples_submit(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    locale = locale_of(request, who)
    t = i18n.translator(locale)
    form = await read_form(request)
    try:
        done = await qc_store.create_samples(deps.db, deps.clock, form.get("week", ""), by=who.username,
                                             size=form.get("size"), seed=form.get("seed"),
                                             default_size=deps.qc_sample_size)
    except QcRefused as exc:
        return await queue_page(request, status=409 if exc.key == "week_not_over" else 400,
                                message=t("error", message=refusal_text(exc, locale)), error=True, form=form)
    picked = sum(len(s.picked) for s in done.created)
    return await queue_page(request, message=t("qc.sample.done", week=done.week, created=len(done.created),
                                               existing=len(done.samples) - len(done.created), picked=picked),
                            form={"week": done.week})


async def item_page(request: web.Request, *, status: int = 200, message: str | None = None, error: bool = False,
                    entered: dict[str, str] | None = None) -> web.Response:
    who = principal(request)
    view = await load_item(request, who, page=True)
    current = view.current
    if entered is None:
        entered = {f"item.{k}": v for k, v in current.items.items()} if current else {}
        entered["comments"] = current.comments if current else ""
    return render(request, "qc_item.html", status=status, message=message, error=error, view=view,
                  current=current, entered=entered, legs=LEGS, why=QC_REASON, comments_max=COMMENTS_MAX,
                  **_common())


async def item_get(request: web.Request) -> web.Response:
    return await item_page(request)


async def score_submit(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    locale = locale_of(request, who)
    t = i18n.translator(locale)
    item_id = item_id_of(request)
    form = await read_form(request)
    entered = {k: v for k, v in form.items() if k.startswith("item.") or k in ("comments", "revises")}
    if deps.ledger is None:
        raise web.HTTPServiceUnavailable(text="the ledger is not configured: a score is kept only with its entry")
    raw = {k[len("item."):]: v for k, v in form.items() if k.startswith("item.")}
    try:
        saved = await qc_store.save_score(deps.db, deps.ledger, deps.clock, item_id, raw, form.get("comments", ""),
                                          by=who.username, revises=form.get("revises"))
    except LookupError:
        raise web.HTTPNotFound(text="no such QC item") from None
    except QcRefused as exc:
        return await item_page(request, status=409 if exc.key == "scored_already" else 400,
                               message=t("error", message=refusal_text(exc, locale)), error=True, entered=entered)
    return await item_page(request, message=t("qc.saved", id=saved.id, total=saved.total))


def _scope_title(role: str) -> str:
    return {Reach.OWN: "qc.scores.own", Reach.TEAM: "qc.scores.team"}.get(reach(role), "qc.scores.all")


async def scores_page(request: web.Request) -> web.Response:
    who = principal(request)
    week_text, week = _week_filter(request)
    rows = await audited_scores(request, who, page=True, week=week)
    return render(request, "qc_scores.html", rows=rows, week_filter=week_text, title_key=_scope_title(who.role),
                  show_collector=reach(who.role) is not Reach.OWN, **_common())


async def report_page(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    from_text, from_week = _week_filter(request, "from")
    to_text, to_week = _week_filter(request, "to")
    rows = await qc_store.report(deps.db, qc_scope(who), from_week=from_week, to_week=to_week)
    return render(request, "qc_report.html", rows=rows, from_filter=from_text, to_filter=to_text, **_common())


P = Permission


def _page(method: str, path: str, handler: Any, permission: Permission, summary: str, **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, permission, summary, page=True, produces="text/html", **extra)


ENDPOINTS = [
    _page("GET", "/qc/queue", queue_get, P.QC_SCORE, "The QC queue and the week's sample form",
          params=(Param("week", "query", {"type": "string"}), Param("state", "query", {"type": "string"}))),
    _page("POST", "/qc/samples", samples_submit, P.QC_SCORE, "Draw a week's QC sample (form)"),
    _page("GET", "/qc/items/{qc_item_id}", item_get, P.QC_SCORE, "A QC item: listen and score it", params=(ITEM,)),
    _page("POST", "/qc/items/{qc_item_id}/score", score_submit, P.QC_SCORE, "Save a scorecard (form)",
          params=(ITEM,)),
    _page("GET", "/qc/scores", scores_page, P.QC_VIEW, "QC scores within your reach (a collector: my QC)",
          params=(Param("week", "query", {"type": "string"}),)),
    _page("GET", "/qc/report", report_page, P.QC_VIEW, "The QC report per collector",
          params=(Param("from", "query", {"type": "string"}), Param("to", "query", {"type": "string"}))),
]
