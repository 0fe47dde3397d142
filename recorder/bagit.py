"""BagIt export of a case's recordings: what a complaint or a court receives.

A BagIt 1.0 bag (RFC 8493) that anyone can check with standard tools (bagit-python's
`bagit.Bag(path).validate()`), and whose chain of custody anyone can check without dunline
(docs/proof-format.md; the bag carries the standalone verifier `verify-bag.py`, Python
standard library plus `cryptography` or the `openssl` command):

    bagit.txt, bag-info.txt          who exported it and why, when, the case (External-Identifier)
    verify-bag.py                    the standalone verifier (recorder/standalone/verify_bag.py)
    data/metadata.json               each recording's call metadata and where its files are
    data/recordings/<attempt_id>/{mixed,rx,tx}.wav   the bytes as stored in the archive
    data/ledger-proof/<attempt_id>.json   its ingest entry in full, the entries from it to
                                     the first signed checkpoint covering it (other cases'
                                     entries only as hashes: a proof reveals nothing of them),
                                     that checkpoint and the public key
    data/ledger-proof/public-key.pem
    manifest-sha256.txt, tagmanifest-sha256.txt

The ledger head is signed just before the export, so every recording has a checkpoint.
The bag is built in a hidden temporary directory beside the target, then the export is
written to the ledger (action "export"), then the bag is renamed into place (or tarred
to a temporary name and renamed): no half bag ever carries the final name, and no bag
leaves without its ledger entry. Each file read from the store is hashed while copying
and must match the SHA-256 ingest recorded; a mismatch aborts the export.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from recorder import ledger_store
from recorder.archive import ArchiveStore, ObjectMissing, copy_hashing
from recorder.ledger import fingerprint_of, proof_of, public_key_pem, utc_text
from recorder.ledger_store import Ledger
from recorder.retrieval import RecordingInfo, case_recordings
from recorder.retrieval_query import Requester, RetrievalError, check_case_number
from storage.db import Database
from storage.files import DIR_MODE, FILE_MODE, make_dirs
from storage.names import case_subject, recording_subject

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
VERIFIER = Path(__file__).with_name("standalone") / "verify_bag.py"
VERIFIER_NAME = "verify-bag.py"


class ExportError(RetrievalError):
    """The export could not be made; nothing was left under the target name."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path  # the bag directory, or the .tar holding it
    case_id: str
    attempt_ids: tuple[str, ...]
    payload_oxum: str  # "<octets>.<files>"
    ledger_seq: int  # the export's own ledger entry


@dataclass(frozen=True, slots=True)
class BagPlan:
    """Everything the blocking bag writer needs, gathered from the database first."""

    name: str
    recordings: tuple[RecordingInfo, ...]
    json_files: dict[str, Any]  # path under data/ -> JSON document
    texts: dict[str, str]  # path under data/ -> text
    bag_info: dict[str, str]


def _sync_write(path: Path, data: bytes) -> None:
    make_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _copy_from_store(store: ArchiveStore, key: str, target: Path) -> tuple[str, int]:
    make_dirs(target.parent)
    try:
        with store.open_read(key) as src, os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                                            FILE_MODE), "wb") as dst:
            return copy_hashing(src, dst)
    except ObjectMissing:
        raise ExportError(f"archive object {key} is missing; run `dunline recordings verify`") from None


