"""The canary's verdict (pure): the first failed check names the reason; the speech check
of the known prompt (length, share of speech, loudness envelope) tells the prompt from
tones, silence, other speech and a truncated prompt."""
from __future__ import annotations

import math
import random
import re
import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest

from recorder.watchdog.canary import (CANARY_PROMPT, CANARY_PROMPT_SECONDS, MIN_PROMPT_MATCH, envelope, judge,
                                      prompt_envelope, prompt_match)
from storage.models import Attempt, Recording

T = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
ID = "c0" * 16
DIALPLAN = Path(__file__).resolve().parents[2] / "asterisk_conf/templates/pbx/extensions.conf"


def attempt(**kw) -> Attempt:
    values = dict(id=ID, case_id="CANARY", number="15551100000", state="ended", outcome="answered",
                  hangup_cause=16, created_at=T, answered_at=T, recording_name=ID, decision={"canary": True})
    values.update(kw)
    return Attempt(**values)


def leg(name: str, **kw) -> dict:
    values = {"leg": name, "rms_dbfs": -18.7, "speech_ratio": 0.93, "has_signal": True, "steady_tone": False,
              "duration_s": 4.92, "archive_path": f"2026/12/01/{name}.wav", "sha256": "0" * 64}
    values.update(kw)
    return values


def recording(*, flags=(), duration=4.92, rx=None, tx=None, legs=None) -> Recording:
    return Recording(attempt_id=ID, case_id="CANARY", archive_path="2026/12/01/m.wav", sha256="0" * 64,
                     size_bytes=78764, duration_s=duration, flags=list(flags),
                     legs=legs if legs is not None else [rx or leg("rx"), tx or leg("tx")],
                     call_ended_at=T, created_at=T, retain_until=T)


def verdict(a=None, r="default", *, hash_ok=True, match=0.99, **kw):
    return judge(attempt() if a is None else a, recording() if r == "default" else r, hash_ok,
                 CANARY_PROMPT_SECONDS, prompt_match=match, **kw)


def test_a_good_canary_passes():
    passed, reason = verdict()
    assert passed, reason
    assert "4.92 s" in reason and "93% speech" in reason


@pytest.mark.parametrize("a, r, kw, reason", [
    (None, None, {"hash_ok": True}, "canary attempt not found"),
    (attempt(state="unknown", outcome=None, note="originate outcome unknown: link dropped"), None, {},
     "call outcome unknown: originate outcome unknown: link dropped"),
    (attempt(outcome="failed", note="originate failed: Originate failed", answered_at=None, recording_name=None),
     None, {}, "originate failed: Originate failed"),
    (attempt(state="bound", outcome=None), None, {}, "call not ended within 40 s (state bound)"),
    (attempt(outcome="busy", hangup_cause=17, answered_at=None, recording_name=None), None, {},
     "call not answered: busy (cause 17)"),
    (attempt(outcome="no_answer", hangup_cause=None, answered_at=None, recording_name=None), None, {},
     "call not answered: no_answer"),
    (attempt(recording_name=None), None, {"unrecorded_reason": "recording did not start (no file)"},
     "call not recorded: recording did not start (no file)"),
    (attempt(), None, {}, "no recording within 40 s"),
    (attempt(), None, {"timeout_s": 12.5}, "no recording within 12.5 s"),
    (attempt(), None, {"ingest_error": "recording files missing: x.wav"},
     "ingest failed: recording files missing: x.wav"),
])
def test_the_call_itself_failed(a, r, kw, reason):
    if a is None:
        assert judge(None, None, True, CANARY_PROMPT_SECONDS) == (False, reason)
        return
    assert verdict(a, r, **kw) == (False, reason)


