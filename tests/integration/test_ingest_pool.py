"""Ingest's signal checks in a process pool (recorder/ingest_pool.py): a burst of recordings is
analysed in other processes while the event loop keeps running, a dead worker costs no
recording, and a stopped service leaves no worker process behind.

No timing thresholds: what is asserted is where the analysis ran (its pid) and that the loop
took turns while it ran (a 10 ms ticker's count moved during the analyses).
"""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from sqlalchemy import func, select

from recorder.archive import FilesystemArchive
from recorder.ingest import IngestSettings, spool_paths
from recorder.ingest_pool import AnalysisPool, analyse_in_thread
from recorder.ingest_runner import IngestRunner
from recorder.ledger_store import Ledger
from storage.durable import DurableWriter
from storage.journal import Journal
from storage.models import Recording
from tests.integration.test_durable_ingest import bound_call, hang_up, until
from tests.integration.test_ingest import write_wav

BURST = 100


class World:
    pass


@pytest.fixture
def world(fast_db, clock, tmp_path, signer):
    w = World()
    w.db, w.clock = fast_db, clock
    w.spool = tmp_path / "spool"
    w.spool.mkdir()
    w.archive = FilesystemArchive(tmp_path / "archive")
    w.writer = DurableWriter(fast_db, Journal(tmp_path / "facts.journal"), clock)
    w.ledger = Ledger(fast_db, signer, clock, checkpoint_every=50)
    w.settings = IngestSettings(spool_dir=w.spool, close_timeout_s=0.2)
    return w


def spool_files(spool: Path, attempt_id: str, template: dict[str, bytes], n: int) -> None:
    """MixMonitor's three files, copies of `template` with one sample made unique to call n
    (the archive is content-addressed: equal files would be stored once)."""
    for kind, path in spool_paths(spool, attempt_id).items():
        data = bytearray(template[kind])
        data[1000:1004] = n.to_bytes(4, "little")
        path.write_bytes(bytes(data))


def templates(tmp: Path, seconds: float) -> dict[str, bytes]:
    found = {}
    for k, kind in enumerate(("mixed", "rx", "tx")):
        write_wav(tmp / f"{kind}.wav", seconds, 6000 + 500 * k)
        found[kind] = (tmp / f"{kind}.wav").read_bytes()
    return found


def attempt(n: int) -> str:
    return f"{n:032x}"


