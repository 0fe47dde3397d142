"""Ingest: a closed MixMonitor recording becomes archived, hashed evidence.

For one answered attempt: wait until MixMonitor has closed the files (header sizes match
the file; a header left unwritten by a crashed PBX is repaired from the file size after a
timeout), check each leg for signal, copy the mixed file and both legs into the archive
(SHA-256 while copying, fsync, rename), then write the Recording row and its audit event
in one transaction (the ingest job marked archived in it too), and only then remove the
spool files. Re-running is safe: the
archive is content-addressed and an attempt has at most one Recording.

The signal checks (most of an ingest's CPU) are done by the `analyse` given: the service's
`AnalysisPool` (recorder/ingest_pool.py: other processes, so the event loop and every core
stay free), by default a thread. The copy into the archive runs in a thread of this process
(hashing and I/O release the GIL); the database and ledger writes are done here, in the loop.
"""
from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from recorder.archive import ArchiveStore, StoredObject
from recorder.ingest_pool import LEGS, Analysis, analyse_in_thread, read_layout
from recorder.ledger_store import Ledger
from recorder.playback import PlaybackError, make_playback_copy
from recorder.retention import add_years
from recorder.wavfile import WavError, repaired_header
from storage import repositories as repo
from storage import ingest_jobs, retention_repo
from storage.clock import Clock
from storage.db import Database
from storage.models import CANARY_CLIENT, Recording
from storage.names import end_file_name, recording_subject, spool_file_names

log = logging.getLogger("dunline.recorder")

# one call's files (kind -> path) -> what the signal checks found
Analyser = Callable[[Mapping[str, Path]], Awaitable[Analysis]]


class IngestError(RuntimeError):
    """A recording could not be ingested; the spool files are left untouched."""


@dataclass(frozen=True, slots=True)
class IngestSettings:
    spool_dir: Path  # MixMonitor's directory as this host sees it
    retention_years: int = 3
    client_retention_years: tuple[tuple[str, int], ...] = ()  # clients who keep longer
    playback_format: str = ""  # "" (none), "mp3" or "opus": a compressed copy for listening
    close_timeout_s: float = 15.0
    duration_tolerance_s: float = 1.0
    short_recording_s: float = 2.0  # shorter than this: no conversation could have happened


    canary_retention_days: int = 90  # canary calls reach no debtor: no contract period applies

    def retention_for(self, client: str) -> int:
        """The client's retention in years: never below the default (the contract's floor)."""
        return max(self.retention_years, dict(self.client_retention_years).get(client, 0))

    def retain_until(self, client: str, call_ended_at: datetime) -> datetime:
        if client == CANARY_CLIENT:
            return call_ended_at + timedelta(days=self.canary_retention_days)
        return add_years(call_ended_at, self.retention_for(client))


def spool_paths(spool_dir: Path, name: str) -> dict[str, Path]:
    """The three files MixMonitor writes for one call: mixed, rx leg, tx leg."""
    return {kind: spool_dir / file for kind, file in spool_file_names(name).items()}


def repair(path: Path) -> None:
    """Rewrite the RIFF/data sizes from the file size (a header MixMonitor never closed)."""
    layout = read_layout(path)
    off1, b1, off2, b2 = repaired_header(layout)
    with path.open("r+b") as handle:
        handle.seek(off1)
        handle.write(b1)
        handle.seek(off2)
        handle.write(b2)


