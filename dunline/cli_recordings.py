"""`dunline recordings ...`: the archive from the command line.

verify (here), find/show/export (dunline/cli_retrieval.py), hold/release/purge
(dunline/cli_retention.py). Every command opens the same `ArchiveContext`
(dunline/cli_archive.py): database, archive store and ledger, as the running service has them.
"""
from __future__ import annotations

import argparse

from dunline.cli_archive import ArchiveContext, run_in_archive
from dunline.settings import load_settings
from recorder.ledger import load_or_create_key, public_key_pem


def cmd_verify(args: argparse.Namespace) -> int:
    from recorder.ledger import load_public_key
    from recorder.verify import verify_archive

    async def work(ctx: ArchiveContext) -> int:
        public_key = (load_public_key(open(args.public_key, "rb").read()) if args.public_key
                      else ctx.signer.public_key)
        report = await verify_archive(ctx.db, ctx.store, public_key)
        print(report.render())
        return 0 if report.ok else 1

    return run_in_archive(args, work)


def cmd_ledger_key(args: argparse.Namespace) -> int:
    """Print the public key that checks the ledger's signed checkpoints."""
    settings = load_settings(args.config)
    print(public_key_pem(load_or_create_key(settings.recording.ledger_key_path()).public_key), end="")
    return 0


def add_recordings_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from dunline import cli_retention, cli_retrieval

    recordings = sub.add_parser("recordings", help="the recording archive: verify, find, export, hold, purge")
    actions = recordings.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="re-hash every file and check the ledger; exit 1 on any problem")
    verify.add_argument("--public-key", help="PEM public key to check checkpoints with "
                                             "(default: the service's own key)")
    verify.set_defaults(func=cmd_verify)
    key = actions.add_parser("ledger-key", help="print the public key of the ledger's checkpoints")
    key.set_defaults(func=cmd_ledger_key)
    cli_retrieval.add_parsers(actions)
    cli_retention.add_parsers(actions)
