"""The payments' pages: the import form with the recent imports, and one import's progress,
summary and error report. Same core (cases/payments_store.py) and guard as the API; a case's
payments and balance are on the case's page (console/pages.py, show_case)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cases.payments_store import import_errors, recent_imports
from cases.refusals import Refused
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint
from console.pages import locale_of, render
from console.payments_api import IMPORT_ID, import_of, progress_of, start_upload
from people.roles import Permission


async def payments_page(request: web.Request, *, status: int = 200, message: str | None = None,
                        error: bool = False) -> web.Response:
    imports = await recent_imports(request.app[DEPS].db)
    return render(request, "payments.html", status=status, message=message, error=error, imports=imports)


async def upload_page(request: web.Request) -> web.Response:
    t = i18n.translator(locale_of(request, principal(request)))
    try:
        import_id = await start_upload(request)
    except (Refused, web.HTTPBadRequest) as exc:
        return await payments_page(request, status=400, error=True,
                                   message=t("error", message=getattr(exc, "text", None) or str(exc)))
    raise web.HTTPSeeOther(f"/payments/imports/{import_id}")


async def import_page(request: web.Request) -> web.Response:
    record = await import_of(request)
    errors = await import_errors(request.app[DEPS].db, record.id)
    done, total = progress_of(request.app, record)
    running = record.state in ("checking", "importing")
    return render(request, "payment_import.html", record=record, errors=errors[:500], errors_total=len(errors),
                  rows_done=done, rows_total=total, refresh=1 if running else None)


def _page(method: str, path: str, handler: Any, summary: str, **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, Permission.PAYMENT_IMPORT, summary, page=True, produces="text/html",
                    **extra)


ENDPOINTS = [
    _page("GET", "/payments", payments_page, "Import payment records; the recent imports"),
    _page("POST", "/payments/upload", upload_page, "Upload a payment file (form)", upload=True),
    _page("GET", "/payments/imports/{import_id}", import_page, "A payment import's progress, summary and errors",
          params=(IMPORT_ID,)),
]
