"""Ingest of MixMonitor-like files into the filesystem archive (no PBX needed)."""
from __future__ import annotations

import hashlib
import math
import struct
from datetime import timedelta

import pytest

from recorder import ledger_store
from recorder.archive import FilesystemArchive
from recorder.ingest import IngestError, IngestSettings, ingest_attempt, spool_paths
from storage import repositories as repo
from storage.models import Attempt, Case

ATTEMPT = "c" * 32


def write_wav(path, seconds, amplitude, sizes_written=True, steady_tone_hz=None):
    """An 8 kHz mono WAV: speech-like (modulated 220 Hz) or, with steady_tone_hz, a pure tone."""
    frames = int(8000 * seconds)
    if steady_tone_hz:
        samples = [int(amplitude * math.sin(2 * math.pi * steady_tone_hz * t / 8000)) for t in range(frames)]
    else:
        samples = [int(amplitude * math.sin(2 * math.pi * 220 * t / 8000) * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * t / 8000)))
                   for t in range(frames)]
    data = struct.pack(f"<{frames}h", *samples)
    header = (b"RIFF" + struct.pack("<I", 36 + len(data) if sizes_written else 0) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
              + b"data" + struct.pack("<I", len(data) if sizes_written else 0))
    path.write_bytes(header + data)


