"""What the archive must hold, derived from the ledger alone (pure).

`recordings verify` trusts nothing but the ledger's entries (themselves checked against the
signed heads): the recordings rows, the legal-hold rows, the store's files and their
retention records are all compared with what is derived here.

- each `ingest` entry brings a recording: its case, its files (key and SHA-256 per kind)
  and its retain-until; `retention` entries raise a recording's retain-until; `purge`
  removes its files (the tombstone stays); `resolve` marks a recording that never was
  archived (it has no ingest).
- each `hold` entry opens a hold (by `hold_id`) on a case or a recording; `release` closes
  it. A live case hold covers every recording of the case, later ones too.
- the expected objects: every file of a live recording, with every recording that refers
  to it (content-addressed archives share identical files), the latest retain-until of
  them all, and whether any live hold covers one of them.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from recorder.ledger import Entry
from storage.names import attempt_of_subject, case_of_subject


@dataclass
class RecordingState:
    attempt_id: str
    case_id: str
    ingest_seq: int
    files: dict[str, tuple[str, str]]  # kind -> (key, sha256)
    retain_until: datetime
    purged: bool = False


@dataclass
class HoldState:
    hold_id: int
    case_id: str | None  # a case hold
    attempt_id: str | None  # a recording hold
    live: bool = True


@dataclass
class ObjectExpectation:
    key: str
    sha256: str
    subjects: list[str] = field(default_factory=list)  # every recording referring to it
    retain_until: datetime | None = None
    held: bool = False


@dataclass
class LedgerState:
    recordings: dict[str, RecordingState] = field(default_factory=dict)
    holds: dict[int, HoldState] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)

    def held(self, recording: RecordingState) -> bool:
        return any(h.live and (h.case_id == recording.case_id or h.attempt_id == recording.attempt_id)
                   for h in self.holds.values())

    def expected_objects(self) -> dict[str, ObjectExpectation]:
        """Every object a live recording needs, with the longest retention the ledger ever gave
        it: a content-addressed file shared with a recording since purged keeps the retention
        that recording's ingest set (retention is only ever extended)."""
        longest: dict[str, datetime] = {}
        for rec in self.recordings.values():
            for key, _sha in rec.files.values():
                if key not in longest or rec.retain_until > longest[key]:
                    longest[key] = rec.retain_until
        out: dict[str, ObjectExpectation] = {}
        for rec in self.recordings.values():
            if rec.purged:
                continue
            held = self.held(rec)
            for key, sha in rec.files.values():
                expectation = out.setdefault(key, ObjectExpectation(key, sha, retain_until=longest[key]))
                expectation.subjects.append(f"recording:{rec.attempt_id}")
                expectation.held = expectation.held or held
        return out


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def derive(entries: Iterable[Entry]) -> LedgerState:
    """The archive's expected state after these entries (in seq order)."""
    state = LedgerState()
    for entry in entries:
        detail = entry.detail_map()
        attempt_id = attempt_of_subject(entry.subject)
        if entry.action == "ingest" and attempt_id is not None:
            files = {kind: (info["key"], info["sha256"]) for kind, info in detail.get("files", {}).items()}
            state.recordings[attempt_id] = RecordingState(attempt_id, detail.get("case_id", ""), entry.seq, files,
                                                          _time(detail["retain_until"]))
        elif entry.action == "purge" and attempt_id in state.recordings:
            state.recordings[attempt_id].purged = True
        elif entry.action == "retention":
            for raised_id, change in detail.get("recordings", {}).items():
                rec = state.recordings.get(raised_id)
                if rec is not None and _time(change["to"]) > rec.retain_until:
                    rec.retain_until = _time(change["to"])
        elif entry.action == "hold":
            case_id = case_of_subject(entry.subject)
            state.holds[int(detail["hold_id"])] = HoldState(int(detail["hold_id"]), case_id, attempt_id)
        elif entry.action == "release" and int(detail.get("hold_id", -1)) in state.holds:
            state.holds[int(detail["hold_id"])].live = False
        elif entry.action == "resolve" and attempt_id is not None:
            state.resolved.add(attempt_id)
    return state
