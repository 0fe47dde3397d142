"""The canary against SQLite, the real ingest and a filesystem archive; the PBX is a stub
link that plays the chain (answer, bind, hang-up, MixMonitor's three files).

place_canary: write-ahead attempt on the reserved case CANARY, no policy, no collector;
the compliance report leaves canaries out; run_canary turns every way the chain can fail
into a failed outcome with its reason, and never raises.
"""
from __future__ import annotations

import asyncio
import math
import random
import struct
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ami.errors import AmiActionError, AmiOutcomeUnknown
from dialer.compliance import compliance_report
from dialer.originate import CANARY_CASE, CANARY_CLIENT, DialBlocked, DialSettings, place_call, place_canary
from dialer.policy import profile
from recorder.archive import FilesystemArchive
from recorder.ingest import IngestSettings, ingest_attempt
from recorder.watchdog.canary import CanaryDeps, prompt_envelope, run_canary
from recorder.watchdog.checks import PbxUptime
from storage import repositories as repo
from storage.lifecycle import Event, Report, Source
from storage.models import Case

RATE = 8000


def pcm_following(levels, seed=1) -> bytes:
    rng = random.Random(seed)
    out = []
    for level in levels:
        amp = 32767 * 10 ** (level / 20) * math.sqrt(3)
        out.extend(max(-32768, min(32767, int(rng.uniform(-amp, amp)))) for _ in range(RATE // 50))
    return struct.pack(f"<{len(out)}h", *out)


def tone(frames: int) -> bytes:
    n = frames * RATE // 50
    return struct.pack(f"<{n}h", *(int(9000 * math.sin(2 * math.pi * 1000 * i / RATE)) for i in range(n)))


def write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)


def mix(a: bytes, b: bytes) -> bytes:
    n = min(len(a), len(b)) // 2
    x, y = struct.unpack(f"<{n}h", a[:n * 2]), struct.unpack(f"<{n}h", b[:n * 2])
    return struct.pack(f"<{n}h", *(max(-32768, min(32767, p + q)) for p, q in zip(x, y)))


class ChainLink:
    """Plays the PBX, the carrier, MixMonitor and the service's ingest for each Originate."""

    def __init__(self, db, clock, spool: Path, archive, ledger, writer, *, outcome="answered", tx=None,
                 ingest=True, hang_up=True, originate_error=None) -> None:
        self.db, self.clock, self.spool, self.archive, self.ledger = db, clock, spool, archive, ledger
        self.writer = writer
        self.outcome, self.tx, self.ingest, self.hang_up = outcome, tx, ingest, hang_up
        self.originate_error = originate_error
        self.originated: list[dict] = []
        self.actions: list[tuple[str, dict]] = []
        self.tasks: list[asyncio.Task] = []

    async def originate(self, channel, **kw):
        self.originated.append({"channel": channel, **kw})
        if self.originate_error is not None:
            raise self.originate_error
        self.tasks.append(asyncio.create_task(self._call(kw["channel_id"])))
        return {"Response": "Success", "ActionID": "a1"}

    async def action(self, name, **kw):
        self.actions.append((name, kw))
        return {"Response": "Success"}

    async def _call(self, attempt_id: str) -> None:
        await asyncio.sleep(0.05)
        if self.outcome != "answered":
            await self.report(attempt_id, Event.HUNG_UP, hangup_cause=17)
            return
        # bind's one report: answered, the dialplan's recording runs
        await self.report(attempt_id, Event.BOUND, recording_name=attempt_id)
        if not self.hang_up:
            return
        ref = prompt_envelope()
        rx = pcm_following(list(reversed(ref)), seed=2)  # the carrier's talk: other speech
        tx = self.tx if self.tx is not None else pcm_following(ref)
        for suffix, pcm in (("", mix(rx, tx)), ("-rx", rx), ("-tx", tx)):
            write_wav(self.spool / f"{attempt_id}{suffix}.wav", pcm)
        self.clock.advance(4.92)
        await self.report(attempt_id, Event.HUNG_UP, hangup_cause=16, answered=True)
        if self.ingest:
            await ingest_attempt(self.db, self.archive, IngestSettings(spool_dir=self.spool), attempt_id,
                                 self.clock, self.ledger)


    async def report(self, attempt_id: str, event: Event, **facts) -> None:
        await self.writer.report(attempt_id, Report(event=event, source=Source.AGI, at=self.clock(), **facts))


@pytest.fixture
def chain(db, clock, ledger, tmp_path, writer):
    spool = tmp_path / "spool"
    spool.mkdir()
    archive = FilesystemArchive(tmp_path / "archive")
    links: list[ChainLink] = []

    def make(**kw) -> tuple[CanaryDeps, ChainLink]:
        link = ChainLink(db, clock, spool, archive, ledger, writer, **kw)
        links.append(link)
        async def place():
            return await place_canary(db, link, DialSettings(), number="15551100000", clock=clock, writer=writer)

        return CanaryDeps(db=db, clock=clock, store=archive, place=place,
                          hang_up=lambda attempt_id: link.action("Hangup", Channel=attempt_id, Cause=16),
                          timeout_s=5.0, poll_s=0.02), link

    yield make
    for link in links:
        for task in link.tasks:
            task.cancel()


async def test_place_canary_writes_ahead_on_the_reserved_case_without_policy(db, clock, writer):
    class Link:
        sent: list = []

        async def originate(self, channel, **kw):
            self.sent.append((channel, kw))
            return {"Response": "Success", "ActionID": "q1"}

    queued = []
    link = Link()
    first = await place_canary(db, link, DialSettings(trunk="carrier"), number="15551100000", clock=clock, writer=writer,
                               on_queued=lambda action_id, attempt_id: queued.append((action_id, attempt_id)))
    second = await place_canary(db, link, DialSettings(), number="15551100000", clock=clock, writer=writer)
    other = await place_canary(db, link, DialSettings(), number="15551100009", clock=clock, writer=writer)
    assert (first.case_id, first.collector, first.decision, first.state) == (CANARY_CASE, None, {"canary": True},
                                                                             "originated")
    channel, kw = link.sent[0]
    assert channel == "PJSIP/15551100000@carrier" and kw["channel_id"] == first.id
    assert kw["variables"] == {"DUNLINE_ATTEMPT": first.id, "DUNLINE_CASE": CANARY_CASE, "DUNLINE_CANARY": "1"}
    assert queued == [("q1", first.id)]
    async with db.session() as s:
        case = await repo.get_case(s, CANARY_CASE)
        events = await repo.audit_events(s, subject=first.id)
    assert case.client == CANARY_CLIENT and [p.number for p in case.phones] == ["15551100000", "15551100009"]
    assert first.phone_id == second.phone_id != other.phone_id
    assert events[0].action == "attempt.created" and events[0].detail["canary"] is True
    # the reserved case cannot be dialled as a debtor call
    with pytest.raises(DialBlocked):
        await place_call(db, link, DialSettings(), case_id=CANARY_CASE, collector="6001", clock=clock, writer=writer,
                         policy=profile("client-default"))


async def test_concurrent_first_canaries_share_the_case(db, clock, writer):
    class Link:
        async def originate(self, channel, **kw):
            return {"Response": "Success", "ActionID": "x"}

    attempts = await asyncio.gather(*(place_canary(db, Link(), DialSettings(), number="15551100000", clock=clock, writer=writer)
                                      for _ in range(3)))
    assert len({a.id for a in attempts}) == 3 and {a.case_id for a in attempts} == {CANARY_CASE}


@pytest.mark.parametrize("error, state, note", [
    (AmiActionError("Originate failed"), "ended", "originate failed: Originate failed"),
    (AmiOutcomeUnknown("link dropped"), "unknown", "originate outcome unknown: link dropped"),
])
async def test_place_canary_shares_the_originate_failure_handling(db, clock, error, state, note, writer):
    class Link:
        async def originate(self, channel, **kw):
            raise error

    attempt = await place_canary(db, Link(), DialSettings(), number="15551100000", clock=clock, writer=writer)
    assert (attempt.state, attempt.note) == (state, note)


async def test_the_compliance_report_leaves_canaries_out(db, clock, writer):
    class Link:
        async def originate(self, channel, **kw):
            return {"Response": "Success", "ActionID": "x"}

    night = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)  # 23:30 in Beijing: a debtor call would breach
    clock.set(night)
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        await repo.add_case(s, Case(id="C-1", client="cu", debtor_name="Zhou", timezone="Asia/Shanghai",
                                    created_at=clock()), [repo.NewPhone("15551100001")])
    for _ in range(5):  # more than any daily cap, at night, without an approved caller ID
        await place_canary(db, Link(), DialSettings(), number="15551100000", clock=clock, writer=writer)
        clock.advance(60)
    report = await compliance_report(db, night - timedelta(hours=1), night + timedelta(hours=1),
                                     profile("client-default"))
    assert report.clean and report.attempts == 0, report.render()


