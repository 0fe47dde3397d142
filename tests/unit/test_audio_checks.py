"""Signal analysis of a leg (pure)."""
import math
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.audio_checks import SILENCE_FLOOR_DBFS, analyse_leg, is_steady_tone, rms_dbfs


def pcm(samples):
    return struct.pack(f"<{len(samples)}h", *samples)


def test_digital_silence_has_no_signal():
    leg = analyse_leg(pcm([0] * 8000), 8000)
    assert not leg.has_signal
    assert leg.rms_dbfs == -120.0


def test_full_scale_square_is_zero_dbfs():
    assert abs(rms_dbfs(pcm([32767, -32767] * 100))) < 0.01


def test_low_noise_is_below_floor():
    rng = random.Random(1)
    leg = analyse_leg(pcm([rng.randint(-60, 60) for _ in range(16000)]), 8000)
    assert not leg.has_signal


def test_modulated_voice_like_signal_has_signal():
    samples = [int(8000 * math.sin(2 * math.pi * 220 * t / 8000) * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * t / 8000)))
               for t in range(16000)]
    leg = analyse_leg(pcm(samples), 8000)
    assert leg.has_signal


def tone(freq, seconds=2.0, amplitude=8000, cadence=None):
    out = []
    for t in range(int(8000 * seconds)):
        on = cadence is None or (t // int(8000 * cadence)) % 2 == 0
        out.append(int(amplitude * math.sin(2 * math.pi * freq * t / 8000)) if on else 0)
    return pcm(out)


def test_a_steady_tone_is_not_a_conversation():
    leg = analyse_leg(tone(425), 8000)
    assert leg.steady_tone and not leg.has_signal


def test_a_cadenced_ringback_is_a_tone_too():
    leg = analyse_leg(tone(425, seconds=4, cadence=1.0), 8000)
    assert leg.steady_tone and not leg.has_signal


def test_speech_like_audio_is_not_a_tone():
    rng = random.Random(7)
    samples, t = [], 0
    for _ in range(40):  # syllables: varying pitch and loudness, short pauses
        freq, amp, length = rng.uniform(120, 300), rng.uniform(2000, 12000), rng.randint(800, 2400)
        samples += [int(amp * math.sin(2 * math.pi * freq * (t + i) / 8000)) for i in range(length)]
        samples += [0] * rng.randint(0, 600)
        t += length
    assert not analyse_leg(pcm(samples), 8000).steady_tone


def test_too_little_sound_gets_no_tone_verdict():
    assert not analyse_leg(tone(425, seconds=0.3) + pcm([0] * 16000), 8000).steady_tone


# -- the vectorised checks say what the plain arithmetic says ----------------------------------

def _reference_rms_dbfs(samples: list[int]) -> float:
    if not samples:
        return -120.0
    power = sum(s * s for s in samples) / len(samples)
    return -120.0 if power <= 0 else 10 * math.log10(power / (32768.0 ** 2))


def _reference_steady_tone(samples: list[int], rate: int) -> bool:
    frame = rate // 50
    floor = 32768.0 * 10 ** (SILENCE_FLOOR_DBFS / 20)
    levels, crossings = [], []
    for start in range(0, len(samples) - frame + 1, frame):
        chunk = samples[start:start + frame]
        level = math.sqrt(sum(x * x for x in chunk) / frame)
        if level <= floor:
            continue
        levels.append(level)
        crossings.append(sum(1 for a, b in zip(chunk, chunk[1:]) if (a < 0) != (b < 0)))
    if len(levels) < 25:
        return False

    def cv(values):
        mean = sum(values) / len(values)
        return 0.0 if mean <= 0 else math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean

    return cv(levels) < 0.08 and cv(crossings) < 0.08


@st.composite
def legs(draw):
    """Silence, tones at a level, noise: in runs, as calls are made of."""
    samples: list[int] = []
    for _ in range(draw(st.integers(0, 6))):
        n = draw(st.integers(0, 3000))
        kind = draw(st.sampled_from(["silence", "tone", "noise"]))
        if kind == "silence":
            samples += [0] * n
        elif kind == "tone":
            amp, hz = draw(st.integers(0, 32767)), draw(st.sampled_from([425, 440, 1000, 2100]))
            samples += [int(amp * math.sin(2 * math.pi * hz * i / 8000)) for i in range(n)]
        else:
            samples += draw(st.lists(st.integers(-32768, 32767), min_size=n, max_size=n))
    return samples


@given(legs())
@settings(max_examples=60, deadline=None)
def test_the_vectorised_checks_agree_with_plain_arithmetic(samples):
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    assert math.isclose(rms_dbfs(pcm), _reference_rms_dbfs(samples), rel_tol=1e-12, abs_tol=1e-12)
    assert is_steady_tone(pcm, 8000) == _reference_steady_tone(samples, 8000)
