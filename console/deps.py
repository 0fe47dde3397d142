"""What the console's handlers need, in one place: the handler modules import it from here,
never from the module that registers them (console/api.py)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from people.accounts import Accounts, Principal
from recorder.archive import ArchiveStore
from recorder.ledger_store import Ledger
from storage.clock import Clock
from storage.db import Database
from storage.models import Attempt

if TYPE_CHECKING:
    from dialer.seats import SeatKeeper
    from dialer.supervision import Supervision


class DialFn(Protocol):
    """(case id, number or None, who asked) -> the new attempt (dunline/service.py: Service.dial);
    `campaign_id` is passed only for a campaign's call (a preview's dial)."""

    def __call__(self, case_id: str, number: str | None, /, *, requested_by: str,
                 collector: str | None = None, campaign_id: int | None = None) -> Awaitable[Attempt]: ...

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True, slots=True)
class WebSecurity:
    """Which Host headers and Origins the console answers (no DNS rebinding, no cross-site
    requests), and whether its cookies need HTTPS."""

    allowed_hosts: frozenset[str]  # as in the Host header, lower-case: "127.0.0.1:8088"
    allowed_origins: frozenset[str]  # "http://127.0.0.1:8088", "https://dunline.example.com"
    secure_cookies: bool = False

    @classmethod
    def build(cls, port: int, public_url: str = "", extra_hosts: tuple[str, ...] = ()) -> WebSecurity:
        """The loopback names on `port`, the public URL's host (behind a reverse proxy) and
        any extra `host[:port]` a deployment names."""
        hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES}
        origins = {f"http://{host}" for host in hosts}
        for host in extra_hosts:
            hosts.add(host.lower())
            origins.add(f"http://{host.lower()}")
        if public_url:
            parts = urlsplit(public_url)
            hosts.add(parts.netloc.lower())
            origins.add(f"{parts.scheme}://{parts.netloc.lower()}")
        return cls(frozenset(hosts), frozenset(origins), secure_cookies=public_url.startswith("https://"))


@dataclass(frozen=True, slots=True)
class ConsoleDeps:
    db: Database
    dial: DialFn
    health: Callable[[], dict[str, Any]]
    accounts: Accounts
    security: WebSecurity
    store: ArchiveStore | None = None  # the recording archive (console/recordings_api.py)
    ledger: Ledger | None = None  # where every access and export is logged
    seats: SeatKeeper | None = None  # the floor's seats (None: floor.seats is off)
    supervision: Supervision | None = None  # listen / whisper / barge
    visits_dir: Path | None = None  # field visits' photos and recordings (settings visits.dir; None: no uploads)
    qc_sample_size: int = 5  # a QC sample's calls per collector when a run names none (settings qc.sample_size)

    @property
    def clock(self) -> Clock:
        return self.accounts.clock


DEPS = web.AppKey("deps", ConsoleDeps)
PRINCIPAL = web.RequestKey("principal", Principal)  # the signed-in user, set by the guard


def principal(request: web.Request) -> Principal:
    """The signed-in user of a guarded handler (the guard has made sure there is one)."""
    who = request.get(PRINCIPAL)
    if who is None:
        raise web.HTTPUnauthorized(text="sign in first")
    return who
