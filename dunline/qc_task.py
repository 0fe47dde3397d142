"""The service's weekly QC sample (settings `qc.weekly_auto`): once an hour it makes the last
complete week's sample of every collector who has none yet (cases/qc_store.py: the same as
`dunline qc sample` with the week's default seed), so each Monday the week's calls are in the
QC queue. Making it again changes nothing; a failure is logged and tried at the next look."""
from __future__ import annotations

import asyncio
import logging

from cases.qc_store import create_samples
from cases.weekly_report import Week
from storage.clock import Clock
from storage.db import Database

log = logging.getLogger("dunline.qc")
CHECK_EVERY_S = 3600.0


async def sample_last_week(db: Database, clock: Clock, size: int) -> object:
    """The last complete week's samples, made for whoever has none (by "dunline")."""
    return await create_samples(db, clock, Week.last_complete(clock()).label, by="dunline", default_size=size)


async def run_weekly_samples(db: Database, clock: Clock, size: int, *, every_s: float = CHECK_EVERY_S) -> None:
    while True:
        try:
            await sample_last_week(db, clock, size)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001  (the next look tries again)
            log.exception("the week's QC sample could not be made; trying again in %.0f s", every_s)
        await asyncio.sleep(every_s)
