"""Pieces of `up`: free ports, secrets, the instance rootfs, and talking to the two Asterisks."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from . import _image
from ._errors import SandboxError

PBX_ETC = "/etc/asterisk-dunline"
CARRIER_ETC = "/etc/asterisk-carrier"
RECORDING_DIR_PBX = "/var/spool/asterisk/monitor/dunline"
CARRIER_CDR_CSV = "/var/log/asterisk-carrier/cdr-csv/Master.csv"
PBX_MESSAGES = "/var/log/asterisk/messages"
CARRIER_MESSAGES = "/var/log/asterisk-carrier/messages"
# RTP ranges, below the kernel's ephemeral range (where the free ports for SIP/AMI come from)
PBX_RTP = (20000, 24999)
CARRIER_RTP = (25000, 27999)
PHONE_RTP_BASE, PHONE_RTP_SPAN = 28000, 100        # phone i (1-based): 28000+100*(i-1) .. +99
MAX_PHONES = 40


def phone_rtp_range(index: int) -> tuple[int, int]:
    """RTP ports of phone `index` (1-based)."""
    start = PHONE_RTP_BASE + PHONE_RTP_SPAN * (index - 1)
    return start, start + PHONE_RTP_SPAN - 1


# dirs each Asterisk writes (inside the chroot), owned by the chroot's asterisk user
ASTERISK_DIRS = (
    "/var/lib/asterisk", "/var/spool/asterisk", "/var/log/asterisk", "/run/asterisk", "/var/cache/asterisk",
    RECORDING_DIR_PBX,
    "/var/lib/asterisk-carrier", "/var/spool/asterisk-carrier", "/var/log/asterisk-carrier",
    "/var/log/asterisk-carrier/cdr-csv", "/run/asterisk-carrier", "/var/cache/asterisk-carrier",
)


# --- ports and secrets -------------------------------------------------------------------

def free_ports(count: int, *, with_next: int = 0) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 for both TCP and UDP. The first `with_next`
    also have port+1 free (baresip puts SIP over TLS on sip_port+1)."""
    with ExitStack() as stack:
        held: set[int] = set()
        out: list[int] = []
        for i in range(count):
            for _ in range(200):
                port = _hold(stack, 0)
                if port is None or port in held:
                    continue
                if i < with_next:
                    if port + 1 in held or _hold(stack, port + 1) is None:
                        continue
                    held.add(port + 1)
                held.add(port)
                out.append(port)
                break
            else:
                raise SandboxError("could not find free ports on 127.0.0.1")
        return out


def _hold(stack: ExitStack, port: int) -> int | None:
    """Bind TCP (and then UDP on the same number) on 127.0.0.1; keep both until the stack closes."""
    try:
        tcp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        tcp.bind(("127.0.0.1", port))
        port = tcp.getsockname()[1]
        udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", port))
        return port
    except OSError:
        return None


def write_private(path: Path, text: str) -> None:
    """Write a file only root can read (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def load_secrets(state_dir: Path, endpoints: list[str]) -> dict:
    """AMI secret (env DUNLINE_AMI_SECRET wins) and phone passwords; generated once, kept 0600."""
    path = state_dir / "secrets.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    stored.setdefault("ami_secret", secrets.token_hex(16))
    phones = stored.setdefault("phones", {})
    for endpoint in endpoints:
        phones.setdefault(endpoint, secrets.token_hex(12))
    write_private(path, json.dumps(stored, indent=2) + "\n")
    env = os.environ.get("DUNLINE_AMI_SECRET")
    return {"ami_secret": env or stored["ami_secret"], "phones": phones}


# --- the instance rootfs -----------------------------------------------------------------

def ensure_rootfs(archive: Path, rootfs: Path) -> None:
    """Unpack the cached image into this instance's rootfs, or reuse it if it came from the same one."""
    identity = {"archive": str(archive), "size": archive.stat().st_size, "mtime": int(archive.stat().st_mtime)}
    marker = rootfs / _image.ROOTFS_MARKER
    try:
        if json.loads(marker.read_text()) == identity:
            return
    except (OSError, ValueError):
        pass
    _image.remove_rootfs(rootfs)
    _image.unpack(archive, rootfs)
    marker.write_text(json.dumps(identity) + "\n")


