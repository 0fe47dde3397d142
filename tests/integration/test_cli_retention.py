"""`dunline recordings hold|release|holds|purge` against a temporary database and archive."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from dunline.cli import main
from recorder import ledger_store
from recorder.archive import FilesystemArchive
from storage.models import LegalHold, Recording
from tests.conftest import write_signing_key
from tests.integration.test_holds_and_purge import make_recording

PAST = datetime(2020, 1, 1, tzinfo=timezone.utc)
FUTURE = datetime(2099, 1, 1, tzinfo=timezone.utc)
OLD, YOUNG = "a" * 32, "b" * 32


@pytest.fixture
async def archive_env(db, ledger, tmp_path, monkeypatch, signer):
    store = FilesystemArchive(tmp_path / "archive")
    await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=OLD, retain_until=PAST)
    await make_recording(db, ledger, store, tmp_path / "src", case_id="C1", attempt_id=YOUNG, retain_until=FUTURE)
    monkeypatch.delenv("DUNLINE_CONFIG", raising=False)
    monkeypatch.setenv("DUNLINE_DATABASE_URL", db.url)
    monkeypatch.setenv("DUNLINE_RECORDING_ARCHIVE_DIR", str(tmp_path / "archive"))
    write_signing_key(signer, tmp_path / "ledger-key.pem")  # the key beside the archive, as the service keeps it
    monkeypatch.setenv("DUNLINE_RECORDING_STORE", "fs")
    return store


async def state(db):
    async with db.session() as s:
        return ([e.action for e in await ledger_store.entries(s)],
                [(h.id, h.released_at is None) for h in (await s.scalars(select(LegalHold))).all()],
                {r.attempt_id: r.purged_at for r in (await s.scalars(select(Recording))).all()})


async def run(argv, capsys) -> tuple[int, str, str]:
    """The CLI runs its own event loop (asyncio.run), so it runs in a thread here."""
    status = await asyncio.to_thread(main, ["recordings", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


async def test_hold_list_purge_release_purge(db, archive_env, capsys):
    status, out, _ = await run(["hold", "--case", "C1", "--by", "lawyer-li", "--why", "court order 5"], capsys)
    assert status == 0 and "legal hold #1 on case:C1" in out and OLD in out
    status, out, _ = await run(["holds", "--case", "C1"], capsys)
    assert status == 0 and "#1 case:C1" in out and "lawyer-li: court order 5 [LIVE]" in out
    status, out, _ = await run(["purge", "--by", "cron"], capsys)
    assert status == 0 and f"kept recording {OLD} (case C1): under legal hold #1" in out
    assert "purged 0, kept 2" in out
    status, out, _ = await run(["release", "1", "--by", "lawyer-li", "--why", "case closed"], capsys)
    assert status == 0 and "released" in out
    status, out, _ = await run(["purge", "--dry-run", "--by", "cron"], capsys)
    assert status == 0 and f"would purge recording {OLD}" in out and "dry run" in out
    assert (await state(db))[2][OLD] is None
    status, out, _ = await run(["purge", "--by", "cron"], capsys)
    assert status == 0 and f"purged recording {OLD}" in out and f"kept recording {YOUNG}" in out
    actions, holds, purged = await state(db)
    assert actions == ["ingest", "ingest", "hold", "release", "purge"]
    assert purged[OLD] is not None and purged[YOUNG] is None
    assert not any(archive_env.exists(k) for k in archive_env.keys() if OLD in k)


@pytest.mark.parametrize("argv", [
    ["hold", "--case", "C1", "--why", "no who"],
    ["hold", "--case", "C1", "--by", "someone"],
    ["hold", "--recording", OLD, "--by", " ", "--why", "blank who"],
    ["hold", "--by", "x", "--why", "no target"],
    ["release", "1", "--by", "x"],
    ["purge", "--by", ""],
    ["purge"],
])
async def test_missing_who_or_why_is_exit_2_and_changes_nothing(db, archive_env, capsys, argv):
    before = await state(db)
    status, _, err = await run(argv, capsys)
    assert status == 2 and ("--by" in err or "--case" in err)
    assert await state(db) == before


@pytest.mark.parametrize("argv, message", [
    (["hold", "--case", "NOPE", "--by", "x", "--why", "y"], "no case 'NOPE'"),
    (["hold", "--recording", "f" * 32, "--by", "x", "--why", "y"], "no recording of attempt"),
    (["release", "99", "--by", "x", "--why", "y"], "no legal hold #99"),
    (["holds", "--case", "NOPE"], "no case 'NOPE'"),
])
async def test_unknown_targets_are_exit_1_and_change_nothing(db, archive_env, capsys, argv, message):
    before = await state(db)
    status, _, err = await run(argv, capsys)
    assert status == 1 and message in err
    assert await state(db) == before
