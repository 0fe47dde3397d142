"""`dunline qc sample|report` through `dunline.cli.main` on a seeded database: the week's sample
printed (the same picks as the pure core's), a re-run changing nothing, refusals exiting 2."""
from __future__ import annotations

import asyncio

import pytest

from cases.qc import pick_sample
from dunline.cli import main
from recorder.ledger_store import Ledger
from storage.db import Database
from tests.console_kit import cheap_accounts, seed_users
from tests.db_snapshot import snapshot
from tests.integration.test_qc import CALLS, MINE_W49


@pytest.fixture
def env(tmp_path, monkeypatch, signer, clock):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def seed() -> None:
        from tests.qc_kit import seed_calls

        db = Database(url)
        await db.migrate()
        accounts = cheap_accounts(db, clock)
        await seed_users(accounts)
        await accounts.add_user(username="collector2", display_name="collector two", role="collector",
                                password="correct horse battery", by="test", locale="en")
        await accounts.set_phone("collector1", "6001", by="test")
        await accounts.set_phone("collector2", "6002", by="test")
        await seed_calls(db, Ledger(db, signer, clock, checkpoint_every=5), clock, tmp_path,
                         [c for c in CALLS if c[0] != CALLS[-1][0]])
        await db.close()

    asyncio.run(seed())
    monkeypatch.delenv("DUNLINE_CONFIG", raising=False)
    monkeypatch.setenv("DUNLINE_DATABASE_URL", url)
    return url


def rows(url):
    async def read():
        db = Database(url)
        try:
            return await snapshot(db)
        finally:
            await db.close()
    return asyncio.run(read())


def test_sample_prints_the_picks_and_a_rerun_changes_nothing(env, capsys):
    assert main(["qc", "sample", "--week", "2026-W49", "--size", "2", "--seed", "s1"]) == 0
    out = capsys.readouterr().out
    assert "2026-W49: 2 samples made, 0 already there" in out
    for attempt_id in pick_sample(MINE_W49, seed="s1", week="2026-W49", collector="collector1", size=2):
        assert f"      {attempt_id}" in out
    assert "collector1" in out and "2 of 6 calls, seed s1, size 2 (made)" in out
    before = rows(env)
    assert main(["qc", "sample", "--week", "2026-W49", "--size", "4"]) == 0
    assert "0 samples made, 2 already there" in capsys.readouterr().out
    assert rows(env) == before
    assert main(["qc", "report", "--from", "2026-W49"]) == 0
    report = capsys.readouterr().out
    assert "collector1" in report and "collector2" in report


@pytest.mark.parametrize("argv,message", [
    (["--week", "2026-W60"], "week: an ISO week"),
    (["--week", "2026-W49", "--size", "0"], "size: 1 to 100"),
    (["--week", "2026-W49", "--seed", "a b"], "seed:"),
    (["--week", "2999-W01"], "is not over until"),
])
def test_refusals_exit_2_and_store_nothing(env, capsys, argv, message):
    before = rows(env)
    assert main(["qc", "sample", *argv]) == 2
    assert message in capsys.readouterr().err
    assert rows(env) == before


def test_the_sample_size_is_a_setting(env, capsys, monkeypatch):
    monkeypatch.setenv("DUNLINE_QC_SAMPLE_SIZE", "1")
    assert main(["qc", "sample", "--week", "2026-W49"]) == 0
    assert "1 of 6 calls" in capsys.readouterr().out
    monkeypatch.setenv("DUNLINE_QC_SAMPLE_SIZE", "0")
    assert main(["qc", "sample", "--week", "2026-W49"]) == 2
    assert "qc.sample_size" in capsys.readouterr().err
