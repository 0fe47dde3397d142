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
