"""`dunline recordings find|show|export` against a seeded archive, through `dunline.cli.main`."""
from __future__ import annotations

import asyncio
import json
import os

import bagit
import pytest

from dunline.cli import main
from recorder import ledger_store
from recorder.ledger_store import Ledger
from storage.db import Database
from tests.conftest import write_signing_key
from tests.integration.test_retrieval import A1, A2, A3, A4, seed_archive

BY = ["--by", "qa.lee", "--why", "complaint 2026-117"]


@pytest.fixture
def archive_env(tmp_path, monkeypatch, signer, clock):
    url = f"sqlite+aiosqlite:///{tmp_path / 'dunline.db'}"

    async def seed() -> None:
        db = Database(url)
        await db.migrate()
        await seed_archive(db, Ledger(db, signer, clock, checkpoint_every=5), clock, tmp_path)
        await db.close()

    asyncio.run(seed())
    monkeypatch.delenv("DUNLINE_CONFIG", raising=False)
    monkeypatch.setenv("DUNLINE_DATABASE_URL", url)
    monkeypatch.setenv("DUNLINE_RECORDING_ARCHIVE_DIR", str(tmp_path / "archive"))
    write_signing_key(signer, tmp_path / "ledger-key.pem")  # the key beside the archive, as the service keeps it
    return url


def entries(url, action):
    async def read():
        db = Database(url)
        try:
            async with db.session() as s:
                return [e for e in await ledger_store.entries(s) if e.action == action]
        finally:
            await db.close()

    return asyncio.run(read())


def run(capsys, *argv):
    status = main(["recordings", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_find_by_each_filter(archive_env, capsys):
    status, out, _ = run(capsys, "find", "--case", "C-1", *BY)
    assert status == 0 and [A3, A2, A1] == [line.split()[3] for line in out.splitlines()[1:4]]
    status, out, _ = run(capsys, "find", "--phone", "15550000001", "--json", *BY)
    assert [r["attempt_id"] for r in json.loads(out)["recordings"]] == [A3, A1]
    status, out, _ = run(capsys, "find", "--collector", "bob", "--from", "2026-11-01T10:30", "--to", "2026-11-02",
                         "--json", *BY)
    assert [r["attempt_id"] for r in json.loads(out)["recordings"]] == [A4, A2]
    status, out, _ = run(capsys, "find", "--flag", "no_signal_tx", "--limit", "1", *BY)
    assert A1 in out and "next page" not in out
    status, out, _ = run(capsys, "find", "--case", "C-1", "--limit", "2", *BY)
    assert "next page: --cursor" in out
    logged = entries(archive_env, "access")
    assert len(logged) == 5 and logged[0].subject == "case:C-1" and logged[0].actor == "qa.lee"


@pytest.mark.parametrize("argv,status,message", [
    (["find", "--case", "../../etc/passwd", *BY], 2, "invalid case number"),
    (["find", "--case", "C-1", "--from", "last week", *BY], 2, "not a date"),
    (["find", "--case", "C-1"], 2, "who and why"),
    (["find", "--case", "C-1", "--by", "qa.lee"], 2, "who and why"),
    (["find", *BY], 2, "at least one filter"),
    (["find", "--case", "NOPE", *BY], 1, "no such case"),
    (["show", "../x", *BY], 2, "invalid recording id"),
    (["show", "f" * 32, *BY], 1, "no recording"),
    (["show", A1], 2, "who and why"),
])
def test_refusals_are_clear_and_log_nothing(archive_env, capsys, argv, status, message):
    got, out, err = run(capsys, *argv)
    assert (got, out) == (status, "") and message in err
    assert entries(archive_env, "access") == []


def test_show_prints_the_metadata_and_is_logged(archive_env, capsys):
    status, out, _ = run(capsys, "show", A2, *BY)
    assert status == 0 and json.loads(out)["collector"] == "bob"
    [entry] = entries(archive_env, "access")
    assert entry.subject == f"recording:{A2}" and entry.detail_map()["why"] == "complaint 2026-117"


def test_export_writes_a_valid_bag(archive_env, capsys, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    status, out, _ = run(capsys, "export", "--case", "C-1", "--out", str(out_dir), *BY)
    assert status == 0, out
    [bag_dir] = os.listdir(out_dir)
    bagit.Bag(str(out_dir / bag_dir)).validate()
    status, _, _ = run(capsys, "export", "--case", "C-2", "--out", str(out_dir), "--tar", *BY)
    assert status == 0 and len([n for n in os.listdir(out_dir) if n.endswith(".tar")]) == 1
    assert [e.subject for e in entries(archive_env, "export")] == ["case:C-1", "case:C-2"]


def test_refused_exports_write_nothing(archive_env, capsys, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert run(capsys, "export", "--case", "../../etc", "--out", str(out_dir), *BY)[0] == 2
    assert run(capsys, "export", "--case", "C-1", "--out", str(out_dir))[0] == 2
    assert run(capsys, "export", "--case", "C-1", "--out", str(tmp_path / "missing"), *BY)[0] == 2
    status, _, err = run(capsys, "export", "--case", "NOPE", "--out", str(out_dir), *BY)
    assert status == 1 and "no such case" in err
    assert os.listdir(out_dir) == [] and entries(archive_env, "export") == []
