"""The ledger on the database: appends in the caller's transaction, checkpoints, reads.

All writes that add ledger entries go through `Ledger.transaction()`: it serialises
appends inside this process (one head at a time) and opens the database transaction in
which the caller writes its own rows, so a recording row and its ledger entry commit
together or not at all. Across processes the entry's unique `seq` makes a concurrent
append fail instead of forking the chain.

Checkpoints are signed every `checkpoint_every` entries, by `run` every
`checkpoint_interval_s` while there are new entries (the unprotected tail stays short),
before an export and at shutdown; once committed, each is written to the witness outside
the database (recorder/witness.py). A witness write that fails is retried by `run`.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from recorder.ledger import Checkpoint, Entry, Signer, make_entry
from recorder.witness import CheckpointWitness
from storage.clock import Clock
from storage.db import Database
from storage.models import LedgerCheckpoint, LedgerEntry

log = logging.getLogger("dunline.ledger")


def _entry(row: LedgerEntry) -> Entry:
    return Entry(row.seq, row.at, row.actor, row.action, row.subject, row.detail, row.prev_hash,
                 row.entry_hash, row.salt)


def _checkpoint(row: LedgerCheckpoint) -> Checkpoint:
    return Checkpoint(row.seq, row.head_hash, row.at, row.key_id, row.signature)


async def head(session: AsyncSession) -> Entry | None:
    row = await session.scalar(select(LedgerEntry).order_by(LedgerEntry.seq.desc()).limit(1))
    return None if row is None else _entry(row)


async def entries(session: AsyncSession, *, subject: str | None = None,
                  since_seq: int = 0) -> Sequence[Entry]:
    query = select(LedgerEntry).where(LedgerEntry.seq > since_seq).order_by(LedgerEntry.seq)
    if subject is not None:
        query = query.where(LedgerEntry.subject == subject)
    return [_entry(r) for r in (await session.scalars(query)).all()]


async def get_entry(session: AsyncSession, seq: int) -> Entry | None:
    row = await session.get(LedgerEntry, seq)
    return None if row is None else _entry(row)


async def checkpoints(session: AsyncSession) -> Sequence[Checkpoint]:
    rows = await session.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.seq))
    return [_checkpoint(r) for r in rows.all()]


async def first_checkpoint_covering(session: AsyncSession, seq: int) -> Checkpoint | None:
    row = await session.scalar(select(LedgerCheckpoint).where(LedgerCheckpoint.seq >= seq)
                               .order_by(LedgerCheckpoint.seq).limit(1))
    return None if row is None else _checkpoint(row)


class Ledger:
    """Appends entries and signs a checkpoint every `checkpoint_every` entries."""

    def __init__(self, db: Database, signer: Signer, clock: Clock, checkpoint_every: int = 50,
                 witness: CheckpointWitness | None = None) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.db = db
        self.signer = signer
        self.clock = clock
        self.checkpoint_every = checkpoint_every
        self.witness = witness
        self._lock = asyncio.Lock()
        self._signed: list[Checkpoint] = []  # signed in the open transaction, to witness after it

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A database transaction in which `append` may be called (one at a time); the
        checkpoints signed in it are witnessed once it has committed."""
        async with self._lock:
            self._signed = []
            try:
                async with self.db.session() as session:
                    yield session
                signed = self._signed
            finally:
                self._signed = []
        for checkpoint in signed:
            await self._witness(checkpoint)

    async def append(self, session: AsyncSession, *, actor: str, action: str, subject: str,
                     detail: Mapping[str, Any]) -> Entry:
        """Add one entry after the current head (inside `transaction()`)."""
        if not self._lock.locked():
            raise RuntimeError("Ledger.append outside Ledger.transaction()")
        entry = make_entry(await head(session), at=self.clock(), actor=actor, action=action,
                           subject=subject, detail=detail)
        session.add(LedgerEntry(seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action,
                                subject=entry.subject, detail=entry.detail, prev_hash=entry.prev_hash,
                                entry_hash=entry.entry_hash, salt=entry.salt))
        await session.flush()
        if entry.seq % self.checkpoint_every == 0:
            self._add_checkpoint(session, entry)
        return entry

    def _add_checkpoint(self, session: AsyncSession, entry: Entry) -> Checkpoint:
        cp = self.signer.sign(entry.seq, entry.entry_hash, self.clock())
        session.add(LedgerCheckpoint(seq=cp.seq, head_hash=cp.head_hash, at=cp.at, key_id=cp.key_id,
                                     signature=cp.signature))
        self._signed.append(cp)
        return cp

    async def _witness(self, checkpoint: Checkpoint) -> bool:
        """Write one committed checkpoint outside the database; False if that failed (`run`
        and `anchor_pending` try again)."""
        if self.witness is None:
            return False
        try:
            key = await asyncio.to_thread(self.witness.write, checkpoint, self.signer.public_key)
            async with self.db.session() as session:
                await session.execute(update(LedgerCheckpoint).where(
                    LedgerCheckpoint.seq == checkpoint.seq, LedgerCheckpoint.head_hash == checkpoint.head_hash)
                    .values(witness_key=key))
        except Exception as exc:  # the checkpoint stands in the database; its witness waits
            log.error("checkpoint at entry %d not witnessed yet: %s", checkpoint.seq, exc)
            return False
        return True

    async def anchor_pending(self) -> int:
        """Witness every committed checkpoint that has no witness yet; returns how many remain."""
        if self.witness is None:
            return 0
        async with self.db.session() as session:
            rows = (await session.scalars(select(LedgerCheckpoint).where(LedgerCheckpoint.witness_key.is_(None))
                                          .order_by(LedgerCheckpoint.seq))).all()
        remaining = 0
        for row in rows:
            remaining += not await self._witness(_checkpoint(row))
        return remaining

    async def run(self, interval_s: float) -> None:
        """Sign the head every `interval_s` while there are new entries, and witness what
        is not witnessed yet: the entries a checkpoint does not cover stay few and young."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.checkpoint()
                await self.anchor_pending()
            except Exception:  # retried at the next interval; verify names an unsigned tail that ages
                log.exception("timed ledger checkpoint failed")

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the current head now (e.g. at shutdown, before an export); None if empty
        or already signed."""
        async with self.transaction() as session:
            current = await head(session)
            if current is None:
                return None
            latest = await session.scalar(select(func.max(LedgerCheckpoint.seq)))
            if latest == current.seq:
                return await first_checkpoint_covering(session, current.seq)
            return self._add_checkpoint(session, current)

    async def record(self, *, actor: str, action: str, subject: str,
                     detail: Mapping[str, Any]) -> Entry:
        """One entry in its own transaction (accesses, exports)."""
        async with self.transaction() as session:
            return await self.append(session, actor=actor, action=action, subject=subject, detail=detail)