def chroot_run(rootfs: Path, argv: list[str], *, timeout: float = 30, check: bool = True) -> str:
    proc = subprocess.run(_image.chroot_cmd(rootfs, *argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise SandboxError(f"in the chroot, {' '.join(argv)} failed ({proc.returncode}): "
                           f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
    return proc.stdout


def prepare_rootfs(rootfs: Path, pbx_files: dict[str, str], carrier_files: dict[str, str]) -> None:
    """Host name and resolver (the DNS leak), the rendered configs, and the writable dirs."""
    etc = rootfs / "etc"
    for rel in ("etc/hosts", "etc/resolv.conf"):
        if (rootfs / rel).is_symlink():
            (rootfs / rel).unlink()
    (etc / "hosts").write_text(f"127.0.0.1\tlocalhost {socket.gethostname()}\n::1\tlocalhost ip6-localhost\n")
    (etc / "resolv.conf").write_text("# dunline sandbox: no DNS; everything is on 127.0.0.1\nnameserver 127.0.0.1\n")
    for conf_dir, files in ((PBX_ETC, pbx_files), (CARRIER_ETC, carrier_files)):
        target = rootfs / conf_dir.lstrip("/")
        if target.is_symlink():
            raise SandboxError(f"{target} is a symlink; refusing to write configs through it")
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            if old.is_file() and not old.is_symlink():
                old.unlink()
        for name, text in files.items():
            (target / name).write_text(text)
    # dirs under /var/run (-> /run) and ownership: only from inside the chroot (uid 101 there is
    # another user on the host, and /var/run is an absolute symlink)
    # files at rest: the PBX's spool, logs and state are for the asterisk user and its group only
    # (the recordings and the logs hold phone numbers and calls); the daemons run with umask 027
    script = (
        "set -e; umask 027; "
        f"for d in {' '.join(ASTERISK_DIRS)}; do mkdir -p $d; chown -R asterisk:asterisk $d; chmod 0750 $d; done; "
        "rm -f /var/lib/asterisk/astdb.sqlite3 /var/lib/asterisk-carrier/astdb.sqlite3; "
        f"chown -R root:asterisk {PBX_ETC} {CARRIER_ETC}; chmod 0750 {PBX_ETC} {CARRIER_ETC}; "
        f"chmod 0640 {PBX_ETC}/* {CARRIER_ETC}/*; chmod 0750 /var/spool/asterisk/monitor {RECORDING_DIR_PBX}; "
        "find /var/log/asterisk /var/log/asterisk-carrier /var/spool/asterisk -type f -exec chmod o-rwx {} +"
    )
    chroot_run(rootfs, ["sh", "-c", script])


def asterisk_argv(rootfs: Path, etc_dir: str) -> list[str]:
    return _image.chroot_cmd(rootfs, "/usr/sbin/asterisk", "-f", "-n", "-U", "asterisk", "-G", "asterisk",
                             "-C", f"{etc_dir}/asterisk.conf")


def rx(rootfs: Path, etc_dir: str, command: str, *, timeout: float = 10) -> str:
    """`asterisk -rx` against the instance whose config is in `etc_dir`."""
    try:
        proc = subprocess.run(_image.chroot_cmd(rootfs, "/usr/sbin/asterisk", "-C", f"{etc_dir}/asterisk.conf",
                                                 "-rx", command), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"asterisk -rx {command!r} timed out after {timeout}s") from exc
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or "Unable to connect to remote asterisk" in out:
        raise SandboxError(f"asterisk -rx {command!r} ({etc_dir}) failed: {out.strip()}")
    return proc.stdout


def wait_for(what: str, check: Callable[[], bool], *, timeout: float, alive: Callable[[], bool] = lambda: True,
             interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except SandboxError:
            pass
        if not alive():
            raise SandboxError(f"{what}: the process died")
        if time.monotonic() > deadline:
            raise SandboxError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def ami_login_ok(port: int, username: str, secret: str, timeout: float = 3.0) -> bool:
    """The AMI port accepts, greets, and takes our login."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        if not reader.readline().startswith(b"Asterisk Call Manager"):
            return False
        sock.sendall(f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\n\r\n".encode())
        reply = []
        while (line := reader.readline()) not in (b"\r\n", b""):
            reply.append(line)
        sock.sendall(b"Action: Logoff\r\n\r\n")
        return b"Response: Success\r\n" in reply


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return f"(no {path})"
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return f"--- {path} (last {len(kept)} lines)\n" + "\n".join(kept)
