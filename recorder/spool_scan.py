"""What the spool tells the service after a crash, a restart or a lost FastAGI report.

The PBX's hang-up handler writes its own record of each answered call's end beside the
recording (`<attempt>.end`, storage/names.py) before it reports over FastAGI:

    v=1&attempt=<id>&token=<token>&cause=16&dialstatus=ANSWER&answered=61&start=<epoch.us>&answer=<epoch.us>&end=<epoch>

`scan_spool` (at start-up, then every few seconds) turns each such record whose attempt is
not ended yet into the lifecycle's `hung_up` report (source `spool`): a call that ended
while the service was down (or whose FastAGI report was lost) ends `answered` with its
cause and length, not `unknown`. A record without the attempt's token is refused (only the
PBX writes the spool; a forged record is audited and left for a person). Recording files
whose ended attempt has no ingest job get one (found again); spool files of a recording
already archived (a crash between the archive commit and their removal) are removed.

`parse_end_record` is pure.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl

from sqlalchemy import select

from storage import ingest_jobs
from storage.attempt_reports import FactWriter
from storage.call_tokens import CallTokens
from storage.clock import Clock
from storage.db import Database
from storage.lifecycle import Event, Report, Source, is_over
from storage.models import Attempt, IngestJob, Recording
from storage.names import END_SUFFIX, attempt_of_spool_file, end_file_name, recording_name_of

log = logging.getLogger("dunline.spool")

MAX_END_RECORD_BYTES = 4096


class EndRecordError(ValueError):
    """Not a hang-up record this service can read."""


@dataclass(frozen=True, slots=True)
class EndRecord:
    attempt_id: str
    token: str
    hangup_cause: int | None
    dial_status: str | None
    answered_seconds: float | None
    pbx_started_at: datetime | None
    pbx_answered_at: datetime | None
    pbx_ended_at: datetime | None


def _epoch(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise EndRecordError(f"not a time: {text[:40]!r}") from None


def _number(text: str | None, kind: type) -> int | float | None:
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise EndRecordError(f"not a number: {text[:40]!r}") from None


def parse_end_record(data: bytes) -> EndRecord:
    """Parse one `<attempt>.end` file (see the module docstring); EndRecordError if garbled."""
    if len(data) > MAX_END_RECORD_BYTES:
        raise EndRecordError("too long for a hang-up record")
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise EndRecordError("not ASCII") from None
    values = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False))
    if values.get("v") != "1":
        raise EndRecordError(f"unknown record version {values.get('v')!r}")
    attempt_id = values.get("attempt", "")
    if attempt_of_spool_file(end_file_name(attempt_id)) != attempt_id:
        raise EndRecordError(f"not an attempt id: {attempt_id[:40]!r}")
    return EndRecord(
        attempt_id=attempt_id, token=values.get("token", ""),
        hangup_cause=_number(values.get("cause"), int),  # type: ignore[arg-type]
        dial_status=values.get("dialstatus") or None,
        answered_seconds=_number(values.get("answered"), float),
        pbx_started_at=_epoch(values.get("start")), pbx_answered_at=_epoch(values.get("answer")),
        pbx_ended_at=_epoch(values.get("end")))


@dataclass
class ScanResult:
    reported: list[str] = field(default_factory=list)  # ends learnt from the spool
    refused: list[str] = field(default_factory=list)  # records without a valid token, or garbled
    found_again: list[str] = field(default_factory=list)  # recordings given an ingest job
    cleaned: list[str] = field(default_factory=list)  # spool files of archived recordings removed


async def scan_spool(db: Database, spool_dir: Path, writer: FactWriter, tokens: CallTokens,
                     clock: Clock) -> ScanResult:
    """One pass over the spool (see the module docstring)."""
    result = ScanResult()
    names = await asyncio.to_thread(_list, spool_dir)
    by_attempt: dict[str, list[str]] = {}
    for name in names:
        if (attempt_id := attempt_of_spool_file(name)) is not None:
            by_attempt.setdefault(attempt_id, []).append(name)
    if not by_attempt:
        return result
    async with db.session() as session:
        attempts = {a.id: a for a in (await session.scalars(
            select(Attempt).where(Attempt.id.in_(by_attempt)))).all()}
        jobs = {j.attempt_id: j for j in (await session.scalars(
            select(IngestJob).where(IngestJob.attempt_id.in_(by_attempt)))).all()}
        archived = set((await session.scalars(
            select(Recording.attempt_id).where(Recording.attempt_id.in_(by_attempt)))).all())
    for attempt_id, files in sorted(by_attempt.items()):
        attempt = attempts.get(attempt_id)
        if attempt is None:
            continue  # nobody's: the watchdog reports it as an orphan
        end_name = end_file_name(attempt_id)
        if end_name in files and not is_over(attempt.state):
            await _report_end(spool_dir / end_name, attempt_id, writer, tokens, clock, result)
        elif attempt_id in archived:
            for name in files:
                await asyncio.to_thread((spool_dir / name).unlink, True)
            result.cleaned.append(attempt_id)
        elif files == [end_name] and is_over(attempt.state) and attempt.recording_name is None:
            await asyncio.to_thread((spool_dir / end_name).unlink, True)  # a call bind refused: nothing to keep
        elif is_over(attempt.state) and attempt.recording_name is not None \
                and (job := jobs.get(attempt_id)) is not None and job.state == "recording":
            async with db.session() as session:  # its end was stored without making it due
                await ingest_jobs.make_due(session, attempt_id, clock())
            result.found_again.append(attempt_id)
        elif is_over(attempt.state) and attempt.recording_name is not None and attempt_id not in jobs:
            async with db.session() as session:
                await ingest_jobs.make_due(session, attempt_id, clock())
            result.found_again.append(attempt_id)
    if result.reported or result.found_again or result.cleaned or result.refused:
        log.info("spool scan: %d end(s) reported, %d found again, %d cleaned, %d refused",
                 len(result.reported), len(result.found_again), len(result.cleaned), len(result.refused))
    return result


async def _report_end(path: Path, attempt_id: str, writer: FactWriter, tokens: CallTokens, clock: Clock,
                      result: ScanResult) -> None:
    try:
        data = await asyncio.to_thread(path.read_bytes)
        record = parse_end_record(data)
        if record.attempt_id != attempt_id:
            raise EndRecordError(f"names attempt {record.attempt_id}, not the file's")
    except (OSError, EndRecordError) as exc:
        await _refuse(path, attempt_id, writer, f"unreadable hang-up record: {exc}", result)
        return
    if not tokens.check(attempt_id, record.token):
        await _refuse(path, attempt_id, writer, "hang-up record without the attempt's token", result)
        return
    # the end by the service's clock: now, less the record's age by the wall clock the PBX writes
    age = max(0.0, time.time() - record.pbx_ended_at.timestamp()) if record.pbx_ended_at else 0.0
    await writer.report(attempt_id, Report(
        event=Event.HUNG_UP, source=Source.SPOOL, at=clock() - timedelta(seconds=age), answered=True,
        hangup_cause=record.hangup_cause, dial_status=record.dial_status,
        answered_seconds=record.answered_seconds, pbx_started_at=record.pbx_started_at,
        recording_name=recording_name_of(attempt_id), note="end learnt from the PBX's hang-up record in the spool"))
    result.reported.append(attempt_id)


async def _refuse(path: Path, attempt_id: str, writer: FactWriter, reason: str, result: ScanResult) -> None:
    """A record that proves nothing: audited once and moved aside (kept for a person)."""
    log.error("spool: %s: %s", path.name, reason)
    await writer.audit(actor="spool", action="spool.record_refused", subject=attempt_id, file=path.name,
                       reason=reason)
    try:
        await asyncio.to_thread(path.rename, path.with_name(f".refused-{path.name}"))
    except OSError:
        pass
    result.refused.append(attempt_id)


def _list(spool_dir: Path) -> list[str]:
    try:
        return sorted(p.name for p in spool_dir.iterdir()
                      if p.name.endswith((".wav", END_SUFFIX)) and not p.name.startswith("."))
    except FileNotFoundError:
        return []

