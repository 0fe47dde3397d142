"""Daemons of a sandbox: start detached, remember (pid, start time, identity), stop only our own.

A pid file is ``state_dir/pids/<name>.json``. Before signalling a pid we check that the
process still is the one we started: same kernel start time, and the expected identity (an
asterisk whose root is our rootfs, a baresip whose command line names our config dir).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProcRecord:
    name: str
    pid: int
    start_time: int          # field 22 of /proc/<pid>/stat (clock ticks since boot)
    root: str                # expected /proc/<pid>/root
    cmd_marker: str          # a string the command line must contain
    log: str


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    return [str(pid), "comm"] + raw[raw.rindex(")") + 2:].split()


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[21]) if fields else None


def is_ours(rec: ProcRecord) -> bool:
    """The pid still runs the process we started (not a reused pid, not a zombie)."""
    fields = _stat_fields(rec.pid)
    if fields is None or fields[2] in ("Z", "X") or int(fields[21]) != rec.start_time:
        return False
    try:
        root = os.readlink(f"/proc/{rec.pid}/root")
        cmdline = Path(f"/proc/{rec.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return root == rec.root and rec.cmd_marker in cmdline


def pid_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "pids"


# what the daemons create (recordings, logs with phone numbers) is for their owner and group only
DAEMON_UMASK = 0o027


def spawn(state_dir: Path, name: str, argv: list[str], *, root: str, cmd_marker: str,
          log_path: Path) -> ProcRecord:
    """Start `argv` detached (own session, stdin /dev/null, umask 027, output appended to
    `log_path`, 0640)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(log_path.parent, 0o750)
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640), "ab") as out:
        out.write(f"\n=== {time.strftime('%F %T')} start {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, umask=DAEMON_UMASK)
    rec = ProcRecord(name, proc.pid, _start_time(proc.pid) or -1, root, cmd_marker, str(log_path))
    pdir = pid_dir(state_dir)
    pdir.mkdir(parents=True, exist_ok=True)
    tmp = pdir / f"{name}.json.tmp"
    tmp.write_text(json.dumps(asdict(rec)))
    tmp.replace(pdir / f"{name}.json")
    # until `chroot` has exec'd the daemon, root and command line are not yet the final ones
    deadline = time.monotonic() + 5
    while not is_ours(rec) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return rec


def records(state_dir: Path) -> list[ProcRecord]:
    out = []
    pdir = pid_dir(state_dir)
    if not pdir.is_dir():
        return out
    for path in sorted(pdir.glob("*.json")):
        try:
            out.append(ProcRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return out


def alive(rec: ProcRecord) -> bool:
    _reap(rec.pid)
    return is_ours(rec)


def running(pid: int) -> bool:
    """The pid exists and is not a zombie (reaping it first if it is our child)."""
    _reap(pid)
    fields = _stat_fields(pid)
    return fields is not None and fields[2] not in ("Z", "X")


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def stop(state_dir: Path, rec: ProcRecord, *, grace: float = 5.0) -> bool:
    """SIGTERM our process (and its process group), SIGKILL after `grace`; drop the pid file.

    Returns True if it was running. A pid that is no longer ours is left alone."""
    was_running = False
    if alive(rec):
        was_running = True
        _signal(rec, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and alive(rec):
            time.sleep(0.05)
        if alive(rec):
            _signal(rec, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and alive(rec):
                time.sleep(0.05)
    # stragglers of its session (e.g. a shell MixMonitor started) share its process group
    _kill_group_leftovers(rec)
    if not alive(rec):
        (pid_dir(state_dir) / f"{rec.name}.json").unlink(missing_ok=True)
    return was_running


def _signal(rec: ProcRecord, sig: int) -> None:
    if not is_ours(rec):
        return
    try:
        # start_new_session made it a group leader: the group is ours alone
        if os.getpgid(rec.pid) == rec.pid:
            os.killpg(rec.pid, sig)
        else:
            os.kill(rec.pid, sig)
    except ProcessLookupError:
        pass


def _kill_group_leftovers(rec: ProcRecord) -> None:
    """Members of the session we created (sid == our pid) inside our rootfs that outlived it."""
    if rec.root == "/":
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and int(fields[5]) == rec.pid and int(entry.name) != rec.pid:
            try:
                if os.readlink(f"/proc/{entry.name}/root") == rec.root:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass
