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
from recorder.ledger import KeyMissing
from recorder.ledger_store import Ledger
from storage.clock import Clock, system_clock
from storage.db import Database


@dataclass
class ArchiveContext:
    settings: Settings
    db: Database
    store: ArchiveStore
    ledger: Ledger | None  # None for commands that only read (verify): they need no private key
    clock: Clock

    @property
    def writing_ledger(self) -> Ledger:
        assert self.ledger is not None, "this command opened the archive read-only"
        return self.ledger


@asynccontextmanager
async def archive_context(settings: Settings, clock: Clock = system_clock, *,
                          with_ledger: bool = True) -> AsyncIterator[ArchiveContext]:
    """The archive as the running service has it. A command that writes ledger entries
    needs the signing key; it is never created here (KeyMissing: `recordings init-key`)."""
    from dunline.wiring import open_archive_store, open_ledger

    db = Database(settings.database.url)
    try:
        await db.migrate()
        store = await asyncio.to_thread(open_archive_store, settings.recording)
        ledger = await open_ledger(settings, db, store, clock) if with_ledger else None
        yield ArchiveContext(settings, db, store, ledger, clock)
    finally:
        await db.close()


def run_in_archive(args: argparse.Namespace, work: Callable[[ArchiveContext], Awaitable[int]], *,
                   with_ledger: bool = True) -> int:
    """Load settings, open the archive, run `work`, return its exit status (1 when the
    ledger's key is missing or not the pinned one: nothing was done)."""
    from dunline.wiring import KeyNotPinned

    settings = load_settings(args.config)

    async def run() -> int:
        try:
            async with archive_context(settings, with_ledger=with_ledger) as ctx:
                return await work(ctx)
        except (KeyMissing, KeyNotPinned) as exc:
            return fail(str(exc), 1)

    return asyncio.run(run())


def fail(message: str, status: int = 2) -> int:
    """Print `message` to stderr and return the exit status (2: bad input)."""
    print(message, file=sys.stderr)
    return status
