"""`recordings verify` against an insider: each tamper of issue 9 on a real archive (files
ingested, a held case, a shared file, checkpoints witnessed in the store) is named; the
untouched archive verifies. The same tampers run on a sandbox-made archive in
tests/e2e/test_tamper_e2e.py."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder import ledger_store
from recorder.archive import FilesystemArchive
from recorder.holds import HoldTarget, place_hold
from recorder.ledger import Checkpoint, Signer
from recorder.ledger_state import derive
from recorder.ledger_store import Ledger
from recorder.verify import verify_archive
from recorder.witness import CheckpointWitness
from tests import tampers
from tests.integration.test_holds_and_purge import make_recording
from tests.integration.test_verify_archive import ingest_calls

FAR = datetime(2099, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
async def world(db, clock, signer, tmp_path):
    store = FilesystemArchive(tmp_path / "archive")
    ledger = Ledger(db, signer, clock, checkpoint_every=2, witness=CheckpointWitness(store, retain_years=10))
    _, recs = await ingest_calls(db, clock, ledger, tmp_path, n=4)  # cases V-0..V-3, checkpoints at 2 and 4
    hold = await place_hold(ledger, store, HoldTarget(case_id="V-1"), by="lawyer-li", why="court order 7")
    shared = [await make_recording(db, ledger, store, tmp_path / "src", case_id=f"S-{n}", attempt_id=f"{0xee0 + n:032x}",
                                   retain_until=FAR, content="identical bytes") for n in (1, 2)]
    await ledger.checkpoint()
    db_path = tmp_path / "dunline.db"

    class World:
        pass

    w = World()
    w.db, w.store, w.ledger, w.signer, w.recs, w.hold, w.shared, w.db_path = (db, store, ledger, signer, recs, hold,
                                                                               shared, db_path)
    w.archive = store.root
    w.key = signer.public_key
    return w


async def verify(w, **kw):
    kw.setdefault("now", w.ledger.clock())
    return await verify_archive(w.db, w.store, kw.pop("key", w.key), **kw)


async def test_an_untouched_archive_verifies(world):
    report = await verify(world)
    assert report.ok, report.render()
    assert report.witnesses == report.checkpoints >= 3


async def test_a_rollback_to_an_earlier_checkpoint_is_named(world):
    """Entries, checkpoints, rows and files after checkpoint 2 removed: the database is
    consistent with itself, but the witnesses outside it saw later heads."""
    gone = tampers.roll_back(world.db_path, world.archive, to_seq=2)
    assert gone, "recordings were made to disappear"
    report = await verify(world)
    assert "ledger_rolled_back" in report.kinds(), report.render()


async def test_deleted_checkpoints_and_a_recomputed_chain_are_named(world):
    tampers.rewrite_chain(world.db_path, seq=3)
    report = await verify(world)
    assert "ledger_rewritten" in report.kinds() and "checkpoint_unwitnessed" not in report.kinds(), report.render()


async def test_a_chain_re_signed_with_a_new_key_over_the_key_file_is_named(world, tmp_path):
    """The re-signer writes a new key where the old one was and signs the forged chain; the
    verifier pins the original key's fingerprint."""
    forger = tampers.replace_key_file(tmp_path / "forged-key.pem")
    tampers.rewrite_chain(world.db_path, seq=3, signer=forger)
    report = await verify(world)
    assert {"checkpoint_invalid", "ledger_rewritten"} <= report.kinds(), report.render()
    # and with the forger's key pinned instead (someone trusting the key file), the witnesses object
    forged = await verify(world, key=forger.public_key)
    assert {"witness_invalid"} <= forged.kinds(), forged.render()


async def test_heads_kept_by_an_outside_party_catch_what_the_database_lost(world):
    async with world.db.session() as s:
        heads = list(await ledger_store.checkpoints(s))
    tampers.roll_back(world.db_path, world.archive, to_seq=2)
    for key in list(world.store.keys()):  # an insider with root wipes the witnesses too
        if key.endswith(".ckpt"):
            tampers._unlink(world.archive / key)
            tampers._unlink(world.archive / (key + ".retention.json"))
    report = await verify(world, heads=heads)
    assert "ledger_rolled_back" in report.kinds(), report.render()
    assert all(p.what.startswith("given head") for p in report.problems if p.kind == "ledger_rolled_back")


async def test_a_deleted_recording_row_is_named_with_its_case(world):
    victim = world.recs[2]
    tampers.delete_recording_row(world.db_path, victim.attempt_id)
    report = await verify(world)
    [problem] = [p for p in report.problems if p.kind == "recording_row_missing"]
    assert problem.what == f"recording:{victim.attempt_id}" and f"case {victim.case_id}" in problem.detail


async def test_a_shortened_retention_record_is_named(world):
    key = world.recs[0].archive_path
    tampers.shorten_retention(world.archive, key)
    report = await verify(world)
    assert ("retention_shortened", key) in {(p.kind, p.what) for p in report.problems}, report.render()


