"""Legal holds and the purge job over the real database, FilesystemArchive and ledger."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from recorder import ledger_store
from recorder.archive import FilesystemArchive
from recorder.holds import AlreadyDone, HoldTarget, MissingWhoWhy, UnknownTarget, list_holds, place_hold, release_hold
from recorder.purge import run_purge
from recorder.retention_extend import extend_retention
from recorder.ingest import hold_if_case_held
from recorder.verify import verify_archive
from recorder.witness import is_witness_key
from storage import repositories as repo
from storage.models import Attempt, AuditEvent, Case, LegalHold, Recording
from storage.retention_repo import recording_keys

CALL_DAY = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)


async def make_recording(db, ledger, store, tmp: Path, *, case_id: str, attempt_id: str,
                         retain_until: datetime, content: str | None = None, client: str = "cu") -> Recording:
    """An ingest-like recording: case, attempt, three small store objects, the row and its
    ingest ledger entry, the store's hold if the case is held (as recorder.ingest does). Equal `content` on the same call
    day means shared, content-addressed store objects."""
    content = content or attempt_id
    tmp.mkdir(parents=True, exist_ok=True)
    stored = {}
    for kind in ("mixed", "rx", "tx"):
        source = tmp / f"{attempt_id}-{kind}.wav"
        source.write_bytes(f"RIFF {kind} {content}".encode())
        stored[kind] = store.put(source, CALL_DAY, retain_until=retain_until)
    now = ledger.clock()
    async with ledger.transaction() as s:
        if await s.get(Case, case_id) is None:
            await repo.add_case(s, Case(id=case_id, client=client, debtor_name="Zhao", created_at=now), [])
        s.add(Attempt(id=attempt_id, case_id=case_id, number="15550000000", state="ended",
                      outcome="answered", created_at=now, ended_at=CALL_DAY, recording_name=attempt_id))
        row = Recording(attempt_id=attempt_id, case_id=case_id, archive_path=stored["mixed"].key,
                        sha256=stored["mixed"].sha256, size_bytes=stored["mixed"].size_bytes, duration_s=1.0,
                        legs=[{"leg": leg, "archive_path": stored[leg].key, "sha256": stored[leg].sha256}
                              for leg in ("rx", "tx")],
                        flags=[], call_ended_at=CALL_DAY, created_at=now, retain_until=retain_until,
                        store=store.name)
        await repo.add_recording(s, row)
        entry = await ledger.append(s, actor="recorder", action="ingest", subject=f"recording:{attempt_id}",
                                    detail={"case_id": case_id, "store": store.name,
                                            "files": {k: {"key": o.key, "sha256": o.sha256,
                                                          "size_bytes": o.size_bytes} for k, o in stored.items()},
                                            "retain_until": retain_until.isoformat()})
        row.ledger_seq = entry.seq
    await hold_if_case_held(db, store, case_id, stored.values())  # as ingest does: a held case's new files
    return row


def aid(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture
def store(tmp_path) -> FilesystemArchive:
    return FilesystemArchive(tmp_path / "archive")


async def rows(db) -> dict[str, Recording]:
    async with db.session() as s:
        return {r.attempt_id: r for r in (await s.scalars(select(Recording))).all()}


async def test_purge_removes_only_expired_unheld_recordings_and_leaves_tombstones(
        db, ledger, store, clock, signer, tmp_path):
    old = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                               retain_until=clock() - timedelta(days=1))
    young = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(2),
                                 retain_until=clock() + timedelta(days=1))
    held = await make_recording(db, ledger, store, tmp_path / "src", case_id="C2", attempt_id=aid(3),
                                retain_until=clock() - timedelta(days=1))
    await place_hold(ledger, store, HoldTarget(case_id="C2"), by="lawyer", why="court order 17")

    report = await run_purge(ledger, store, by="retention-job")

    assert [o.attempt_id for o in report.purged] == [aid(1)]
    assert {o.attempt_id: o.reason for o in report.kept} == {aid(2): "retained", aid(3): "held"}
    after = await rows(db)
    assert after[aid(1)].purged_at == clock() and after[aid(2)].purged_at is None
    assert not any(store.exists(k) for k in recording_keys(old))
    assert all(store.exists(k) for k in (*recording_keys(young), *recording_keys(held)))
    async with db.session() as s:
        [entry] = [e for e in await ledger_store.entries(s, subject=f"recording:{aid(1)}") if e.action == "purge"]
        audits = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "recording.purged"))).all()
    detail = entry.detail_map()
    assert entry.actor == "retention-job" and detail["why"] == "retention period over"
    assert detail["files"]["mixed"] == {"key": old.archive_path, "sha256": old.sha256, "deleted": True}
    assert detail["retain_until"] == old.retain_until.isoformat()
    assert [a.subject for a in audits] == [aid(1)]
    assert (await verify_archive(db, store, signer.public_key)).ok

    again = await run_purge(ledger, store, by="retention-job")
    assert again.purged == [] and again.leftovers_deleted == [], "purging twice changes nothing"


async def test_a_hold_sets_the_store_hold_and_is_ledgered_with_who_and_why(db, ledger, store, clock, tmp_path):
    rec = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                               retain_until=clock() - timedelta(days=1))
    result = await place_hold(ledger, store, HoldTarget(attempt_id=aid(1)), by="qc-anna", why="complaint 4411")
    assert result.recordings == (aid(1),) and result.subject == f"recording:{aid(1)}"
    assert all(store.retention_of(k).legal_hold for k in recording_keys(rec))
    async with db.session() as s:
        hold = await s.get(LegalHold, result.hold_id)
        [entry] = [e for e in await ledger_store.entries(s) if e.action == "hold"]
    assert (hold.placed_by, hold.reason, hold.recording_id, hold.case_id) == ("qc-anna", "complaint 4411", rec.id, None)
    assert entry.subject == f"recording:{aid(1)}" and entry.actor == "qc-anna"
    assert entry.detail_map() == {"hold_id": result.hold_id, "by": "qc-anna", "why": "complaint 4411",
                                  "case_id": "C1", "recordings": [aid(1)]}
    assert (await run_purge(ledger, store, by="job")).purged == []

    await release_hold(ledger, store, result.hold_id, by="qc-anna", why="complaint closed")
    assert not any(store.retention_of(k).legal_hold for k in recording_keys(rec))
    async with db.session() as s:
        hold = await s.get(LegalHold, result.hold_id)
        [release] = [e for e in await ledger_store.entries(s) if e.action == "release"]
    assert (hold.released_by, hold.release_reason, hold.released_at) == ("qc-anna", "complaint closed", clock())
    assert release.detail_map()["hold_id"] == result.hold_id
    with pytest.raises(AlreadyDone):
        await release_hold(ledger, store, result.hold_id, by="qc-anna", why="again")
    assert [o.attempt_id for o in (await run_purge(ledger, store, by="job")).purged] == [aid(1)]


async def test_a_shared_object_stays_held_and_stored_while_another_recording_needs_it(
        db, ledger, store, clock, signer, tmp_path):
    past = clock() - timedelta(days=1)
    a = await make_recording(db, ledger, store, tmp_path / "a", case_id="C1", attempt_id=aid(1),
                             retain_until=past, content="same bytes")
    b = await make_recording(db, ledger, store, tmp_path / "b", case_id="C2", attempt_id=aid(2),
                             retain_until=past, content="same bytes")
    assert recording_keys(a) == recording_keys(b)
    one = await place_hold(ledger, store, HoldTarget(case_id="C1"), by="x", why="y")
    two = await place_hold(ledger, store, HoldTarget(case_id="C2"), by="x", why="y")
    await release_hold(ledger, store, one.hold_id, by="x", why="done")
    assert all(store.retention_of(k).legal_hold for k in recording_keys(a)), "C2's hold still covers them"
    report = await run_purge(ledger, store, by="job")
    assert [o.attempt_id for o in report.purged] == [aid(1)]
    assert report.purged[0].deleted == () and len(report.purged[0].shared) == 3
    assert all(store.exists(k) for k in recording_keys(b))
    assert (await verify_archive(db, store, signer.public_key)).ok
    await release_hold(ledger, store, two.hold_id, by="x", why="done")
    report = await run_purge(ledger, store, by="job")
    assert [o.attempt_id for o in report.purged] == [aid(2)] and len(report.purged[0].deleted) == 3
    assert [k for k in store.keys() if not is_witness_key(k)] == [], "every recording's file is gone"
    assert (await verify_archive(db, store, signer.public_key)).ok


async def test_dry_run_lists_and_changes_nothing(db, ledger, store, clock, tmp_path):
    await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                         retain_until=clock() - timedelta(days=1))
    report = await run_purge(ledger, store, by="job", dry_run=True)
    assert [o.attempt_id for o in report.purged] == [aid(1)] and "would purge" in report.render()
    assert (await rows(db))[aid(1)].purged_at is None
    assert len(list(store.keys())) == 3
    async with db.session() as s:
        assert [e.action for e in await ledger_store.entries(s)] == ["ingest"]


class Crash(BaseException):
    """The process dies (not an error the job could catch)."""


class CrashingStore(FilesystemArchive):
    def delete(self, key, *, now):
        raise Crash(key)


async def test_a_crash_after_the_commit_is_finished_by_the_next_run(db, ledger, store, clock, signer, tmp_path):
    rec = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                               retain_until=clock() - timedelta(days=1))
    with pytest.raises(Crash):
        await run_purge(ledger, CrashingStore(store.root), by="job")
    assert (await rows(db))[aid(1)].purged_at is not None, "the tombstone was committed first"
    report = await verify_archive(db, store, signer.public_key)
    assert {p.kind for p in report.problems} == {"file_unexpected"}, "documented: until purge runs again"
    again = await run_purge(ledger, store, by="job")
    assert sorted(again.leftovers_deleted) == sorted(recording_keys(rec)) and again.purged == []
    assert (await verify_archive(db, store, signer.public_key)).ok


async def test_a_crash_between_release_and_store_is_healed_by_purge(db, ledger, store, clock, tmp_path):
    rec = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                               retain_until=clock() - timedelta(days=1))
    hold = await place_hold(ledger, store, HoldTarget(case_id="C1"), by="x", why="y")
    async with db.session() as s:  # the release committed, the store call never happened
        row = await s.get(LegalHold, hold.hold_id)
        row.released_at, row.released_by, row.release_reason = clock(), "x", "z"
    assert store.retention_of(rec.archive_path).legal_hold
    report = await run_purge(ledger, store, by="job")
    assert set(report.store_holds_fixed) == set(recording_keys(rec))
    assert [o.attempt_id for o in report.purged] == [aid(1)]


async def test_the_store_is_asked_before_the_commit(db, ledger, store, clock, tmp_path):
    rec = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                               retain_until=clock() - timedelta(days=1))
    store.extend_retention(rec.archive_path, clock() + timedelta(seconds=1))  # e.g. rounded up by S3
    report = await run_purge(ledger, store, by="job")
    assert report.purged == [] and [o.reason for o in report.kept] == ["store_refuses"]
    assert (await rows(db))[aid(1)].purged_at is None
    clock.advance(2)
    assert [o.attempt_id for o in (await run_purge(ledger, store, by="job")).purged] == [aid(1)]


async def test_who_and_why_are_required_and_unknown_targets_change_nothing(db, ledger, store, clock, tmp_path):
    await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                         retain_until=clock())
    for by, why in (("", "reason"), ("who", " "), (None, "r")):
        with pytest.raises(MissingWhoWhy):
            await place_hold(ledger, store, HoldTarget(case_id="C1"), by=by, why=why)
    with pytest.raises(MissingWhoWhy):
        await run_purge(ledger, store, by="", why="x")
    with pytest.raises(UnknownTarget):
        await place_hold(ledger, store, HoldTarget(case_id="nope"), by="a", why="b")
    with pytest.raises(UnknownTarget):
        await place_hold(ledger, store, HoldTarget(attempt_id=aid(9)), by="a", why="b")
    with pytest.raises(UnknownTarget):
        await release_hold(ledger, store, 42, by="a", why="b")
    async with db.session() as s:
        assert [e.action for e in await ledger_store.entries(s)] == ["ingest"]
        assert (await s.scalars(select(LegalHold))).all() == []
    assert await list_holds(db) == []


async def test_a_case_hold_covers_recordings_ingested_later(db, ledger, store, clock, tmp_path):
    await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                         retain_until=clock() + timedelta(days=1))
    await place_hold(ledger, store, HoldTarget(case_id="C1"), by="x", why="y")
    later = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(2),
                                 retain_until=clock() + timedelta(days=1))
    clock.advance(3 * 86400)
    report = await run_purge(ledger, store, by="job")
    assert report.purged == [] and {o.reason for o in report.kept} == {"held"}
    assert store.retention_of(later.archive_path).legal_hold, "the purge run set the store's hold too"
    [view] = await list_holds(db, case_id="C1")
    assert (view.subject, view.placed_by, view.released) == ("case:C1", "x", None)


async def test_extend_retention_only_lengthens_and_is_ledgered(db, ledger, store, clock, signer, tmp_path):
    rec = await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=aid(1),
                               retain_until=CALL_DAY + timedelta(days=3 * 365), client="long-bank")
    done = await extend_retention(ledger, store, client="long-bank", years=7, by="ops", why="contract v2")
    assert [(e.attempt_id, e.new) for e in done] == [(aid(1), CALL_DAY.replace(year=2033))]
    assert (await rows(db))[aid(1)].retain_until == CALL_DAY.replace(year=2033)
    assert store.retention_of(rec.archive_path).retain_until == CALL_DAY.replace(year=2033)
    assert await extend_retention(ledger, store, case_id="C1", years=3, by="ops", why="shorter?") == []
    assert (await rows(db))[aid(1)].retain_until == CALL_DAY.replace(year=2033)
    async with db.session() as s:
        [entry] = [e for e in await ledger_store.entries(s) if e.action == "retention"]
    assert entry.subject == "case:C1" and json.loads(entry.detail)["recordings"][aid(1)]["to"].startswith("2033")
    assert (await verify_archive(db, store, signer.public_key)).ok


async def test_real_ingested_recordings_purge_and_verify(db, clock, ledger, signer, tmp_path):
    from tests.integration.test_verify_archive import ingest_calls

    archive, recs = await ingest_calls(db, clock, ledger, tmp_path, n=2)
    await place_hold(ledger, archive, HoldTarget(case_id=recs[1].case_id), by="x", why="y")
    clock.set(recs[0].retain_until + timedelta(seconds=1))
    report = await run_purge(ledger, archive, by="job")
    assert [o.attempt_id for o in report.purged] == [recs[0].attempt_id]
    assert len(list(archive.keys())) == 3
    await ledger.checkpoint()
    assert (await verify_archive(db, archive, signer.public_key)).ok
