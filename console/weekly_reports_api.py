"""The weekly report (cases/weekly_report.py), computed when asked, for the reader's scope:

    GET /reports/weekly?week=2026-W49                   the page: week picker, tables, charts (inline), downloads
    GET /api/reports/weekly?week=2026-W49&by=batch      JSON (by: batch | team | collector; none: all three)
    GET /api/reports/weekly/{week}.pdf | .xlsx          the report as a file
    GET /api/reports/weekly/{week}/{chart}.png | .svg   a chart (recovery: the last weeks; collectors)

A client user's report counts only their client's cases (console/scope.py's report_scope); a
team lead's their team's. No week given: the last complete one. A malformed week, or one that
has not begun, is a 400. Files are in the reader's language unless `lang` says otherwise.
"""
from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from cases.weekly_report import Grouping, Week, WeekError, WeeklyReport
from cases.weekly_report_files import CHARTS, XLSX, chart, file_names, report_pdf, report_xlsx, talk
from cases.weekly_report_store import build_weekly_report
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.scope import report_scope
from people.roles import Permission

WEEK_SCHEMA = {"type": "string", "pattern": "^[0-9]{4}-W[0-9]{2}$"}
WEEK_QUERY = Param("week", "query", WEEK_SCHEMA, description="an ISO week on Beijing's clock (default: the last "
                                                             "complete week)")
WEEK_PATH = Param("week", "path", WEEK_SCHEMA)
BY = Param("by", "query", {"type": "string", "enum": [g.value for g in Grouping]})
LANG = Param("lang", "query", {"type": "string", "enum": list(i18n.LOCALES)}, description="the files' language "
                                                                                          "(default: the reader's)")
CHART = Param("chart", "path", {"type": "string", "enum": list(CHARTS)})
RESPONSES = {200: "the report", 400: "a malformed week, or one that has not begun"}


def _week(request: web.Request, text: str | None) -> Week:
    now = request.app[DEPS].clock()
    if text is None:
        return Week.last_complete(now)
    try:
        week = Week.parse(text)
    except WeekError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if week.start > now:
        raise web.HTTPBadRequest(text=f"week {week.label} has not begun")
    return week


async def _report(request: web.Request, text: str | None) -> WeeklyReport:
    deps = request.app[DEPS]
    week = _week(request, text)
    return await build_weekly_report(deps.db, week, report_scope(principal(request)), deps.clock())


def _locale(request: web.Request) -> str:
    from console.pages import locale_of

    lang = request.query.get("lang")
    if lang is not None and lang not in i18n.LOCALES:
        raise web.HTTPBadRequest(text=f"lang: one of {', '.join(i18n.LOCALES)}")
    return lang or locale_of(request, principal(request))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="dunline-{name}"'}


async def weekly_json(request: web.Request) -> web.Response:
    by = request.query.get("by")
    if by is not None and by not in {g.value for g in Grouping}:
        raise web.HTTPBadRequest(text=f"by: one of {', '.join(g.value for g in Grouping)}")
    report = await _report(request, request.query.get("week"))
    return web.json_response(report.as_json(Grouping(by) if by else None))


async def weekly_pdf(request: web.Request) -> web.Response:
    locale = _locale(request)
    report = await _report(request, request.match_info["week"])
    body = await asyncio.to_thread(report_pdf, report, locale)
    return web.Response(body=body, content_type="application/pdf",
                        headers=_attachment(file_names(report)["pdf"]))


async def weekly_xlsx(request: web.Request) -> web.Response:
    locale = _locale(request)
    report = await _report(request, request.match_info["week"])
    body = await asyncio.to_thread(report_xlsx, report, locale)
    return web.Response(body=body, content_type=XLSX, headers=_attachment(file_names(report)["xlsx"]))


def _chart_name(request: web.Request) -> str:
    name = request.match_info["chart"]
    if name not in CHARTS:
        raise web.HTTPBadRequest(text=f"chart: one of {', '.join(CHARTS)}")
    return name


async def weekly_png(request: web.Request) -> web.Response:
    name, locale = _chart_name(request), _locale(request)
    report = await _report(request, request.match_info["week"])
    return web.Response(body=await asyncio.to_thread(chart, report, name, "png", locale), content_type="image/png")


async def weekly_svg(request: web.Request) -> web.Response:
    name, locale = _chart_name(request), _locale(request)
    report = await _report(request, request.match_info["week"])
    return web.Response(body=await asyncio.to_thread(chart, report, name, "svg", locale),
                        content_type="image/svg+xml")


async def weekly_page(request: web.Request) -> web.Response:
    from console.pages import locale_of, render

    report = await _report(request, request.query.get("week") or None)
    locale = locale_of(request, principal(request))
    now_week = Week.of(request.app[DEPS].clock())
    # the charts inline (data: URLs), drawn from the same figures as the tables in this one request
    pngs = await asyncio.to_thread(lambda: [chart(report, name, "png", locale) for name in CHARTS])
    images = {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in zip(CHARTS, pngs)}
    return render(request, "weekly_report.html", report=report, week=report.week.label,
                  previous=report.week.shift(-1).label,
                  next_week=report.week.shift(1).label if report.week < now_week else None,
                  batch=report.groups[Grouping.BATCH], team=report.groups[Grouping.TEAM],
                  collector=report.groups[Grouping.COLLECTOR], total=report.total, c=report.compliance,
                  charts=CHARTS, images=images, talk=talk,
                  percent=lambda x: "—" if x is None else i18n.number(round(x * 100, 1), "en") + "%",
                  day_of=lambda d: i18n.day(d, locale))


ENDPOINTS = [
    Endpoint("GET", "/api/reports/weekly", weekly_json, Permission.REPORT_VIEW,
             "The weekly report: by batch, team or collector (all three if not said), the total, the compliance "
             "summary, the recovery of the last weeks", params=(WEEK_QUERY, BY), tags=("reports",),
             responses=RESPONSES),
    Endpoint("GET", "/api/reports/weekly/{week}.pdf", weekly_pdf, Permission.REPORT_VIEW,
             "The weekly report as PDF", params=(WEEK_PATH, LANG), produces="application/pdf", tags=("reports",),
             responses=RESPONSES),
    Endpoint("GET", "/api/reports/weekly/{week}.xlsx", weekly_xlsx, Permission.REPORT_VIEW,
             "The weekly report as XLSX (a sheet per grouping, the compliance summary, the weeks)",
             params=(WEEK_PATH, LANG), produces=XLSX, tags=("reports",), responses=RESPONSES),
    Endpoint("GET", "/api/reports/weekly/{week}/{chart}.png", weekly_png, Permission.REPORT_VIEW,
             "A chart of the weekly report as PNG", params=(WEEK_PATH, CHART, LANG), produces="image/png",
             tags=("reports",), responses=RESPONSES),
    Endpoint("GET", "/api/reports/weekly/{week}/{chart}.svg", weekly_svg, Permission.REPORT_VIEW,
             "A chart of the weekly report as SVG", params=(WEEK_PATH, CHART, LANG), produces="image/svg+xml",
             tags=("reports",), responses=RESPONSES),
    Endpoint("GET", "/reports/weekly", weekly_page, Permission.REPORT_VIEW, "The weekly report", page=True,
             produces="text/html", params=(WEEK_QUERY,)),
]
