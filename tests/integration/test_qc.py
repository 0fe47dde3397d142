"""Quality control over the real database, archive and ledger: the week's sample holds only
that week's recorded calls of that collector (calls of the weeks around it, of another
collector, purged or never recorded are in the fixture and stay out), is reproducible from
its seed and made once; a score is stored with its ledger entry, `recordings verify` stays
OK and names a score edited behind the ledger's back; who sees which scores."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update

from cases import qc_store
from cases.qc import QcRefused, candidates_digest, default_seed, parse_week, pick_sample
from recorder import ledger_store
from recorder.verify import verify_archive
from storage import repositories as repo
from storage.models import Attempt, AuditEvent, Recording
from storage.people import Team, User
from storage.qc import QcItem, QcSample, QcScore, score_digest
from tests.console_kit import cheap_accounts, seed_users
from tests.db_snapshot import snapshot
from tests.qc_kit import attempt_id, seed_calls

W49 = parse_week("2026-W49")  # Mon 30 Nov 2026 00:00 +08:00 = Sun 29 Nov 16:00 UTC
START, END = W49.starts_at, W49.ends_at
AFTER_W49 = END + timedelta(hours=10)  # Monday 7 Dec, 10:00 in Beijing

# collector1 works phone 6001, collector2 phone 6002 (another team), teamlead1 phone 6003
MINE_W49 = [attempt_id(n) for n in (1, 2, 3, 4, 5, 6)]
CALLS = [
    (attempt_id(1), "QC-1", "6001", START),  # Monday 00:00:00 Beijing: the first instant of the week
    (attempt_id(2), "QC-1", "6001", START + timedelta(days=1)),
    (attempt_id(3), "QC-2", "6001", START + timedelta(days=2, hours=3)),
    (attempt_id(4), "QC-2", "6001", START + timedelta(days=4)),
    (attempt_id(5), "QC-3", "6001", START + timedelta(days=5)),
    (attempt_id(6), "QC-3", "6001", END - timedelta(seconds=1)),  # Sunday 23:59:59 Beijing
    (attempt_id(7), "QC-1", "6001", START - timedelta(seconds=1)),  # the week before (W48)
    (attempt_id(8), "QC-1", "6001", END),  # the week after (W50)
    (attempt_id(9), "QC-4", "6002", START + timedelta(days=1)),  # another collector's
    (attempt_id(10), "QC-4", "6002", START + timedelta(days=3)),
    (attempt_id(11), "QC-3", "6001", START + timedelta(days=3)),  # purged (the fixture `purged`)
]


@pytest.fixture
async def people(db, clock):
    accounts = cheap_accounts(db, clock)
    ids = await seed_users(accounts)
    await accounts.add_team("south", by="test")
    other = await accounts.add_user(username="collector2", display_name="collector two", role="collector",
                                    password="correct horse battery", by="test", team="south", locale="en")
    for username, phone in (("collector1", "6001"), ("collector2", "6002"), ("teamlead1", "6003")):
        await accounts.set_phone(username, phone, by="test")
    return {**{r.value: i for r, i in ids.items()}, "collector2": other.id}


@pytest.fixture
async def archive(db, ledger, clock, tmp_path, people):
    archive = await seed_calls(db, ledger, clock, tmp_path, CALLS)
    async with db.session() as s:
        await repo.create_attempt(s, Attempt(  # put through to 6001 but never answered: no recording
            id=attempt_id(12), case_id="QC-1", number="13800000004", collector="6001", state="ended",
            outcome="no_answer", created_at=START + timedelta(days=2), ended_at=START + timedelta(days=2)))
    clock.set(AFTER_W49)
    return archive


@pytest.fixture
async def purged(db, archive):
    """Call 11's recording purged (its row's tombstone only: these tests do not verify the archive)."""
    async with db.session() as s:
        await s.execute(update(Recording).where(Recording.attempt_id == attempt_id(11))
                        .values(purged_at=START + timedelta(days=4)))


async def sample_rows(db) -> dict[str, tuple[QcSample, list[str]]]:
    async with db.session() as s:
        out = {}
        for sample, username in (await s.execute(text(
                "SELECT qc_samples.id, users.username FROM qc_samples JOIN users ON users.id = collector_user_id"))).all():
            row = await s.get(QcSample, sample)
            picked = (await s.scalars(select(Recording.attempt_id).join(QcItem, QcItem.recording_id == Recording.id)
                                      .where(QcItem.sample_id == sample))).all()
            out[username] = (row, sorted(picked))
        return out


async def test_only_that_weeks_recorded_calls_of_that_collector_are_candidates(db, clock, archive, people, purged):
    done = await qc_store.create_samples(db, clock, "2026-W49", by="qc1", size=100)
    by_collector = {s.collector: s for s in done.samples}
    assert set(by_collector) == {"collector1", "collector2"}, "the lead with a phone took no call that week"
    mine = by_collector["collector1"]
    assert sorted(mine.picked) == MINE_W49 and mine.candidates == 6
    assert mine.candidates_sha256 == candidates_digest(MINE_W49)
    assert sorted(by_collector["collector2"].picked) == [attempt_id(9), attempt_id(10)]
    stored = await sample_rows(db)
    assert stored["collector1"][1] == MINE_W49 and stored["collector1"][0].collector_phone == "6001"
    async with db.session() as s:
        assert set((await s.scalars(select(QcItem.state))).all()) == {"pending"}
        audits = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "qc.sampled"))).all()
    assert {a.detail["collector"] for a in audits} == {"collector1", "collector2"}
    assert all(a.actor == "qc1" and a.subject == "qc:2026-W49" for a in audits)


async def test_a_collector_with_no_call_that_week_gets_an_empty_sample(db, clock, archive, people):
    await qc_store.create_samples(db, clock, "2026-W48", by="qc1")
    stored = await sample_rows(db)
    assert stored["collector1"][1] == [attempt_id(7)]
    assert stored["collector2"][1] == [] and stored["collector2"][0].candidates == 0
    assert "teamlead1" not in stored


async def test_the_sample_is_reproducible_from_its_seed_and_a_rerun_changes_nothing(db, clock, archive, people, purged):
    first = await qc_store.create_samples(db, clock, "2026-W49", by="qc1", size=2, seed="dice-3-6-1")
    mine = next(s for s in first.samples if s.collector == "collector1")
    assert mine.created and mine.seed == "dice-3-6-1" and mine.size == 2
    assert mine.picked == pick_sample(MINE_W49, seed="dice-3-6-1", week="2026-W49", collector="collector1", size=2)
    before = await snapshot(db)
    for again in ({}, {"size": 5}, {"seed": "other"}):
        rerun = await qc_store.create_samples(db, clock, "2026-W49", by="qc2", **again)
        assert [s.created for s in rerun.samples] == [False, False]
        assert next(s for s in rerun.samples if s.collector == "collector1").picked == mine.picked
    assert await snapshot(db) == before, "a re-run stores nothing, not even an audit event"


async def test_the_default_seed_is_the_weeks_and_picks_the_same_calls(db, clock, archive, people, purged):
    done = await qc_store.create_samples(db, clock, "2026-W49", by="qc1", size=3)
    mine = next(s for s in done.samples if s.collector == "collector1")
    assert mine.seed == default_seed("2026-W49")
    assert mine.picked == pick_sample(MINE_W49, seed=default_seed("2026-W49"), week="2026-W49",
                                      collector="collector1", size=3)


@pytest.mark.parametrize("week,size,seed,key", [
    ("2026-W50", None, None, "week_not_over"),  # the clock is on Monday of W50
    ("2026-W99", None, None, "week"),
    ("49", None, None, "week"),
    ("2026-W49", "0", None, "size"),
    ("2026-W49", "1000", None, "size"),
    ("2026-W49", None, "no spaces", "seed"),
])
async def test_a_refused_sampling_stores_nothing(db, clock, archive, people, week, size, seed, key):
    before = await snapshot(db)
    with pytest.raises(QcRefused) as caught:
        await qc_store.create_samples(db, clock, week, by="qc1", size=size, seed=seed)
    assert caught.value.key == key
    assert await snapshot(db) == before


ALL_PASS = {"greeting": "pass", "identity_verified": "pass", "no_threats": "pass", "correct_amounts": "pass",
            "third_party_consent": "na", "care_handled": "na", "allowed_hours": "pass"}


async def first_item(db, clock, username="collector1") -> int:
    await qc_store.create_samples(db, clock, "2026-W49", by="qc1", size=2)
    async with db.session() as s:
        return (await s.scalars(select(QcItem.id).join(QcSample, QcSample.id == QcItem.sample_id)
                                .join(User, User.id == QcSample.collector_user_id)
                                .where(User.username == username).order_by(QcItem.id))).first()


async def test_a_saved_score_is_ledgered_and_verify_stays_ok(db, clock, ledger, signer, archive, people):
    item_id = await first_item(db, clock)
    scored = await qc_store.save_score(db, ledger, clock, item_id, {**ALL_PASS, "correct_amounts": "fail"},
                                       "told 1,500 yuan; the arrears are 1,234.50", by="qc1")
    assert scored.total == 81 and scored.fails == ("correct_amounts",)
    async with db.session() as s:
        row = await s.get(QcScore, scored.id)
        entry = await ledger_store.get_entry(s, row.ledger_seq)
        assert (await s.get(QcItem, item_id)).state == "scored"
        audit = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "qc.scored"))).one()
    assert (entry.action, entry.actor, entry.subject) == ("qc_score", "qc1", f"recording:{scored.attempt_id}")
    detail = entry.detail_map()
    assert detail["scorer"] == "qc1" and detail["total"] == scored.total and detail["score_id"] == scored.id
    assert detail["score_digest"] == score_digest(row.version, row.items, row.comments)
    assert detail["week"] == "2026-W49" and detail["collector"] == "collector1"
    assert audit.detail["ledger_seq"] == entry.seq
    await ledger.checkpoint()
    report = await verify_archive(db, archive, signer.public_key)
    assert report.ok, report.render()

    async with db.session() as s:  # an insider raises the total behind the ledger's back
        await s.execute(text("UPDATE qc_scores SET total = 100, items = :items WHERE id = :id"),
                        {"items": '{"greeting": "pass"}', "id": scored.id})
    report = await verify_archive(db, archive, signer.public_key)
    assert [(p.kind, p.what) for p in report.problems] == [("qc_score_altered", f"QC score #{scored.id}")]
    async with db.session() as s:
        await s.execute(text("DELETE FROM qc_scores WHERE id = :id"), {"id": scored.id})
    report = await verify_archive(db, archive, signer.public_key)
    assert [(p.kind, p.what) for p in report.problems] == [("qc_score_row_missing", f"QC score #{scored.id}")]


async def test_a_second_score_must_revise_the_current_one(db, clock, ledger, signer, archive, people):
    item_id = await first_item(db, clock)
    first = await qc_store.save_score(db, ledger, clock, item_id, ALL_PASS, "", by="qc1")
    before = await snapshot(db)
    for revises, key in ((None, "scored_already"), (first.id + 99, "scored_already"), ("x", "revises")):
        with pytest.raises(QcRefused) as caught:
            await qc_store.save_score(db, ledger, clock, item_id, ALL_PASS, "", by="qc1", revises=revises)
        assert caught.value.key == key
    assert await snapshot(db) == before
    second = await qc_store.save_score(db, ledger, clock, item_id, {**ALL_PASS, "greeting": "fail"},
                                       "did not give the agency's name", by="qc2", revises=first.id)
    assert second.revises_id == first.id
    view = await qc_store.item(db, item_id)
    assert [sc.id for sc in view.scores] == [first.id, second.id] and view.current.id == second.id
    [(current, _)] = await qc_store.scores(db, qc_store.ALL)
    assert current.id == second.id, "only the current score counts"
    with pytest.raises(QcRefused):  # the first is revised already: revising it again is refused
        await qc_store.save_score(db, ledger, clock, item_id, ALL_PASS, "", by="qc1", revises=first.id)
    assert (await verify_archive(db, archive, signer.public_key)).ok


async def test_a_refused_scorecard_or_an_unknown_item_stores_nothing(db, clock, ledger, archive, people):
    item_id = await first_item(db, clock)
    before = await snapshot(db)
    with pytest.raises(QcRefused) as caught:
        await qc_store.save_score(db, ledger, clock, item_id, {**ALL_PASS, "no_threats": "na"}, "", by="qc1")
    assert caught.value.key == "na_not_allowed"
    with pytest.raises(QcRefused) as caught:
        await qc_store.save_score(db, ledger, clock, item_id, {**ALL_PASS, "no_threats": "fail"}, "", by="qc1")
    assert caught.value.key == "comments_needed"
    with pytest.raises(LookupError):
        await qc_store.save_score(db, ledger, clock, 9999, ALL_PASS, "", by="qc1")
    assert await snapshot(db) == before


async def test_who_sees_which_scores_and_the_report(db, clock, ledger, archive, people, purged):
    await qc_store.create_samples(db, clock, "2026-W49", by="qc1", size=3)
    rows = await qc_store.queue(db, week=W49)
    assert len(rows) == 5 and all(r.state == "pending" for r in rows)
    mine = [r for r in rows if r.collector == "collector1"]
    theirs = [r for r in rows if r.collector == "collector2"]
    await qc_store.save_score(db, ledger, clock, mine[0].item_id, ALL_PASS, "good", by="qc1")
    await qc_store.save_score(db, ledger, clock, mine[1].item_id, {**ALL_PASS, "no_threats": "fail"},
                              "threatened to tell the neighbours", by="qc1")
    await qc_store.save_score(db, ledger, clock, theirs[0].item_id, {**ALL_PASS, "greeting": "fail"},
                              "no name given", by="qc1")
    assert [r.state for r in await qc_store.queue(db, week=W49)][:2] == ["pending", "pending"], "pending first"

    own = qc_store.QcScope(user_id=people["collector"])
    north = qc_store.QcScope(team_id=(await repo_team(db, "north")))
    assert {sc.collector for sc, _ in await qc_store.scores(db, own)} == {"collector1"}
    assert len(await qc_store.scores(db, own)) == 2
    assert {sc.collector for sc, _ in await qc_store.scores(db, north)} == {"collector1"}
    assert {sc.collector for sc, _ in await qc_store.scores(db, qc_store.ALL)} == {"collector1", "collector2"}
    assert await qc_store.scores(db, qc_store.NOBODY) == []
    with pytest.raises(LookupError):
        await qc_store.item(db, theirs[0].item_id, own)

    [report] = await qc_store.report(db, own)
    assert (report.collector, report.candidates, report.sampled, report.scored) == ("collector1", 6, 3, 2)
    assert report.average_total == 50.0 and report.zero_totals == 1
    assert report.fails["no_threats"] == 1 and report.fails["greeting"] == 0
    everyone = {r.collector: r for r in await qc_store.report(db, qc_store.ALL)}
    assert everyone["collector2"].fails["greeting"] == 1 and everyone["collector2"].sampled == 2
    assert await qc_store.report(db, qc_store.ALL, from_week=parse_week("2026-W50")) == []


async def repo_team(db, name: str) -> int:
    async with db.session() as s:
        return (await s.scalars(select(Team.id).where(Team.name == name))).one()


def test_the_weeks_edges_are_beijing_midnights():
    assert START == datetime(2026, 11, 29, 16, 0, tzinfo=timezone.utc)
    assert END == datetime(2026, 12, 6, 16, 0, tzinfo=timezone.utc)


async def test_the_service_makes_the_finished_weeks_samples_by_itself_once(db, archive, people, purged):
    """dunline/qc_task.py: on Monday the week just ended is sampled with its default seed (the
    same sample `dunline qc sample` makes); looking again changes nothing."""
    from dunline.qc_task import sample_last_week
    from storage.clock import OffsetClock

    monday = OffsetClock(AFTER_W49)
    made = await sample_last_week(db, monday, size=3)
    mine = next(s for s in made.samples if s.collector == "collector1")
    assert mine.created and mine.week == "2026-W49" and len(mine.picked) == 3
    assert set(mine.picked) <= set(MINE_W49)
    before = await snapshot(db)
    again = await sample_last_week(db, monday, size=3)
    assert not any(s.created for s in again.samples) and await snapshot(db) == before
