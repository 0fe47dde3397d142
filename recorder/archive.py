"""Archive stores: where evidence copies live, write-once, each with its own retention.

One small interface (`ArchiveStore`), two stores:
- `FilesystemArchive` (the default) keeps files under a dated, content-addressed layout
  `YYYY/MM/DD/<sha256>.wav`, written to a temporary name, fsynced, renamed into place and
  made read-only (0440, directories 0750: no other local user reads evidence), so a crash
  never leaves a half-written archive file. Its per-object
  retention (retain-until, legal hold) is a read-only sidecar `<key>.retention.json`.
- `recorder.s3_store.S3ObjectLockArchive`: S3 with Object Lock in compliance mode.

Both enforce the same rules at the store boundary (`RetentionError`): retention is only
ever extended, never shortened; an object is deleted only after its retain-until and
while no legal hold is on it. The database's rules (recorder.retention) come first; the
store is the last line. All methods block: call them from a thread.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Protocol

from storage.files import DIR_MODE, READ_ONLY_MODE, make_dirs

CHUNK = 1 << 20
RETENTION_SUFFIX = ".retention.json"


class RetentionError(PermissionError):
    """The store refused: retention not yet over, a legal hold, or a shortened retention."""


class ObjectMissing(FileNotFoundError):
    """No object under that key."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str  # archive-relative name
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ObjectRetention:
    retain_until: datetime  # aware UTC
    legal_hold: bool


class ArchiveStore(Protocol):
    name: str  # "fs" | "s3"

    def put(self, source: Path, when: datetime, *, retain_until: datetime,
            suffix: str = ".wav") -> StoredObject:
        """Store `source` (idempotent by content); an existing object's retention is
        extended to `retain_until` if that is later, never shortened."""
    def open_read(self, key: str) -> BinaryIO: ...
    def hash_of(self, key: str) -> tuple[str, int]:
        """SHA-256 and size of the stored bytes, read back now."""
    def exists(self, key: str) -> bool: ...
    def keys(self) -> Iterator[str]:
        """Every evidence object in the store (for finding orphans)."""
    def all_files(self) -> Iterator[str]:
        """Every file or object the store holds, whatever its name (dotfiles, retention
        records, half-written copies included): `recordings verify` accounts for each."""
    def companions(self, key: str) -> list[str]:
        """The store's own files that belong to an object (the filesystem's retention record)."""
    def retention_of(self, key: str) -> ObjectRetention: ...
    def extend_retention(self, key: str, retain_until: datetime) -> None: ...
    def set_legal_hold(self, key: str, on: bool) -> None: ...
    def delete(self, key: str, *, now: datetime) -> None:
        """Remove an object whose retention is over and which is not held."""