async def worker_processes() -> set[int]:
    """This process's children that are multiprocessing workers (not the resource tracker)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if parent == me and state != "Z" and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


async def test_a_burst_is_analysed_in_other_processes_while_the_loop_keeps_ticking(world, tmp_path):
    w = world
    template = templates(tmp_path, 5.0)
    for n in range(BURST):
        await bound_call(w, attempt(n), files=False)
        spool_files(w.spool, attempt(n), template, n)
        await hang_up(w, attempt(n))
    pool = AnalysisPool(2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    seen: list[tuple[int, int]] = []  # per analysis: the pid that ran it, the loop's ticks meanwhile

    async def watched(files):
        before = ticks
        result = await pool.analyse(files)
        seen.append((result.pid, ticks - before))
        return result

    runner = IngestRunner(w.db, w.archive, w.settings, w.clock, w.ledger, w.writer, workers=4, idle_poll_s=0.05,
                          analyse=watched)
    beat = asyncio.create_task(ticker())
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: _archived(w), timeout=120)
    finally:
        task.cancel()
        beat.cancel()
        await asyncio.gather(task, beat, return_exceptions=True)
        await pool.close()
    assert runner.archived == BURST and runner.failures == 0
    pids = {pid for pid, _ in seen}
    assert os.getpid() not in pids, "no analysis ran in the event loop's process"
    assert len(pids) == 2, "both workers analysed"
    ticked = sum(1 for _, t in seen if t > 0)
    assert ticked >= BURST // 2, f"the loop ran while the analyses ran ({ticked} of {BURST} saw a tick)"
    assert not await worker_processes(), "closed: no worker left"


async def _archived(w) -> bool:
    async with w.db.session() as s:
        return await s.scalar(select(func.count()).select_from(Recording)) == BURST


async def test_the_pool_gives_what_a_thread_gives(tmp_path):
    files = spool_paths(tmp_path, attempt(1))
    write_wav(files["mixed"], 3, 7000)
    write_wav(files["rx"], 3, 7000)
    write_wav(files["tx"], 3, 0)
    pool = AnalysisPool(1)
    try:
        there = await pool.analyse(files)
    finally:
        await pool.close()
    here = await analyse_in_thread(files)
    assert (there.duration_s, there.legs) == (here.duration_s, here.legs)
    assert there.pid != os.getpid() == here.pid
    assert there.legs["tx"]["has_signal"] is False and there.legs["rx"]["has_signal"] is True


async def test_warming_up_starts_every_worker_before_the_first_call_ends(tmp_path):
    pool = AnalysisPool(2)
    try:
        assert await pool.warm() == 2
    finally:
        await pool.close()


async def test_a_dead_worker_is_replaced_and_its_analysis_tried_again(tmp_path):
    files = spool_paths(tmp_path, attempt(2))
    for k, path in enumerate(files.values()):
        write_wav(path, 60, 6000 + k)
    pool = AnalysisPool(2)
    try:
        first = await pool.analyse(files)
        running = [asyncio.create_task(pool.analyse(files)) for _ in range(3)]
        await asyncio.sleep(0)  # submitted
        os.kill(first.pid, signal.SIGKILL)  # the OOM killer, say
        results = await asyncio.gather(*running)
        assert pool.restarts == 1, "one new executor for the jobs the dead worker broke"
        assert all(r.legs == first.legs for r in results)
        assert first.pid not in {r.pid for r in results}
        after = await pool.analyse(files)
        assert after.legs == first.legs, "and the pool works on"
    finally:
        await pool.close()
    assert not await worker_processes()


async def test_the_service_ingests_in_its_pool_and_stops_it_with_no_process_left(tmp_path, clock, signer):
    from dunline.service import Service
    from dunline.settings import load_settings
    from storage.lifecycle import Event, Report, Source
    from tests.conftest import write_signing_key
    from tests.integration.fake_ami import FakeAmi

    ami = FakeAmi()
    await ami.start()
    spool = tmp_path / "spool"
    spool.mkdir()
    (tmp_path / "archive").mkdir()
    write_signing_key(signer, tmp_path / "ledger-key.pem")
    settings = load_settings(env={}, overrides={
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"},
        "ami": {"port": ami.port, "username": ami.username, "secret": ami.secret},
        "agi": {"port": unused_port()}, "console": {"port": unused_port()},
        "recording": {"archive_dir": str(tmp_path / "archive"), "dir_host": str(spool),
                      "ingest_processes": 2},
        "watchdog": {"enabled": False}})
    service = Service(settings, clock=clock)
    before = await worker_processes()
    try:
        await service.start()
        w = World()
        w.db, w.clock, w.writer, w.spool = service.db, clock, service.writer, spool
        await bound_call(w, attempt(3))
        await hang_up(w, attempt(3))
        await until(lambda: _has_recording(service.db, attempt(3)), timeout=30)
        assert await worker_processes() - before, "the analysis ran in a worker process of the service"
    finally:
        await service.stop(drain_timeout=5)
        await ami.stop()
    assert await worker_processes() == before, "the service's stop ended every worker"


async def _has_recording(db, attempt_id: str) -> bool:
    async with db.session() as s:
        return await s.scalar(select(func.count()).select_from(Recording)
                              .where(Recording.attempt_id == attempt_id)) == 1


CHILD = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from recorder.ingest import spool_paths
from recorder.ingest_pool import AnalysisPool
from tests.integration.test_ingest import write_wav

async def main():
    files = spool_paths(Path({tmp!r}), "c" * 32)
    for path in files.values():
        write_wav(path, 1, 5000)
    pool = AnalysisPool(1)  # held: a pool dropped by its owner shuts its workers down itself
    result = await pool.analyse(files)
    Path({tmp!r}, "worker.pid").write_text(str(result.pid))
    time.sleep(600)

if __name__ == "__main__":
    asyncio.run(main())
"""


async def test_a_worker_exits_when_the_service_is_killed(tmp_path):
    """SIGKILL gives the service no chance to close its pool: the worker sees its parent gone."""
    import sys

    script = tmp_path / "service.py"
    script.write_text(CHILD.format(root=str(Path(__file__).resolve().parents[2]), tmp=str(tmp_path)))
    # no pipes: a worker that outlived the child would hold them open (and wait() with them)
    child = await asyncio.create_subprocess_exec(sys.executable, str(script), stdout=asyncio.subprocess.DEVNULL)
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 60
        while not (tmp_path / "worker.pid").exists():
            assert loop.time() < deadline and child.returncode is None, "the child never analysed"
            await asyncio.sleep(0.05)
        worker = int((tmp_path / "worker.pid").read_text())
        assert _alive(worker)
    finally:
        child.kill()
        await child.wait()
    deadline = loop.time() + 30
    while _alive(worker):
        assert loop.time() < deadline, "the orphaned worker is still running"
        await asyncio.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for an init that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
