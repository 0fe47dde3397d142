"""What every `dunline recordings ...` command opens: the database, the archive store and
the ledger, as the running service has them (`ArchiveContext`), and how a command runs in
it. The command modules (cli_recordings, cli_retrieval, cli_retention) import it from here.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from dunline.settings import Settings, load_settings
from recorder.archive import ArchiveStore
from recorder.ledger import Signer, load_or_create_key
from recorder.ledger_store import Ledger
from storage.clock import Clock, system_clock
from storage.db import Database


@dataclass
class ArchiveContext:
    settings: Settings
    db: Database
    store: ArchiveStore
    signer: Signer
    ledger: Ledger
    clock: Clock


@asynccontextmanager
async def archive_context(settings: Settings, clock: Clock = system_clock) -> AsyncIterator[ArchiveContext]:
    from dunline.wiring import open_archive_store

    db = Database(settings.database.url)
    try:
        await db.migrate()
        store = await asyncio.to_thread(open_archive_store, settings.recording)
        signer = load_or_create_key(settings.recording.ledger_key_path())
        yield ArchiveContext(settings, db, store, signer,
                             Ledger(db, signer, clock, settings.recording.checkpoint_every), clock)
    finally:
        await db.close()


def run_in_archive(args: argparse.Namespace, work: Callable[[ArchiveContext], Awaitable[int]]) -> int:
    """Load settings, open the archive, run `work`, return its exit status."""
    settings = load_settings(args.config)

    async def run() -> int:
        async with archive_context(settings) as ctx:
            return await work(ctx)

    return asyncio.run(run())


def fail(message: str, status: int = 2) -> int:
    """Print `message` to stderr and return the exit status (2: bad input)."""
    print(message, file=sys.stderr)
    return status
