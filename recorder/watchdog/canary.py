"""The canary: one test call through the whole recording chain, timed end to end.

PBX -> carrier -> MixMonitor -> ingest -> archive -> speech check of a known prompt.

`run_canary` places a canary attempt (`dialer.originate.place_canary`: reserved case
CANARY, no dialing policy, no gate, no collector) to a carrier number that answers and
talks. `bind` records it like any call and sets DUNLINE_CANARY=1; the PBX dialplan then
plays the known prompt `CANARY_PROMPT` to the carrier and hangs up (cause 16). The
service's normal path ends the attempt and ingests the recording; the canary only polls
the database for the result, re-hashes the archived files and judges:

1. the call was placed (originate accepted) and its outcome is known;
2. it was answered (`outcome == "answered"`);
3. it was bound to a recording (`recording_name`; else the reason `bind` gave);
4. the Recording row exists (ingested) within `timeout_s` of the start, and ingest did
   not fail;
5. the archived mixed file and both legs re-hash to their stored SHA-256 and size;
6. the mixed recording lasts more than `MIN_DURATION_S`;
7. ingest raised no flag (`tone_only_*`, `no_signal_*`, `duration_mismatch`,
   `header_repaired`; only `playback_failed`, the convenience copy, is tolerated);
8. both legs are present and have signal: rx (the carrier's talk loop) and tx (what we
   sent);
9. the speech check of the known prompt on the tx leg (what we sent is the prompt and
   nothing else): its length is the prompt's within `PROMPT_TOLERANCE_S`; webrtcvad
   calls at least `MIN_PROMPT_SPEECH_RATIO` of it speech; and its loudness envelope
   (dBFS per 20 ms) correlates with the prompt's stored envelope (`PROMPT_ENVELOPE`) by at
   least `MIN_PROMPT_MATCH` at some shift of up to 0.5 s. A tone, silence, noise, other
   speech (e.g. the carrier's talk on a swapped leg) or a truncated prompt fails.

The first failed check is the reason; any exception becomes a failed outcome. The outcome
is `CanaryOutcome(passed, reason, seconds, attempt_id)`; `seconds` is wall time (monotonic)
from placing the call to the verdict.
"""
from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from array import array
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from recorder.archive import ArchiveStore
from recorder.wavfile import HEADER_PROBE, parse_header
from recorder.watchdog.runner import CanaryOutcome
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.models import Attempt, Recording

log = logging.getLogger("dunline.watchdog.canary")

# The prompt the PBX dialplan plays on a canary call (asterisk_conf/templates/pbx/
# extensions.conf, [dunline-outbound] label `canary`): Asterisk core sound "agent-user"
# ("Agent login. Please enter your agent number followed by the pound key."), 8118 bytes
# of GSM = 246 frames of 20 ms = 4.92 s. Change both together.
CANARY_PROMPT = "agent-user"
CANARY_PROMPT_SECONDS = 4.92
# Its loudness envelope: RMS level of each 20 ms frame in -dBFS (two digits a frame, clamped
# to 0..60), computed from the core sound decoded to 8 kHz 16-bit PCM (sox -t gsm).
PROMPT_ENVELOPE = (
    "606060171414151716161631383733191518262626273144522419151312121313131413141516163133342315"
    "141718181922242427353334343435354041414356606060606060606060606060606060606028201514171618"
    "181617151317284346171516161722263537272120181614141616151413141929344954211314141516203039"
    "352717142020212327343427191615172321212329181213141516213344414750464418172021211817171920"
    "171618181817293030343916131315172413153139462618161617161719181718222221191919243129342520"
    "181919202124252832333536383841435560606060"
)
PROMPT_TOLERANCE_S = 1.0
MIN_PROMPT_SPEECH_RATIO = 0.5  # webrtcvad on the recorded prompt: 0.93 on the sandbox
MIN_PROMPT_MATCH = 0.8  # envelope correlation with the prompt: 0.9x on the sandbox, other speech < 0.4
MAX_PROMPT_LAG_FRAMES = 25  # the prompt may start up to 0.5 s off the start of the leg
ENVELOPE_FLOOR_DBFS = -60
MIN_DURATION_S = 1.0
TOLERATED_FLAGS = frozenset({"playback_failed"})  # the listening copy only; the evidence is fine