def _build_bag(store: ArchiveStore, out_dir: Path, plan: BagPlan) -> tuple[Path, str, str]:
    """Write the whole bag into a new hidden directory; returns (dir, Payload-Oxum,
    SHA-256 of manifest-sha256.txt). Removes the directory on any error."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{plan.name}.partial-", dir=out_dir))
    os.chmod(tmp, DIR_MODE)  # the bag holds debtors' calls: its owner and group only
    finished = False
    try:
        payload: list[tuple[str, str, int]] = []  # (path in bag, sha256, size)
        for rec in plan.recordings:
            if rec.purged_at is not None:
                continue
            for leg in ("mixed", *(g.leg for g in rec.legs)):
                key, expected = rec.key_of(leg)
                rel = f"data/recordings/{rec.attempt_id}/{leg}.wav"
                sha, size = _copy_from_store(store, key, tmp / rel)
                if sha != expected:
                    raise ExportError(f"archive object {key} does not match the SHA-256 recorded at "
                                      "ingest; run `dunline recordings verify`")
                payload.append((rel, sha, size))
        documents = {name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
                     for name, doc in plan.json_files.items()}
        for name, text in {**documents, **plan.texts}.items():
            data = text.encode()
            _sync_write(tmp / "data" / name, data)
            payload.append((f"data/{name}", hashlib.sha256(data).hexdigest(), len(data)))
        oxum = f"{sum(size for _, _, size in payload)}.{len(payload)}"
        manifest = "".join(f"{sha}  {rel}\n" for rel, sha, _ in sorted(payload))
        info = {**plan.bag_info, "Payload-Oxum": oxum}
        tags = {"bagit.txt": BAGIT_TXT, "manifest-sha256.txt": manifest,
                "bag-info.txt": "".join(f"{k}: {v}\n" for k, v in info.items()),
                VERIFIER_NAME: VERIFIER.read_text()}
        for name, text in tags.items():
            _sync_write(tmp / name, text.encode())
        _sync_write(tmp / "tagmanifest-sha256.txt", "".join(
            f"{hashlib.sha256(text.encode()).hexdigest()}  {name}\n" for name, text in sorted(tags.items())
        ).encode())
        finished = True
        return tmp, oxum, hashlib.sha256(manifest.encode()).hexdigest()
    finally:
        if not finished:
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, target: Path, name: str, as_tar: bool) -> None:
    """Rename the finished bag to `target`, or tar it to a hidden name and rename that."""
    if target.exists():
        raise ExportError(f"{target} already exists")
    if not as_tar:
        os.rename(tmp, target)
        return
    partial = target.with_name(f".{target.name}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE))
        with tarfile.open(partial, "w") as tar:
            tar.add(tmp, arcname=name)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.rename(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


async def _proofs(db: Database, ledger: Ledger, recordings: tuple[RecordingInfo, ...]) -> dict[str, Any]:
    """data/ledger-proof/<attempt_id>.json for every recording with an ingest entry."""
    seqs = [r.ledger_seq for r in recordings if r.ledger_seq is not None]
    if not seqs:
        return {}
    files: dict[str, Any] = {}
    async with db.session() as session:
        chain = await ledger_store.entries(session, since_seq=min(seqs) - 1)
        by_seq = {e.seq: e for e in chain}
        for rec in recordings:
            if rec.ledger_seq is None:
                continue
            entry = by_seq.get(rec.ledger_seq)
            checkpoint = await ledger_store.first_checkpoint_covering(session, rec.ledger_seq)
            if entry is None or entry.subject != recording_subject(rec.attempt_id) or checkpoint is None:
                raise ExportError(f"recording {rec.attempt_id}: its ingest ledger entry "
                                  f"{rec.ledger_seq} is missing, foreign or unsigned")
            files[f"ledger-proof/{rec.attempt_id}.json"] = proof_of(
                chain, rec.ledger_seq, checkpoint, attempt_id=rec.attempt_id, case_id=rec.case_id,
                public_key=ledger.signer.public_key)
    return files


def _metadata(case_id: str, recordings: tuple[RecordingInfo, ...], requester: Requester,
              now: datetime, proofs: dict[str, Any]) -> dict[str, Any]:
    items = []
    for rec in recordings:
        files = {} if rec.purged_at else {leg: f"recordings/{rec.attempt_id}/{leg}.wav"
                                          for leg in ("mixed", *(g.leg for g in rec.legs))}
        proof = f"ledger-proof/{rec.attempt_id}.json"
        items.append({**rec.as_json(), "files": files, "ledger_proof": proof if proof in proofs else None})
    return {"case_id": case_id, "exported_at": utc_text(now), "exported_by": requester.who,
            "reason": requester.why, "recordings": items}


async def export_case(db: Database, store: ArchiveStore, ledger: Ledger, case_id: str, out_dir: Path,
                      requester: Requester, *, organization: str = "dunline",
                      as_tar: bool = False) -> ExportResult:
    """Write the bag of every recording of `case_id` into `out_dir` (NoSuchCase if unknown)."""
    check_case_number(case_id)
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir} is not a directory")
    recordings = await case_recordings(db, case_id)
    checkpoint = await ledger.checkpoint()  # sign the head now: every entry is covered
    proofs = await _proofs(db, ledger, recordings)
    now = ledger.clock()
    name = f"case-{case_id}-{now:%Y%m%dT%H%M%SZ}"
    target = out_dir / (f"{name}.tar" if as_tar else name)
    if target.exists():
        raise ExportError(f"{target} already exists")
    texts = {"ledger-proof/public-key.pem": public_key_pem(ledger.signer.public_key)} if proofs else {}
    plan = BagPlan(name, recordings,
                   {"metadata.json": _metadata(case_id, recordings, requester, now, proofs), **proofs},
                   texts,
                   {"Source-Organization": organization, "Bagging-Date": f"{now:%Y-%m-%d}",
                    "External-Identifier": case_id,
                    "External-Description": f"Call recordings of case {case_id} with ledger proofs",
                    "Contact-Name": requester.who, "Internal-Sender-Description": requester.why,
                    "Bag-Software-Agent": "dunline",
                    # informational: a verifier takes the fingerprint from its own trusted copy
                    "Ledger-Key-Fingerprint": fingerprint_of(ledger.signer.public_key)})
    tmp, oxum, manifest_sha = await asyncio.to_thread(_build_bag, store, out_dir, plan)
    try:
        entry = await ledger.record(actor=requester.who, action="export", subject=case_subject(case_id), detail={
            "who": requester.who, "why": requester.why, "bag": target.name, "payload_oxum": oxum,
            "manifest_sha256": manifest_sha, "recordings": [r.attempt_id for r in recordings],
            "checkpoint_seq": checkpoint.seq if checkpoint else None})
        await asyncio.to_thread(_move_into_place, tmp, target, name, as_tar)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already unless something failed
    return ExportResult(target, case_id, tuple(r.attempt_id for r in recordings), oxum, entry.seq)
