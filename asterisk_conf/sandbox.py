"""The sandbox PBX: a real Asterisk 22 (Debian sid chroot), a fake carrier (a second Asterisk
in the same chroot) and baresip collector phones, all on 127.0.0.1, started and stopped here.

    info = up(state_dir, instance="demo", phones=2)   # idempotent; a few seconds from the cached image
    asterisk_rx(info, "core show channels")
    print(status(state_dir)); down(state_dir)
    kill_pbx(state_dir); start_pbx(state_dir)         # fault injection: a PBX crash and its restart
    unregister_phone(info, "6001"); register_phone(info, "6001")  # ... a phone that drops its account

Layout of a state dir: sandbox.json (0600; the SandboxInfo), secrets.json (0600),
rootfs/ (this instance's own chroot), logs/ (process output; Asterisk's logs and the carrier's
call log copied there at down), pids/, phones/<endpoint>/ (baresip config, dump/),
phones/speech.wav. Needs root, Linux, chroot, tar, zstd, baresip and (for the first image)
debootstrap: see `check_host`.
"""
from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import time
from pathlib import Path

from . import _image, _phones, _procs
from ._lifecycle import (BOOT_TIMEOUT, DEFAULT_CACHE_DIR, PBX_MODULES, READY_TIMEOUT, _contact_ok, _contacts,
                         _locked, asterisk_rx, carrier_reachable, down, load, status, up)
from ._runtime import PBX_ETC, ami_login_ok, asterisk_argv, rx, wait_for
from ._model import PhoneInfo, ProcStatus, SandboxInfo, SandboxStatus
from ._errors import SandboxError

__all__ = ["PhoneInfo", "SandboxInfo", "SandboxStatus", "ProcStatus", "SandboxError", "ensure_image", "up",
           "down", "status", "load", "asterisk_rx", "check_host", "kill_pbx", "start_pbx", "phone_command",
           "unregister_phone", "register_phone",
           "DEFAULT_CACHE_DIR"]

APT_PACKAGES = ("debootstrap", "zstd", "baresip-core", "debian-archive-keyring")


