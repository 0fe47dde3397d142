"""The sandbox PBX for the e2e tests: one per test session, always torn down.

On a host that cannot run it (not root, no Debian tooling) the e2e tests are skipped
with the reason, except under CI (CI=true), where that is a failure: CI must run them.
"""
from __future__ import annotations

import asyncio
import csv
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

import pytest

from asterisk_conf import sandbox
from dunline.service import Service
from dunline.settings import load_settings
from dunline.wiring import sandbox_overrides
from storage import repositories as repo
from storage.clock import OffsetClock
from storage.models import Case

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_sandbox_host() -> None:
    """Skip where the sandbox cannot run; under CI that is a failure instead."""
    problem = sandbox.check_host()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the e2e tests, but: {problem}")
        pytest.skip(problem)


# collector phones in the session sandbox: concurrent calls (test_archive_e2e) need one each
SANDBOX_PHONES = 4


@pytest.fixture(scope="session")
def sandbox_info(tmp_path_factory):
    require_sandbox_host()
    state = tmp_path_factory.mktemp("sandbox")
    try:
        info = sandbox.up(state, instance=f"test{os.getpid()}", phones=SANDBOX_PHONES)
    except BaseException:
        sandbox.down(state, purge=True)
        raise
    yield info
    sandbox.down(state, purge=True)


@dataclass
class Harness:
    service: Service
    info: "sandbox.SandboxInfo"

    async def add_case(self, case_id: str, number: str, *, timezone: str = "Asia/Shanghai",
                       flags: tuple[str, ...] = ()) -> None:
        async with self.service.db.session() as s:
            await repo.approve_caller_id(s, "e2e", E2E_CALLER_ID)
            await repo.add_case(s, Case(id=case_id, client="e2e", debtor_name="Debtor " + case_id,
                                        timezone=timezone, flags=list(flags),
                                        created_at=self.service.clock()), [repo.NewPhone(number)])

    async def wait_attempt(self, attempt_id: str, *, state: str = "ended", timeout: float = 60.0,
                           until=lambda attempt: True, poll: float = 0.2):
        """The attempt once it is in `state` and `until(attempt)` holds (two sources, the
        dialplan's hang-up handler and the AMI events, fill an ended attempt in turn)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self.service.db.session() as s:
                attempt = await repo.get_attempt(s, attempt_id)
            if attempt is not None and attempt.state == state and until(attempt):
                return attempt
            if loop.time() > deadline:
                raise AssertionError(f"attempt {attempt_id} not {state} in {timeout}s: {attempt and attempt.state}")
            await asyncio.sleep(poll)

    async def wait_recording(self, attempt_id: str, timeout: float = 40.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self.service.db.session() as s:
                rec = await repo.recording_for_attempt(s, attempt_id)
            if rec is not None:
                return rec
            await asyncio.sleep(0.2)
        raise AssertionError(f"no recording for {attempt_id} within {timeout}s")

    def carrier_calls(self, number: str) -> int:
        """Rows in the carrier's own call log (cdr_csv) for a dialled number."""
        path = self.info.carrier_call_log
        if not path.exists():
            return 0
        with path.open(newline="") as handle:
            return sum(1 for row in csv.reader(handle) if number in row)


E2E_CALLER_ID = "4008002000"
# The e2e service runs at 10:00 in Beijing whatever the hour of the CI machine.
E2E_START = datetime(2026, 12, 1, 2, 0, tzinfo=dt_timezone.utc)


async def start_harness(info, tmp_path: Path, ami_port: int | None = None,
                        start: datetime = E2E_START, **sections: dict) -> Harness:
    """The service on the sandbox; `sections` override settings (e.g. watchdog={...}).
    The watchdog (its gate and canary calls) only runs where a test enables it:
    elsewhere a canary call would be one more call in the carrier's log and the archive
    that the test has to tell apart."""
    overrides = sandbox_overrides(info)
    if ami_port is not None:
        overrides["ami"]["port"] = ami_port
    overrides["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'dunline.db'}"}
    overrides["recording"]["archive_dir"] = str(tmp_path / "archive")
    overrides["console"] = {"port": free_port()}
    overrides["pbx"]["ring_timeout_s"] = 8
    overrides["ami"]["ping_interval_s"] = 1.0
    overrides["watchdog"] = {"enabled": False, "interval_s": 0.25, "canary_retry_s": 3.0,
                             "reconcile_after_s": 10.0, "min_free_mb": 1}
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    settings = load_settings(env={}, overrides=overrides)
    service = Service(settings, clock=OffsetClock(start))
    await service.start()
    return Harness(service, info)


@pytest.fixture
async def harness(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path)
    yield h
    await h.service.stop(drain_timeout=30)
