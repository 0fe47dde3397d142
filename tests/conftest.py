"""Shared fixtures: a migrated SQLite database per test, a manual clock, the ledger and
the durable writer of attempt reports and audit events (its journal in the test's tmp dir)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder.archive import FilesystemArchive
from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from recorder.witness import CheckpointWitness
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
async def fast_db(tmp_path):
    """The database with a short busy timeout: a held write lock fails a write in 0.1 s, not 5 s."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", busy_timeout_ms=100)
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
async def postgres_db():
    """A migrated, empty PostgreSQL database when DUNLINE_TEST_POSTGRES_URL names one
    (`postgresql+asyncpg://...`, a throw-away database: its schema is dropped); skipped
    otherwise, and without asyncpg."""
    import os

    from sqlalchemy import text

    url = os.environ.get("DUNLINE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("DUNLINE_TEST_POSTGRES_URL is not set")
    pytest.importorskip("asyncpg")
    database = Database(url)
    async with database.engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def ledger(db, signer, clock, tmp_path) -> Ledger:
    """The ledger, its checkpoints witnessed in the archive the tests use (tmp_path/archive)."""
    return Ledger(db, signer, clock, checkpoint_every=5,
                  witness=CheckpointWitness(FilesystemArchive(tmp_path / "archive"), retain_years=10))


@pytest.fixture
def writer(db, clock, tmp_path) -> DurableWriter:
    return DurableWriter(db, Journal(tmp_path / "facts.journal"), clock)


def write_signing_key(signer: Signer, path) -> None:
    """Put a test's signing key where the service and the CLI look for it (0600)."""
    import os

    from cryptography.hazmat.primitives import serialization

    pem = signer.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