async def wait_closed(paths: list[Path], timeout_s: float) -> bool:
    """True once every file's header is consistent; False after the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            if all(read_layout(p).header_consistent for p in paths):
                return True
        except (OSError, WavError):
            pass
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.2)


def _archive_files(files: Mapping[str, Path], archive: ArchiveStore, when: datetime,
                   retain_until: datetime) -> dict[str, StoredObject]:
    """Blocking: copy each file into the archive (SHA-256 while copying, fsync, rename)."""
    return {kind: archive.put(path, when, retain_until=retain_until) for kind, path in files.items()}


def _archive_playback_copy(mixed: Path, archive: ArchiveStore, when: datetime, retain_until: datetime,
                           fmt: str) -> StoredObject:
    """Blocking: encode and archive the playback copy (PlaybackError if it cannot be made)."""
    with tempfile.TemporaryDirectory(prefix="dunline-playback-") as tmp:
        copy = make_playback_copy(mixed, Path(tmp), fmt)
        return archive.put(copy, when, retain_until=retain_until, suffix=f".{fmt}")


async def hold_if_case_held(db: Database, archive: ArchiveStore, case_id: str,
                             stored: Iterable[StoredObject]) -> None:
    """A case under legal hold: its new files are held in the store at once."""
    async with db.session() as session:
        held = await retention_repo.holds_for(session, case_id=case_id, include_released=False)
    if any(h.case_id == case_id for h in held):
        for obj in stored:
            await asyncio.to_thread(archive.set_legal_hold, obj.key, True)


async def ingest_attempt(
    db: Database, archive: ArchiveStore, settings: IngestSettings, attempt_id: str, clock: Clock,
    ledger: Ledger, *, analyse: Analyser = analyse_in_thread,
) -> Recording | None:
    """Archive the recording of one ended, bound attempt; None if it has none to ingest."""
    async with db.session() as session:
        attempt = await repo.get_attempt(session, attempt_id)
        if attempt is None or attempt.recording_name is None:
            return None
        existing = await repo.recording_for_attempt(session, attempt_id)
        if existing is not None:  # archived before (a crash before its job was marked?)
            await ingest_jobs.mark_archived(session, attempt_id, clock())
            return existing
        case = await repo.get_case(session, attempt.case_id)
    files = spool_paths(settings.spool_dir, attempt.recording_name)
    missing = [p.name for p in files.values() if not p.exists()]
    if len(missing) == len(files) and attempt.bound_at is None:
        # bind never saw the file: the dialplan's MixMonitor did not open it (not loaded, spool unwritable)
        raise IngestError(f"recording did not start: attempt {attempt_id}: recording files missing: {', '.join(missing)}")
    if missing:
        raise IngestError(f"attempt {attempt_id}: recording files missing: {', '.join(missing)}")
    flags: list[str] = []
    ended_at = attempt.ended_at or clock()
    retain_until = settings.retain_until(case.client, ended_at)
    try:
        if not await wait_closed(list(files.values()), settings.close_timeout_s):
            for path in files.values():
                await asyncio.to_thread(repair, path)
            flags.append("header_repaired")
        analysis = await analyse(files)  # before anything is stored: an unusable file stores nothing
        stored = await asyncio.to_thread(_archive_files, files, archive, ended_at, retain_until)
    except WavError as exc:
        raise IngestError(f"attempt {attempt_id}: not a usable WAV recording: {exc}") from None
    duration = analysis.duration_s
    legs = {leg: dict(info) for leg, info in analysis.legs.items()}
    if settings.playback_format:
        try:
            stored["playback"] = await asyncio.to_thread(_archive_playback_copy, files["mixed"], archive,
                                                         ended_at, retain_until, settings.playback_format)
        except PlaybackError as exc:  # the evidence is archived; only the convenience copy is missing
            log.warning("no playback copy for %s: %s", attempt_id, exc)
            flags.append("playback_failed")
    for leg, info in legs.items():
        if info["steady_tone"]:
            flags.append(f"tone_only_{leg}")
        elif not info["has_signal"]:
            flags.append(f"no_signal_{leg}")
    if attempt.answered_at is not None and attempt.ended_at is not None:
        span = (attempt.ended_at - attempt.answered_at).total_seconds()
        if abs(span - duration) > settings.duration_tolerance_s + 1.0:
            flags.append("duration_mismatch")
    if duration < settings.short_recording_s:
        flags.append("short")
    for leg in LEGS:
        legs[leg].update(archive_path=stored[leg].key, sha256=stored[leg].sha256)
    mixed = stored["mixed"]
    now = clock()
    recording = Recording(
        attempt_id=attempt_id,
        case_id=attempt.case_id,
        archive_path=mixed.key,
        sha256=mixed.sha256,
        size_bytes=mixed.size_bytes,
        duration_s=round(duration, 3),
        legs=[{"leg": leg, **legs[leg]} for leg in LEGS],
        flags=flags,
        call_ended_at=ended_at,
        created_at=now,
        retain_until=retain_until,
        store=archive.name,
        playback_path=stored["playback"].key if "playback" in stored else None,
    )
    async with ledger.transaction() as session:
        await repo.add_recording(session, recording)
        entry = await ledger.append(session, actor="recorder", action="ingest",
                                    subject=recording_subject(attempt_id), detail={
                                        "case_id": attempt.case_id, "store": archive.name,
                                        "files": {kind: {"key": obj.key, "sha256": obj.sha256,
                                                         "size_bytes": obj.size_bytes}
                                                  for kind, obj in stored.items()},
                                        "duration_s": recording.duration_s, "flags": flags,
                                        "retain_until": retain_until.isoformat()})
        recording.ledger_seq = entry.seq
        await repo.update_attempt(session, attempt_id, recorded_seconds=round(duration, 3))
        await ingest_jobs.mark_archived(session, attempt_id, now)
        await repo.audit(session, at=now, actor="recorder", action="recording.ingested",
                         subject=attempt_id, case_id=attempt.case_id, sha256=mixed.sha256,
                         archive_path=mixed.key, flags=flags)
    await hold_if_case_held(db, archive, attempt.case_id, stored.values())
    for path in (*files.values(), settings.spool_dir / end_file_name(attempt.recording_name)):
        path.unlink(missing_ok=True)  # only now: the archive commit is done
    log.info("ingested %s: %.1f s, sha256 %s, flags %s", attempt_id, duration, mixed.sha256, flags)
    return recording
