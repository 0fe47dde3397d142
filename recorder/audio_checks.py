"""Is there signal on a leg? Pure analysis of 16-bit PCM (bytes in, numbers out).

Energy (dBFS), the share of frames webrtcvad calls speech, and a steady-tone check: a
pure or cadenced tone (ringback, a test tone, a stuck line) is "speech" to VAD, so a leg
whose loud frames all have the same level and the same zero-crossing rate is a tone.
"""
from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass

import webrtcvad

SILENCE_FLOOR_DBFS = -42.0  # Asterisk's own silence threshold (256) is about -42 dBFS


TONE_MAX_VARIATION = 0.08  # coefficient of variation of level and zero crossings


@dataclass(frozen=True, slots=True)
class LegSignal:
    rms_dbfs: float
    speech_ratio: float
    steady_tone: bool = False

    @property
    def has_signal(self) -> bool:
        return self.rms_dbfs > SILENCE_FLOOR_DBFS and self.speech_ratio > 0.05 and not self.steady_tone


def rms_dbfs(pcm: bytes) -> float:
    """RMS level of mono 16-bit little-endian PCM, in dB relative to full scale."""
    count = len(pcm) // 2
    if count == 0:
        return -120.0
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    power = sum(s * s for s in samples) / count
    if power <= 0:
        return -120.0
    return 10 * math.log10(power / (32768.0 ** 2))


def speech_ratio(pcm: bytes, sample_rate: int, aggressiveness: int = 2) -> float:
    """Share of 20 ms frames webrtcvad classifies as speech."""
    vad = webrtcvad.Vad(aggressiveness)
    frame_bytes = sample_rate // 50 * 2
    frames = len(pcm) // frame_bytes
    if frames == 0:
        return 0.0
    voiced = sum(
        vad.is_speech(pcm[i * frame_bytes:(i + 1) * frame_bytes], sample_rate) for i in range(frames)
    )
    return voiced / frames


def _cv(values: list[float]) -> float:
    mean = sum(values) / len(values)
    if mean <= 0:
        return 0.0
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean


def is_steady_tone(pcm: bytes, sample_rate: int, floor_dbfs: float = SILENCE_FLOOR_DBFS) -> bool:
    """True when every frame above the floor has (nearly) the same level and pitch."""
    frame = sample_rate // 50
    count = len(pcm) // 2
    samples = array("h")
    samples.frombytes(pcm[: count * 2])
    floor = 32768.0 * 10 ** (floor_dbfs / 20)
    levels: list[float] = []
    crossings: list[float] = []
    for start in range(0, count - frame + 1, frame):
        chunk = samples[start:start + frame]
        level = math.sqrt(sum(x * x for x in chunk) / frame)
        if level <= floor:
            continue
        levels.append(level)
        crossings.append(sum(1 for a, b in zip(chunk, chunk[1:]) if (a < 0) != (b < 0)))
    if len(levels) < 25:  # under half a second of sound: no verdict
        return False
    return _cv(levels) < TONE_MAX_VARIATION and _cv(crossings) < TONE_MAX_VARIATION


def analyse_leg(pcm: bytes, sample_rate: int) -> LegSignal:
    return LegSignal(rms_dbfs=rms_dbfs(pcm), speech_ratio=speech_ratio(pcm, sample_rate),
                     steady_tone=is_steady_tone(pcm, sample_rate))
