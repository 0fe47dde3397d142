"""The sandbox PBX: a real Asterisk 22 (Debian sid chroot), a fake carrier (a second Asterisk
in the same chroot) and baresip collector phones, all on 127.0.0.1, started and stopped here.

    info = up(state_dir, instance="demo", phones=2)   # idempotent; a few seconds from the cached image
    asterisk_rx(info, "core show channels")
    print(status(state_dir)); down(state_dir)

Layout of a state dir: sandbox.json (0600; the SandboxInfo), secrets.json (0600),
rootfs/ (this instance's own chroot), logs/ (process output; Asterisk's logs and the carrier's
call log copied there at down), pids/, phones/<endpoint>/ (baresip config, dump/),
phones/speech.wav. Needs root, Linux, chroot, tar, zstd, baresip and (for the first image)
debootstrap: see `check_host`.
"""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from . import _image, _phones
from ._lifecycle import DEFAULT_CACHE_DIR, asterisk_rx, down, load, status, up
from ._model import PhoneInfo, ProcStatus, SandboxInfo, SandboxStatus
from ._errors import SandboxError

__all__ = ["PhoneInfo", "SandboxInfo", "SandboxStatus", "ProcStatus", "SandboxError", "ensure_image", "up",
           "down", "status", "load", "asterisk_rx", "check_host", "DEFAULT_CACHE_DIR"]

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
