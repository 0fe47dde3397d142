"""Shared fixtures: a migrated SQLite database per test, a manual clock, the ledger and
the durable writer of attempt reports and audit events (its journal in the test's tmp dir)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from storage.clock import ManualClock
from storage.db import Database
from storage.durable import DurableWriter
from storage.journal import Journal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc))


@pytest.fixture
async def db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'dunline.db'}")
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def ledger(db, signer, clock) -> Ledger:
    return Ledger(db, signer, clock, checkpoint_every=5)


@pytest.fixture
def writer(db, clock, tmp_path) -> DurableWriter:
    return DurableWriter(db, Journal(tmp_path / "facts.journal"), clock)
