"""Retrieval for compliance: combinable filters, newest first, keyset pages, every access logged.

`seed_archive` (also used by the BagIt, API and CLI tests) ingests four real calls through
`recorder.ingest`, so the rows, archive files and ledger entries are the real ones.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update
from sqlalchemy.dialects import sqlite

from recorder import ledger_store
from recorder.archive import FilesystemArchive
from recorder.ingest import IngestSettings, ingest_attempt, spool_paths
from recorder.retrieval import (
    find_recordings, open_audio, recording_metadata, search, search_statement,
)
from recorder.retrieval_query import (
    AudioUnavailable, InvalidRequest, NoSuchCase, NoSuchRecording, RecordingQuery, Requester,
)
from storage import repositories as repo
from storage.models import Attempt, Case, Recording
from tests.integration.test_ingest import write_wav

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
A1, A2, A3, A4 = (f"{n:x}" * 32 for n in (10, 11, 12, 13))
# attempt, case, number, collector, call ended (hours after T0), collector's leg silent
CALLS = [
    (A1, "C-1", "15550000001", "alice", 1, True),
    (A2, "C-1", "15550000002", "bob", 2, False),
    (A3, "C-1", "15550000001", "alice", 24, False),
    (A4, "C-2", "15550000009", "bob", 3, False),
]
WHO = Requester("qa.lee", "complaint 2026-117")


async def seed_archive(db, ledger, clock, tmp_path) -> FilesystemArchive:
    """Cases C-1 (3 calls), C-2 (1 call) and C-EMPTY (none), each call ingested for real."""
    spool = tmp_path / "spool"
    spool.mkdir()
    archive = FilesystemArchive(tmp_path / "archive")
    async with db.session() as s:
        for case_id in ("C-1", "C-2", "C-EMPTY"):
            await repo.add_case(s, Case(id=case_id, client="telco", debtor_name="D", created_at=clock()), [])
        for attempt_id, case_id, number, collector, hours, silent in CALLS:
            ended = T0 + timedelta(hours=hours)
            await repo.create_attempt(s, Attempt(
                id=attempt_id, case_id=case_id, number=number, collector=collector, caller_id="15559990000",
                state="ended", outcome="answered", created_at=ended - timedelta(seconds=5),
                answered_at=ended - timedelta(seconds=1), ended_at=ended, recording_name=attempt_id))
    for attempt_id, *_, silent in CALLS:
        files = spool_paths(spool, attempt_id)
        write_wav(files["mixed"], 1, 6000 + len(attempt_id))
        write_wav(files["rx"], 1, 6000)
        write_wav(files["tx"], 1, 0 if silent else 5000)
        await ingest_attempt(db, archive, IngestSettings(spool_dir=spool), attempt_id, clock, ledger)
    return archive


@pytest.fixture
async def archive(db, ledger, clock, tmp_path):
    return await seed_archive(db, ledger, clock, tmp_path)


async def ids(db, **filters) -> list[str]:
    page = await search(db, RecordingQuery(**filters))
    return [r.attempt_id for r in page.recordings]


async def test_each_filter_alone_and_combined_newest_first(db, archive):
    assert await ids(db, case_id="C-1") == [A3, A2, A1]
    assert await ids(db, phone="15550000001") == [A3, A1]
    assert await ids(db, collector="bob") == [A4, A2]
    assert await ids(db, ended_from=T0 + timedelta(hours=2), ended_to=T0 + timedelta(hours=24)) == [A4, A2]
    assert await ids(db, flags=("no_signal_tx",)) == [A1]
    assert await ids(db, flags=("no_signal",)) == [], "a flag matches whole, not as a prefix"
    assert await ids(db, case_id="C-1", collector="alice", ended_to=T0 + timedelta(hours=2)) == [A1]
    assert await ids(db, case_id="C-2", collector="alice") == []
    assert await ids(db, case_id="C-EMPTY") == []


async def test_a_result_carries_the_call_metadata(db, archive):
    [rec] = (await search(db, RecordingQuery(case_id="C-2"))).recordings
    assert (rec.case_id, rec.client, rec.number, rec.collector, rec.caller_id) == (
        "C-2", "telco", "15550000009", "bob", "15559990000")
    assert rec.ended_at == T0 + timedelta(hours=3) and rec.answered_at == rec.ended_at - timedelta(seconds=1)
    assert rec.duration_s == pytest.approx(1.0) and len(rec.sha256) == 64 and rec.purged_at is None
    assert [g.leg for g in rec.legs] == ["rx", "tx"] and all(len(g.sha256) == 64 for g in rec.legs)
    assert rec.retain_until.year == 2029 and rec.ledger_seq == 4
    assert rec.as_json()["legs"][0]["archive_path"] == rec.legs[0].archive_path


async def test_keyset_pages_are_stable_and_end(db, archive):
    first = await search(db, RecordingQuery(case_id="C-1", limit=2))
    assert [r.attempt_id for r in first.recordings] == [A3, A2] and first.next_cursor
    second = await search(db, RecordingQuery(case_id="C-1", limit=2, cursor=first.next_cursor))
    assert [r.attempt_id for r in second.recordings] == [A1] and second.next_cursor is None


@pytest.mark.parametrize("filters", [
    {"case_id": "../../etc/passwd"}, {"case_id": ".."}, {"case_id": "-rf"}, {"case_id": "A" * 65},
    {"case_id": "C-1\x00"}, {"phone": "12; DROP TABLE"}, {"collector": "a b"}, {"flags": ("%",)},
    {"limit": 0}, {"limit": 501}, {"cursor": "bogus"},
    {"ended_from": T0, "ended_to": T0}, {"ended_from": datetime(2026, 1, 1)},
])
def test_bad_filters_are_refused(filters):
    with pytest.raises(InvalidRequest):
        RecordingQuery(**filters)


def test_dates_from_text():
    query = RecordingQuery.from_text(ended_from="2026-11-01", ended_to="2026-11-02T00:00:00+01:00", limit="5")
    assert query.ended_from == datetime(2026, 11, 1, tzinfo=timezone.utc) and query.limit == 5
    for bad in ({"ended_from": "yesterday"}, {"ended_to": "2026-13-01"}, {"limit": "ten"}):
        with pytest.raises(InvalidRequest):
            RecordingQuery.from_text(case="C-1", **bad)


@pytest.mark.parametrize("who,why", [("", "x"), ("x", ""), (None, "x"), ("x", "  "), ("a\nb", "x"), ("x" * 65, "y")])
def test_who_and_why_are_required(who, why):
    with pytest.raises(InvalidRequest):
        Requester.of(who, why)


async def test_lookup_by_case_uses_an_index(db):
    sql = str(search_statement(RecordingQuery(case_id="C-1")).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    async with db.engine.connect() as conn:
        plan = " | ".join(row[-1] for row in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)).all())
    assert "SEARCH recordings USING INDEX" in plan, plan
    assert "SCAN recordings" not in plan and "SCAN attempts" not in plan, plan


async def access_entries(db):
    async with db.session() as s:
        return [e for e in await ledger_store.entries(s) if e.action == "access"]


async def test_every_search_is_logged_with_who_why_and_what(db, ledger, archive):
    page = await find_recordings(db, ledger, RecordingQuery(case_id="C-1", collector="alice"), WHO)
    [entry] = await access_entries(db)
    assert (entry.actor, entry.subject) == ("qa.lee", "case:C-1")
    assert entry.detail_map() == {"who": "qa.lee", "why": "complaint 2026-117", "what": "search",
                                  "query": {"case": "C-1", "collector": "alice", "limit": 50},
                                  "returned": [r.attempt_id for r in page.recordings]}
    await find_recordings(db, ledger, RecordingQuery(phone="15550000001"), WHO)
    assert (await access_entries(db))[-1].subject == "recordings:search"


async def test_refused_searches_log_nothing(db, ledger, archive):
    with pytest.raises(NoSuchCase):
        await find_recordings(db, ledger, RecordingQuery(case_id="NOPE"), WHO)
    with pytest.raises(InvalidRequest, match="at least one filter"):
        await find_recordings(db, ledger, RecordingQuery(), WHO)
    with pytest.raises(NoSuchRecording):
        await recording_metadata(db, ledger, "f" * 32, WHO)
    with pytest.raises(InvalidRequest):
        await recording_metadata(db, ledger, "../x", WHO)
    assert await access_entries(db) == []


async def test_metadata_and_audio_are_logged_per_recording(db, ledger, archive):
    info = await recording_metadata(db, ledger, A2, WHO)
    assert info.case_id == "C-1"
    _, handle = await open_audio(db, archive, ledger, A2, "tx", WHO)
    with handle:
        assert handle.read() == archive.path_of(info.legs[1].archive_path).read_bytes()
    meta, audio = await access_entries(db)
    assert meta.subject == audio.subject == f"recording:{A2}"
    assert (meta.detail_map()["what"], audio.detail_map()["what"], audio.detail_map()["leg"]) == (
        "metadata", "audio", "tx")
    with pytest.raises(InvalidRequest):
        await open_audio(db, archive, ledger, A2, "../../mixed", WHO)
    async with db.session() as s:
        await s.execute(update(Recording).where(Recording.attempt_id == A2).values(purged_at=T0))
    with pytest.raises(AudioUnavailable, match="purged"):
        await open_audio(db, archive, ledger, A2, "mixed", WHO)
    assert len(await access_entries(db)) == 2