async def test_a_healthy_chain_passes(chain):
    deps, link = chain()
    outcome = await run_canary(deps)
    assert outcome.passed, outcome.reason
    assert outcome.attempt_id == link.originated[0]["channel_id"]
    assert 0 < outcome.seconds < 5
    assert "envelope match" in outcome.reason


async def test_originate_refused(chain):
    deps, _ = chain(originate_error=AmiActionError("Originate failed"))
    outcome = await run_canary(deps)
    assert (outcome.passed, outcome.reason) == (False, "originate failed: Originate failed")
    assert outcome.attempt_id is not None


async def test_busy(chain):
    deps, _ = chain(outcome="busy")
    outcome = await run_canary(deps)
    assert (outcome.passed, outcome.reason) == (False, "call not answered: busy (cause 17)")


async def test_a_call_that_stays_up_is_cut_at_the_timeout(chain):
    deps, link = chain(hang_up=False)
    deps.timeout_s = 0.5
    outcome = await run_canary(deps)
    assert (outcome.passed, outcome.reason) == (False, "call not ended within 0.5 s (state bound)")
    assert 0.5 <= outcome.seconds < 2
    assert link.actions == [("Hangup", {"Channel": outcome.attempt_id, "Cause": 16})]


async def test_no_recording_within_the_timeout(chain):
    deps, link = chain(ingest=False)
    deps.timeout_s = 0.5
    outcome = await run_canary(deps)
    assert (outcome.passed, outcome.reason) == (False, "no recording within 0.5 s")
    assert link.actions == []


