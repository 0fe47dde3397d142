"""The ledger's witness: every signed checkpoint also written outside the database.

A checkpoint row in the database proves nothing to someone who can edit the database: they
can delete it, or rewrite the chain and sign again with a key of their own. So each
checkpoint is also written, as the JSON object of docs/proof-format.md, into the archive
store (`<date>/<sha256>.ckpt`): under S3 Object Lock in compliance mode nobody can remove or
change it before its retention; on the filesystem store it is a read-only file with its
retention record. `recordings verify` compares the database's ledger with every witness: a
rollback, a deleted checkpoint or a rewritten chain no longer matches them.

Blocking (the store is): call from a thread.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recorder.archive import ArchiveStore, ObjectMissing
from recorder.ledger import Checkpoint, public_key_pem
from recorder.retention import add_years

WITNESS_SUFFIX = ".ckpt"


@dataclass(frozen=True, slots=True)
class WitnessRead:
    key: str
    checkpoint: Checkpoint | None  # None: the object is not a readable checkpoint
    problem: str = ""
    public_key_pem: str = ""


class CheckpointWitness:
    def __init__(self, store: ArchiveStore, retain_years: int) -> None:
        self.store = store
        self.retain_years = retain_years  # longer than any recording it covers

    def write(self, checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> str:
        """Store the checkpoint with the public key that checks it (idempotent: same
        content, same key); returns its key."""
        data = (json.dumps(witness_json(checkpoint, public_key), sort_keys=True, indent=1) + "\n").encode()
        with tempfile.TemporaryDirectory(prefix="dunline-witness-") as tmp:
            path = Path(tmp) / f"checkpoint-{checkpoint.seq}{WITNESS_SUFFIX}"
            path.write_bytes(data)
            stored = self.store.put(path, checkpoint.at, retain_until=self.retain_until(checkpoint.at),
                                    suffix=WITNESS_SUFFIX)
        return stored.key

    def retain_until(self, at: datetime) -> datetime:
        return add_years(at, self.retain_years)

    def read_all(self) -> Iterator[WitnessRead]:
        for key in self.store.keys():
            if not key.endswith(WITNESS_SUFFIX):
                continue
            try:
                with self.store.open_read(key) as handle:
                    data = json.loads(handle.read(1 << 20))
                yield WitnessRead(key, Checkpoint.from_json(data), public_key_pem=str(data.get("public_key_pem", "")))
            except (ObjectMissing, ValueError, OSError) as exc:
                yield WitnessRead(key, None, f"unreadable witness: {exc}")


def witness_json(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> dict[str, object]:
    """A checkpoint as it is witnessed and handed out: with the public key that checks it
    (whoever checks it pins that key's fingerprint; the key here is only a convenience)."""
    return {**checkpoint.as_json(), "public_key_pem": public_key_pem(public_key)}


def is_witness_key(key: str) -> bool:
    return key.endswith(WITNESS_SUFFIX)
