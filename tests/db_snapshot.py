"""Every row of every table, to prove a refused request changed nothing stored."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import Base


async def snapshot(db: Database, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows but those of the tables in `skip` (logs a refusal may add to)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.session() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            rows = (await s.execute(select(table))).all()
            out[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return out