def spool_of_one_call(tmp_path, seconds, amplitude):
    """The spool directory with one call's three files, each with distinct bytes (the
    archive is content-addressed: identical legs would share one file)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    for k, path in enumerate(spool_paths(spool, ATTEMPT).values()):
        write_wav(path, seconds, amplitude + k)
    return spool


@pytest.fixture
async def bound_attempt(db, clock):
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-9", client="cu", debtor_name="Li", created_at=clock()),
                            [repo.NewPhone("15551100009")])
        await repo.create_attempt(s, Attempt(
            id=ATTEMPT, case_id="C-9", number="15551100009", state="ended", outcome="answered",
            created_at=clock(), answered_at=clock(), ended_at=clock() + timedelta(seconds=3),
            recording_name=ATTEMPT))
    return ATTEMPT


async def test_ingest_archives_hashes_and_links(db, clock, tmp_path, bound_attempt, ledger):
    spool = tmp_path / "spool"
    spool.mkdir()
    files = spool_paths(spool, ATTEMPT)
    write_wav(files["mixed"], 3, 8000)
    write_wav(files["rx"], 3, 8000)
    write_wav(files["tx"], 3, 0)  # the collector said nothing
    original = hashlib.sha256(files["mixed"].read_bytes()).hexdigest()
    archive = FilesystemArchive(tmp_path / "archive")
    rec = await ingest_attempt(db, archive, IngestSettings(spool_dir=spool), ATTEMPT, clock, ledger)
    assert rec.sha256 == original
    stored = archive.path_of(rec.archive_path)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == original
    assert not stored.stat().st_mode & 0o222, "archive files are read-only"
    assert rec.duration_s == pytest.approx(3.0)
    assert "no_signal_tx" in rec.flags and "no_signal_rx" not in rec.flags
    assert rec.retain_until.year == clock().year + 3
    assert not any(p.exists() for p in files.values()), "spool emptied after the row is written"
    assert archive.retention_of(rec.archive_path).retain_until == rec.retain_until
    async with db.session() as s:
        [entry] = await ledger_store.entries(s, subject=f"recording:{ATTEMPT}")
    assert (entry.seq, entry.action) == (rec.ledger_seq, "ingest")
    assert entry.detail_map()["files"]["mixed"]["sha256"] == original
    again = await ingest_attempt(db, archive, IngestSettings(spool_dir=spool), ATTEMPT, clock, ledger)
    assert again.id == rec.id, "re-running ingest is idempotent"
    async with db.session() as s:
        assert len(await ledger_store.entries(s)) == 1, "and adds no second ledger entry"


async def test_a_client_may_keep_recordings_longer_never_shorter(tmp_path):
    settings = IngestSettings(spool_dir=tmp_path, retention_years=3,
                              client_retention_years=(("long-bank", 7), ("short-bank", 1)))
    assert settings.retention_for("long-bank") == 7
    assert settings.retention_for("short-bank") == 3
    assert settings.retention_for("anyone") == 3


async def test_unclosed_header_is_repaired(db, clock, tmp_path, bound_attempt, ledger):
    spool = tmp_path / "spool"
    spool.mkdir()
    for path in spool_paths(spool, ATTEMPT).values():
        write_wav(path, 2, 6000, sizes_written=False)
    rec = await ingest_attempt(db, FilesystemArchive(tmp_path / "a"),
                               IngestSettings(spool_dir=spool, close_timeout_s=0.3), ATTEMPT, clock, ledger)
    assert "header_repaired" in rec.flags
    assert rec.duration_s == pytest.approx(2.0)


async def test_missing_or_garbage_files_change_nothing(db, clock, tmp_path, bound_attempt, ledger):
    spool = tmp_path / "spool"
    spool.mkdir()
    settings = IngestSettings(spool_dir=spool, close_timeout_s=0.2)
    archive = FilesystemArchive(tmp_path / "a")
    with pytest.raises(IngestError, match="missing"):
        await ingest_attempt(db, archive, settings, ATTEMPT, clock, ledger)
    for path in spool_paths(spool, ATTEMPT).values():
        path.write_bytes(b"this is not a wav file at all")
    with pytest.raises(IngestError, match="not a usable WAV recording: not a RIFF/WAVE file"):
        await ingest_attempt(db, archive, settings, ATTEMPT, clock, ledger)
    for path in spool_paths(spool, ATTEMPT).values():  # cut inside the header (a crashed write)
        write_wav(path, 1, 3000)
        path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(IngestError, match="not a usable WAV recording"):
        await ingest_attempt(db, archive, settings, ATTEMPT, clock, ledger)
    async with db.session() as s:
        assert await repo.recording_for_attempt(s, ATTEMPT) is None
        assert await ledger_store.entries(s) == []
    assert all(p.exists() for p in spool_paths(spool, ATTEMPT).values()), "spool files kept"
    assert list(archive.keys()) == [], "nothing half-written in the archive"


async def test_a_tone_only_leg_is_flagged(db, clock, tmp_path, bound_attempt, ledger):
    spool = tmp_path / "spool"
    spool.mkdir()
    files = spool_paths(spool, ATTEMPT)
    write_wav(files["mixed"], 3, 8000)
    write_wav(files["tx"], 3, 8000)
    write_wav(files["rx"], 3, 8000, steady_tone_hz=425)  # ringback-like tone, no conversation
    rec = await ingest_attempt(db, FilesystemArchive(tmp_path / "a"), IngestSettings(spool_dir=spool), ATTEMPT, clock, ledger)
    assert "tone_only_rx" in rec.flags and "tone_only_tx" not in rec.flags


async def test_a_recording_cut_short_is_kept_and_flagged(db, clock, tmp_path, bound_attempt, ledger):
    """A file shorter than its header says (disk full mid-call) is evidence too: kept, flagged."""
    spool = tmp_path / "spool"
    spool.mkdir()
    for path in spool_paths(spool, ATTEMPT).values():
        write_wav(path, 3, 6000)
        path.write_bytes(path.read_bytes()[: 44 + 8000])  # 0.5 s of the 3 s the header announces
    rec = await ingest_attempt(db, FilesystemArchive(tmp_path / "a"),
                               IngestSettings(spool_dir=spool, close_timeout_s=0.3), ATTEMPT, clock, ledger)
    assert {"header_repaired", "duration_mismatch", "short"} <= set(rec.flags)
    assert rec.duration_s == pytest.approx(0.5)


async def test_a_playback_copy_is_derived_archived_and_ledgered(db, clock, tmp_path, bound_attempt, ledger):
    from recorder.playback import ffmpeg_available

    assert ffmpeg_available(), "ffmpeg is installed by scripts/bootstrap.sh"
    spool = spool_of_one_call(tmp_path, 3, 6000)
    archive = FilesystemArchive(tmp_path / "a")
    rec = await ingest_attempt(db, archive, IngestSettings(spool_dir=spool, playback_format="mp3"),
                               ATTEMPT, clock, ledger)
    assert rec.playback_path.endswith(".mp3") and rec.archive_path.endswith(".wav")
    copy = archive.path_of(rec.playback_path).read_bytes()
    assert copy[:3] == b"ID3" or copy[0] == 0xFF, "an MP3 stream"
    assert len(copy) < rec.size_bytes / 2
    async with db.session() as s:
        [entry] = await ledger_store.entries(s)
    assert set(entry.detail_map()["files"]) == {"mixed", "rx", "tx", "playback"}
    assert archive.retention_of(rec.playback_path).retain_until == rec.retain_until


async def test_a_failed_playback_copy_never_costs_the_evidence(db, clock, tmp_path, bound_attempt, ledger):
    spool = tmp_path / "spool"
    spool.mkdir()
    for path in spool_paths(spool, ATTEMPT).values():
        write_wav(path, 2, 6000)
    rec = await ingest_attempt(db, FilesystemArchive(tmp_path / "a"),
                               IngestSettings(spool_dir=spool, playback_format="flac-ish"), ATTEMPT, clock, ledger)
    assert "playback_failed" in rec.flags and rec.playback_path is None and rec.sha256


async def test_a_recording_of_a_held_case_is_held_in_the_store_at_once(db, clock, tmp_path, bound_attempt,
                                                                        ledger):
    from recorder.holds import HoldTarget, place_hold

    archive = FilesystemArchive(tmp_path / "a")
    await place_hold(ledger, archive, HoldTarget(case_id="C-9"), by="legal-zhou", why="court order 2026-17")
    spool = spool_of_one_call(tmp_path, 2, 6000)
    rec = await ingest_attempt(db, archive, IngestSettings(spool_dir=spool), ATTEMPT, clock, ledger)
    keys = [rec.archive_path, *(leg["archive_path"] for leg in rec.legs)]
    assert all(archive.retention_of(key).legal_hold for key in keys)


async def test_purge_takes_the_playback_copy_with_the_evidence(db, clock, tmp_path, bound_attempt, ledger,
                                                                signer):
    from datetime import timedelta

    from recorder.purge import run_purge
    from recorder.verify import verify_archive

    spool = spool_of_one_call(tmp_path, 2, 6000)
    archive = FilesystemArchive(tmp_path / "a")
    rec = await ingest_attempt(db, archive, IngestSettings(spool_dir=spool, playback_format="mp3"),
                               ATTEMPT, clock, ledger)
    clock.set(rec.retain_until + timedelta(days=1))
    await run_purge(ledger, archive, by="retention-job")
    assert list(archive.keys()) == []
    report = await verify_archive(db, archive, signer.public_key)
    assert report.ok, report.render()


def test_canary_recordings_are_kept_90_days_debtor_calls_3_years(tmp_path):
    from datetime import datetime, timezone

    from storage.models import CANARY_CLIENT

    settings = IngestSettings(spool_dir=tmp_path)
    ended = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
    assert settings.retain_until(CANARY_CLIENT, ended) == ended + timedelta(days=90)
    assert settings.retain_until("bank", ended) == ended.replace(year=2029)
