"""`dunline recordings hold|release|holds|purge|extend-retention|missing|resolve`: retention
and missing recordings by hand.

Every change names who (--by) and why (--why): missing either is an error (exit 2) and
nothing changes; an unknown case, recording or hold is exit 1, nothing changed.
"""
from __future__ import annotations

import argparse

from dunline.cli_archive import ArchiveContext, fail, run_in_archive
from recorder.holds import (AlreadyDone, HoldTarget, MissingWhoWhy, UnknownTarget, list_holds,
                            place_hold, release_hold, require_who_why)


def _checked_who_why(args: argparse.Namespace) -> str | None:
    """The error message if --by/--why are missing or blank, else None (checked before
    anything is opened, so nothing changes)."""
    try:
        require_who_why(args.by, args.why)
    except MissingWhoWhy as exc:
        return str(exc)
    return None


def cmd_hold(args: argparse.Namespace) -> int:
    if (args.case is None) == (args.recording is None):
        return fail("give exactly one of --case CASE or --recording ATTEMPT_ID", 2)
    if (problem := _checked_who_why(args)) is not None:
        return fail(problem, 2)
    target = HoldTarget(case_id=args.case, attempt_id=args.recording)

    async def work(ctx: ArchiveContext) -> int:
        try:
            result = await place_hold(ctx.writing_ledger, ctx.store, target, by=args.by, why=args.why)
        except (UnknownTarget, AlreadyDone) as exc:
            return fail(str(exc), 1)
        print(f"legal hold #{result.hold_id} on {result.subject} by {args.by}: "
              f"{len(result.recordings)} recordings held")
        for attempt_id in result.recordings:
            print(f"  recording {attempt_id}")
        for key in result.store.missing:
            print(f"  WARNING: store object missing: {key}")
        return 0

    return run_in_archive(args, work)


def cmd_release(args: argparse.Namespace) -> int:
    if (problem := _checked_who_why(args)) is not None:
        return fail(problem, 2)

    async def work(ctx: ArchiveContext) -> int:
        try:
            result = await release_hold(ctx.writing_ledger, ctx.store, args.hold_id, by=args.by, why=args.why)
        except (UnknownTarget, AlreadyDone) as exc:
            return fail(str(exc), 1)
        print(f"legal hold #{result.hold_id} on {result.subject} released by {args.by}: "
              f"{len(result.recordings)} recordings no longer held by it")
        return 0

    return run_in_archive(args, work)


def cmd_holds(args: argparse.Namespace) -> int:
    async def work(ctx: ArchiveContext) -> int:
        try:
            views = await list_holds(ctx.db, case_id=args.case)
        except UnknownTarget as exc:
            return fail(str(exc), 1)
        if not views:
            print("no legal holds")
        for v in views:
            state = "LIVE" if v.released is None else f"released {v.released}"
            print(f"#{v.hold_id} {v.subject} placed {v.placed_at} by {v.placed_by}: {v.reason} [{state}]")
        return 0

    return run_in_archive(args, work)


def cmd_purge(args: argparse.Namespace) -> int:
    from recorder.purge import run_purge

    if (problem := _checked_who_why(args)) is not None:
        return fail(problem, 2)

    async def work(ctx: ArchiveContext) -> int:
        report = await run_purge(ctx.writing_ledger, ctx.store, by=args.by, why=args.why, dry_run=args.dry_run)
        print(report.render())
        return 0

    return run_in_archive(args, work)


def cmd_extend(args: argparse.Namespace) -> int:
    from recorder.retention_extend import extend_retention

    if (args.case is None) == (args.client is None):
        return fail("give exactly one of --case CASE or --client CLIENT", 2)
    if (problem := _checked_who_why(args)) is not None:
        return fail(problem, 2)

    async def work(ctx: ArchiveContext) -> int:
        try:
            done = await extend_retention(ctx.writing_ledger, ctx.store, years=args.years, by=args.by, why=args.why,
                                          case_id=args.case, client=args.client)
        except UnknownTarget as exc:
            return fail(str(exc), 1)
        for ext in done:
            print(f"recording {ext.attempt_id} (case {ext.case_id}): retained until {ext.new.isoformat()} "
                  f"(was {ext.old.isoformat()})")
        print(f"extended {len(done)} recordings")
        return 0

    return run_in_archive(args, work)


def cmd_missing(args: argparse.Namespace) -> int:
    """Answered calls whose recording is not archived: exit 1 while there is any."""
    from recorder.resolutions import missing_recordings

    async def work(ctx: ArchiveContext) -> int:
        found = await missing_recordings(ctx.db)
        for m in found:
            print(f"{m.attempt_id} case {m.case_id} number {m.number} due {m.due_at.isoformat() if m.due_at else '-'} "
                  f"tries {m.tries}: {m.last_error or 'not tried yet'}")
        print(f"{len(found)} answered call(s) without an archived recording")
        return 1 if found else 0

    return run_in_archive(args, work)


def cmd_resolve(args: argparse.Namespace) -> int:
    from recorder.resolutions import resolve_missing

    if (problem := _checked_who_why(args)) is not None:
        return fail(problem, 2)

    async def work(ctx: ArchiveContext) -> int:
        try:
            seq = await resolve_missing(ctx.writing_ledger, args.attempt_id, by=args.by, why=args.why)
        except (UnknownTarget, AlreadyDone) as exc:
            return fail(str(exc), 1)
        print(f"recording of attempt {args.attempt_id} resolved by {args.by} (ledger entry {seq}): {args.why}")
        return 0

    return run_in_archive(args, work)


def _who_why(parser: argparse.ArgumentParser, why_default: str | None = None) -> None:
    parser.add_argument("--by", help="who does this (required)")
    parser.add_argument("--why", default=why_default, help="the reason (required)" if why_default is None
                        else f"the reason (default: {why_default!r})")


def add_parsers(actions: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register this module's `recordings` subcommands."""
    from recorder.purge import DEFAULT_WHY

    hold = actions.add_parser("hold", help="place a legal hold on a case or one recording")
    hold.add_argument("--case", help="hold every recording of this case, now and later")
    hold.add_argument("--recording", metavar="ATTEMPT_ID", help="hold the recording of this attempt")
    _who_why(hold)
    hold.set_defaults(func=cmd_hold)
    release = actions.add_parser("release", help="release a legal hold")
    release.add_argument("hold_id", type=int, metavar="HOLD_ID")
    _who_why(release)
    release.set_defaults(func=cmd_release)
    holds = actions.add_parser("holds", help="list legal holds (newest first)")
    holds.add_argument("--case", help="only this case's holds and its recordings'")
    holds.set_defaults(func=cmd_holds)
    purge = actions.add_parser("purge", help="remove recordings past their retention and not held "
                                             "(rows stay as tombstones)")
    purge.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    _who_why(purge, DEFAULT_WHY)
    purge.set_defaults(func=cmd_purge)
    missing = actions.add_parser("missing", help="answered calls whose recording is not archived (exit 1 if any)")
    missing.set_defaults(func=cmd_missing)
    resolve = actions.add_parser("resolve", help="close the incident of a recording that can never be archived "
                                                 "(who and why, a ledger entry)")
    resolve.add_argument("attempt_id", metavar="ATTEMPT_ID")
    _who_why(resolve)
    resolve.set_defaults(func=cmd_resolve)
    extend = actions.add_parser("extend-retention", help="keep a case's or client's recordings longer "
                                                         "(never shorter)")
    extend.add_argument("--case")
    extend.add_argument("--client")
    extend.add_argument("--years", type=int, required=True)
    _who_why(extend)
    extend.set_defaults(func=cmd_extend)
