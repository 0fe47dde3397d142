"""The tamper-evident ledger, pure part: hashing, chain checking, signed checkpoints.

Every ingest, access, hold, release, purge and export of a recording is one entry. Each
entry's hash covers its own fields and the previous entry's hash:

    entry_hash = SHA-256("dunline-ledger-v1\\n" + prev_hash + "\\n" + canonical(entry))

so changing, removing or reordering any entry changes every hash after it. A checkpoint
is an Ed25519 signature over (seq, head_hash): whoever holds the public key can check
that the ledger up to `seq` is the one the service signed, and an outsider can check one
entry against a checkpoint with the chain of hashes between them (the proof in a BagIt
export). Truncating the ledger below a checkpoint is detected too.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
DOMAIN = b"dunline-ledger-v1\n"
CHECKPOINT_DOMAIN = "dunline-ledger-checkpoint-v1"

# what may be recorded; a typo in an action would otherwise be a silent new kind of entry
ACTIONS = frozenset({"ingest", "access", "export", "hold", "release", "purge", "retention", "resolve"})


def canonical_json(value: Mapping[str, Any]) -> str:
    """The one text form of a detail mapping: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def utc_text(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("ledger times must be aware")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry as stored (detail is the canonical JSON text)."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str
    prev_hash: str
    entry_hash: str

    def detail_map(self) -> dict[str, Any]:
        return json.loads(self.detail)

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": utc_text(self.at), "actor": self.actor, "action": self.action,
                "subject": self.subject, "detail": self.detail, "prev_hash": self.prev_hash,
                "entry_hash": self.entry_hash}


def hash_entry(prev_hash: str, seq: int, at: datetime, actor: str, action: str, subject: str,
               detail: str) -> str:
    body = canonical_json({"seq": seq, "at": utc_text(at), "actor": actor, "action": action,
                           "subject": subject, "detail": detail})
    return hashlib.sha256(DOMAIN + prev_hash.encode() + b"\n" + body.encode()).hexdigest()


def make_entry(prev: Entry | None, *, at: datetime, actor: str, action: str, subject: str,
               detail: Mapping[str, Any]) -> Entry:
    """The entry that follows `prev` (None: the first entry)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown ledger action {action!r}")
    if not actor:
        raise ValueError("a ledger entry needs an actor (who)")
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.entry_hash
    text = canonical_json(detail)
    return Entry(seq, at, actor, action, subject, text, prev_hash,
                 hash_entry(prev_hash, seq, at, actor, action, subject, text))


@dataclass(frozen=True, slots=True)
class Problem:
    """Something verification found wrong; `what` names the entry, file or checkpoint."""

    kind: str  # entry_altered, chain_broken, seq_gap, checkpoint_invalid, ledger_truncated, ...
    what: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}" + (f" ({self.detail})" if self.detail else "")


def verify_chain(entries: Iterable[Entry]) -> list[Problem]:
    """Check that the entries form one unbroken chain from the genesis, in order."""
    problems: list[Problem] = []
    expected_seq, prev_hash = 1, GENESIS
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(Problem("seq_gap", f"entry {entry.seq}",
                                    f"expected entry {expected_seq}: entries removed or reordered"))
        if entry.prev_hash != prev_hash:
            problems.append(Problem("chain_broken", f"entry {entry.seq}",
                                    "does not link to the entry before it"))
        recomputed = hash_entry(entry.prev_hash, entry.seq, entry.at, entry.actor, entry.action,
                                entry.subject, entry.detail)
        if recomputed != entry.entry_hash:
            problems.append(Problem("entry_altered", f"entry {entry.seq}",
                                    f"{entry.action} {entry.subject}: its fields do not match its hash"))
        expected_seq, prev_hash = entry.seq + 1, entry.entry_hash
    return problems


# -- checkpoints -----------------------------------------------------------------------

def checkpoint_message(seq: int, head_hash: str) -> bytes:
    return f"{CHECKPOINT_DOMAIN}\n{seq}\n{head_hash}\n".encode()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    head_hash: str
    at: datetime
    key_id: str
    signature: str  # base64

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "head_hash": self.head_hash, "at": utc_text(self.at),
                "key_id": self.key_id, "signature": self.signature,
                "message": checkpoint_message(self.seq, self.head_hash).decode()}


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id_of(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """Signs checkpoints with the service's Ed25519 key."""

    private_key: Ed25519PrivateKey
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", key_id_of(self.private_key.public_key()))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, seq: int, head_hash: str, at: datetime) -> Checkpoint:
        signature = self.private_key.sign(checkpoint_message(seq, head_hash))
        return Checkpoint(seq, head_hash, at, self.key_id, base64.b64encode(signature).decode())


def verify_checkpoints(checkpoints: Sequence[Checkpoint], entries_by_seq: Mapping[int, Entry],
                       public_key: Ed25519PublicKey) -> list[Problem]:
    """Each checkpoint is signed by `public_key` and names an entry that still has its hash."""
    problems: list[Problem] = []
    key_id = key_id_of(public_key)
    last_seq = max(entries_by_seq, default=0)
    for cp in checkpoints:
        name = f"checkpoint at entry {cp.seq}"
        if cp.key_id != key_id:
            problems.append(Problem("checkpoint_invalid", name, f"signed by unknown key {cp.key_id}"))
            continue
        try:
            public_key.verify(base64.b64decode(cp.signature), checkpoint_message(cp.seq, cp.head_hash))
        except (InvalidSignature, ValueError):
            problems.append(Problem("checkpoint_invalid", name, "bad signature"))
            continue
        if cp.seq > last_seq:
            problems.append(Problem("ledger_truncated", name,
                                    f"the ledger ends at entry {last_seq}; entries were removed"))
        elif (entry := entries_by_seq.get(cp.seq)) is None or entry.entry_hash != cp.head_hash:
            problems.append(Problem("checkpoint_mismatch", name,
                                    "the signed head hash differs from the stored entry"))
    return problems


def chain_proof(entries: Sequence[Entry], seq: int, checkpoint: Checkpoint) -> list[dict[str, Any]]:
    """The entries from `seq` up to the checkpoint: enough for an outsider to recompute
    the chain from that entry to the signed head (`entries` ordered by seq)."""
    return [e.as_json() for e in entries if seq <= e.seq <= checkpoint.seq]


def verify_proof(proof: Sequence[Mapping[str, Any]], checkpoint: Mapping[str, Any],
                 public_key: Ed25519PublicKey) -> bool:
    """An outsider's check of an exported proof (mirrors verify_chain + the signature)."""
    try:
        public_key.verify(base64.b64decode(checkpoint["signature"]),
                          checkpoint_message(int(checkpoint["seq"]), checkpoint["head_hash"]))
    except (InvalidSignature, ValueError, KeyError):
        return False
    prev = None
    for item in proof:
        at = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
        recomputed = hash_entry(item["prev_hash"], int(item["seq"]), at, item["actor"], item["action"],
                                item["subject"], item["detail"])
        if recomputed != item["entry_hash"] or (prev is not None and item["prev_hash"] != prev):
            return False
        prev = item["entry_hash"]
    return bool(proof) and proof[-1]["seq"] == checkpoint["seq"] and prev == checkpoint["head_hash"]


def load_or_create_key(path: Path | str) -> Signer:
    """The signing key from a PEM file, created (mode 0600) on first use."""
    path = Path(path)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return Signer(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return Signer(key)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key
