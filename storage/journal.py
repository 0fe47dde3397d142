"""The local journal: facts the database could not take yet, kept on disk until it can.

An append-only file of JSON lines, one record per line, each with a unique `id`. `append`
writes the line and fsyncs the file before it returns, so a record survives a crash the
moment its writer is told it was kept. `remove` rewrites the file without the records
already applied (a temporary file, fsynced, renamed over the journal, the directory
fsynced): the journal is never half-rewritten. A last line cut short by a crash (its
writer was never told it was kept) is skipped with a warning.

The file is created 0600 in a directory only its owner can enter: it holds debtors' call
facts. All methods block (a few milliseconds for the fsync); call them from a thread.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from storage.files import make_dirs

log = logging.getLogger("dunline.journal")


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: Mapping[str, Any]) -> None:
        if "id" not in record:
            raise ValueError("a journal record needs an id")
        line = (json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        with self._lock:
            make_dirs(self.path.parent)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Every complete record, in the order written."""
        with self._lock:
            return self._read()

    def _read(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for number, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s line %d: not a complete record (cut short by a crash?): skipped",
                            self.path, number)
                continue
            if isinstance(record, dict) and "id" in record:
                out.append(record)
        return out

    def remove(self, ids: Iterable[str]) -> int:
        """Drop the records with these ids; returns how many records remain."""
        gone = set(ids)
        with self._lock:
            kept = [r for r in self._read() if r["id"] not in gone]
            if not kept:
                self.path.unlink(missing_ok=True)
            else:
                tmp = self.path.with_name(self.path.name + ".rewrite")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, b"".join((json.dumps(r, sort_keys=True, separators=(",", ":"),
                                                      ensure_ascii=False) + "\n").encode() for r in kept))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            return len(kept)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
