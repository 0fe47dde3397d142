"""What the console's handlers need, in one place: the handler modules import it from here,
never from the module that registers them (console/api.py)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from recorder.archive import ArchiveStore
from recorder.ledger_store import Ledger
from storage.db import Database
from storage.models import Attempt

DialFn = Callable[[str, str | None], Awaitable[Attempt]]


@dataclass(frozen=True, slots=True)
class ConsoleDeps:
    db: Database
    dial: DialFn  # (case_id, number or None) -> the new attempt
    health: Callable[[], dict[str, Any]]
    store: ArchiveStore | None = None  # the recording archive (console/recordings_api.py)
    ledger: Ledger | None = None  # where every access and export is logged


DEPS = web.AppKey("deps", ConsoleDeps)
