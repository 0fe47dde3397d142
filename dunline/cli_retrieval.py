"""`dunline recordings find|show|export`: compliance retrieval from the command line.

Every command needs `--by WHO --why WHY`: they go into the ledger with what was read or
exported. Input is checked before the archive is opened, so a refused command reads and
logs nothing. Exit status: 0 done, 1 not found or export failed, 2 bad input.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dunline.cli_archive import ArchiveContext, fail, run_in_archive
from recorder.retrieval import RecordingPage, find_recordings, recording_metadata
from recorder.retrieval_query import (
    InvalidRequest, RecordingQuery, Requester, RetrievalError, check_attempt_id, check_case_number,
)


def _print_page(page: RecordingPage, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"recordings": [r.as_json() for r in page.recordings],
                          "next_cursor": page.next_cursor}, indent=2))
        return
    print(f"{'ended (UTC)':<20} {'case':<16} {'recording':<32} {'number':<14} {'collector':<10} "
          f"{'seconds':>7}  flags")
    for r in page.recordings:
        print(f"{r.ended_at:%Y-%m-%d %H:%M:%S}  {r.case_id:<16} {r.attempt_id:<32} {r.number:<14} "
              f"{r.collector or '-':<10} {r.duration_s:>7.1f}  {','.join(r.flags) or '-'}"
              f"{'  PURGED' if r.purged_at else ''}")
    print(f"{len(page.recordings)} recording(s)" + (f"; next page: --cursor {page.next_cursor}"
                                                      if page.next_cursor else ""))


def cmd_find(args: argparse.Namespace) -> int:
    try:
        requester = Requester.of(args.by, args.why)
        query = RecordingQuery.from_text(
            case=args.case, phone=args.phone, collector=args.collector, ended_from=args.ended_from,
            ended_to=args.ended_to, flags=tuple(args.flag or ()), limit=args.limit, cursor=args.cursor)
        if not query.has_filter:
            raise InvalidRequest("give at least one filter: --case, --phone, --collector, --from, --to, --flag")
    except InvalidRequest as exc:
        return fail(str(exc))

    async def work(ctx: ArchiveContext) -> int:
        try:
            page = await find_recordings(ctx.db, ctx.writing_ledger, query, requester)
        except RetrievalError as exc:
            return fail(str(exc), 1)
        _print_page(page, args.json)
        return 0

    return run_in_archive(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    try:
        requester = Requester.of(args.by, args.why)
        attempt_id = check_attempt_id(args.attempt_id)
    except InvalidRequest as exc:
        return fail(str(exc))

    async def work(ctx: ArchiveContext) -> int:
        try:
            info = await recording_metadata(ctx.db, ctx.writing_ledger, attempt_id, requester)
        except RetrievalError as exc:
            return fail(str(exc), 1)
        print(json.dumps(info.as_json(), indent=2))
        return 0

    return run_in_archive(args, work)


def cmd_export(args: argparse.Namespace) -> int:
    from recorder.bagit import export_case

    out = Path(args.out)
    try:
        requester = Requester.of(args.by, args.why)
        case_id = check_case_number(args.case)
        if not out.is_dir():
            raise InvalidRequest(f"--out {out}: not an existing directory")
    except InvalidRequest as exc:
        return fail(str(exc))

    async def work(ctx: ArchiveContext) -> int:
        try:
            result = await export_case(ctx.db, ctx.store, ctx.writing_ledger, case_id, out, requester,
                                       organization=args.organization, as_tar=args.tar)
        except RetrievalError as exc:
            return fail(str(exc), 1)
        print(f"exported {len(result.attempt_ids)} recording(s) of case {case_id} to {result.path}")
        print(f"Payload-Oxum {result.payload_oxum}; ledger entry {result.ledger_seq}")
        return 0

    return run_in_archive(args, work)


def _who_and_why(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", help="who asks (required: every retrieval is logged)")
    parser.add_argument("--why", help="why: the complaint, request or audit (required)")


def add_parsers(actions: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register this module's `recordings` subcommands."""
    find = actions.add_parser("find", help="find recordings by case, phone, collector, date, flag")
    find.add_argument("--case", help="case number")
    find.add_argument("--phone", help="the number that was called")
    find.add_argument("--collector", help="the collector's extension")
    find.add_argument("--from", dest="ended_from", help="calls ended at or after (ISO 8601, UTC if no zone)")
    find.add_argument("--to", dest="ended_to", help="calls ended before (exclusive)")
    find.add_argument("--flag", action="append", help="an ingest flag, e.g. no_signal_tx (repeatable: all must match)")
    find.add_argument("--limit", default="50", help="recordings per page (1-500)")
    find.add_argument("--cursor", help="continue after the page that printed this cursor")
    find.add_argument("--json", action="store_true", help="print JSON")
    _who_and_why(find)
    find.set_defaults(func=cmd_find)

    show = actions.add_parser("show", help="one recording's metadata (its attempt id)")
    show.add_argument("attempt_id")
    _who_and_why(show)
    show.set_defaults(func=cmd_show)

    export = actions.add_parser("export", help="a case's recordings as a BagIt bag with ledger proofs")
    export.add_argument("--case", required=True, help="case number")
    export.add_argument("--out", required=True, help="existing directory to write the bag into")
    export.add_argument("--tar", action="store_true", help="write one .tar instead of a directory")
    export.add_argument("--organization", default="dunline", help="bag-info Source-Organization")
    _who_and_why(export)
    export.set_defaults(func=cmd_export)
