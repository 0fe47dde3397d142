"""What an insider with the database and root on the archive host does to hide something.

Each function changes a real archive the way issue 9 describes it, with plain sqlite3 and
file operations (no dunline code path that would refuse); `recordings verify` must then
exit 1 and name it. Used by tests/integration/test_verify_tampers.py on an archive made by
ingest, and by tests/e2e/test_tamper_e2e.py on one made by real calls on the sandbox.
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder.archive import RETENTION_SUFFIX
from recorder.ledger import GENESIS, Entry, Signer, body_hash_v2, link_hash

TIME = "%Y-%m-%d %H:%M:%S.%f"


@contextmanager
def connect(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Autocommit, closed afterwards: each statement lands at once, no lock is kept."""
    con = sqlite3.connect(db_path, isolation_level=None)
    try:
        yield con
    finally:
        con.close()


def _writable(path: Path) -> None:
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)


def _unlink(path: Path) -> None:
    if path.exists():
        _writable(path)
        path.unlink()


def _entries(con: sqlite3.Connection) -> list[Entry]:
    rows = con.execute("SELECT seq, at, actor, action, subject, detail, prev_hash, entry_hash, salt "
                       "FROM ledger_entries ORDER BY seq").fetchall()
    return [Entry(seq, datetime.strptime(at, TIME).replace(tzinfo=timezone.utc), actor, action, subject, detail,
                  prev, h, salt) for seq, at, actor, action, subject, detail, prev, h, salt in rows]


@contextmanager
def write_locked(db_path: Path) -> Iterator[None]:
    """Another process's write transaction on the database file, held for the block (what
    `sqlite3 dunline.db 'BEGIN IMMEDIATE'` left open does)."""
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def checkpoint_seqs(db_path: Path) -> list[int]:
    with connect(db_path) as con:
        return [r[0] for r in con.execute("SELECT seq FROM ledger_checkpoints ORDER BY seq")]


def roll_back(db_path: Path, archive: Path, to_seq: int) -> list[str]:
    """Delete the ledger back to entry `to_seq` (an earlier checkpoint), the checkpoints
    after it, and the recordings (rows and files) ingested after it, as if they never were.
    Returns the attempt ids made to disappear."""
    with connect(db_path) as con:
        gone = [json.loads(d) | {"subject": s} for s, d in con.execute(
            "SELECT subject, detail FROM ledger_entries WHERE seq > ? AND action = 'ingest'", (to_seq,))]
        attempts = [g["subject"].split(":", 1)[1] for g in gone]
        for g in gone:
            for info in g["files"].values():
                _unlink(archive / info["key"])
                _unlink(archive / (info["key"] + RETENTION_SUFFIX))
        con.execute("DELETE FROM ledger_entries WHERE seq > ?", (to_seq,))
        con.execute("DELETE FROM ledger_checkpoints WHERE seq > ?", (to_seq,))
        for attempt_id in attempts:
            con.execute("DELETE FROM recordings WHERE attempt_id = ?", (attempt_id,))
    return attempts


def rewrite_chain(db_path: Path, seq: int, new_actor: str = "nobody", signer: Signer | None = None) -> None:
    """Delete every checkpoint, change entry `seq` and recompute every hash after it (the
    algorithm is public) so that the chain is consistent again; with `signer`, sign fresh
    checkpoints over the forged chain."""
    with connect(db_path) as con:
        entries = _entries(con)
        con.execute("DELETE FROM ledger_checkpoints")
        prev = entries[seq - 2].entry_hash if seq > 1 else GENESIS
        for entry in entries[seq - 1:]:
            changed = replace(entry, actor=new_actor) if entry.seq == seq else entry
            salt = changed.salt or "0" * 32
            new_hash = link_hash(changed.seq, prev, body_hash_v2(changed.seq, changed.at, changed.actor,
                                                                 changed.action, changed.subject, changed.detail,
                                                                 salt))
            con.execute("UPDATE ledger_entries SET actor = ?, prev_hash = ?, entry_hash = ?, salt = ? "
                        "WHERE seq = ?", (changed.actor, prev, new_hash, salt, changed.seq))
            prev = new_hash
        if signer is not None:
            last = entries[-1].seq
            cp = signer.sign(last, prev, datetime.now(timezone.utc))
            con.execute("INSERT INTO ledger_checkpoints (seq, head_hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?)",
                        (cp.seq, cp.head_hash, cp.at.strftime(TIME), cp.key_id, cp.signature))


def replace_key_file(key_path: Path) -> Signer:
    """Write a new signing key over the service's key file (what a re-signer does)."""
    key = Ed25519PrivateKey.generate()
    if key_path.exists():
        _writable(key_path)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Signer(key)


def delete_recording_row(db_path: Path, attempt_id: str) -> None:
    with connect(db_path) as con:
        con.execute("DELETE FROM recordings WHERE attempt_id = ?", (attempt_id,))


def delete_hold_row(db_path: Path, hold_id: int) -> None:
    with connect(db_path) as con:
        con.execute("DELETE FROM legal_holds WHERE id = ?", (hold_id,))


def shorten_retention(archive: Path, key: str, days: int = 1) -> None:
    """Rewrite an object's retention record: retained `days` from now, hold lifted."""
    sidecar = archive / (key + RETENTION_SUFFIX)
    record = json.loads(sidecar.read_text())
    record["retain_until"] = (datetime.now(timezone.utc) + timedelta(days=days)).isoformat()
    record["legal_hold"] = False
    _writable(sidecar)
    sidecar.write_text(json.dumps(record))


def drop_file(archive: Path, name: str, data: bytes = b"nothing to see") -> Path:
    path = archive / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.exists():
        os.chmod(path.parent, os.stat(path.parent).st_mode | stat.S_IWUSR)
    path.write_bytes(data)
    return path


def change_file(archive: Path, key: str) -> None:
    """Flip a byte in the middle of an archived object."""
    path = archive / key
    _writable(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
