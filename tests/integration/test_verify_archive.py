"""`recordings verify` names every kind of tampering and exits non-zero."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import text

from recorder.archive import FilesystemArchive
from recorder.ingest import IngestSettings, ingest_attempt, spool_paths
from recorder.verify import verify_archive
from storage import repositories as repo
from storage.models import Attempt, Case
from tests.integration.test_ingest import write_wav


async def ingest_calls(db, clock, ledger, tmp_path, n=3):
    archive = FilesystemArchive(tmp_path / "archive")
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o750, exist_ok=True)  # as the PBX keeps it: its group only
    recordings = []
    for i in range(n):
        attempt_id = f"{i + 1:032x}"
        async with db.session() as s:
            await repo.add_case(s, Case(id=f"V-{i}", client="cu", debtor_name="Wang", created_at=clock()),
                                [repo.NewPhone(f"1555110000{i}")])
            await repo.create_attempt(s, Attempt(
                id=attempt_id, case_id=f"V-{i}", number=f"1555110000{i}", state="ended",
                outcome="answered", created_at=clock(), answered_at=clock(),
                ended_at=clock() + timedelta(seconds=2), recording_name=attempt_id))
        for k, path in enumerate(spool_paths(spool, attempt_id).values()):
            write_wav(path, 2, 3000 + 1000 * i + 100 * k)  # distinct bytes per file
        recordings.append(await ingest_attempt(db, archive, IngestSettings(spool_dir=spool), attempt_id,
                                               clock, ledger))
    return archive, recordings


def writable(path):
    os.chmod(path, 0o644)
    return path


async def test_an_untouched_archive_verifies(db, clock, ledger, signer, tmp_path):
    archive, _ = await ingest_calls(db, clock, ledger, tmp_path)
    await ledger.checkpoint()
    report = await verify_archive(db, archive, signer.public_key)
    assert report.ok, report.render()
    assert (report.entries, report.checkpoints, report.files, report.unsigned_tail) == (3, 1, 9, 0)


async def test_a_flipped_byte_is_named(db, clock, ledger, signer, tmp_path):
    archive, recs = await ingest_calls(db, clock, ledger, tmp_path)
    path = writable(archive.path_of(recs[1].archive_path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = await verify_archive(db, archive, signer.public_key)
    assert [(p.kind, p.what) for p in report.problems] == [("file_changed", recs[1].archive_path)]


async def test_a_deleted_file_and_a_stray_file_are_named(db, clock, ledger, signer, tmp_path):
    archive, recs = await ingest_calls(db, clock, ledger, tmp_path)
    leg_key = recs[0].legs[0]["archive_path"]
    archive.path_of(leg_key).unlink()
    stray = archive.root / "2026" / "11" / "30" / ("f" * 64 + ".wav")
    stray.write_bytes(b"RIFF")
    report = await verify_archive(db, archive, signer.public_key)
    assert {(p.kind, p.what) for p in report.problems} == {
        ("file_missing", leg_key), ("file_unexpected", str(stray.relative_to(archive.root)))}


async def test_an_edited_ledger_row_is_named(db, clock, ledger, signer, tmp_path):
    archive, _ = await ingest_calls(db, clock, ledger, tmp_path)
    async with db.session() as s:
        await s.execute(text("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 2"))
    report = await verify_archive(db, archive, signer.public_key)
    assert ("entry_altered", "entry 2") in {(p.kind, p.what) for p in report.problems}
    assert not report.ok


async def test_an_edited_recording_row_and_a_truncated_ledger_are_named(db, clock, ledger, signer, tmp_path):
    archive, recs = await ingest_calls(db, clock, ledger, tmp_path)
    await ledger.checkpoint()
    async with db.session() as s:
        await s.execute(text("UPDATE recordings SET sha256 = :sha WHERE id = :id"),
                        {"sha": "0" * 64, "id": recs[0].id})
        await s.execute(text("DELETE FROM ledger_entries WHERE seq = 3"))
    kinds = {p.kind for p in (await verify_archive(db, archive, signer.public_key)).problems}
    assert {"recording_row_altered", "ledger_truncated", "recording_unledgered"} <= kinds


async def test_checkpoints_are_signed_every_n_entries(db, clock, ledger, signer, tmp_path):
    archive, _ = await ingest_calls(db, clock, ledger, tmp_path, n=6)  # ledger fixture: every 5
    report = await verify_archive(db, archive, signer.public_key)
    assert report.ok and (report.checkpoints, report.unsigned_tail) == (1, 1)


async def test_append_outside_a_ledger_transaction_is_refused(db, ledger):
    async with db.session() as s:
        with pytest.raises(RuntimeError, match="transaction"):
            await ledger.append(s, actor="x", action="access", subject="case:x", detail={})


def test_the_cli_makes_keys_only_on_purpose_and_verifies_only_with_a_pinned_key(tmp_path, monkeypatch, capsys,
                                                                               clock):
    import asyncio

    from dunline.cli import main
    from dunline.settings import load_settings
    from dunline.wiring import open_ledger
    from storage.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.delenv("DUNLINE_RECORDING_LEDGER_KEY_FINGERPRINT", raising=False)
    monkeypatch.setenv("DUNLINE_DATABASE_URL", url)
    monkeypatch.setenv("DUNLINE_RECORDING_ARCHIVE_DIR", str(tmp_path / "archive"))
    key_file = tmp_path / "ledger-key.pem"  # the default: beside the archive
    assert main(["recordings", "ledger-key"]) == 1 and "init-key" in capsys.readouterr().err
    assert main(["recordings", "verify", "--fingerprint", "0" * 64]) == 2, "nothing to check with"
    assert not key_file.exists(), "neither ledger-key nor verify makes a key"
    assert main(["recordings", "init-key"]) == 0
    fingerprint = capsys.readouterr().out.split("fingerprint: ")[1].split()[0]
    assert main(["recordings", "init-key"]) == 1, "a key is made once"
    capsys.readouterr()

    async def setup():
        db = Database(url)
        await db.migrate()
        try:
            ledger = await open_ledger(load_settings(), db, FilesystemArchive(tmp_path / "archive"), clock)
            ledger.checkpoint_every = 2
            made = await ingest_calls(db, clock, ledger, tmp_path)
            await ledger.checkpoint()  # as the service does at shutdown: nothing left unsigned
            return made
        finally:
            await db.close()

    archive, recs = asyncio.run(setup())
    assert main(["recordings", "verify"]) == 2 and "pinned key" in capsys.readouterr().err
    assert main(["recordings", "verify", "--fingerprint", fingerprint]) == 0
    assert "verify: OK" in capsys.readouterr().out
    monkeypatch.setenv("DUNLINE_RECORDING_LEDGER_KEY_FINGERPRINT", fingerprint)
    assert main(["recordings", "verify"]) == 0
    writable(archive.path_of(recs[2].archive_path)).write_bytes(b"RIFF-rewritten")
    assert main(["recordings", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"file_changed: {recs[2].archive_path}" in out and "FAILED (1 problems)" in out
    assert main(["recordings", "ledger-key"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-----BEGIN PUBLIC KEY-----") and fingerprint in out