def ensure_image(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Build once (debootstrap of sid + asterisk, ~1-2 min) and cache as tar.zst; return its path.

    The installed versions are recorded next to it (pbx-rootfs-sid.json)."""
    return _image.ensure_image(Path(cache_dir))


def check_host(cache_dir: Path = DEFAULT_CACHE_DIR) -> str | None:
    """None if this host can run the sandbox; else why not, pointing to `docker compose up`."""
    hint = " Use `docker compose up` (see docker-compose.yml) instead."
    if platform.system() != "Linux":
        return "The sandbox PBX needs Linux (it runs Asterisk in a chroot)." + hint
    if os.geteuid() != 0:
        return "The sandbox PBX needs root (chroot; Asterisk then runs as the chroot's asterisk user)." + hint
    needed = {"chroot": "coreutils", "tar": "tar", "zstd": "zstd", _phones.BARESIP: "baresip-core"}
    if not _image.archive_path(Path(cache_dir)).is_file():
        needed["debootstrap"] = "debootstrap"
    missing = sorted({pkg for name, pkg in needed.items() if _image.tool(name) is None})
    if missing:
        return (f"Missing on this host: {', '.join(missing)} "
                f"(apt-get install --no-install-recommends {' '.join(missing)})." + hint)
    try:
        ok = subprocess.run(_image.chroot_cmd("/", "true"), capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return "chroot does not work on this host (a container without CAP_SYS_CHROOT?)." + hint
    return None


# --- fault injection: crash and restart the PBX (the carrier and the phones keep running) ---

def kill_pbx(state_dir: Path, *, timeout: float = 5.0) -> int:
    """SIGKILL the sandbox's PBX Asterisk (a crash: no shutdown, sockets reset), wait until it
    is gone and return its pid. Its pid file stays (status shows it DEAD) until `start_pbx`
    replaces it or `down` drops it. Only the process this sandbox started is signalled."""
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        rec = _pbx_record(state_dir)
        if rec is None or not _procs.alive(rec):
            raise SandboxError(f"the PBX of {state_dir} is not running")
        _procs._signal(rec, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _procs.alive(rec):
            if time.monotonic() > deadline:
                raise SandboxError(f"the PBX (pid {rec.pid}) survived SIGKILL for {timeout:g} s")
            time.sleep(0.02)
        _procs._kill_group_leftovers(rec)
        return rec.pid


def start_pbx(state_dir: Path) -> int:
    """Start the PBX again after `kill_pbx` (or a crash) with the same configuration, ports and
    secrets; return once it is as `up` leaves it: fully booted, its modules running, AMI login
    accepted, the carrier trunk reachable and every phone registered. Returns the new pid
    (recorded like `up`'s, so `down` stops it). A PBX still running is an error.

    The phones are not restarted: the PBX restores their registrations from its astdb, which
    it commits about a second after each change, so a PBX killed within a second of `up` may
    have lost them (the phones register again only after their `regint`, 300 s)."""
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        info = load(state_dir)
        old = _pbx_record(state_dir)
        if old is not None and _procs.alive(old):
            raise SandboxError(f"the PBX of {state_dir} is still running (pid {old.pid})")
        rootfs = info.rootfs
        rec = _procs.spawn(state_dir, "pbx", asterisk_argv(rootfs, PBX_ETC), root=os.path.realpath(rootfs),
                           cmd_marker=f"{PBX_ETC}/asterisk.conf", log_path=state_dir / "logs" / "pbx.out")
        try:
            wait_for("pbx Asterisk fully booted",
                     lambda: "fully booted" in rx(rootfs, PBX_ETC, "core waitfullybooted", timeout=5),
                     timeout=BOOT_TIMEOUT, alive=lambda: _procs.alive(rec), interval=0.05)
            loaded = rx(rootfs, PBX_ETC, "module show")
            missing = [m for m in PBX_MODULES if not re.search(rf"^{re.escape(m)}\s.*\bRunning\b", loaded, re.M)]
            if missing:
                raise SandboxError(f"pbx: modules not running: {', '.join(missing)}")
            wait_for("AMI login", lambda: ami_login_ok(info.ami_port, info.ami_username, info.ami_secret),
                     timeout=READY_TIMEOUT)
            wait_for("carrier trunk reachable from the PBX", lambda: carrier_reachable(rootfs),
                     timeout=READY_TIMEOUT)
            wait_for("every phone registered again",
                     lambda: all(_contact_ok(_contacts(rootfs), p.endpoint, p.sip_port) for p in info.phones),
                     timeout=READY_TIMEOUT)
        except BaseException:
            _procs.stop(state_dir, rec)  # never leave a half-started PBX behind
            raise
        return rec.pid


def phone_command(info: SandboxInfo, endpoint: str, command: str, params: str = "") -> str:
    """A command to one sandbox phone over its ctrl_tcp (baresip 1.0.0's menu commands)."""
    return _phones.send_command(_phone(info, endpoint).ctrl_port, command, params)


def unregister_phone(info: SandboxInfo, endpoint: str) -> None:
    """Fault injection: the phone drops its SIP account (baresip `uadel`: it unregisters)."""
    aor = _account_line(info, endpoint).split(">", 1)[0].lstrip("<").split(";", 1)[0]  # no URI parameters
    phone_command(info, endpoint, "uadel", aor)


def register_phone(info: SandboxInfo, endpoint: str) -> None:
    """The phone takes its SIP account again (`uanew` with its accounts line) and registers."""
    phone_command(info, endpoint, "uanew", _account_line(info, endpoint))


def dial_from_phone(info: SandboxInfo, endpoint: str, number: str) -> None:
    """The phone dials a number on its keypad (baresip `dial`: a call to the PBX, which puts
    it in the phones' context)."""
    phone_command(info, endpoint, "dial", number)


def _phone(info: SandboxInfo, endpoint: str) -> PhoneInfo:
    phone = next((p for p in info.phones if p.endpoint == endpoint), None)
    if phone is None:
        raise SandboxError(f"no sandbox phone {endpoint}")
    return phone


def _account_line(info: SandboxInfo, endpoint: str) -> str:
    accounts = _phone(info, endpoint).dump_dir.parent / "accounts"
    return next(line for line in accounts.read_text().splitlines() if line.startswith("<sip:"))


def _pbx_record(state_dir: Path) -> "_procs.ProcRecord | None":
    return next((r for r in _procs.records(state_dir) if r.name == "pbx"), None)
