"""Per-number exclusion of dials, enforced by the database (not by a lock in one process):
whoever places a call for a number first claims its lease, in the same transaction as the
policy's decision and the write-ahead attempt. A second dial of the number while the lease
runs is refused; a dialer that dies mid-transaction leaves no lease (it rolls back), one
that dies after commit leaves a lease that simply expires. Works the same on SQLite (the
claim is the transaction's first write: it serialises the rest) and PostgreSQL (the row
lock holds a concurrent claim until commit, which then finds the lease taken)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime

LEASE = timedelta(seconds=30)  # the decision-to-originate window, with room for a slow database


class DialLease(Base):
    __tablename__ = "dial_leases"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))  # the attempt that holds it
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


async def claim(session: AsyncSession, number: str, holder: str, now: datetime) -> datetime | None:
    """Claim `number` for `holder` until now + LEASE. Returns None when claimed, else when the
    current lease ends (someone else is dialling it)."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    until = now + LEASE
    statement = insert(DialLease).values(number=number, holder=holder, expires_at=until)
    statement = statement.on_conflict_do_update(
        index_elements=[DialLease.number],
        set_={"holder": holder, "expires_at": until},
        where=DialLease.expires_at <= now,  # only an expired lease is taken over
    )
    result = await session.execute(statement)
    if result.rowcount:
        return None
    current = await session.get(DialLease, number, populate_existing=True)
    return current.expires_at if current is not None else until


async def release(session: AsyncSession, number: str, holder: str) -> None:
    """Give the lease back (the policy refused the call it was claimed for)."""
    from sqlalchemy import delete

    await session.execute(delete(DialLease).where(DialLease.number == number, DialLease.holder == holder))