async def test_a_lifted_hold_and_a_deleted_hold_row_are_named(world):
    held = world.recs[1]  # case V-1 is under a legal hold
    tampers.shorten_retention(world.archive, held.archive_path)  # also lifts the store's hold
    tampers.delete_hold_row(world.db_path, world.hold.hold_id)
    kinds = {(p.kind, p.what) for p in (await verify(world)).problems}
    assert ("legal_hold_mismatch", held.archive_path) in kinds
    assert ("hold_row_missing", f"legal hold #{world.hold.hold_id}") in kinds


@pytest.mark.parametrize("name", [".hidden", "2026/11/30/.x.wav", "2026/11/30/" + "a" * 64 + ".wav.retention.json",
                                  "notes.txt", "2026/11/30/.incoming-123-x.wav"])
async def test_any_stray_file_is_named_dotfiles_and_sidecars_included(world, name):
    tampers.drop_file(world.archive, name)
    report = await verify(world)
    assert [(p.kind, p.what) for p in report.problems] == [("file_unexpected", name)], report.render()


async def test_a_changed_shared_file_names_every_recording_that_refers_to_it(world):
    key = world.shared[0].archive_path
    assert key == world.shared[1].archive_path, "content-addressed: one file for both"
    tampers.change_file(world.archive, key)
    [problem] = [p for p in (await verify(world)).problems if p.kind == "file_changed"]
    assert all(f"recording:{r.attempt_id}" in problem.detail for r in world.shared)


async def test_entries_that_wait_too_long_for_a_checkpoint_are_named(world):
    world.ledger.checkpoint_every = 1000  # only the timer would sign it now
    await world.ledger.record(actor="qc-li", action="access", subject="case:V-0", detail={"why": "audit"})
    assert (await verify(world)).ok, "a fresh entry may wait for the next timed checkpoint"
    late = await verify(world, now=world.ledger.clock() + timedelta(minutes=10), unsigned_max_age_s=180)
    assert "unsigned_entries" in late.kinds()
    await world.ledger.checkpoint()
    assert (await verify(world, now=world.ledger.clock() + timedelta(minutes=10))).ok


async def test_a_checkpoint_added_to_the_database_alone_is_named(world, tmp_path):
    """A checkpoint row no witness saw: entries added behind the service's back, sealed with
    the stolen key (or a witness write that failed and was never retried)."""
    world.ledger.checkpoint_every = 1000
    await world.ledger.record(actor="insider", action="access", subject="case:V-0", detail={"why": "?"})
    async with world.db.session() as s:
        head = await ledger_store.head(s)
    forged = world.signer.sign(head.seq, head.entry_hash, world.ledger.clock() + timedelta(seconds=1))
    with tampers.connect(world.db_path) as con:
        con.execute("INSERT INTO ledger_checkpoints (seq, head_hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?)",
                    (forged.seq, forged.head_hash, forged.at.strftime(tampers.TIME), forged.key_id, forged.signature))
    assert "checkpoint_unwitnessed" in (await verify(world)).kinds()


def test_the_ledger_state_is_derived_from_entries_alone():
    """Pure: ingest, retention, hold, release, purge and resolve entries make the expected archive."""
    from recorder.ledger import make_entry

    t0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
    a, b = "a" * 32, "b" * 32
    until = "2029-12-01T00:00:00+00:00"
    specs = [
        ("ingest", f"recording:{a}", {"case_id": "C1", "retain_until": until,
                                      "files": {"mixed": {"key": "k1", "sha256": "s1"}, "rx": {"key": "shared", "sha256": "s2"}}}),
        ("ingest", f"recording:{b}", {"case_id": "C2", "retain_until": until,
                                      "files": {"mixed": {"key": "k3", "sha256": "s3"}, "rx": {"key": "shared", "sha256": "s2"}}}),
        ("hold", "case:C1", {"hold_id": 1}),
        ("retention", "case:C2", {"recordings": {b: {"from": until, "to": "2033-12-01T00:00:00+00:00"}}}),
        ("hold", f"recording:{b}", {"hold_id": 2}),
        ("release", f"recording:{b}", {"hold_id": 2}),
        ("purge", f"recording:{b}", {"case_id": "C2"}),
        ("resolve", f"recording:{'c' * 32}", {"why": "lost"}),
    ]
    entries, prev = [], None
    for action, subject, detail in specs:
        prev = make_entry(prev, at=t0, actor="x", action=action, subject=subject, detail=detail)
        entries.append(prev)
    state = derive(entries)
    expected = state.expected_objects()
    assert set(expected) == {"k1", "shared"}, "the purged recording's own file is no longer expected"
    assert expected["shared"].subjects == [f"recording:{a}"] and expected["shared"].held
    assert state.recordings[b].retain_until.year == 2033 and state.recordings[b].purged
    assert state.holds[1].live and not state.holds[2].live and state.resolved == {"c" * 32}
