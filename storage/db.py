"""The database handle: async engine + sessions, SQLite (WAL) by default.

`Database(url)` works for `sqlite+aiosqlite:///path.db` and `postgresql+asyncpg://...`.
`migrate()` brings the schema to the newest Alembic revision; it is the only way the
schema is created (tests included), so migrations are always exercised.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.files import FILE_MODE, make_dirs, tighten

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


BUSY_TIMEOUT_MS = 5000  # how long an SQLite write waits for another writer's lock


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
    return on_connect


def _private_sqlite_file(path: Path) -> None:
    """The database file 0640 in a 0750 directory before SQLite opens it: SQLite gives its
    -wal and -shm files the database file's mode, so they are private too."""
    make_dirs(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        for existing in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            tighten(existing)


def make_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> AsyncEngine:
    """An async engine; for SQLite, WAL, foreign keys and a busy timeout on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _private_sqlite_file(Path(parsed.database))
    engine = create_async_engine(url, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms))
    return engine


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(url: str, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


class Database:
    """Engine and session factory for one database URL."""

    def __init__(self, url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout_ms)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def migrate(self, revision: str = "head") -> None:
        """Run Alembic migrations (in a thread: Alembic's async env runs its own loop)."""
        await asyncio.to_thread(_upgrade, self.url, revision)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessions() as session:
            async with session.begin():
                yield session

    async def close(self) -> None:
        await self.engine.dispose()
