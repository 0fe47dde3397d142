"""The compressed playback copy: derived from the evidence copy, never replacing it.

Supervisors and complaint handlers listen in a browser; a 10-minute 8 kHz WAV is ~10 MB,
the same call as 32 kbit/s MP3 is ~2.4 MB. The copy is made with pydub (ffmpeg), stored
beside the evidence with the same retention, and named in the ledger like the evidence,
so it is verified too. Blocking: run in a thread.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from pydub import AudioSegment

FORMATS = {"mp3": ("mp3", ["-b:a", "32k"]), "opus": ("opus", ["-b:a", "24k"])}


class PlaybackError(RuntimeError):
    """The playback copy could not be made (the evidence copy is unaffected)."""


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def make_playback_copy(source: Path, target_dir: Path, fmt: str) -> Path:
    """Encode `source` (WAV) as `fmt` into `target_dir`; returns the new file."""
    if fmt not in FORMATS:
        raise PlaybackError(f"unknown playback format {fmt!r} (one of: {', '.join(FORMATS)})")
    if not ffmpeg_available():
        raise PlaybackError("ffmpeg is not installed")
    codec_format, params = FORMATS[fmt]
    target = target_dir / f"{source.stem}.playback.{fmt}"
    try:
        AudioSegment.from_wav(source).export(target, format=codec_format, parameters=params)
    except Exception as exc:  # pydub raises bare exceptions from ffmpeg failures
        target.unlink(missing_ok=True)
        raise PlaybackError(f"{source.name}: {exc}") from exc
    return target