@dataclass
class CanaryDeps:
    """What a canary needs; placing and cutting the call are injected (the dialer's
    `place_canary`, the AMI link's Hangup), so the watchdog does not depend on them."""

    db: Database
    clock: Clock
    store: ArchiveStore
    place: Callable[[], Awaitable[Attempt]]  # write-ahead + Originate of one canary call
    hang_up: Callable[[str], Awaitable[None]]  # best effort: cut an overdue call (attempt id)
    timeout_s: float = 40.0  # from placing the call to the ingested recording
    prompt_seconds: float = CANARY_PROMPT_SECONDS
    poll_s: float = 0.2


def judge(attempt: Attempt | None, recording: Recording | None, hash_ok: bool, prompt_seconds: float, *,
          prompt_match: float | None = None, timeout_s: float = 40.0, unrecorded_reason: str = "",
          ingest_error: str = "", hash_detail: str = "") -> tuple[bool, str]:
    """The verdict on a finished canary call (pure): (passed, reason of the first failure)."""
    if attempt is None:
        return False, "canary attempt not found"
    if attempt.state == "unknown":
        return False, f"call outcome unknown: {attempt.note or 'AMI link lost'}"
    if attempt.outcome == "failed" and (attempt.note or "").startswith("originate failed"):
        return False, attempt.note or "originate failed"
    if attempt.state != "ended":
        return False, f"call not ended within {timeout_s:g} s (state {attempt.state})"
    if attempt.outcome != "answered":
        cause = f" (cause {attempt.hangup_cause})" if attempt.hangup_cause is not None else ""
        return False, f"call not answered: {attempt.outcome or 'no outcome'}{cause}"
    if attempt.recording_name is None:
        return False, f"call not recorded: {unrecorded_reason or attempt.note or 'not bound'}"
    if recording is None:
        if ingest_error:
            return False, f"ingest failed: {ingest_error}"
        return False, f"no recording within {timeout_s:g} s"
    if not hash_ok:
        return False, hash_detail or "hash mismatch: an archived file does not re-hash to its sha256"
    if recording.duration_s <= MIN_DURATION_S:
        return False, f"recording too short: {recording.duration_s:.2f} s"
    bad_flags = [f for f in recording.flags or () if f not in TOLERATED_FLAGS]
    if bad_flags:
        return False, f"recording flagged: {', '.join(bad_flags)}"
    legs = {leg.get("leg"): leg for leg in recording.legs or ()}
    for name, what in (("rx", "the carrier's talk"), ("tx", "the canary prompt")):
        leg = legs.get(name)
        if leg is None:
            return False, f"{name} leg missing"
        if leg.get("steady_tone"):
            return False, f"{name} leg is a steady tone, not {what}"
        if not leg.get("has_signal"):
            return False, f"{name} leg silent ({what} missing; {_leg_numbers(leg)})"
    return prompt_check(legs["tx"], prompt_seconds, prompt_match)


def prompt_check(tx: Mapping[str, Any], prompt_seconds: float, match: float | None) -> tuple[bool, str]:
    """Speech check of the known prompt on the tx leg: its length, its share of speech and
    how closely its loudness envelope follows the prompt's (`match`, see `prompt_match`)."""
    duration = float(tx.get("duration_s") or 0.0)
    ratio = float(tx.get("speech_ratio") or 0.0)
    if abs(duration - prompt_seconds) > PROMPT_TOLERANCE_S:
        return False, (f"tx leg lasts {duration:.2f} s, the known prompt {prompt_seconds:.2f} s "
                       f"(± {PROMPT_TOLERANCE_S:g} s)")
    if ratio < MIN_PROMPT_SPEECH_RATIO:
        return False, (f"tx leg is {ratio:.0%} speech, the known prompt at least "
                       f"{MIN_PROMPT_SPEECH_RATIO:.0%}")
    if match is None:
        return False, "tx leg not compared with the known prompt"
    if match < MIN_PROMPT_MATCH:
        return False, (f"tx leg does not follow the known prompt (envelope match {match:.2f}, "
                       f"at least {MIN_PROMPT_MATCH:.2f})")
    return True, (f"recorded and archived; tx prompt {duration:.2f} s, {ratio:.0%} speech, "
                  f"envelope match {match:.2f}")