def sha256_stream(handle: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while block := handle.read(CHUNK):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def copy_hashing(src: BinaryIO, dst: BinaryIO) -> tuple[str, int]:
    """Copy a stream, hashing as it goes, and fsync the target: (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    while block := src.read(CHUNK):
        digest.update(block)
        dst.write(block)
        size += len(block)
    dst.flush()
    os.fsync(dst.fileno())
    return digest.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        return sha256_stream(handle)


def check_extend(current: datetime, wanted: datetime) -> datetime:
    """The retention to keep: `wanted` if later; shortening is refused."""
    if wanted < current:
        raise RetentionError(f"retention may only be extended: {wanted.isoformat()} is before "
                             f"{current.isoformat()}")
    return wanted


def check_deletable(key: str, retention: ObjectRetention, now: datetime) -> None:
    if retention.legal_hold:
        raise RetentionError(f"{key}: under legal hold")
    if now < retention.retain_until:
        raise RetentionError(f"{key}: retained until {retention.retain_until.isoformat()}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _incoming(target: Path) -> Path:
    """A temporary name beside `target`, unique to this write (two threads writing the same
    object at once must not share one)."""
    return target.with_name(f".incoming-{os.getpid()}-{uuid.uuid4().hex[:12]}-{target.name}")


_OBJECT_LOCKS = tuple(threading.Lock() for _ in range(64))  # striped: an object's path picks one


@contextmanager
def _object_lock(path: Path) -> Iterator[None]:
    """One writer of an object's file and retention at a time in this process: two calls
    with identical audio store one content-addressed file, and the second must see the
    first's retention (and only ever extend it)."""
    digest = hashlib.blake2b(str(path).encode(), digest_size=2).digest()
    with _OBJECT_LOCKS[int.from_bytes(digest, "big") % len(_OBJECT_LOCKS)]:
        yield


def _write_atomically(target: Path, data: bytes, mode: int = READ_ONLY_MODE) -> None:
    tmp = _incoming(target)
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


class FilesystemArchive:
    """A local directory of read-only, content-addressed evidence files (blocking I/O)."""

    name = "fs"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"archive key escapes the archive: {key!r}")
        return path

    def _sidecar(self, key: str) -> Path:
        path = self.path_of(key)
        return path.with_name(path.name + RETENTION_SUFFIX)

    def put(self, source: Path, when: datetime, *, retain_until: datetime,
            suffix: str = ".wav") -> StoredObject:
        """Copy `source` in (hashing while copying); idempotent for identical content."""
        day_dir = self.root / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
        make_dirs(day_dir)
        tmp = _incoming(day_dir / source.name)
        with source.open("rb") as src, tmp.open("wb") as dst:
            sha, size = copy_hashing(src, dst)
        final = day_dir / f"{sha}{suffix}"
        key = str(final.relative_to(self.root))
        with _object_lock(final):
            if final.exists():
                tmp.unlink()
                current = self.retention_of(key)
                if retain_until > current.retain_until:
                    self._write_retention(key, ObjectRetention(retain_until, current.legal_hold))
            else:
                self._write_retention(key, ObjectRetention(retain_until, False))
                os.chmod(tmp, READ_ONLY_MODE)
                os.rename(tmp, final)
                _fsync_dir(day_dir)
        return StoredObject(key=key, sha256=sha, size_bytes=size)

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.path_of(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectMissing(key) from None

    def hash_of(self, key: str) -> tuple[str, int]:
        with self.open_read(key) as handle:
            return sha256_stream(handle)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".") and not path.name.endswith(RETENTION_SUFFIX):
                yield str(path.relative_to(self.root))

    def all_files(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() or path.is_symlink():
                yield str(path.relative_to(self.root))

    def companions(self, key: str) -> list[str]:
        return [key + RETENTION_SUFFIX]

    def retention_of(self, key: str) -> ObjectRetention:
        try:
            raw = json.loads(self._sidecar(key).read_text())
        except FileNotFoundError:
            raise ObjectMissing(f"{key}: no retention record") from None
        return ObjectRetention(datetime.fromisoformat(raw["retain_until"]).astimezone(timezone.utc),
                               bool(raw["legal_hold"]))

    def _write_retention(self, key: str, retention: ObjectRetention) -> None:
        data = json.dumps({"retain_until": retention.retain_until.astimezone(timezone.utc).isoformat(),
                           "legal_hold": retention.legal_hold, "mode": "COMPLIANCE"}).encode()
        _write_atomically(self._sidecar(key), data)

    def extend_retention(self, key: str, retain_until: datetime) -> None:
        with _object_lock(self.path_of(key)):
            current = self.retention_of(key)
            self._write_retention(key, ObjectRetention(check_extend(current.retain_until, retain_until),
                                                       current.legal_hold))

    def set_legal_hold(self, key: str, on: bool) -> None:
        with _object_lock(self.path_of(key)):
            current = self.retention_of(key)
            self._write_retention(key, ObjectRetention(current.retain_until, on))

    def delete(self, key: str, *, now: datetime) -> None:
        check_deletable(key, self.retention_of(key), now)
        path = self.path_of(key)
        os.chmod(path.parent, DIR_MODE)
        path.unlink(missing_ok=True)
        self._sidecar(key).unlink(missing_ok=True)
        _fsync_dir(path.parent)


def move_aside(path: Path, graveyard: Path) -> None:
    """Keep an ingested spool file out of the way instead of deleting it outright."""
    graveyard.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), graveyard / path.name)
