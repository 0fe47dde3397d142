"""WAV headers, read and repaired without trusting them (pure, bytes in / values out).

MixMonitor writes the RIFF and data sizes only when it closes the file: during the call
or after a PBX crash the header says "empty" although the audio is on disk. So the
length is taken from the file size, and `repair_header` rewrites the sizes from it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_PROBE = 4096  # bytes read to find the fmt and data chunks


class WavError(ValueError):
    """The bytes are not a PCM WAV file we can read."""


@dataclass(frozen=True, slots=True)
class WavLayout:
    channels: int
    sample_rate: int
    sample_width: int  # bytes per sample
    data_offset: int  # where the audio starts
    data_size_header: int  # what the header claims
    riff_size_header: int
    file_size: int

    @property
    def data_size(self) -> int:
        """Audio bytes actually on disk (whole frames only)."""
        frame = self.channels * self.sample_width
        return (self.file_size - self.data_offset) // frame * frame

    @property
    def duration_s(self) -> float:
        return self.data_size / (self.sample_rate * self.channels * self.sample_width)

    @property
    def header_consistent(self) -> bool:
        """True when the header's sizes match the file (MixMonitor closed it)."""
        return (
            self.data_size_header == self.file_size - self.data_offset
            and self.riff_size_header == self.file_size - 8
        )


def parse_header(head: bytes, file_size: int) -> WavLayout:
    """Read the layout from the first bytes of a WAV file of `file_size` bytes."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    riff_size = struct.unpack_from("<I", head, 4)[0]
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(head):
        chunk_id = head[pos:pos + 4]
        size = struct.unpack_from("<I", head, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(head):
                raise WavError("truncated fmt chunk")
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", head, body)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            tag, channels, rate, bits = fmt
            if tag != 1 or bits not in (8, 16) or channels not in (1, 2) or rate <= 0:
                raise WavError(f"unsupported WAV format (tag {tag}, {bits} bit, {channels} ch)")
            return WavLayout(channels, rate, bits // 8, body, size, riff_size, file_size)
        pos = body + size + (size & 1)
    raise WavError("no data chunk in the header")


def repaired_header(layout: WavLayout) -> tuple[int, bytes, int, bytes]:
    """(offset, bytes) pairs that make the RIFF and data sizes match the file size."""
    riff = struct.pack("<I", layout.data_offset + layout.data_size - 8)
    data = struct.pack("<I", layout.data_size)
    return 4, riff, layout.data_offset - 4, data
