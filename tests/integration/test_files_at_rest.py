"""Files at rest, tried as another local user would: the database (and its -wal/-shm), the
journal, the keys, the archive (evidence, retention records, witnesses) and an exported bag
are neither readable nor listable by `nobody`, even with every parent directory traversable
and the process's umask left at a careless 022: the modes are set by the code, not hoped
for from the environment."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from recorder.archive import FilesystemArchive
from recorder.bagit import export_case
from recorder.ledger import create_key
from recorder.ledger_store import Ledger
from recorder.retrieval_query import Requester
from recorder.witness import CheckpointWitness
from storage.call_tokens import CallTokens
from storage.db import Database
from storage.journal import Journal
from tests.integration.test_verify_archive import ingest_calls

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="reading as another user needs root to switch to it")


@pytest.fixture
def open_parent():
    """A directory every local user may traverse (but not list): what is inside must protect itself."""
    old = os.umask(0o022)
    base = Path(tempfile.mkdtemp(prefix="dunline-at-rest-"))
    os.chmod(base, 0o711)
    try:
        yield base
    finally:
        os.umask(old)
        shutil.rmtree(base, ignore_errors=True)


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True, text=True,
                          timeout=10)


async def test_nothing_of_debtors_data_is_readable_by_another_local_user(open_parent, clock):
    base = open_parent / "var"
    db = Database(f"sqlite+aiosqlite:///{base / 'dunline.db'}")
    await db.migrate()
    try:
        store = FilesystemArchive(base / "archive")
        signer = create_key(base / "ledger-key.pem")
        ledger = Ledger(db, signer, clock, checkpoint_every=2, witness=CheckpointWitness(store, retain_years=10))
        await ingest_calls(db, clock, ledger, base, n=2)
        await ledger.checkpoint()
        Journal(base / "journal" / "facts.journal").append({"id": "x", "kind": "audit", "action": "test"})
        CallTokens.load_or_create(base / "agi-token.key")
        exports = base / "exports"
        exports.mkdir(mode=0o750)
        bag = await export_case(db, store, ledger, "V-0", exports, Requester("qa.lee", "complaint 1"))
        tar = await export_case(db, store, ledger, "V-1", exports, Requester("qa.lee", "complaint 2"), as_tar=True)
        for live in ("dunline.db-wal", "dunline.db-shm"):  # while the database is open (gone at close)
            assert stat.S_IMODE((base / live).stat().st_mode) == 0o640, live
            assert as_nobody("cat", str(base / live)).returncode != 0
    finally:
        await db.close()
    everything = [p for p in base.rglob("*")]
    files = [p for p in everything if p.is_file()]
    assert {p.name for p in files} >= {"dunline.db", "facts.journal", "ledger-key.pem", "agi-token.key",
                                       tar.path.name}
    assert any(p.suffix == ".ckpt" for p in files) and any(p.name.endswith(".retention.json") for p in files)
    exposed = {str(p.relative_to(base)): oct(stat.S_IMODE(p.stat().st_mode))
               for p in [base, *everything] if p.stat().st_mode & 0o007}
    assert exposed == {}, f"readable, writable or enterable by others: {exposed}"
    for path in [*files, bag.path / "data" / "metadata.json"]:
        denied = as_nobody("cat", str(path))
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, path
    assert as_nobody("ls", str(base)).returncode != 0
    secrets = [base / "ledger-key.pem", base / "agi-token.key", base / "journal" / "facts.journal"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets)
