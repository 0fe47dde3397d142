"""`dunline visits purge`: field-visit data past its six months goes (cases/visit_purge.py):
the attachments' files deleted, the texts blanked, the row kept as a tombstone, one ledger
entry per visit. The running service does the same every `visits.purge_interval_s`.

Names who (--by, required) and why (--why, a default): missing or blank is exit 2 and nothing
changes. --dry-run lists what would go and changes nothing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dunline.cli_archive import ArchiveContext, fail, run_in_archive


def cmd_purge(args: argparse.Namespace) -> int:
    from cases.visit_purge import purge_visits

    if not (args.by or "").strip() or not (args.why or "").strip():
        return fail("give who (--by) and why (--why): a purge is in the ledger under their name", 2)

    async def work(ctx: ArchiveContext) -> int:
        report = await purge_visits(ctx.db, ctx.writing_ledger, ctx.clock, Path(ctx.settings.visits.dir),
                                    by=args.by.strip(), why=args.why.strip(), dry_run=args.dry_run)
        if report.purged and not args.dry_run:
            await ctx.writing_ledger.checkpoint()  # sealed and witnessed at once
        print(report.render())
        return 1 if report.failed else 0

    return run_in_archive(args, work)


def add_visits_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from cases.visit_purge import DEFAULT_WHY

    visits = sub.add_parser("visits", help="field visits: purge their data after six months")
    actions = visits.add_subparsers(dest="action", required=True)
    purge = actions.add_parser("purge", help="purge the data of field visits older than six months (183 days): "
                                             "files deleted, texts blanked, one ledger entry each")
    purge.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    purge.add_argument("--by", help="who purges (required; the ledger names them)")
    purge.add_argument("--why", default=DEFAULT_WHY, help=f"the reason (default: {DEFAULT_WHY!r})")
    purge.set_defaults(func=cmd_purge)