def prompt_envelope() -> list[int]:
    """The known prompt's envelope (dBFS per 20 ms frame)."""
    return [-int(PROMPT_ENVELOPE[i:i + 2]) for i in range(0, len(PROMPT_ENVELOPE), 2)]


def envelope(pcm: bytes, sample_rate: int) -> list[int]:
    """RMS level (dBFS, rounded, clamped to ENVELOPE_FLOOR_DBFS..0) of each 20 ms frame of
    16-bit mono little-endian PCM."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    frame = sample_rate // 50
    levels: list[int] = []
    for start in range(0, len(samples) - frame + 1, frame):
        chunk = samples[start:start + frame]
        power = sum(x * x for x in chunk) / frame
        db = 10 * math.log10(power / 32768.0 ** 2) if power > 0 else -120.0
        levels.append(max(ENVELOPE_FLOOR_DBFS, min(0, round(db))))
    return levels


def prompt_match(levels: list[int], reference: list[int] | None = None,
                 max_lag: int = MAX_PROMPT_LAG_FRAMES) -> float:
    """How closely a leg's envelope follows the prompt's: the best Pearson correlation over
    shifts of up to `max_lag` frames, over at least 80 % of the prompt; 0.0 when flat or short."""
    ref = prompt_envelope() if reference is None else reference
    need = int(len(ref) * 0.8)
    best = 0.0
    for lag in range(-max_lag, max_lag + 1):
        pairs = [(r, levels[i + lag]) for i, r in enumerate(ref) if 0 <= i + lag < len(levels)]
        if len(pairs) < need:
            continue
        best = max(best, _pearson(pairs))
    return best


def _pearson(pairs: list[tuple[int, int]]) -> float:
    n = len(pairs)
    mx = sum(a for a, _ in pairs) / n
    my = sum(b for _, b in pairs) / n
    sxy = sum((a - mx) * (b - my) for a, b in pairs)
    sxx = sum((a - mx) ** 2 for a, _ in pairs)
    syy = sum((b - my) ** 2 for _, b in pairs)
    if sxx <= 0 or syy <= 0:
        return 0.0
    return sxy / math.sqrt(sxx * syy)


def tx_prompt_match(store: ArchiveStore, recording: Recording) -> float | None:
    """Blocking: read the archived tx leg and compare its envelope with the prompt's."""
    tx = next((leg for leg in recording.legs or () if leg.get("leg") == "tx"), None)
    if tx is None or not tx.get("archive_path"):
        return None
    with store.open_read(str(tx["archive_path"])) as handle:
        data = handle.read()
    layout = parse_header(data[:HEADER_PROBE], len(data))
    if layout.channels != 1 or layout.sample_width != 2:
        return None
    pcm = data[layout.data_offset:layout.data_offset + layout.data_size]
    return prompt_match(envelope(pcm, layout.sample_rate))


def _leg_numbers(leg: Mapping[str, Any]) -> str:
    return f"{leg.get('rms_dbfs')} dBFS, {leg.get('speech_ratio')} speech"


