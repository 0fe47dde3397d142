"""The recording archive end to end on the real sandbox: 20 mixed calls for 20 cases.

Every answered call has exactly one recording in the archive, found by its case number,
with archived files whose SHA-256 matches the row; unanswered calls have none; a call on
which the debtor's side carries only a steady tone is flagged `tone_only_rx`, one on which
it is muted (silence only) `no_signal_rx`, and ordinary conversations get neither.

Calls run concurrently, never more at once than there are collector phones: the service
hands collectors out round robin, so call i waits until call i - phones (same collector)
has ended.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import pytest
from sqlalchemy import select, text

from recorder.archive import sha256_file
from recorder.verify import verify_archive
from storage import repositories as repo
from storage.models import Recording

pytestmark = pytest.mark.e2e

SIGNAL_FLAGS = ("tone_only_rx", "tone_only_tx", "no_signal_rx", "no_signal_tx")


@dataclass(frozen=True)
class Call:
    case_id: str
    number: str
    outcome: str
    flag: str | None = None  # the one leg flag the recording must carry, if any

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"


def _calls() -> list[Call]:
    """20 cases, mixed so that each stretch of calls has answered and unanswered ones.

    Carrier plan (asterisk_conf/templates/carrier/extensions.conf): 15555S.. answer after
    1 s and talk S*2 s; 155500T... steady tone only for T*2 s; 155501S... silence only for
    S*2 s; 15552 busy; 15553 no answer; 15554 congestion; 15558 early media then
    congestion; anything else unallocated."""
    plan = [
        ("155551420", "answered"), ("155552420", "answered"), ("155520420", "busy"),
        ("155551421", "answered"), ("155500220", "answered", "tone_only_rx"),
        ("155552421", "answered"), ("155530420", "no_answer"), ("155551422", "answered"),
        ("155540420", "congestion"), ("155501220", "answered", "no_signal_rx"),
        ("155552422", "answered"), ("199904200", "invalid"), ("155551423", "answered"),
        ("155552423", "answered"), ("155580420", "congestion"), ("155551424", "answered"),
        ("155521420", "busy"), ("155552424", "answered"), ("155541420", "congestion"),
        ("155551425", "answered"),
    ]
    return [Call(f"E2E-ARC-{i:02d}", f"{prefix}{i:02d}", *rest) for i, (prefix, *rest) in enumerate(plan)]


CALLS = _calls()


def both_reports_in(attempt) -> bool:
    """The hang-up handler (answered_seconds) and the AMI bridge events have both reported."""
    return attempt.answered_seconds is not None and attempt.bridged_seconds is not None


async def place_all(h, calls: list[Call], phones: int) -> dict[str, object]:
    """Dial every call, at most `phones` at once; the ended attempt of each case."""
    tasks: list[asyncio.Task] = []
    collectors: list[str] = []
    for i, call in enumerate(calls):
        if i >= phones:  # the collector this call will get (round robin) is free again
            await tasks[i - phones]
            await asyncio.sleep(0.3)  # let the phone see the BYE before the next INVITE
        attempt = await h.service.dial(call.case_id)
        collectors.append(attempt.collector)
        if i >= phones:
            assert attempt.collector == collectors[i - phones], "round robin over the collectors"
        until = both_reports_in if call.answered else (lambda a: True)
        tasks.append(asyncio.create_task(h.wait_attempt(attempt.id, timeout=45, until=until)))
    ended = await asyncio.gather(*tasks)
    return {call.case_id: attempt for call, attempt in zip(calls, ended)}


async def test_twenty_mixed_calls_each_answered_one_has_exactly_one_verified_recording(harness):
    h = harness
    assert len(CALLS) == 20 and len({c.number for c in CALLS}) == 20
    phones = len(h.info.phones)
    for call in CALLS:
        await h.add_case(call.case_id, call.number)

    started = time.monotonic()
    ended = await place_all(h, CALLS, phones)
    answered = [c for c in CALLS if c.answered]
    for call in answered:
        await h.wait_recording(ended[call.case_id].id, timeout=30)
    assert await h.service.wait_idle(30), "no attempt left open, no ingest pending"
    wall = time.monotonic() - started

    for call in CALLS:
        attempt = ended[call.case_id]
        assert (attempt.case_id, attempt.number) == (call.case_id, call.number)
        assert attempt.outcome == call.outcome, (call, attempt.outcome, attempt.hangup_cause, attempt.note)
        assert h.carrier_calls(call.number) == 1, f"{call.number} dialled exactly once"

    archive = h.service.archive
    referenced: set[str] = set()
    async with h.service.db.session() as s:
        for call in CALLS:
            attempt = ended[call.case_id]
            found = await repo.recordings_for_case(s, call.case_id)
            if not call.answered:
                assert list(found) == [], (call, found)
                assert attempt.recording_name is None and attempt.bound_at is None, call
                assert await repo.recording_for_attempt(s, attempt.id) is None
                continue

            assert len(found) == 1, (call, [r.attempt_id for r in found])
            rec = found[0]
            assert (rec.attempt_id, rec.case_id) == (attempt.id, call.case_id)
            assert attempt.recording_name == attempt.id and attempt.bound_at is not None
            assert attempt.hangup_cause == 16 and attempt.dial_status == "ANSWER", call
            assert abs(rec.duration_s - attempt.answered_seconds) <= 1.0, (call, rec.duration_s,
                                                                           attempt.answered_seconds)
            # the archived evidence: the mixed file and both legs, each matching its SHA-256
            assert sha256_file(archive.path_of(rec.archive_path)) == (rec.sha256, rec.size_bytes)
            referenced.add(rec.archive_path)
            legs = {leg["leg"]: leg for leg in rec.legs}
            assert set(legs) == {"rx", "tx"}, rec.legs
            for leg in legs.values():
                digest, _ = sha256_file(archive.path_of(leg["archive_path"]))
                assert digest == leg["sha256"], (call, leg)
                referenced.add(leg["archive_path"])

            signal_flags = [f for f in rec.flags if f in SIGNAL_FLAGS]
            assert legs["tx"]["has_signal"], (call, legs)  # the collector's phone always talks
            if call.flag == "tone_only_rx":
                assert signal_flags == ["tone_only_rx"], (call, rec.flags, legs)
                assert legs["rx"]["steady_tone"] and not legs["rx"]["has_signal"], legs
            elif call.flag == "no_signal_rx":
                assert signal_flags == ["no_signal_rx"], (call, rec.flags, legs)
                assert not legs["rx"]["has_signal"] and not legs["rx"]["steady_tone"], legs
            else:
                assert signal_flags == [], (call, rec.flags, legs)
                assert legs["rx"]["has_signal"] and not legs["rx"]["steady_tone"], (call, legs)

        all_recordings = (await s.scalars(select(Recording))).all()
    assert sorted(r.attempt_id for r in all_recordings) == sorted(ended[c.case_id].id for c in answered)
    stray = {key for key in archive.keys() if key.endswith(".wav")} - referenced
    assert not stray, f"archived files no recording refers to: {stray}"
    print(f"\n{len(CALLS)} calls ({len(answered)} answered) on {phones} phones in {wall:.1f} s")

    # every recording is verified: the ledger's chain and signed checkpoints hold, and every
    # file re-hashes to its ingest entry; then each kind of tampering is named by `verify`
    service = h.service
    await service.ledger.checkpoint()
    public_key = service.ledger.signer.public_key
    report = await verify_archive(service.db, archive, public_key)
    assert report.ok, report.render()
    assert report.recordings == len(answered) and report.checkpoints >= 1

    first, second = await _recordings_of(service, answered[0]), await _recordings_of(service, answered[1])
    flipped = archive.path_of(first.archive_path)
    os.chmod(flipped, 0o644)
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    report = await verify_archive(service.db, archive, public_key)
    assert [(p.kind, p.what) for p in report.problems] == [("file_changed", first.archive_path)]

    archive.path_of(second.legs[0]["archive_path"]).unlink()
    async with service.db.session() as s:
        await s.execute(text("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = :seq"),
                        {"seq": second.ledger_seq})
    kinds = {(p.kind, p.what) for p in (await verify_archive(service.db, archive, public_key)).problems}
    assert ("file_missing", second.legs[0]["archive_path"]) in kinds
    assert ("entry_altered", f"entry {second.ledger_seq}") in kinds


async def _recordings_of(service, call: Call) -> Recording:
    async with service.db.session() as s:
        [rec] = await repo.recordings_for_case(s, call.case_id)
    return rec
