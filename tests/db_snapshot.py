"""Every row of every table, to prove a refused request changed nothing stored."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import Base


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.session() as s:
        for table in Base.metadata.sorted_tables:
            rows = (await s.execute(select(table))).all()
            out[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return out
