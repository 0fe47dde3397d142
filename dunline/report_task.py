"""The service's weekly report (settings `reports.weekly_auto`): once an hour it looks whether
the week just ended (Monday to Sunday, Beijing time) has its files in
`reports.weekly_dir`/<week>/; if not, it writes them (every case; the PDF, XLSX and charts
of cases/weekly_report_files.py, 0640), so each Monday morning the week's report is there.
A failure is logged and tried again at the next look; several nodes writing the same week
write the same files (each replaced whole)."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from cases.weekly_report import Week
from cases.weekly_report_files import save_week
from cases.weekly_report_store import build_weekly_report
from storage.clock import Clock
from storage.db import Database
from storage.repositories import ALL_CASES

log = logging.getLogger("dunline.reports")
CHECK_EVERY_S = 3600.0


async def write_week_if_missing(db: Database, clock: Clock, directory: Path, locale: str) -> Path | None:
    """The last complete week's files, written unless its PDF is there; the week's directory
    when written, else None."""
    now = clock()
    week = Week.last_complete(now)
    target = Path(directory) / week.label
    if (target / f"weekly-{week.label}.pdf").exists():
        return None
    report = await build_weekly_report(db, week, ALL_CASES, now)
    await asyncio.to_thread(save_week, report, target, locale)
    log.info("weekly report %s written into %s", week.label, target)
    return target


async def run_weekly_reports(db: Database, clock: Clock, directory: Path, locale: str, *,
                             every_s: float = CHECK_EVERY_S) -> None:
    while True:
        try:
            await write_week_if_missing(db, clock, directory, locale)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001  (a report that could not be written now is tried at the next look)
            log.exception("the weekly report could not be written; trying again in %.0f s", every_s)
        await asyncio.sleep(every_s)