async def test_ingest_failure_is_reported_at_once(chain, db, clock):
    deps, _ = chain(ingest=False)
    deps.timeout_s = 5.0

    async def fail_ingest():
        for _ in range(200):
            async with db.session() as s:
                attempts = await repo.attempts_for_case(s, CANARY_CASE)
            if attempts and attempts[-1].state == "ended":
                async with db.session() as s:
                    await repo.audit(s, at=clock(), actor="recorder", action="ingest.failed",
                                     subject=attempts[-1].id, error="not a usable WAV recording")
                return
            await asyncio.sleep(0.01)

    outcome, _ = await asyncio.gather(run_canary(deps), fail_ingest())
    assert (outcome.passed, outcome.reason) == (False, "ingest failed: not a usable WAV recording")
    assert outcome.seconds < 2


async def test_a_tone_instead_of_the_prompt(chain):
    deps, _ = chain(tx=tone(246))
    outcome = await run_canary(deps)
    assert (outcome.passed, outcome.reason) == (False, "recording flagged: tone_only_tx")


async def test_other_speech_instead_of_the_prompt(chain):
    deps, _ = chain(tx=pcm_following(list(reversed(prompt_envelope())), seed=3))
    outcome = await run_canary(deps)
    assert not outcome.passed and outcome.reason.startswith("tx leg does not follow the known prompt"), outcome