@pytest.mark.parametrize("r, kw, reason", [
    (recording(), {"hash_ok": False}, "hash mismatch: an archived file does not re-hash to its sha256"),
    (recording(), {"hash_ok": False, "hash_detail": "archived mixed file k missing"}, "archived mixed file k missing"),
    (recording(duration=0.8), {}, "recording too short: 0.80 s"),
    (recording(flags=["tone_only_rx"]), {}, "recording flagged: tone_only_rx"),
    (recording(flags=["no_signal_tx", "duration_mismatch"]), {}, "recording flagged: no_signal_tx, duration_mismatch"),
    (recording(flags=["header_repaired"]), {}, "recording flagged: header_repaired"),
    (recording(legs=[leg("rx")]), {}, "tx leg missing"),
    (recording(rx=leg("rx", has_signal=False, rms_dbfs=-90.0, speech_ratio=0.0)), {},
     "rx leg silent (the carrier's talk missing; -90.0 dBFS, 0.0 speech)"),
    (recording(tx=leg("tx", has_signal=False, rms_dbfs=-90.0, speech_ratio=0.0)), {},
     "tx leg silent (the canary prompt missing; -90.0 dBFS, 0.0 speech)"),
    (recording(tx=leg("tx", steady_tone=True, has_signal=False)), {}, "tx leg is a steady tone, not the canary prompt"),
    (recording(tx=leg("tx", duration_s=2.5)), {}, "tx leg lasts 2.50 s, the known prompt 4.92 s (± 1 s)"),
    (recording(tx=leg("tx", duration_s=30.0)), {}, "tx leg lasts 30.00 s, the known prompt 4.92 s (± 1 s)"),
    (recording(tx=leg("tx", speech_ratio=0.2)), {}, "tx leg is 20% speech, the known prompt at least 50%"),
    (recording(), {"match": 0.31},
     "tx leg does not follow the known prompt (envelope match 0.31, at least 0.80)"),
    (recording(), {"match": None}, "tx leg not compared with the known prompt"),
])
def test_the_recording_or_the_prompt_is_wrong(r, kw, reason):
    assert verdict(attempt(), r, **kw) == (False, reason)


def test_only_the_playback_copy_flag_is_tolerated():
    assert verdict(attempt(), recording(flags=["playback_failed"]))[0]


# -- the envelope comparison ------------------------------------------------------------

def pcm_following(levels_dbfs, rate=8000, seed=1) -> bytes:
    """Noise whose level follows an envelope (dBFS per 20 ms frame)."""
    rng = random.Random(seed)
    out = []
    for level in levels_dbfs:
        amp = 32767 * 10 ** (level / 20) * math.sqrt(3)  # uniform noise: rms = amp / sqrt(3)
        out.extend(max(-32768, min(32767, int(rng.uniform(-amp, amp)))) for _ in range(rate // 50))
    return struct.pack(f"<{len(out)}h", *out)


def tone(seconds: float, freq=1000.0, rate=8000, level=0.3) -> bytes:
    n = int(seconds * rate)
    return struct.pack(f"<{n}h", *(int(32767 * level * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))


def test_the_stored_envelope_is_the_prompt_length():
    assert len(prompt_envelope()) * 0.02 == pytest.approx(CANARY_PROMPT_SECONDS)
    assert all(-60 <= v <= 0 for v in prompt_envelope())


def test_the_dialplan_plays_the_prompt_the_canary_expects():
    text = DIALPLAN.read_text()
    assert re.search(rf"^ same => n\(canary\),Playback\({re.escape(CANARY_PROMPT)}\)$", text, re.M), \
        "the PBX dialplan and recorder/watchdog/canary.py must name the same prompt"


def test_audio_following_the_prompt_matches_even_shifted_or_at_16k():
    ref = prompt_envelope()
    assert prompt_match(envelope(pcm_following(ref), 8000)) > 0.95
    assert prompt_match(envelope(pcm_following([-60] * 10 + ref), 8000)) > 0.95  # starts 0.2 s late
    assert prompt_match(envelope(pcm_following(ref, rate=16000), 16000)) > 0.95


@pytest.mark.parametrize("make", [
    lambda ref: tone(4.92),  # a test tone
    lambda ref: b"\0" * 2 * 39360,  # silence
    lambda ref: pcm_following(ref[: len(ref) // 2]),  # the prompt cut short
    lambda ref: pcm_following(list(reversed(ref))),  # other speech with the same levels
    lambda ref: pcm_following([-60] * 60 + ref),  # the prompt 1.2 s late (not what the dialplan does)
])
def test_other_audio_does_not_match(make):
    assert prompt_match(envelope(make(prompt_envelope()), 8000)) < MIN_PROMPT_MATCH
