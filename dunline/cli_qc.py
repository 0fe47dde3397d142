"""`dunline qc ...`: quality control from the command line (the audit names the operator
`cli:<login>`).

    dunline qc sample [--week 2026-W49] [--size N] [--seed S]
    dunline qc report [--from 2026-W45] [--to 2026-W49]

`sample` draws the week's sample of every collector's recorded calls (default: last week on
the floor's clock, Asia/Shanghai; size: settings qc.sample_size; seed: derived from the week)
and prints each collector's picks; a week already sampled is left as it is (exit 0, "already
there"). A bad week, size or seed, or a week not over yet, exits 2 with nothing stored.
`report` prints the QC report per collector.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from dunline.cli_users import operator
from dunline.settings import load_settings


def cmd_qc(args: argparse.Namespace) -> int:
    from cases import qc_store
    from cases.qc import ITEM_KEYS, QcRefused, week_of
    from storage.clock import system_clock
    from storage.db import Database

    settings = load_settings(args.config)

    async def sample(db: Any) -> int:
        week = args.week or str(week_of(system_clock()).previous())
        done = await qc_store.create_samples(db, system_clock, week, by=operator(), size=args.size, seed=args.seed,
                                             default_size=settings.qc.sample_size)
        print(f"{done.week}: {len(done.created)} samples made, {len(done.samples) - len(done.created)} already there")
        for s in done.samples:
            state = "made" if s.created else "already there"
            print(f"  {s.collector:<20} phone {s.phone:<8} {len(s.picked)} of {s.candidates} calls, seed {s.seed}, "
                  f"size {s.size} ({state})")
            for attempt_id in s.picked:
                print(f"      {attempt_id}")
        return 0

    async def report(db: Any) -> int:
        rows = await qc_store.report(db, qc_store.ALL, from_week=qc_store.week_or_none(args.start),
                                     to_week=qc_store.week_or_none(args.end))
        print(f"{'collector':<20} {'calls':>6} {'sampled':>8} {'scored':>7} {'average':>8}  fails by item")
        for r in rows:
            average = f"{r.average_total:.1f}" if r.average_total is not None else "-"
            fails = ", ".join(f"{k} {r.fails.get(k, 0)}" for k in ITEM_KEYS if r.fails.get(k))
            print(f"{r.collector:<20} {r.candidates:>6} {r.sampled:>8} {r.scored:>7} {average:>8}  {fails or '-'}")
        return 0

    async def run() -> int:
        db = Database(settings.database.url)
        try:
            await db.migrate()
            return await (sample(db) if args.action == "sample" else report(db))
        except QcRefused as exc:
            from console.qc_api import refusal_text

            print(refusal_text(exc, "en"), file=sys.stderr)
            return 2
        finally:
            await db.close()

    return asyncio.run(run())


def add_qc_parser(sub: Any) -> None:
    qc = sub.add_parser("qc", help="quality control: draw the week's sample, the QC report")
    qc.add_argument("action", choices=("sample", "report"))
    qc.add_argument("--week", help="sample: the ISO week, e.g. 2026-W49 (default: last week, Beijing time)")
    qc.add_argument("--size", help="sample: calls per collector (default: settings qc.sample_size)")
    qc.add_argument("--seed", help="sample: the seed (default: derived from the week)")
    qc.add_argument("--from", dest="start", help="report: the first ISO week")
    qc.add_argument("--to", dest="end", help="report: the last ISO week")
    qc.set_defaults(func=cmd_qc)
