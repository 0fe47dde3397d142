"""Evidence that holds against insiders, on an archive made by real calls on the sandbox.

1. Each tamper of issue 9 (tests/tampers.py) applied to a copy of the archive and its
   database makes the real `dunline recordings verify --fingerprint FP` exit 1 and name
   it; the untouched copy verifies OK.
2. An exported bag is checked by its own `verify-bag.py` under a Python with no dunline and
   no site-packages at all (`python3 -I -S`: `openssl` checks the signatures), and the same
   verifier fails on a silent WAV swapped in with the bag's manifests re-made.
3. Files at rest on the sandbox: what the PBX writes (a recording while its call runs, the
   hang-up record, its log) carries no right for other users, and `nobody` cannot read it.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import bagit
import pytest

from recorder.archive import FilesystemArchive
from recorder.bagit import export_case
from recorder.holds import HoldTarget, place_hold
from recorder.ingest import ingest_attempt, spool_paths
from recorder.ledger import fingerprint_of
from recorder.retrieval_query import Requester
from storage import repositories as repo
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt
from tests import tampers
from tests.e2e.conftest import start_harness

pytestmark = pytest.mark.e2e
DUNLINE = [sys.executable, "-m", "dunline.cli"]
NOBODY = 65534
CALLS = {"EV-1": "15555312001", "EV-2": "15555312002", "EV-3": "15555312003", "EV-4": "15555312004"}


def run_verify(copy: Path, fingerprint: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNLINE_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2]),
               DUNLINE_DATABASE_URL=f"sqlite+aiosqlite:///{copy / 'dunline.db'}",
               DUNLINE_RECORDING_ARCHIVE_DIR=str(copy / "archive"))
    proc = subprocess.run([*DUNLINE, "recordings", "verify", "--fingerprint", fingerprint], env=env, cwd=copy,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def fresh_copy(made: Path, into: Path) -> Path:
    """The database, the archive and the key as an insider finds them on the host."""
    shutil.copytree(made, into, symlinks=True)
    return into


@pytest.fixture(scope="module")
def evidence(sandbox_info, tmp_path_factory):
    """Four real calls (one case under a legal hold, one shared file), an exported bag, the
    service stopped (its shutdown signs the head); what the PBX wrote meanwhile, checked."""
    made = tmp_path_factory.mktemp("evidence")
    facts: dict = {}

    async def make() -> None:
        h = await start_harness(sandbox_info, made)
        s = h.service
        try:
            for case_id, number in CALLS.items():
                await h.add_case(case_id, number)
            attempts = await asyncio.gather(*(s.dial(c) for c in CALLS))
            spool = Path(s.settings.recording.dir_host)
            live = spool / f"{attempts[0].id}.wav"
            await h.wait_attempt(attempts[0].id, state="bound", timeout=30, poll=0.05)
            facts["live_mode"] = stat.S_IMODE(live.stat().st_mode)
            facts["live_copy"] = _copy_out(live)  # read below as nobody, its mode kept
            for attempt in attempts:
                await h.wait_recording(attempt.id, timeout=60)
            recordings = {c: await _recording(s, a.id) for c, a in zip(CALLS, attempts)}
            await s.ledger.checkpoint()  # an earlier signed head; what follows comes after it
            hold = await place_hold(s.ledger, s.archive, HoldTarget(case_id="EV-2"), by="lawyer-li", why="court")
            facts["shared"] = await _duplicate(h, recordings["EV-3"], "EV-4")
            facts["bag"] = (await export_case(s.db, s.archive, s.ledger, "EV-1", made,
                                              Requester("qa.lee", "complaint 118"))).path
            facts.update(recordings=recordings, hold_id=hold.hold_id, spool=spool,
                         fingerprint=fingerprint_of(s.ledger.signer.public_key))
            logs = Path(sandbox_info.rootfs) / "var/log/asterisk/messages"
            facts["pbx_log_mode"] = stat.S_IMODE(logs.stat().st_mode)
            facts["pbx_log_dir_mode"] = stat.S_IMODE(logs.parent.stat().st_mode)
            facts["spool_mode"] = stat.S_IMODE(spool.stat().st_mode)
        finally:
            await s.stop(drain_timeout=30)

    asyncio.run(make())
    facts["made"] = made
    yield facts
    shutil.rmtree(facts["live_copy"].parent, ignore_errors=True)


def _copy_out(path: Path) -> Path:
    """A copy with its mode and owner kept, in a directory every user may traverse."""
    open_dir = Path(tempfile.mkdtemp(prefix="dunline-e2e-at-rest-"))
    os.chmod(open_dir, 0o711)
    target = open_dir / path.name
    subprocess.run(["cp", "-p", str(path), str(target)], check=True)
    return target


async def _recording(service, attempt_id):
    async with service.db.session() as session:
        return await repo.recording_for_attempt(session, attempt_id)


async def _duplicate(h, original, case_id: str):
    """A second recording with the very bytes of another (content-addressed: the archive keeps
    one file for both), ingested through the real path."""
    s = h.service
    attempt_id = "d" * 32
    async with s.db.session() as session:
        await session.merge(Attempt(id=attempt_id, case_id=case_id, number=CALLS[case_id], state="originated",
                                    created_at=s.clock()))
    for event, extra in ((Event.ANSWERED, {}), (Event.BOUND, {"recording_name": attempt_id})):
        await s.writer.report(attempt_id, Report(event=event, source=Source.AGI, at=s.clock(), **extra))
    store: FilesystemArchive = s.archive
    keys = {"mixed": original.archive_path, **{leg["leg"]: leg["archive_path"] for leg in original.legs}}
    for kind, path in spool_paths(Path(s.settings.recording.dir_host), attempt_id).items():
        shutil.copyfile(store.path_of(keys[kind]), path)
    await s.writer.report(attempt_id, Report(event=Event.HUNG_UP, source=Source.AGI, answered=True, hangup_cause=16,
                                             at=original.call_ended_at + timedelta(seconds=0)))
    rec = await h.wait_recording(attempt_id, timeout=30)
    assert rec.archive_path == original.archive_path, "one file, two recordings"
    return [original, rec]


def test_the_untouched_archive_verifies(evidence, tmp_path):
    code, out = run_verify(fresh_copy(evidence["made"], tmp_path / "copy"), evidence["fingerprint"])
    assert code == 0 and "verify: OK" in out, out


def _tampered(evidence, tmp_path, tamper) -> str:
    copy = fresh_copy(evidence["made"], tmp_path / "copy")
    tamper(copy)
    code, out = run_verify(copy, evidence["fingerprint"])
    assert code == 1, out
    return out


def test_a_rollback_with_rows_and_files_removed_is_named(evidence, tmp_path):
    def rollback(copy):
        first = tampers.checkpoint_seqs(copy / "dunline.db")[0]
        assert tampers.roll_back(copy / "dunline.db", copy / "archive", to_seq=first)
    assert "ledger_rolled_back" in _tampered(evidence, tmp_path, rollback)


def test_deleted_checkpoints_and_a_recomputed_chain_are_named(evidence, tmp_path):
    out = _tampered(evidence, tmp_path, lambda copy: tampers.rewrite_chain(copy / "dunline.db", seq=2))
    assert "ledger_rewritten" in out


def test_a_chain_re_signed_with_a_new_key_over_the_key_file_is_named(evidence, tmp_path):
    def resign(copy):
        forger = tampers.replace_key_file(copy / "ledger-key.pem")
        tampers.rewrite_chain(copy / "dunline.db", seq=2, signer=forger)
    out = _tampered(evidence, tmp_path, resign)
    assert "checkpoint_invalid" in out and "ledger_rewritten" in out


def test_one_deleted_recording_row_is_named_with_its_case(evidence, tmp_path):
    victim = evidence["recordings"]["EV-1"]
    out = _tampered(evidence, tmp_path, lambda copy: tampers.delete_recording_row(copy / "dunline.db",
                                                                                    victim.attempt_id))
    assert f"recording_row_missing: recording:{victim.attempt_id}" in out and "case EV-1" in out


def test_a_shortened_retention_is_named(evidence, tmp_path):
    key = evidence["recordings"]["EV-2"].archive_path  # held, too: the hold is lifted with it
    out = _tampered(evidence, tmp_path, lambda copy: tampers.shorten_retention(copy / "archive", key))
    assert f"retention_shortened: {key}" in out and f"legal_hold_mismatch: {key}" in out


def test_a_stray_dotfile_is_named(evidence, tmp_path):
    out = _tampered(evidence, tmp_path, lambda copy: tampers.drop_file(copy / "archive", ".cache/x.wav"))
    assert "file_unexpected: .cache/x.wav" in out


def test_a_changed_shared_file_names_every_recording_that_refers_to_it(evidence, tmp_path):
    both = evidence["shared"]
    out = _tampered(evidence, tmp_path, lambda copy: tampers.change_file(copy / "archive", both[0].archive_path))
    line = next(line for line in out.splitlines() if line.startswith("PROBLEM file_changed"))
    assert all(f"recording:{r.attempt_id}" in line for r in both), line


def test_the_bags_own_verifier_needs_no_dunline_and_catches_a_silent_swap(evidence, tmp_path):
    system = shutil.which("python3")
    if system is None or shutil.which("openssl") is None:
        pytest.fail("the standalone verifier's test needs a system python3 and openssl")
    bag = tmp_path / "bag"
    shutil.copytree(evidence["bag"], bag)
    argv = [system, "-I", "-S", str(bag / "verify-bag.py"), str(bag), "--fingerprint", evidence["fingerprint"]]
    checked = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert checked.returncode == 0 and "VERIFIED" in checked.stdout, checked.stdout + checked.stderr
    victim = next((bag / "data" / "recordings").glob("*/mixed.wav"))
    victim.write_bytes(victim.read_bytes()[:44] + bytes(victim.stat().st_size - 44))  # silence
    bagit.Bag(str(bag)).save(manifests=True)  # the bag's own checksums re-made: BagIt is content
    swapped = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert swapped.returncode == 1 and "not the one recorded at ingest" in swapped.stdout, swapped.stdout


def test_what_the_pbx_writes_is_not_for_other_users(evidence):
    assert evidence["live_mode"] & 0o007 == 0, oct(evidence["live_mode"])
    assert evidence["pbx_log_mode"] & 0o007 == 0 and evidence["pbx_log_dir_mode"] & 0o007 == 0
    assert evidence["spool_mode"] & 0o007 == 0, oct(evidence["spool_mode"])
    denied = subprocess.run(["cat", str(evidence["live_copy"])], user=NOBODY, group=NOBODY, extra_groups=[],
                            capture_output=True, text=True, timeout=10)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
