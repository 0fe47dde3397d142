"""Ingest speed, two ways.

1. Per call: seconds of call audio ingested per second of one core (× real time). What is
   timed is the blocking part of ingest for one call (mixed file + two legs, 8 kHz 16-bit
   mono): header parse, per-leg signal analysis (energy + webrtcvad), copy into the archive
   with SHA-256 and fsync. The baseline, measured in the same run on the same files, is the
   floor any recorder pays: copying and hashing the three files, nothing else.
2. Throughput: a burst of recorded calls ingested end to end by the real `IngestRunner`
   (SQLite database, signed ledger, filesystem archive), once with the signal checks in
   threads of the service's process (as before the analysis pool) and once in the pool, in
   the same run: recordings per second, CPU-seconds per recording in the service's own
   process (the event loop's, which FastAGI and AMI share) and in the pool's workers, and
   how late a 10 ms ticker on the event loop ran meanwhile (what bind and AMI events would
   wait). The workers run at nice +10, as in the service: on a machine busy with other
   work they yield to it, so their rec/s there is a floor; the CPU figures hold regardless.
"""
from __future__ import annotations

import asyncio
import hashlib
import math
import os
import resource
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from recorder.archive import FilesystemArchive
from recorder.ingest import _archive_files, spool_paths
from recorder.ingest_pool import analyse_files

CALL_SECONDS = 120
RUNS = 3
BURST = 48  # recorded calls ingested at once in the throughput case...
BURST_CALL_SECONDS = 60  # ...each this long (the measure: CPU-s per 60 s call)


def _pcm(seconds: int, freq: float) -> bytes:
    frames = 8000 * seconds
    samples = (int(7000 * math.sin(2 * math.pi * freq * t / 8000) * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * t / 8000)))
               for t in range(frames))
    return struct.pack(f"<{frames}h", *samples)


def _wav(data: bytes) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
            + b"data" + struct.pack("<I", len(data)) + data)


def _write_leg(path: Path, seconds: int, freq: float) -> None:
    path.write_bytes(_wav(_pcm(seconds, freq)))


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


def per_call() -> None:
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


# -- throughput ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Case:
    name: str
    jobs: int  # the runner's recordings at a time
    processes: int  # 0: the checks in threads of this process


@dataclass(frozen=True, slots=True)
class Outcome:
    seconds: float
    own_cpu_s: float  # the service's process: event loop, database, ledger, archive copies
    worker_cpu_s: float  # the pool's worker processes
    late_p99_ms: float
    late_max_ms: float


def cases() -> list[Case]:
    cores = os.cpu_count() or 1
    return [
        Case("1 job, checks in a thread", 1, 0),
        Case("2 jobs, checks in threads (old default)", 2, 0),
        Case(f"pool of {cores} processes, {cores} jobs", cores, cores),
        Case(f"pool of {cores} processes, {2 * cores} jobs (default)", 2 * cores, cores),
    ]


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process (all its threads) and of its children that have exited."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


async def _burst(root: Path, template: dict[str, bytes], case: Case) -> Outcome:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from recorder.ingest import IngestSettings
    from recorder.ingest_pool import AnalysisPool, analyse_in_thread
    from recorder.ingest_runner import IngestRunner
    from recorder.ledger import Signer
    from recorder.ledger_store import Ledger
    from storage import ingest_jobs
    from storage import repositories as repo
    from storage.clock import system_clock
    from storage.db import Database
    from storage.durable import DurableWriter
    from storage.journal import Journal
    from storage.models import Attempt
    from storage.models import Case as CaseRow

    shutil.rmtree(root, ignore_errors=True)
    spool = root / "spool"
    spool.mkdir(parents=True)
    db = Database(f"sqlite+aiosqlite:///{root / 'bench.db'}")
    await db.migrate()
    now = system_clock()
    names = [f"{n:032x}" for n in range(1, BURST + 1)]
    async with db.session() as s:
        await repo.add_case(s, CaseRow(id="C-B", client="cu", debtor_name="Bench", created_at=now), [])
        for n, attempt_id in enumerate(names):
            await repo.create_attempt(s, Attempt(
                id=attempt_id, case_id="C-B", number="15551100001", state="ended", outcome="answered",
                created_at=now, answered_at=now - timedelta(seconds=BURST_CALL_SECONDS), ended_at=now,
                recording_name=attempt_id))
            await ingest_jobs.make_due(s, attempt_id, now)
            for kind, path in spool_paths(spool, attempt_id).items():
                data = bytearray(template[kind])
                data[1000:1004] = n.to_bytes(4, "little")  # content-addressed: each call its own files
                path.write_bytes(bytes(data))
    pool = AnalysisPool(case.processes) if case.processes else None
    runner = IngestRunner(db, FilesystemArchive(root / "archive"), IngestSettings(spool_dir=spool), system_clock,
                          Ledger(db, Signer(Ed25519PrivateKey.generate()), system_clock, checkpoint_every=50),
                          DurableWriter(db, Journal(root / "facts.journal"), system_clock), workers=case.jobs,
                          idle_poll_s=0.05, analyse=pool.analyse if pool else analyse_in_thread)
    late: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            late.append(loop.time() - before - 0.01)

    cpu, started = _cpu(), time.perf_counter()
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(ticker())]
    try:
        while runner.archived < BURST:
            if runner.failures:
                raise RuntimeError(f"{runner.failures} ingest(s) failed")
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - started
        own = _cpu()[0] - cpu[0]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pool is not None:
            await pool.close()  # its workers exit: their CPU is counted (RUSAGE_CHILDREN)
        await db.close()
    late.sort()
    return Outcome(seconds, own, _cpu()[1] - cpu[1], 1000 * late[int(0.99 * (len(late) - 1))], 1000 * late[-1])


def throughput() -> None:
    template = {kind: _wav(_pcm(BURST_CALL_SECONDS, freq))
                for kind, freq in (("mixed", 220.0), ("rx", 220.0), ("tx", 180.0))}
    results: list[tuple[Case, Outcome]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases():
            results.append((case, asyncio.run(_burst(Path(tmp) / "run", template, case))))
    first = BURST / results[0][1].seconds
    print(f"\ningest throughput: {BURST} recorded {BURST_CALL_SECONDS} s calls due at once, end to end "
          f"(runner, SQLite, ledger, filesystem archive); {os.cpu_count()} cores")
    print(f"{'what':<44} {'seconds':>8} {'rec/s':>7} {'vs 1 job':>9} {'CPU-s/rec: service':>19} "
          f"{'workers':>8} {'loop late p99':>14} {'max':>8}")
    for case, out in results:
        rate = BURST / out.seconds
        print(f"{case.name:<44} {out.seconds:>8.2f} {rate:>7.2f} {rate / first:>8.2f}x "
              f"{out.own_cpu_s / BURST:>19.3f} {out.worker_cpu_s / BURST:>8.3f} "
              f"{out.late_p99_ms:>11.1f} ms {out.late_max_ms:>5.0f} ms")


def main() -> None:
    per_call()
    throughput()


if __name__ == "__main__":
    main()
