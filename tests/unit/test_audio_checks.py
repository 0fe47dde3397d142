"""Signal analysis of a leg (pure)."""
import math
import random
import struct

from recorder.audio_checks import analyse_leg, rms_dbfs


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
