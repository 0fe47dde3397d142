"""WAV header parsing and repair (pure)."""
import struct

import pytest

from recorder.wavfile import WavError, parse_header, repaired_header


def wav_bytes(frames: int, rate: int = 8000, channels: int = 1, sizes_written: bool = True) -> bytes:
    data = b"\x01\x00" * frames * channels
    data_size = len(data) if sizes_written else 0
    riff_size = 36 + len(data) if sizes_written else 0
    header = (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + b"fmt "
              + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
              + b"data" + struct.pack("<I", data_size))
    return header + data


def test_closed_file_is_consistent():
    raw = wav_bytes(8000)
    layout = parse_header(raw[:4096], len(raw))
    assert layout.header_consistent
    assert layout.duration_s == pytest.approx(1.0)
    assert layout.data_offset == 44


def test_open_file_length_comes_from_file_size_not_header():
    raw = wav_bytes(16000, sizes_written=False)
    layout = parse_header(raw[:4096], len(raw))
    assert not layout.header_consistent
    assert layout.duration_s == pytest.approx(2.0)


def test_repair_makes_header_consistent():
    raw = bytearray(wav_bytes(8000, sizes_written=False))
    layout = parse_header(bytes(raw[:4096]), len(raw))
    off1, b1, off2, b2 = repaired_header(layout)
    raw[off1:off1 + 4] = b1
    raw[off2:off2 + 4] = b2
    assert parse_header(bytes(raw[:4096]), len(raw)).header_consistent


def test_partial_last_frame_is_ignored():
    raw = wav_bytes(100, channels=2) + b"\x00"
    assert parse_header(raw[:4096], len(raw)).data_size == 400


@pytest.mark.parametrize("raw", [b"", b"RIFX" + b"\0" * 40, b"RIFF\0\0\0\0WAVEjunk", b"hello world" * 10])
def test_garbage_is_a_wav_error(raw):
    with pytest.raises(WavError):
        parse_header(raw, len(raw))


def test_non_pcm_is_rejected():
    raw = bytearray(wav_bytes(10))
    raw[20:22] = struct.pack("<H", 49)  # GSM
    with pytest.raises(WavError, match="unsupported"):
        parse_header(bytes(raw), len(raw))
