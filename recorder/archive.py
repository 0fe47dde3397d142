"""Archive stores: where evidence copies live, write-once.

`FilesystemArchive` (the default) keeps files under a dated, content-addressed layout
`YYYY/MM/DD/<sha256>.wav`, written to a temporary name, fsynced, renamed into place and
made read-only, so a crash never leaves a half-written archive file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str  # archive-relative name
    sha256: str
    size_bytes: int


class ArchiveStore(Protocol):
    def put(self, source: Path, when: datetime, suffix: str = ".wav") -> StoredObject: ...
    def path_of(self, key: str) -> Path: ...


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemArchive:
    """A local directory of read-only, content-addressed evidence files (blocking I/O)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"archive key escapes the archive: {key!r}")
        return path

    def put(self, source: Path, when: datetime, suffix: str = ".wav") -> StoredObject:
        """Copy `source` in (hashing while copying); idempotent for identical content."""
        day_dir = self.root / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
        day_dir.mkdir(parents=True, exist_ok=True)
        tmp = day_dir / f".incoming-{os.getpid()}-{source.name}"
        digest = hashlib.sha256()
        size = 0
        with source.open("rb") as src, tmp.open("wb") as dst:
            while block := src.read(CHUNK):
                digest.update(block)
                dst.write(block)
                size += len(block)
            dst.flush()
            os.fsync(dst.fileno())
        sha = digest.hexdigest()
        final = day_dir / f"{sha}{suffix}"
        if final.exists():
            tmp.unlink()
        else:
            os.chmod(tmp, 0o444)
            os.rename(tmp, final)
            _fsync_dir(day_dir)
        return StoredObject(key=str(final.relative_to(self.root)), sha256=sha, size_bytes=size)


def move_aside(path: Path, graveyard: Path) -> None:
    """Keep an ingested spool file out of the way instead of deleting it outright."""
    graveyard.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), graveyard / path.name)
