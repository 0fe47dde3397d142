"""`dunline recordings ...`: the archive from the command line.

verify (here), find/show/export (dunline/cli_retrieval.py), hold/release/purge
(dunline/cli_retention.py). Every command opens the same `ArchiveContext`
(dunline/cli_archive.py): database, archive store and ledger, as the running service has them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dunline.cli_archive import ArchiveContext, fail, run_in_archive
from dunline.settings import load_settings
from recorder.ledger import Checkpoint, public_key_pem


def _pinned_key(args: argparse.Namespace, ctx: ArchiveContext) -> Ed25519PublicKey | str:
    """The public key verify may trust, or why there is none. Pinned by `--public-key` (its
    content), else by a fingerprint (`--fingerprint`, else recording.ledger_key_fingerprint):
    then the key is the one with that fingerprint among the key file beside the archive and
    the witnesses' copies. A key merely found beside the archive is never trusted unpinned."""
    from recorder.ledger import fingerprint_of, load_public_key, load_signer
    from recorder.witness import CheckpointWitness

    pinned = args.fingerprint or ctx.settings.recording.ledger_key_fingerprint
    if args.public_key:
        try:
            key = load_public_key(Path(args.public_key).read_bytes())
        except (OSError, ValueError) as exc:
            return f"--public-key {args.public_key}: {exc}"
        if pinned and fingerprint_of(key) != pinned:
            return f"--public-key {args.public_key} has fingerprint {fingerprint_of(key)}, not the pinned {pinned}"
        return key
    if not pinned:
        return ("verify needs a pinned key: --public-key FILE, --fingerprint HEX or recording.ledger_key_fingerprint "
                "(the fingerprint `dunline recordings init-key` printed)")
    candidates: list[Ed25519PublicKey] = []
    try:
        candidates.append(load_signer(ctx.settings.recording.ledger_key_path()).public_key)
    except (OSError, ValueError):
        pass
    for read in CheckpointWitness(ctx.store, retain_years=0).read_all():
        try:
            candidates.append(load_public_key(read.public_key_pem.encode()))
        except ValueError:
            continue
    for key in candidates:
        if fingerprint_of(key) == pinned:
            return key
    return f"no public key with the pinned fingerprint {pinned} beside the archive or in its witnesses; give it with --public-key"


def _heads(path: str | None) -> list[Checkpoint] | str:
    """Signed heads an outside party kept (JSON lines, as `recordings checkpoints` prints)."""
    if not path:
        return []
    heads: list[Checkpoint] = []
    try:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                heads.append(Checkpoint.from_json(json.loads(line)))
    except (OSError, ValueError) as exc:
        return f"--heads {path}: {exc}"
    return heads


def cmd_verify(args: argparse.Namespace) -> int:
    from recorder.verify import verify_archive

    heads = _heads(args.heads)
    if isinstance(heads, str):
        return fail(heads, 2)

    async def work(ctx: ArchiveContext) -> int:
        key = _pinned_key(args, ctx)
        if isinstance(key, str):
            return fail(key, 2)
        report = await verify_archive(ctx.db, ctx.store, key, heads=heads, now=ctx.clock(),
                                      unsigned_max_age_s=args.unsigned_max_age or
                                      3 * ctx.settings.recording.checkpoint_interval_s)
        print(report.render())
        return 0 if report.ok else 1

    return run_in_archive(args, work, with_ledger=False)


def cmd_ledger_key(args: argparse.Namespace) -> int:
    """Print the public key that checks the ledger's signed checkpoints, and its fingerprint."""
    from recorder.ledger import KeyMissing, fingerprint_of, load_signer

    settings = load_settings(args.config)
    try:
        signer = load_signer(settings.recording.ledger_key_path())
    except KeyMissing as exc:
        return fail(str(exc), 1)
    print(public_key_pem(signer.public_key), end="")
    print(f"fingerprint (SHA-256 of the raw public key): {fingerprint_of(signer.public_key)}")
    return 0


def cmd_init_key(args: argparse.Namespace) -> int:
    """Make the ledger's signing key: the only command that ever does."""
    from dunline.wiring import init_key
    from recorder.ledger import fingerprint_of

    settings = load_settings(args.config)
    try:
        signer = init_key(settings.recording)
    except FileExistsError:
        return fail(f"{settings.recording.ledger_key_path()} exists: a ledger key is made once "
                    "(`dunline recordings ledger-key` prints it)", 1)
    print(public_key_pem(signer.public_key), end="")
    print(f"fingerprint: {fingerprint_of(signer.public_key)}")
    print("Give this fingerprint to the client and pin it: recording.ledger_key_fingerprint "
          "(DUNLINE_RECORDING_LEDGER_KEY_FINGERPRINT).")
    return 0


def cmd_checkpoints(args: argparse.Namespace) -> int:
    """The signed heads (JSON lines), for an outside party to keep and hand back to verify."""
    from recorder import ledger_store
    from recorder.retrieval_query import InvalidRequest, parse_time
    from recorder.witness import witness_json

    try:
        since = parse_time(args.since, "--since") if args.since else None
    except InvalidRequest as exc:
        return fail(str(exc), 2)

    async def work(ctx: ArchiveContext) -> int:
        ledger = ctx.writing_ledger
        await ledger.checkpoint()  # the head as of now is among them
        async with ctx.db.session() as session:
            found = [c for c in await ledger_store.checkpoints(session) if since is None or c.at >= since]
        for checkpoint in found:
            print(json.dumps(witness_json(checkpoint, ledger.signer.public_key), sort_keys=True))
        return 0

    return run_in_archive(args, work)


def add_recordings_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from dunline import cli_retention, cli_retrieval

    recordings = sub.add_parser("recordings", help="the recording archive: verify, find, export, hold, purge")
    actions = recordings.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="check the ledger against its witnesses and the archive against "
                                               "the ledger; exit 1 on any problem")
    verify.add_argument("--public-key", help="PEM public key to check checkpoints with (pins it)")
    verify.add_argument("--fingerprint", help="the pinned key's SHA-256 fingerprint "
                                              "(default: recording.ledger_key_fingerprint)")
    verify.add_argument("--heads", help="signed heads kept by an outside party (`recordings checkpoints` output)")
    verify.add_argument("--unsigned-max-age", type=float, default=0,
                        help="seconds an entry may wait for a checkpoint (default: 3x checkpoint_interval_s)")
    verify.set_defaults(func=cmd_verify)
    key = actions.add_parser("ledger-key", help="print the public key of the ledger's checkpoints and its fingerprint")
    key.set_defaults(func=cmd_ledger_key)
    init = actions.add_parser("init-key", help="make the ledger's signing key (once; prints the fingerprint to pin)")
    init.set_defaults(func=cmd_init_key)
    heads = actions.add_parser("checkpoints", help="print the signed heads (JSON lines) for an outside party to keep")
    heads.add_argument("--since", help="only heads signed at or after this time (ISO 8601)")
    heads.set_defaults(func=cmd_checkpoints)
    cli_retrieval.add_parsers(actions)
    cli_retention.add_parsers(actions)
