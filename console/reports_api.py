"""Reports of the case book (cases/reports.py):

    GET /api/reports/cases?by=batch|arrears_band|overdue_band[&format=json|csv|xlsx]
    GET /reports?by=...   the page, with the downloads

A client user's reports count only their client's cases; a team lead's their team's.
"""
from __future__ import annotations

from aiohttp import web

from cases.reports import GroupBy, case_report, report_csv, report_xlsx, total
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.scope import report_scope
from people.roles import Permission

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BY = Param("by", "query", {"type": "string", "enum": [g.value for g in GroupBy]})


def _by(request: web.Request) -> GroupBy:
    try:
        return GroupBy(request.query.get("by", "batch"))
    except ValueError:
        raise web.HTTPBadRequest(text=f"by: one of {', '.join(g.value for g in GroupBy)}") from None


async def _rows(request: web.Request):  # noqa: ANN202
    deps = request.app[DEPS]
    by = _by(request)
    return by, await case_report(deps.db, report_scope(principal(request)), by, deps.clock().date())


async def cases_report(request: web.Request) -> web.StreamResponse:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        raise web.HTTPBadRequest(text="format: json, csv or xlsx")
    by, rows = await _rows(request)
    name = f"cases-by-{by.value}"
    if fmt == "csv":
        return web.Response(body=report_csv(rows), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt == "xlsx":
        return web.Response(body=report_xlsx(rows, name), content_type=XLSX,
                            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return web.json_response([{"group": r.group, "cases": r.cases, "arrears_cents": r.arrears_cents,
                               "attempted": r.attempted, "contacted": r.contacted,
                               "contact_rate": round(r.contact_rate, 4), "calls": r.calls}
                              for r in [*rows, total(rows)]])


async def reports_page(request: web.Request) -> web.Response:
    from console.pages import render

    by, rows = await _rows(request)
    return render(request, "reports.html", rows=[*rows, total(rows)], by=by.value,
                  groups=[g.value for g in GroupBy], percent=lambda x: i18n.number(round(x * 100, 1), "en") + "%")


ENDPOINTS = [
    Endpoint("GET", "/api/reports/cases", cases_report, Permission.REPORT_VIEW,
             "Cases by batch, arrears band or overdue band: counts, amounts, attempted, contacted",
             params=(BY, Param("format", "query", {"type": "string", "enum": ["json", "csv", "xlsx"]})),
             tags=("reports",), responses={200: "the report", 400: "bad input"}),
    Endpoint("GET", "/reports", reports_page, Permission.REPORT_VIEW, "Reports", page=True, produces="text/html",
             params=(BY,)),
]