async def test_a_tampered_archive_fails_the_hash_check(chain, db):
    deps, _ = chain()
    store = deps.store

    class Tampered:  # the archived mixed file now holds other bytes
        def __getattr__(self, name):
            return getattr(store, name)

        def hash_of(self, key):
            sha, size = store.hash_of(key)
            return ("f" * 64, size) if key == mixed_key[0] else (sha, size)

    mixed_key: list[str] = []
    original_put = store.put

    def put(source, when, **kw):  # note which key the mixed file gets
        obj = original_put(source, when, **kw)
        if "-" not in source.name:
            mixed_key.append(obj.key)
        return obj

    store.put = put
    deps.store = Tampered()
    outcome = await run_canary(deps)
    assert not outcome.passed and outcome.reason.startswith("hash mismatch: archived mixed file "), outcome.reason


async def test_a_missing_archive_file(chain, db):
    deps, _ = chain()
    store = deps.store

    class Lost:
        def __getattr__(self, name):
            return getattr(store, name)

        def hash_of(self, key):
            raise FileNotFoundError(key)

    deps.store = Lost()
    outcome = await run_canary(deps)
    assert not outcome.passed and outcome.reason.startswith("archived mixed file ") and "missing" in outcome.reason


async def test_the_canary_never_raises(chain):
    deps, _ = chain(originate_error=RuntimeError("boom"))
    outcome = await run_canary(deps)
    assert (outcome.passed, outcome.reason) == (False, "canary error: RuntimeError: boom")


def spoilt_prompt() -> bytes:
    """The prompt as a loaded host may leave it: its loudness envelope blurred (a match of
    about 0.73 with the stored one, below MIN_PROMPT_MATCH), its length and speech intact."""
    rng = random.Random(5)
    return pcm_following([max(-60, min(0, level + rng.gauss(0, 12))) for level in prompt_envelope()], seed=4)


async def watched(deps, link, prompts):
    """A watchdog (scripted probes: all else well) whose canary is the real one on the chain;
    each canary call's tx leg is the next of `prompts` (None: the prompt itself)."""
    from recorder.watchdog.runner import Watchdog, WatchdogSettings
    from tests.integration.test_watchdog_runner import ScriptedProbes

    async def canary():
        link.tx = prompts.pop(0) if prompts else None
        return await run_canary(deps)

    clock = deps.clock
    dog = Watchdog(ScriptedProbes(uptime=PbxUptime(clock(), None)),
                   WatchdogSettings(interval_s=0.05, canary_retry_s=0.5, canary_recheck_s=0.05), clock,
                   canary=canary)
    return dog, asyncio.create_task(dog.run())


async def test_a_canary_spoilt_by_load_is_tried_again_before_it_counts(chain):
    deps, link = chain()
    dog, task = await watched(deps, link, [spoilt_prompt()])
    try:
        for _ in range(400):
            if dog.gate.is_open:
                break
            await asyncio.sleep(0.01)
        assert dog.gate.is_open, (dog.gate.reason, dog.last_canary)
        assert len(link.originated) == 2 and dog.canary_runs == 2, "opened by the second try"
        assert dog.last_canary.passed and "envelope match" in dog.last_canary.reason
        assert dog.canary_facts.last_failed_at is None, "the spoilt try never counted"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dog.stop()


async def test_a_canary_failing_every_try_counts_and_says_so(chain):
    deps, link = chain()
    dog, task = await watched(deps, link, [spoilt_prompt(), spoilt_prompt()])
    try:
        for _ in range(400):
            if dog.results.get("canary") is not None and dog.results["canary"].critical:
                break
            await asyncio.sleep(0.01)
        reason = dog.canary_facts.last_reason
        assert reason.startswith("tx leg does not follow the known prompt (envelope match 0.7"), reason
        assert reason.endswith("(failed 2 tries, 0.05 s apart)"), reason
        assert not dog.gate.is_open and len(link.originated) == 2
        assert "failed 2 tries" in dog.status()["checks"]["canary"]["reason"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dog.stop()
