"""Ingest speed: seconds of call audio ingested per second of one core (× real time).

What is timed is the blocking part of ingest for one call (mixed file + two legs, 8 kHz
16-bit mono): header parse, per-leg signal analysis (energy + webrtcvad), copy into the
archive with SHA-256 and fsync. The baseline, measured in the same run on the same files,
is the floor any recorder pays: copying and hashing the three files, nothing else.
"""
from __future__ import annotations

import hashlib
import math
import shutil
import struct
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from recorder.archive import FilesystemArchive
from recorder.ingest import _archive_files, spool_paths
from recorder.ingest_pool import analyse_files

CALL_SECONDS = 120
RUNS = 3


def _write_leg(path: Path, seconds: int, freq: float) -> None:
    frames = 8000 * seconds
    samples = (int(7000 * math.sin(2 * math.pi * freq * t / 8000) * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * t / 8000)))
               for t in range(frames))
    data = struct.pack(f"<{frames}h", *samples)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
                     + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
                     + b"data" + struct.pack("<I", len(data)) + data)


def _baseline(files: dict[str, Path], dest: Path) -> None:
    for path in files.values():
        digest = hashlib.sha256()
        with path.open("rb") as src, (dest / path.name).open("wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
    shutil.rmtree(dest)
    dest.mkdir()


def _best(fn, runs: int) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spool = root / "spool"
        spool.mkdir()
        files = spool_paths(spool, "bench")
        for kind, freq in (("mixed", 220.0), ("rx", 220.0), ("tx", 180.0)):
            _write_leg(files[kind], CALL_SECONDS, freq)
        counter = iter(range(10**6))

        def ours() -> None:
            archive = FilesystemArchive(root / f"archive-{next(counter)}")
            analyse_files({kind: str(path) for kind, path in files.items()})
            _archive_files(files, archive, datetime.now(timezone.utc),
                           datetime.now(timezone.utc) + timedelta(days=1096))

        copy_dir = root / "copy"
        copy_dir.mkdir()
        base = _best(lambda: _baseline(files, copy_dir), RUNS)
        mine = _best(ours, RUNS)
    rows = [
        ("baseline: copy + SHA-256 only", base, CALL_SECONDS / base, 1.0),
        ("dunline ingest (checks + archive)", mine, CALL_SECONDS / mine, mine / base),
    ]
    print(f"ingest of one {CALL_SECONDS} s call (mixed + 2 legs), best of {RUNS}, CPU time of one core")
    print(f"{'what':<36} {'seconds':>8} {'x real time':>12} {'vs baseline':>12}")
    for name, secs, xrt, ratio in rows:
        print(f"{name:<36} {secs:>8.3f} {xrt:>11.0f}x {ratio:>11.1f}x")


if __name__ == "__main__":
    main()
