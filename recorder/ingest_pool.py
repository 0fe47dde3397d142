"""The CPU-heavy part of ingest in other processes: every core for signal analysis, the event
loop left to the calls.

Measured (cProfile of ingest, bench/ingest_speed.py): the per-leg signal analysis is ~96 % of
an ingest's CPU (pure-Python energy and zero-crossing sums over every sample; webrtcvad itself
is C), copying into the archive with SHA-256 and fsync ~3 %. Run in a thread it holds the GIL:
ingest used one core, and the event loop (FastAGI bind, AMI events) waited behind it. So
`AnalysisPool` runs `analyse_files` in a `concurrent.futures.ProcessPoolExecutor`:

- started with 'spawn': a worker is a fresh interpreter that inherits nothing of the service
  (no event loop, no SQLAlchemy engine or aiosqlite thread, no sockets), is a child of the
  service's process and is joined by `close()` ('forkserver' would keep its server process
  until the interpreter exits);
- it gets paths and gives back plain numbers (`Analysis`); the archive store, the database and
  the ledger stay in the service's process, which does every write;
- it runs at a lower CPU priority (nice +10: the PBX and the event loop come first), ignores
  SIGINT and SIGTERM (the service drains its ingest and then closes the pool), and exits by
  itself if the service's process dies (a SIGKILLed parent would otherwise leave it blocked
  on its queue for ever);
- a worker that dies (the OOM killer) breaks a ProcessPoolExecutor for good: the pool starts a
  new one and each analysis that was in it is tried once more there.

How many recordings are ingested at a time is bounded by the ingest runner
(`recording.ingest_workers`), not here; this module only reads files.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from recorder.audio_checks import analyse_leg
from recorder.wavfile import HEADER_PROBE, WavError, WavLayout, parse_header

log = logging.getLogger("dunline.recorder")

LEGS = ("rx", "tx")  # rx: heard from the debtor; tx: sent to the debtor (the collector)
WORKER_NICE = 10
PARENT_CHECK_S = 1.0


def read_layout(path: Path) -> WavLayout:
    with path.open("rb") as handle:
        head = handle.read(HEADER_PROBE)
    return parse_header(head, path.stat().st_size)


def read_pcm(path: Path) -> tuple[WavLayout, bytes]:
    layout = read_layout(path)
    with path.open("rb") as handle:
        handle.seek(layout.data_offset)
        return layout, handle.read(layout.data_size)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the checks found in one call's files (plain data: it crosses a process boundary)."""

    duration_s: float  # the mixed file's audio
    legs: dict[str, dict[str, object]]  # per leg: rms_dbfs, speech_ratio, has_signal, steady_tone, duration_s
    pid: int  # the process that analysed them
    cpu_s: float  # CPU seconds the analysis took there


def analyse_files(paths: Mapping[str, str]) -> Analysis:
    """Blocking: the mixed file's length and each leg's signal (WavError if a file is unusable)."""
    started = time.process_time()
    mixed = read_layout(Path(paths["mixed"]))
    legs: dict[str, dict[str, object]] = {}
    for leg in LEGS:
        layout, pcm = read_pcm(Path(paths[leg]))
        if layout.channels != 1 or layout.sample_width != 2:
            raise WavError(f"{Path(paths[leg]).name}: expected 16-bit mono, got {layout.channels} channel(s) "
                           f"of {layout.sample_width * 8} bit")
        signal_ = analyse_leg(pcm, layout.sample_rate)
        legs[leg] = {
            "rms_dbfs": round(signal_.rms_dbfs, 1),
            "speech_ratio": round(signal_.speech_ratio, 3),
            "has_signal": signal_.has_signal,
            "steady_tone": signal_.steady_tone,
            "duration_s": round(layout.duration_s, 3),
        }
    return Analysis(mixed.duration_s, legs, os.getpid(), time.process_time() - started)


async def analyse_in_thread(files: Mapping[str, Path]) -> Analysis:
    """The analysis without a pool (tools and tests that ingest one recording)."""
    return await asyncio.to_thread(analyse_files, {kind: str(path) for kind, path in files.items()})


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:  # re-parented: the service is gone
            os._exit(0)


def _worker_init(parent: int, nice: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if nice:
        try:
            os.nice(nice)
        except OSError:  # not allowed here: same priority as the service
            pass


def _worker_pid(hold_s: float) -> int:
    """A worker's pid, held a moment so that the next warm-up task goes to another worker."""
    import time

    time.sleep(hold_s)
    return os.getpid()


class AnalysisPool:
    """`processes` spawned workers (default: one per core) that analyse recordings."""

    def __init__(self, processes: int | None = None, *, nice: int = WORKER_NICE) -> None:
        self.processes = processes or os.cpu_count() or 1
        if self.processes < 1:
            raise ValueError("an analysis pool needs at least one process")
        self._nice = nice
        self._executor: ProcessPoolExecutor | None = self._new()
        self.restarts = 0  # times a dead worker made the pool start again

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(os.getpid(), self._nice))

    async def warm(self) -> int:
        """Start every worker now (spawning one costs about a second of CPU: the interpreter
        and the service's modules), at service start rather than at the first calls' end.
        Returns the number of distinct workers that answered."""
        executor = self._executor
        if executor is None:
            return 0
        loop = asyncio.get_running_loop()
        pids = await asyncio.gather(*(loop.run_in_executor(executor, _worker_pid, 0.2)
                                      for _ in range(self.processes)))
        return len(set(pids))

    async def analyse(self, files: Mapping[str, Path]) -> Analysis:
        """Analyse one call's files in a worker; the event loop runs on meanwhile."""
        paths = {kind: str(path) for kind, path in files.items()}
        loop = asyncio.get_running_loop()
        for last_try in (False, True):
            executor = self._executor
            if executor is None:
                raise RuntimeError("the analysis pool is closed")
            try:
                return await loop.run_in_executor(executor, analyse_files, paths)
            except BrokenProcessPool:
                if last_try:
                    raise
                self._replace(executor)
        raise AssertionError("unreachable")

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A worker died: every analysis in that executor failed. The first to notice starts a
        new one; each tries once more there."""
        if self._executor is broken:
            log.error("an ingest analysis worker died; starting the pool again")
            self._executor = self._new()
            self.restarts += 1
            broken.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the workers (an analysis still running is let finish) and wait until they exited."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
