"""The sandbox image: a Debian sid chroot with Asterisk 22, built once with debootstrap and
cached machine-wide as a tar.zst; each sandbox instance unpacks its own copy (~1 s)."""
from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from ._errors import ImageError
from ._locks import file_lock

log = logging.getLogger(__name__)

ARCHIVE_NAME = "pbx-rootfs-sid.tar.zst"
META_NAME = "pbx-rootfs-sid.json"
BUILD_DIR_NAME = "rootfs-build"
SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
ROOTFS_MARKER = ".dunline-rootfs.json"
# trimmed from the image: not needed to run Asterisk (about 220 MB)
TRIM = ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/info",
        "usr/share/locale", "usr/share/lintian")


def tool(name: str) -> str | None:
    """Absolute path of a host tool; sbin dirs included (a non-login root shell may lack them)."""
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
    return shutil.which(name, path=path)


def chroot_cmd(root: Path | str, *argv: str) -> list[str]:
    return [tool("chroot") or "chroot", str(root), *argv]


def archive_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / ARCHIVE_NAME


def image_meta(cache_dir: Path) -> dict:
    """What `ensure_image` recorded about the cached image ({} if none)."""
    try:
        return json.loads((Path(cache_dir) / META_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _locked(cache_dir: Path):
    return file_lock(cache_dir / ".image.lock")


def ensure_image(cache_dir: Path) -> Path:
    """Return the cached archive, building it first (debootstrap, ~1-2 min) if missing."""
    cache_dir = Path(cache_dir)
    archive = archive_path(cache_dir)
    if archive.is_file() and image_meta(cache_dir).get("asterisk_version"):
        return archive
    with _locked(cache_dir):
        if archive.is_file() and image_meta(cache_dir).get("asterisk_version"):
            return archive
        build = cache_dir / BUILD_DIR_NAME
        started = time.monotonic()
        if not _complete_debootstrap(build):
            _debootstrap(build)
        version = _installed_versions(build)
        _trim(build)
        _pack(build, archive)
        meta = {"suite": SUITE, "packages": version, "built_at": datetime.now(timezone.utc).isoformat(),
                "asterisk_version": _asterisk_version(build), "archive": archive.name,
                "archive_bytes": archive.stat().st_size, "build_seconds": round(time.monotonic() - started, 1)}
        tmp = cache_dir / (META_NAME + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        tmp.replace(cache_dir / META_NAME)
        _remove_tree(build)
        log.info("sandbox image %s: %s", archive, meta["asterisk_version"])
        return archive


def _complete_debootstrap(build: Path) -> bool:
    """A finished debootstrap (no /debootstrap work dir left) with Asterisk installed."""
    if not (build / "usr/sbin/asterisk").exists() or (build / "debootstrap").exists():
        return False
    return all(_installed_versions(build).get(p) for p in PACKAGES)


def _debootstrap(build: Path) -> None:
    debootstrap = tool("debootstrap")
    if debootstrap is None:
        raise ImageError("debootstrap is not installed (apt-get install debootstrap)")
    _remove_tree(build)
    build.parent.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get("DUNLINE_DEBIAN_MIRROR", DEFAULT_MIRROR)
    cmd = [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    if KEYRING.exists():
        cmd.append(f"--keyring={KEYRING}")
    else:
        log.warning("no %s: debootstrap without signature check", KEYRING)
        cmd.append("--no-check-gpg")
    cmd += [SUITE, str(build), mirror]
    log.info("building the sandbox image: %s", " ".join(cmd))
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise ImageError(f"debootstrap failed (exit {proc.returncode}):\n{tail}")
    subprocess.run(chroot_cmd(build, "apt-get", "clean"), capture_output=True)


def _installed_versions(root: Path) -> dict[str, str]:
    proc = subprocess.run(chroot_cmd(root, "dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\\n",
                                      *PACKAGES), capture_output=True, text=True)
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[2].endswith("installed") and "not-installed" not in parts[2]:
            found[parts[0]] = parts[1]
    return found


def _asterisk_version(root: Path) -> str:
    proc = subprocess.run(chroot_cmd(root, "asterisk", "-V"), capture_output=True, text=True)
    version = proc.stdout.strip()
    if proc.returncode != 0 or not version.startswith("Asterisk"):
        raise ImageError(f"asterisk -V in the image failed: {proc.stdout}{proc.stderr}")
    return version


def _trim(root: Path) -> None:
    for rel in TRIM:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    _remove_tree(child)
                else:
                    child.unlink()


def _pack(root: Path, archive: Path) -> None:
    if tool("zstd") is None:
        raise ImageError("zstd is not installed (apt-get install zstd)")
    tmp = archive.with_name(archive.name + ".tmp")
    cmd = f"tar --numeric-owner --one-file-system -C {_q(root)} -cf - . | zstd -q -T0 -3 -f -o {_q(tmp)}"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ImageError(f"packing the image failed: {proc.stderr.strip()}")
    tmp.replace(archive)


def unpack(archive: Path, rootfs: Path) -> None:
    """Unpack the image into `rootfs` (must not exist or be empty)."""
    rootfs.mkdir(parents=True, exist_ok=True)
    cmd = f"zstd -q -d -c {_q(archive)} | tar --numeric-owner -C {_q(rootfs)} -xpf -"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"unpacking {archive} into {rootfs} failed: {proc.stderr.strip()}")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` (never delete a tree that has one)."""
    real = os.path.realpath(path)
    found = []
    try:
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                point = line.split()[4].replace("\\040", " ")
                if point == real or point.startswith(real.rstrip("/") + "/"):
                    found.append(point)
    except OSError:
        pass
    return found


def remove_rootfs(rootfs: Path) -> None:
    if not rootfs.exists():
        return
    mounted = mounts_under(rootfs)
    if mounted:
        raise ImageError(f"refusing to delete {rootfs}: mounted inside: {', '.join(mounted)}")
    _remove_tree(rootfs)


def _remove_tree(path: Path) -> None:
    if path.exists() or path.is_symlink():
        if mounts_under(path):
            raise ImageError(f"refusing to delete {path}: something is mounted inside")
        # --one-file-system: never cross into a mount, whatever happens
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def _q(path: Path) -> str:
    return shlex.quote(str(path))
