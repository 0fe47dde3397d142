"""The tamper-evident ledger, pure part: hashing, chain checking, signed checkpoints, proofs.

Every ingest, access, hold, release, purge, export, retention change and resolution of a
recording is one entry. Format 2 (docs/proof-format.md is the normative text):

    body_hash  = SHA-256("dunline-ledger-body-v2\\n" + canonical({v, seq, at, actor, action,
                                                                subject, detail, salt}))
    entry_hash = SHA-256("dunline-ledger-v2\\n" + seq + "\\n" + prev_hash + "\\n" + body_hash)

so changing, removing or reordering any entry changes every hash after it, and an entry
can be shown in a proof as (seq, prev_hash, body_hash) alone: the random per-entry salt
makes its body hash reveal nothing of another case. Entries without a salt are format 1
(written before format 2; still verified). A checkpoint is an Ed25519 signature over (seq,
head_hash); the key's fingerprint (SHA-256 of the raw public key) is what a verifier pins.
A signing key is only ever created on purpose (`create_key`, `dunline recordings
init-key`); loading a missing key is an error, never a silent new key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storage.files import make_dirs

GENESIS = "0" * 64
DOMAIN = b"dunline-ledger-v1\n"  # format 1 (no salt)
DOMAIN_V2 = b"dunline-ledger-v2\n"
BODY_DOMAIN_V2 = b"dunline-ledger-body-v2\n"
CHECKPOINT_DOMAIN = "dunline-ledger-checkpoint-v1"
CHECKPOINT_FORMAT = "dunline-checkpoint-v1"
PROOF_FORMAT = "dunline-ledger-proof-v2"

# what may be recorded; a typo in an action would otherwise be a silent new kind of entry.
# monitor / monitor_end: a supervisor listening, whispering or barging into a live call
# qc_score: a QC officer's scorecard of a recording (cases/qc_store.py; its row: storage/qc.py)
ACTIONS = frozenset({"ingest", "access", "export", "hold", "release", "purge", "retention", "resolve",
                     "monitor", "monitor_end", "qc_score"})


class KeyMissing(FileNotFoundError):
    """No signing key where one is expected: it is never created silently."""


def canonical_json(value: Mapping[str, Any]) -> str:
    """The one text form of a detail mapping: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def utc_text(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("ledger times must be aware")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry as stored (detail is the canonical JSON text; no salt: format 1)."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str
    prev_hash: str
    entry_hash: str
    salt: str | None = None

    @property
    def version(self) -> int:
        return 1 if self.salt is None else 2

    def detail_map(self) -> dict[str, Any]:
        return json.loads(self.detail)

    def body_hash(self) -> str:
        if self.salt is None:
            raise ValueError(f"entry {self.seq} is format 1: it has no body hash")
        return body_hash_v2(self.seq, self.at, self.actor, self.action, self.subject, self.detail, self.salt)

    def recomputed_hash(self) -> str:
        if self.salt is None:
            return hash_entry(self.prev_hash, self.seq, self.at, self.actor, self.action, self.subject, self.detail)
        return link_hash(self.seq, self.prev_hash, self.body_hash())

    def as_json(self) -> dict[str, Any]:
        """The entry in full, as a proof shows it."""
        out = {"v": self.version, "seq": self.seq, "at": utc_text(self.at), "actor": self.actor,
               "action": self.action, "subject": self.subject, "detail": self.detail,
               "prev_hash": self.prev_hash, "entry_hash": self.entry_hash}
        if self.salt is not None:
            out["salt"] = self.salt
        return out

    def redacted_json(self) -> dict[str, Any]:
        """The entry as a proof shows another case's: its link only (format 2)."""
        return {"v": 2, "seq": self.seq, "prev_hash": self.prev_hash, "body_hash": self.body_hash(),
                "entry_hash": self.entry_hash}


def hash_entry(prev_hash: str, seq: int, at: datetime, actor: str, action: str, subject: str,
               detail: str) -> str:
    """Format 1: the whole entry in one hash (entries written before the salt existed)."""
    body = canonical_json({"seq": seq, "at": utc_text(at), "actor": actor, "action": action,
                           "subject": subject, "detail": detail})
    return hashlib.sha256(DOMAIN + prev_hash.encode() + b"\n" + body.encode()).hexdigest()


def body_hash_v2(seq: int, at: datetime, actor: str, action: str, subject: str, detail: str, salt: str) -> str:
    body = canonical_json({"v": 2, "seq": seq, "at": utc_text(at), "actor": actor, "action": action,
                           "subject": subject, "detail": detail, "salt": salt})
    return hashlib.sha256(BODY_DOMAIN_V2 + body.encode()).hexdigest()


def link_hash(seq: int, prev_hash: str, body_hash: str) -> str:
    return hashlib.sha256(DOMAIN_V2 + f"{seq}\n{prev_hash}\n{body_hash}".encode()).hexdigest()


def make_entry(prev: Entry | None, *, at: datetime, actor: str, action: str, subject: str,
               detail: Mapping[str, Any], salt: str | None = None) -> Entry:
    """The entry that follows `prev` (None: the first entry), format 2 with a fresh salt."""
    if action not in ACTIONS:
        raise ValueError(f"unknown ledger action {action!r}")
    if not actor:
        raise ValueError("a ledger entry needs an actor (who)")
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.entry_hash
    text = canonical_json(detail)
    salt = salt or secrets.token_hex(16)
    return Entry(seq, at, actor, action, subject, text, prev_hash,
                 link_hash(seq, prev_hash, body_hash_v2(seq, at, actor, action, subject, text, salt)), salt)


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
        if entry.recomputed_hash() != entry.entry_hash:
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
        return {"format": CHECKPOINT_FORMAT, "seq": self.seq, "head_hash": self.head_hash,
                "at": utc_text(self.at), "key_id": self.key_id, "signature": self.signature,
                "message": checkpoint_message(self.seq, self.head_hash).decode()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        """A checkpoint as written to a witness or printed for an outside party (ValueError
        if it is not one)."""
        try:
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"not a {CHECKPOINT_FORMAT} object")
            return cls(int(data["seq"]), str(data["head_hash"]),
                       datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00")),
                       str(data["key_id"]), str(data["signature"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        if self.key_id != key_id_of(key):
            return False
        try:
            key.verify(base64.b64decode(self.signature, validate=True), checkpoint_message(self.seq, self.head_hash))
        except (InvalidSignature, ValueError):
            return False
        return True


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint_of(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: what a verifier pins."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def key_id_of(key: Ed25519PublicKey) -> str:
    return fingerprint_of(key)[:16]


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


def verify_heads(heads: Sequence[Checkpoint], entries_by_seq: Mapping[int, Entry], public_key: Ed25519PublicKey,
                 *, source: str, kinds: tuple[str, str, str] | None = None) -> list[Problem]:
    """Signed heads against the ledger: each must be validly signed by the pinned key and
    name an entry that still has that hash. A head beyond the end is a rollback (entries
    removed); a head whose entry hash differs is a rewritten chain. `source` names where the
    heads come from (`witness`, `given`: kept outside the database); `kinds` the problem
    kinds for (bad signature, beyond the end, other hash)."""
    invalid, beyond, mismatch = kinds or (f"{source}_invalid", "ledger_rolled_back", "ledger_rewritten")
    problems: list[Problem] = []
    last_seq = max(entries_by_seq, default=0)
    for head in heads:
        name = f"{source} at entry {head.seq}"
        if not head.signed_by(public_key):
            problems.append(Problem(invalid, name, f"not signed by the pinned key (key {head.key_id})"))
        elif head.seq > last_seq:
            problems.append(Problem(beyond, name, f"the ledger ends at entry {last_seq}: entries were removed"))
        elif (entry := entries_by_seq.get(head.seq)) is None or entry.entry_hash != head.head_hash:
            problems.append(Problem(mismatch, name, "the entry there has another hash: the chain was rewritten"))
    return problems


def verify_checkpoints(checkpoints: Sequence[Checkpoint], entries_by_seq: Mapping[int, Entry],
                       public_key: Ed25519PublicKey) -> list[Problem]:
    """The database's own checkpoints against its ledger."""
    return verify_heads(checkpoints, entries_by_seq, public_key, source="checkpoint",
                        kinds=("checkpoint_invalid", "ledger_truncated", "checkpoint_mismatch"))


def proof_of(entries: Sequence[Entry], seq: int, checkpoint: Checkpoint, *, attempt_id: str, case_id: str,
             public_key: Ed25519PublicKey, reveal: Collection[int] = ()) -> dict[str, Any]:
    """The proof that entry `seq` is in the signed ledger (docs/proof-format.md): the entry
    in full, the entries after it up to the checkpoint redacted to their links (unless in
    `reveal`, or format 1, which cannot be redacted), the checkpoint and the public key.
    `entries` ordered by seq, covering seq..checkpoint.seq."""
    by_seq = {e.seq: e for e in entries}
    entry = by_seq[seq]
    chain = []
    for n in range(seq + 1, checkpoint.seq + 1):
        item = by_seq[n]
        chain.append(item.as_json() if n in reveal or item.salt is None else item.redacted_json())
    return {"format": PROOF_FORMAT, "attempt_id": attempt_id, "case_id": case_id, "entry": entry.as_json(),
            "chain": chain, "checkpoint": checkpoint.as_json(), "public_key_pem": public_key_pem(public_key)}


def _item_hash(item: Mapping[str, Any]) -> str:
    """The entry hash an item of a proof must have, recomputed from what it shows."""
    seq, prev = int(item["seq"]), str(item["prev_hash"])
    if "body_hash" in item and "detail" not in item:
        return link_hash(seq, prev, str(item["body_hash"]))
    at = datetime.fromisoformat(str(item["at"]).replace("Z", "+00:00"))
    if int(item.get("v", 1)) == 1:
        return hash_entry(prev, seq, at, item["actor"], item["action"], item["subject"], item["detail"])
    return link_hash(seq, prev, body_hash_v2(seq, at, item["actor"], item["action"], item["subject"],
                                             item["detail"], item["salt"]))


def check_proof(proof: Mapping[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """An outsider's check of a proof (the same rules as the bag's standalone verifier);
    None if it holds, else why not. The WAV hashes are checked by the caller."""
    try:
        if proof.get("format") != PROOF_FORMAT:
            return "not a dunline-ledger-proof-v2 proof"
        entry, checkpoint = proof["entry"], Checkpoint.from_json(proof["checkpoint"])
        if entry["subject"] != f"recording:{proof['attempt_id']}" or entry["action"] != "ingest":
            return "the entry is not this recording's ingest"
        if json.loads(entry["detail"]).get("case_id") != proof["case_id"]:
            return "the entry names another case"
        previous = None
        for item in [entry, *proof["chain"]]:
            if previous is not None and (int(item["seq"]) != int(previous["seq"]) + 1
                                         or item["prev_hash"] != previous["entry_hash"]):
                return f"the chain breaks at entry {item['seq']}"
            if _item_hash(item) != item["entry_hash"]:
                return f"entry {item['seq']} does not hash to its entry_hash"
            previous = item
        if int(previous["seq"]) != checkpoint.seq or previous["entry_hash"] != checkpoint.head_hash:
            return "the chain does not end at the signed head"
        if not checkpoint.signed_by(public_key):
            return "the checkpoint is not signed by this key"
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed proof: {exc}"
    return None


def load_signer(path: Path | str) -> Signer:
    """The signing key from its PEM file; KeyMissing if there is none (never created here)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyMissing(f"{path}: no ledger signing key (create one on purpose: "
                         "`dunline recordings init-key`)") from None
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return Signer(key)


def create_key(path: Path | str) -> Signer:
    """Make a new signing key, written 0600; refuses if one exists (FileExistsError)."""
    path = Path(path)
    make_dirs(path.parent)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return Signer(key)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key
