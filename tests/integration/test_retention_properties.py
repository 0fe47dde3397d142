"""Property: no sequence of operations deletes a recording before its retention or while held.

A hypothesis state machine drives the real database, FilesystemArchive and ledger with a
manual clock: ingest-like creation (some recordings share content-addressed objects),
advancing the clock, holds on cases and recordings, releases, purges (some crashing after
their commit), and longer retention. A plain model (retention dates, live holds) says
what must survive; after every purge `verify_archive` must agree with the tombstones.
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select

from recorder.archive import FilesystemArchive
from recorder.holds import AlreadyDone, HoldTarget, UnknownTarget, place_hold, release_hold
from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from recorder.purge import run_purge
from recorder.retention_extend import extend_retention
from recorder.verify import verify_archive
from recorder.witness import CheckpointWitness, is_witness_key
from storage.clock import ManualClock
from storage.db import Database
from storage.models import Recording
from storage.retention_repo import recording_keys
from tests.integration.test_holds_and_purge import Crash, CrashingStore, make_recording

START = datetime(2026, 12, 1, tzinfo=timezone.utc)
CASES = ("C1", "C2", "C3")


@dataclass
class ModelHold:
    case_id: str | None
    attempt_id: str | None


class RetentionMachine(RuleBasedStateMachine):
    template: Path
    workdir: Path

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(dir=self.workdir))
        shutil.copy(self.template, self.dir / "dunline.db")
        self.loop = asyncio.new_event_loop()
        self.db = Database(f"sqlite+aiosqlite:///{self.dir / 'dunline.db'}")
        self.clock = ManualClock(START)
        self.signer = Signer(Ed25519PrivateKey.generate())
        self.store = FilesystemArchive(self.dir / "archive")
        self.ledger = Ledger(self.db, self.signer, self.clock, checkpoint_every=7,
                             witness=CheckpointWitness(self.store, retain_years=10))
        self.retain: dict[str, datetime] = {}  # attempt id -> the latest retain_until known
        self.case_of: dict[str, str] = {}
        self.holds: dict[int, ModelHold] = {}  # live holds only
        self.released: list[int] = []
        self.purged: set[str] = set()
        self.count = 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model -------------------------------------------------------------------
    def held(self, attempt_id: str) -> bool:
        return any(h.attempt_id == attempt_id or h.case_id == self.case_of[attempt_id]
                   for h in self.holds.values())

    def must_survive(self) -> set[str]:
        now = self.clock()
        return {a for a in self.retain if a not in self.purged and (now < self.retain[a] or self.held(a))}

    async def db_rows(self) -> dict[str, Recording]:
        async with self.db.session() as s:
            return {r.attempt_id: r for r in (await s.scalars(select(Recording))).all()}

    # -- operations ------------------------------------------------------------------
    @rule(case=st.sampled_from(CASES), hours=st.integers(-48, 240),
          content=st.one_of(st.none(), st.sampled_from(["shared-a", "shared-b"])))
    def ingest(self, case, hours, content):
        self.count += 1
        attempt_id = f"{self.count:032x}"
        until = self.clock() + timedelta(hours=hours)
        self.run(make_recording(self.db, self.ledger, self.store, self.dir / "src", case_id=case,
                                attempt_id=attempt_id, retain_until=until, content=content))
        self.retain[attempt_id], self.case_of[attempt_id] = until, case

    @rule(hours=st.integers(0, 120))
    def advance(self, hours):
        self.clock.advance(hours * 3600)

    @rule(case=st.sampled_from(CASES + ("nope",)))
    def hold_case(self, case):
        try:
            result = self.run(place_hold(self.ledger, self.store, HoldTarget(case_id=case), by="lawyer", why="court"))
        except UnknownTarget:
            assert case not in self.case_of.values()
            return
        self.holds[result.hold_id] = ModelHold(case, None)
        self.check_store_held(result.recordings)

    @precondition(lambda self: self.retain)
    @rule(data=st.data())
    def hold_recording(self, data):
        attempt_id = data.draw(st.sampled_from(sorted(self.retain)))
        try:
            result = self.run(place_hold(self.ledger, self.store, HoldTarget(attempt_id=attempt_id),
                                         by="qc", why="complaint"))
        except AlreadyDone:
            assert attempt_id in self.purged
            return
        self.holds[result.hold_id] = ModelHold(None, attempt_id)
        self.check_store_held(result.recordings)

    @precondition(lambda self: self.holds or self.released)
    @rule(data=st.data())
    def release(self, data):
        hold_id = data.draw(st.sampled_from(sorted([*self.holds, *self.released])))
        try:
            self.run(release_hold(self.ledger, self.store, hold_id, by="lawyer", why="settled"))
        except AlreadyDone:
            assert hold_id in self.released
            return
        del self.holds[hold_id]
        self.released.append(hold_id)

    @rule(case=st.sampled_from(CASES), years=st.integers(0, 1))
    def extend(self, case, years):
        try:
            done = self.run(extend_retention(self.ledger, self.store, case_id=case, years=years, by="ops",
                                             why="client asked"))
        except UnknownTarget:
            return
        for ext in done:
            assert ext.new > ext.old
            self.retain[ext.attempt_id] = ext.new

    @rule()
    def purge(self):
        survivors = self.must_survive()
        report = self.run(run_purge(self.ledger, self.store, by="job"))
        assert not report.failed, report.failed
        self.after_purge(survivors, crashed=False)
        verified = self.run(verify_archive(self.db, self.store, self.signer.public_key))
        assert verified.ok, verified.render()

    @rule()
    def purge_crashing(self):
        survivors = self.must_survive()
        try:
            self.run(run_purge(self.ledger, CrashingStore(self.store.root), by="job"))
        except Crash:
            pass
        self.after_purge(survivors, crashed=True)
        verified = self.run(verify_archive(self.db, self.store, self.signer.public_key))
        assert {p.kind for p in verified.problems} <= {"file_unexpected"}, verified.render()

    def after_purge(self, survivors: set[str], crashed: bool) -> None:
        rows = self.run(self.db_rows())
        newly = {a for a, r in rows.items() if r.purged_at is not None} - self.purged
        assert not newly & survivors, f"purged too early or while held: {newly & survivors}"
        if not crashed:
            expired = {a for a in self.retain if a not in self.purged} - survivors
            assert newly == expired, "everything expired and unheld goes"
        self.purged |= newly

    def check_store_held(self, attempt_ids) -> None:
        rows = self.run(self.db_rows())
        for attempt_id in attempt_ids:
            assert all(self.store.retention_of(k).legal_hold for k in recording_keys(rows[attempt_id]))

    # -- invariants ------------------------------------------------------------------
    @invariant()
    def nothing_needed_is_gone(self):
        rows = self.run(self.db_rows())
        for attempt_id, row in rows.items():
            assert row.retain_until >= self.retain[attempt_id], "retention never shortened"
            assert (row.purged_at is not None) == (attempt_id in self.purged), "tombstones stay"
            if row.purged_at is None:
                assert all(self.store.exists(k) for k in recording_keys(row)), f"{attempt_id} lost a file"

    @invariant()
    def the_store_holds_nothing_no_live_hold_covers(self):
        rows = self.run(self.db_rows())
        must_hold = {k for a, r in rows.items() if a not in self.purged and self.held(a) for k in recording_keys(r)}
        for key in self.store.keys():
            if not is_witness_key(key) and self.store.retention_of(key).legal_hold:
                assert key in must_hold, f"{key} held in the store without a live hold"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "dunline.db"
    database = Database(f"sqlite+aiosqlite:///{path}")

    async def migrate() -> None:
        await database.migrate()
        await database.close()

    asyncio.run(migrate())
    return path


def test_no_sequence_purges_early_or_while_held(template_db, tmp_path):
    RetentionMachine.template = template_db
    RetentionMachine.workdir = tmp_path
    run_state_machine_as_test(RetentionMachine, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