def verify_hashes(store: ArchiveStore, recording: Recording) -> str:
    """Blocking: re-hash the archived mixed file and both legs; "" if all match, else why."""
    files: list[tuple[str, str, str, int | None]] = [
        ("mixed", recording.archive_path, recording.sha256, recording.size_bytes)]
    files += [(f"{leg.get('leg')} leg", str(leg.get("archive_path")), str(leg.get("sha256")), None)
              for leg in recording.legs or ()]
    for kind, key, sha, size in files:
        try:
            got_sha, got_size = store.hash_of(key)
        except FileNotFoundError:
            return f"archived {kind} file {key} missing"
        except Exception as exc:  # noqa: BLE001 - an unreadable archive is a failed check
            return f"archived {kind} file {key} unreadable: {exc}"
        if got_sha != sha or (size is not None and got_size != size):
            return (f"hash mismatch: archived {kind} file {key} re-hashes to {got_sha[:16]}… "
                    f"({got_size} B), stored {sha[:16]}…")
    return ""


async def run_canary(deps: CanaryDeps) -> CanaryOutcome:
    """Place a canary call, wait for its archived recording and judge it. Never raises
    (except cancellation): every failure is a failed outcome with its reason."""
    started = time.monotonic()
    attempt_id: str | None = None

    def outcome(passed: bool, reason: str) -> CanaryOutcome:
        return CanaryOutcome(passed, reason, time.monotonic() - started, attempt_id)

    try:
        attempt = await asyncio.wait_for(deps.place(), deps.timeout_s)
        attempt_id = attempt.id
        result = await _await_and_judge(deps, attempt, started)
    except asyncio.TimeoutError:
        result = outcome(False, f"originate did not return within {deps.timeout_s:g} s")
    except Exception as exc:  # noqa: BLE001 - a canary that breaks is a failed canary
        log.exception("canary crashed")
        result = outcome(False, f"canary error: {type(exc).__name__}: {exc}")
    (log.info if result.passed else log.error)(
        "canary %s in %.1f s: %s (attempt %s)", "passed" if result.passed else "FAILED",
        result.seconds, result.reason, result.attempt_id)
    return result


async def _await_and_judge(deps: CanaryDeps, attempt: Attempt, started: float) -> CanaryOutcome:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, deps.timeout_s - (time.monotonic() - started))
    recording: Recording | None = None
    unrecorded = ingest_error = ""
    current: Attempt | None = attempt
    while True:
        async with deps.db.session() as s:
            current = await repo.get_attempt(s, attempt.id)
            recording = await repo.recording_for_attempt(s, attempt.id)
            finished = recording is not None or current is None or current.state == "unknown"
            if not finished and current.state == "ended":
                if current.outcome != "answered" or current.recording_name is None:
                    finished = True
                    unrecorded = _last_detail(await repo.audit_events(s, subject=attempt.id),
                                              "bind.rejected", "reason")
                else:
                    ingest_error = _last_detail(await repo.audit_events(s, subject=attempt.id),
                                                "ingest.failed", "error")
                    finished = bool(ingest_error)
        if finished or loop.time() >= deadline:
            break
        await asyncio.sleep(deps.poll_s)
    if current is not None and current.state not in ("ended", "unknown"):
        await _hang_up(deps.hang_up, attempt.id)
    hash_detail, match = "", None
    if recording is not None:
        hash_detail = await asyncio.to_thread(verify_hashes, deps.store, recording)
        if not hash_detail:
            match = await asyncio.to_thread(tx_prompt_match, deps.store, recording)
    passed, reason = judge(current, recording, not hash_detail, deps.prompt_seconds, prompt_match=match,
                           timeout_s=deps.timeout_s, unrecorded_reason=unrecorded,
                           ingest_error=ingest_error, hash_detail=hash_detail)
    return CanaryOutcome(passed, reason, time.monotonic() - started, attempt.id)


def _last_detail(events: Iterable[Any], action: str, key: str) -> str:
    found = ""
    for event in events:
        if event.action == action:
            found = str((event.detail or {}).get(key) or action)
    return found


async def _hang_up(hang_up: Callable[[str], Awaitable[None]], attempt_id: str) -> None:
    """Best effort: a canary call still up after the timeout is cut (ChannelId = attempt id)."""
    try:
        await hang_up(attempt_id)
    except Exception as exc:  # noqa: BLE001 - the verdict matters more than the cleanup
        log.warning("could not hang up the overdue canary call %s: %s", attempt_id, exc)
