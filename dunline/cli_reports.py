"""`dunline report weekly`: the weekly report's files, written where a person or a timer
(cron, a systemd timer on Monday morning) wants them.

    dunline report weekly [--week 2026-W49] [--out DIR] [--client C] [--lang zh-CN|en]

No week: the last complete one (Monday to Sunday, Beijing time). The PDF, the XLSX and the
charts (PNG and SVG) go into DIR (default <reports.weekly_dir>/<week>/, var/reports/<week>/
unless configured), each 0640; `--client` counts
only that client's cases (the report to send the client), else every case. Exit 0 when the
week's compliance summary is clean, 1 when it names calls to follow up, 2 on bad input.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from dunline.settings import load_settings

def cmd_report(args: argparse.Namespace, clock: Callable[[], datetime] | None = None) -> int:
    from cases.weekly_report import Week, WeekError
    from cases.weekly_report_files import pdf_locale, save_week
    from cases.weekly_report_store import build_weekly_report
    from storage.clock import system_clock
    from storage.db import Database
    from storage.repositories import ALL_CASES, CaseScope

    now = (clock or system_clock)()
    try:
        week = Week.parse(args.week) if args.week else Week.last_complete(now)
    except WeekError as exc:
        print(exc, file=sys.stderr)
        return 2
    if week.start > now:
        print(f"week {week.label} has not begun", file=sys.stderr)
        return 2
    scope = CaseScope(client=args.client) if args.client else ALL_CASES
    settings = load_settings(args.config)
    out = Path(args.out) if args.out else Path(settings.reports.weekly_dir) / week.label

    async def run() -> Any:
        db = Database(settings.database.url)
        try:
            await db.migrate()
            return await build_weekly_report(db, week, scope, now)
        finally:
            await db.close()

    report = asyncio.run(run())
    written = save_week(report, out, args.lang)
    t, c = report.total, report.compliance
    print(f"weekly report {week.label} ({week.first_day} to {week.last_day}, Beijing time)"
          f"{' for client ' + args.client if args.client else ''}: {t.cases} cases, {t.attempts} attempts, "
          f"{t.contacts} contacts, {t.promises} promises, recovered {t.recovered_cents / 100:.2f}")
    print(f"compliance: {c.outside_rules} calls outside the rules, {c.unrecorded} unrecorded, "
          f"{c.recordings_verified} of {c.recorded} recordings verified")
    if pdf_locale(args.lang) != args.lang:
        print("no CJK font here (fonts-wqy-zenhei): the files are in English", file=sys.stderr)
    for path in written.values():
        print(path)
    return 0 if c.clean else 1


def add_report_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="reports: the weekly report's files (PDF, XLSX, charts)")
    report.add_argument("kind", choices=("weekly",))
    report.add_argument("--week", help="an ISO week, e.g. 2026-W49 (default: the last complete week)")
    report.add_argument("--out", help="directory for the files (default: <reports.weekly_dir>/<week>/)")
    report.add_argument("--client", help="only this client's cases (default: every case)")
    report.add_argument("--lang", choices=("zh-CN", "en"), default="zh-CN")
    report.set_defaults(func=cmd_report)
