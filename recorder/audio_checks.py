"""Is there signal on a leg? Pure analysis of 16-bit PCM (bytes in, numbers out).

Foundation level: energy (dBFS) and the share of frames webrtcvad calls speech. The
recording-archive work adds steady-tone rejection; a tone is "speech" to VAD.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import webrtcvad

SILENCE_FLOOR_DBFS = -42.0  # Asterisk's own silence threshold (256) is about -42 dBFS


@dataclass(frozen=True, slots=True)
class LegSignal:
    rms_dbfs: float
    speech_ratio: float

    @property
    def has_signal(self) -> bool:
        return self.rms_dbfs > SILENCE_FLOOR_DBFS and self.speech_ratio > 0.05


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


def analyse_leg(pcm: bytes, sample_rate: int) -> LegSignal:
    return LegSignal(rms_dbfs=rms_dbfs(pcm), speech_ratio=speech_ratio(pcm, sample_rate))
