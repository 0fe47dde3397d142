"""`make bench-load`: one node under a full floor, measured on the sandbox (not part of `make test`).

N concurrent recorded calls, each to its own number, through the whole chain: the console's
dial API (an API token, as a script or the dialer's pacing would), the policy, the PBX, the
carrier (each call talks for `--talk` seconds from its answer, then the carrier hangs up),
the collector phones (25 baresip phones, up to 4 calls each: rung for each call, or, with
`--seats`, holding 4 collectors' seats each, waiting on the floor), the recorder and the ledger.
dunline runs as its own process (bench/load_node.py) so that /proc tells its CPU apart.

Per level (dialled in a burst: every dial posted at once; or paced: spread evenly over
`--spread` seconds; a dial refused with 503 is tried again after its Retry-After, up to 3
times, as a dialer would) it reports the calls placed / refused / answered / recorded / verified
(`recordings verify`'s report at the end), answer -> collector bridged (the PBX's own
timestamps: the debtor channel's Up and its BridgeEnter) p50 / p95 / max, the seconds of
any call's answered time missing from its recording (the channel's Up to the carrier's
hang-up request, against the recording's length), the dialing gate's closures, and
CPU-seconds per answered call for dunline (with any worker processes), the PBX, the carrier
and the phones (utime + stime from /proc). The first level is the baseline the others'
latency is compared with. Then the watchdog's idle cost at 0 / 10 000 / 100 000 recordings
of the last day (bench/watchdog_idle.py). Each call's PBX times are kept in the work
directory (`calls-<level>.json`, with --keep-work).

    python -m bench.load [--levels burst:10,burst:25,burst:100,paced:100] [--talk 60] [--spread 30]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DIR = ROOT / "var" / "bench-sandbox"
PHONES = 25  # baresip takes up to 4 calls each (call_max_calls): 100 calls at once
SEATS_PER_PHONE = 4  # --seats: each phone stands for 4 collectors waiting on the floor
CALLER_ID = "4008003000"
# 10:00 in Beijing, whatever the hour of the machine: inside the calling hours
START = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- CPU from /proc ------------------------------------------------------------------------

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds so far) of one process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and every live descendant (e.g. an ingest worker pool)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _stat(int(entry))) is not None:
            parents[int(entry)], cpu[int(entry)] = found
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


@dataclass
class CpuSnapshot:
    by_part: dict[str, float]

    @classmethod
    def take(cls, node_pid: int) -> CpuSnapshot:
        from asterisk_conf import sandbox

        parts = {"dunline": tree_cpu(node_pid), "pbx": 0.0, "carrier": 0.0, "phones": 0.0}
        for proc in sandbox.status(SANDBOX_DIR).processes:
            if proc.pid is None or not proc.alive:
                continue
            part = "phones" if proc.name.startswith("phone-") else proc.name
            if part in parts:
                parts[part] += tree_cpu(proc.pid)
        return cls(parts)

    def minus(self, before: CpuSnapshot) -> dict[str, float]:
        return {k: v - before.by_part.get(k, 0.0) for k, v in self.by_part.items()}


# -- what the PBX says happened, by its own clock --------------------------------------------

@dataclass
class CallTimes:
    up: float | None = None  # the debtor channel answered
    recording: float | None = None  # MixMonitor started on it (the AMI event MixMonitorStart)
    dialled: float | None = None  # ... bound: the dialplan rings the collector (DialBegin)
    bridged: float | None = None  # ... and entered the bridge with the collector
    hangup_request: float | None = None  # the carrier hung up
    gone: float | None = None


class PbxObserver:
    """Its own AMI login: the PBX's timestamps (timestampevents) of every attempt's channel."""

    def __init__(self, info) -> None:
        from ami.link import AmiLink

        self.link = AmiLink(info.ami_host, info.ami_port, info.ami_username, info.ami_secret, ping_interval=5.0)
        self.calls: dict[str, CallTimes] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        queue = self.link.subscribe()
        await self.link.start()
        self._task = asyncio.create_task(self._watch(queue))

    async def _watch(self, queue) -> None:
        from ami.events import BridgeEnter, DialBegin, Hangup, Newstate, UnknownEvent

        while True:
            event = await queue.get()
            if isinstance(event, UnknownEvent):
                uid, at = event.headers.get("Uniqueid", ""), event.headers.get("Timestamp")
                if uid not in self.calls or not at:
                    continue
                if event.name == "HangupRequest" and self.calls[uid].hangup_request is None:
                    self.calls[uid].hangup_request = float(at)
                elif event.name == "MixMonitorStart" and self.calls[uid].recording is None:
                    self.calls[uid].recording = float(at)
                continue
            uid = getattr(event, "uniqueid", "")
            if len(uid) != 32 or getattr(event, "pbx_at", None) is None:
                continue  # not an attempt's channel (the collectors' channels have Asterisk's ids)
            times = self.calls.setdefault(uid, CallTimes())
            if isinstance(event, Newstate) and event.channel_state == 6 and times.up is None:
                times.up = event.pbx_at
            elif isinstance(event, DialBegin) and times.dialled is None:
                times.dialled = event.pbx_at
            elif isinstance(event, BridgeEnter) and times.bridged is None:
                times.bridged = event.pbx_at
            elif isinstance(event, Hangup):
                times.gone = event.pbx_at

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.link.stop()


# -- the node and its database ---------------------------------------------------------------

@dataclass
class Node:
    process: subprocess.Popen
    base: str
    token: str
    db_path: Path
    settings_overrides: dict

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, args).fetchall()


async def prepare(work: Path, info, cases: list[tuple[str, str]], seats: bool = False) -> tuple[dict, str]:
    """The settings, the database with the cases and an API token (before the node starts)."""
    from dunline.settings import load_settings
    from dunline.wiring import open_accounts, sandbox_overrides
    from storage import repositories as repo
    from storage.clock import OffsetClock
    from storage.db import Database
    from storage.models import Case

    overrides = sandbox_overrides(info)
    overrides["database"] = {"url": f"sqlite+aiosqlite:///{work / 'dunline.db'}"}
    overrides["recording"].update(archive_dir=str(work / "archive"))
    overrides["console"] = {"port": free_port()}
    overrides["pbx"]["ring_timeout_s"] = 20
    overrides["watchdog"] = {"enabled": True}
    if seats:  # collectors wait on the floor: each of the 25 phones holds 4 seats (100 collectors' worth)
        overrides["floor"] = {"seats": True, "open_at_start": True, "seats_per_phone": SEATS_PER_PHONE}
    settings = load_settings(env={}, overrides=overrides)
    clock = OffsetClock(START)
    db = Database(settings.database.url)
    await db.migrate()
    async with db.session() as s:
        await repo.approve_caller_id(s, "bench", CALLER_ID)
        for case_id, number in cases:
            await repo.add_case(s, Case(id=case_id, client="bench", debtor_name="Debtor " + case_id,
                                        timezone="Asia/Shanghai", created_at=clock()), [repo.NewPhone(number)])
    accounts = open_accounts(settings, db, clock)
    await accounts.add_user(username="loadrunner", display_name="Load bench", role="supervisor",
                            password="Loud-floor-42-calls", by="bench")
    token = await accounts.issue_token("loadrunner", "bench-load", by="bench")
    await db.close()
    return overrides, token


async def start_node(work: Path, overrides: dict, token: str) -> Node:
    log = (work / "node.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "bench.load_node", json.dumps(overrides), START.isoformat()],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{overrides['console']['port']}"
    node = Node(process, base, token, work / "dunline.db", overrides)
    deadline = time.monotonic() + 120  # the first canary opens the gate
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the node exited ({process.returncode}); see {work / 'node.log'}")
            try:
                async with http.get(f"{base}/healthz") as response:
                    health = await response.json(content_type=None)
                    floor = health.get("floor")
                    if response.status == 200 and (floor is None or floor["ready"] == floor["seats"] > 0):
                        return node
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"the node was not ready within 120 s; see {work / 'node.log'}")


def stop_node(node: Node) -> None:
    node.process.send_signal(signal.SIGTERM)
    try:
        node.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        node.process.kill()
        node.process.wait()


# -- one level ---------------------------------------------------------------------------------

@dataclass
class LevelResult:
    name: str
    calls: int
    statuses: dict[int, int] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)
    answered: int = 0
    recorded: int = 0
    verified: int = 0
    bridge_s: list[float] = field(default_factory=list)
    bind_s: list[float] = field(default_factory=list)  # answer -> the collector rung (dunline's part)
    not_recorded_s: list[float] = field(default_factory=list)  # the recording shorter than the answered span
    start_missing_s: list[float] = field(default_factory=list)  # answer -> MixMonitor started
    gate_closures: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    dials_s: float = 0.0  # from the first dial posted to the last one answered by the API


DIAL_TRIES = 3  # a 503 (back-pressure, a busy database) is tried again after its Retry-After, as a dialer would


async def dial(http: aiohttp.ClientSession, node: Node, case_id: str, result: LevelResult) -> None:
    for _ in range(DIAL_TRIES):
        async with http.post(f"{node.base}/api/cases/{case_id}/dial",
                             headers={"Authorization": f"Bearer {node.token}"}) as response:
            result.statuses[response.status] = result.statuses.get(response.status, 0) + 1
            if response.status == 201:
                result.attempts.append((await response.json())["id"])
            if response.status != 503:
                return
            retry_after = float(response.headers.get("Retry-After", "2"))
        await asyncio.sleep(retry_after)


async def run_level(node: Node, observer: PbxObserver, name: str, case_ids: list[str], *, talk_s: int,
                    spread_s: float) -> LevelResult:
    mode = name.split(":")[0]
    result = LevelResult(name, len(case_ids))
    closures_before = node.query("SELECT count(*) FROM audit_events WHERE action = 'gate.closed'")[0][0]
    cpu_before, t0 = CpuSnapshot.take(node.process.pid), time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        if mode == "burst":
            await asyncio.gather(*(dial(http, node, case_id, result) for case_id in case_ids))
        else:
            gap = spread_s / len(case_ids)
            tasks = []
            for case_id in case_ids:
                tasks.append(asyncio.create_task(dial(http, node, case_id, result)))
                await asyncio.sleep(gap)
            await asyncio.gather(*tasks)
    result.dials_s = time.monotonic() - t0
    await wait_done(node, result.attempts, timeout_s=talk_s + spread_s + 240)
    result.wall_s = time.monotonic() - t0
    result.cpu = CpuSnapshot.take(node.process.pid).minus(cpu_before)
    result.gate_closures = node.query("SELECT count(*) FROM audit_events WHERE action = 'gate.closed'")[0][0] \
        - closures_before
    measure(node, observer, result)
    (node.db_path.parent / f"calls-{name.replace(':', '-')}.json").write_text(json.dumps(
        {a: vars(observer.calls.get(a, CallTimes())) for a in result.attempts}, indent=1))
    return result


async def wait_done(node: Node, attempts: list[str], *, timeout_s: float) -> None:
    """Until every attempt is over and every answered one archived (or the time is up)."""
    if not attempts:
        return
    marks = ",".join("?" * len(attempts))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        open_ = node.query(f"SELECT count(*) FROM attempts WHERE id IN ({marks}) "
                           "AND state NOT IN ('ended', 'unknown')", tuple(attempts))[0][0]
        waiting = node.query(f"SELECT count(*) FROM attempts a WHERE a.id IN ({marks}) AND a.recording_name IS NOT NULL "
                             "AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.attempt_id = a.id)",
                             tuple(attempts))[0][0]
        if open_ == 0 and waiting == 0:
            return
        await asyncio.sleep(1.0)
    print(f"  (not all calls over and archived within {timeout_s:.0f} s)", file=sys.stderr)


def measure(node: Node, observer: PbxObserver, result: LevelResult) -> None:
    marks = ",".join("?" * len(result.attempts)) or "''"
    rows = node.query(f"SELECT a.id, a.outcome, r.duration_s FROM attempts a LEFT JOIN recordings r "
                      f"ON r.attempt_id = a.id WHERE a.id IN ({marks})", tuple(result.attempts))
    for attempt_id, outcome, duration in rows:
        if outcome != "answered":
            continue
        result.answered += 1
        times = observer.calls.get(attempt_id, CallTimes())
        if times.up is not None and times.bridged is not None:
            result.bridge_s.append(times.bridged - times.up)
        if times.up is not None and times.dialled is not None:
            result.bind_s.append(times.dialled - times.up)
        if times.up is not None and times.recording is not None:
            result.start_missing_s.append(max(0.0, times.recording - times.up))
        if duration is not None:
            result.recorded += 1
            end = times.hangup_request or times.gone
            if times.up is not None and end is not None:
                result.not_recorded_s.append(max(0.0, (end - times.up) - duration))


async def verify(overrides: dict, results: list[LevelResult]) -> bool:
    """`recordings verify` as an auditor runs it, after the node stopped (its head is signed)."""
    from dunline.cli_archive import archive_context
    from dunline.settings import load_settings
    from recorder.verify import verify_archive
    from storage.clock import OffsetClock

    settings = load_settings(env={}, overrides=overrides)
    async with archive_context(settings, OffsetClock(START)) as ctx:
        report = await verify_archive(ctx.db, ctx.store, ctx.writing_ledger.signer.public_key, now=ctx.clock())
    named = " ".join(str(p) for p in report.problems)
    for result in results:
        result.verified = sum(1 for a in result.attempts if a not in named) if not report.ok else result.recorded
        result.verified = min(result.verified, result.recorded)
    if not report.ok:
        print(report.render(), file=sys.stderr)
    return report.ok


# -- the report ----------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def table(results: list[LevelResult], idle: dict[str, float]) -> str:
    base = pct(results[0].bridge_s, 0.95) if results else float("nan")
    lines = ["| level | dials took (s) | placed | refused (a 503 is tried again) | answered | recorded | verified | answer → bridge p50 / p95 / max (s) "
             "| p95 vs baseline | of which answer → collector rung, p95 (s) | start not recorded, max (s) | recording short of the answered time, max (s) | gate closed | CPU-s per call: dunline / PBX / carrier / phones | dunline net of its idle cost |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        placed = r.statuses.get(201, 0)
        refused = ", ".join(f"{n}×{s}" for s, n in sorted(r.statuses.items()) if s != 201) or "0"
        per_call = {k: v / r.answered for k, v in r.cpu.items()} if r.answered else {}
        p95 = pct(r.bridge_s, 0.95)
        cpu = " / ".join(f"{per_call.get(k, float('nan')):.3f}" for k in ("dunline", "pbx", "carrier", "phones"))
        # what the calls cost beyond the watchdog, pings and polls an idle node spends anyway
        idle_cpu_s = idle.get("before", 0.0) / 60.0 * r.wall_s
        net = (r.cpu.get("dunline", float("nan")) - idle_cpu_s) / r.answered if r.answered else float("nan")
        lines.append(
            f"| {r.name} | {r.dials_s:.2f} | {placed} | {refused} | {r.answered} | {r.recorded} | {r.verified} "
            f"| {pct(r.bridge_s, 0.5):.3f} / {p95:.3f} / {max(r.bridge_s, default=float('nan')):.3f} "
            f"| {p95 / base:.2f}× | {pct(r.bind_s, 0.95):.3f} | {max(r.start_missing_s, default=float('nan')):.3f} "
            f"| {max(r.not_recorded_s, default=float('nan')):.3f} | {r.gate_closures} "
            f"| {cpu} | {net:.3f} |")
    lines.append("")
    lines.append(f"dunline idle (no calls, watchdog running): {idle.get('before', float('nan')):.3f} CPU-s per "
                 f"minute before the levels, {idle.get('after', float('nan')):.3f} after them")
    return "\n".join(lines)


async def idle_cpu(node: Node, seconds: float) -> float:
    before = tree_cpu(node.process.pid)
    await asyncio.sleep(seconds)
    return (tree_cpu(node.process.pid) - before) * 60.0 / seconds


async def main_async(args: argparse.Namespace) -> int:
    from asterisk_conf import sandbox

    levels = [level.strip() for level in args.levels.split(",") if level.strip()]
    talk = args.talk
    case_plan: list[tuple[str, list[tuple[str, str]]]] = []
    n = 0
    for level in levels:
        mode, count = level.split(":")
        if mode not in ("burst", "paced"):
            raise SystemExit(f"unknown level {level!r}: burst:N or paced:N")
        cases = []
        for _ in range(int(count)):
            cases.append((f"LOAD-{n:04d}", f"155502{talk % 100:02d}{n:03d}"))
            n += 1
        case_plan.append((level, cases))
    if n > 1000:
        raise SystemExit("at most 1000 calls in one run (the carrier's numbers)")
    work = Path(tempfile.mkdtemp(prefix="bench-load-", dir=ROOT / "var"))
    print(f"sandbox: {PHONES} phones in {SANDBOX_DIR}; work files in {work}", file=sys.stderr)
    info = await asyncio.to_thread(sandbox.up, SANDBOX_DIR, instance="bench", phones=PHONES, agi_port=free_port())
    results: list[LevelResult] = []
    idle: dict[str, float] = {}
    try:
        overrides, token = await prepare(work, info, [c for _, cases in case_plan for c in cases], seats=args.seats)
        node = await start_node(work, overrides, token)
        observer = PbxObserver(info)
        await observer.start()
        try:
            idle["before"] = await idle_cpu(node, args.idle)
            for level, cases in case_plan:
                print(f"level {level}: {len(cases)} calls of {talk} s ...", file=sys.stderr)
                result = await run_level(node, observer, level, [c for c, _ in cases], talk_s=talk,
                                         spread_s=args.spread)
                results.append(result)
                print(f"  done in {result.wall_s:.0f} s", file=sys.stderr)
            idle["after"] = await idle_cpu(node, args.idle)
        finally:
            await observer.stop()
            stop_node(node)
        ok = await verify(overrides, results)
    finally:
        if not args.keep_sandbox:
            await asyncio.to_thread(sandbox.down, SANDBOX_DIR, purge=True)
    print(f"\n## Load on one node ({os.cpu_count()} cores; calls of {talk} s; paced = spread over "
          f"{args.spread:.0f} s; baseline = {levels[0]}; collectors "
          f"{'waiting on the floor (--seats)' if args.seats else 'rung for each call'})\n")
    print(table(results, idle))
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="burst:10,burst:25,burst:100,paced:100")
    parser.add_argument("--talk", type=int, default=60, help="seconds each call talks (1..99)")
    parser.add_argument("--spread", type=float, default=30.0, help="paced levels: dials spread over this many s")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured before and after")
    parser.add_argument("--no-watchdog-idle", dest="watchdog_idle", action="store_false",
                        help="skip the watchdog's idle cost at 0 / 10 000 / 100 000 recordings")
    parser.add_argument("--seats", action="store_true",
                        help="collectors wait on the floor (dialer/seats.py): answered debtors are bridged to "
                             "a waiting phone instead of ringing one")
    parser.add_argument("--keep-sandbox", action="store_true")
    parser.add_argument("--keep-work", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.talk <= 99:
        parser.error("--talk must be 1..99")
    status = asyncio.run(main_async(args))
    if args.watchdog_idle:  # the watchdog's idle cost at 0 / 10 000 / 100 000 recordings of the last day
        from bench import watchdog_idle

        print()
        watchdog_idle.main()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
