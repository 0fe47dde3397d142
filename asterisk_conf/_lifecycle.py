"""up / down / status of one sandbox instance (see sandbox.py for the public API)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

from . import _image, _phones, _procs, render
from ._model import PhoneInfo, ProcStatus, SandboxInfo, SandboxStatus
from ._errors import SandboxError
from ._locks import file_lock
from ._runtime import (CARRIER_CDR_CSV, CARRIER_ETC, CARRIER_MESSAGES, CARRIER_RTP, MAX_PHONES, PBX_ETC,
                       PBX_MESSAGES, PBX_RTP, RECORDING_DIR_PBX, ami_login_ok, asterisk_argv, ensure_rootfs,
                       free_ports, load_secrets, phone_rtp_range, prepare_rootfs, rx, tail, wait_for, write_private)

DEFAULT_CACHE_DIR = Path("/var/cache/dunline")
SUPERVISOR = "6900"
AMI_USERNAME = "dunline"
PBX_MODULES = ("chan_pjsip.so", "res_pjsip_registrar.so", "res_rtp_asterisk.so", "app_dial.so", "app_mixmonitor.so",
               "app_chanspy.so", "res_agi.so", "app_stack.so", "app_amd.so", "bridge_softmix.so",
               "res_clioriginate.so", "codec_gsm.so", "format_wav.so", "func_channel.so", "func_env.so")
CARRIER_MODULES = ("chan_pjsip.so", "cdr_csv.so", "app_playback.so", "app_echo.so")
BOOT_TIMEOUT = 30.0
READY_TIMEOUT = 20.0


def load(state_dir: Path) -> SandboxInfo:
    return SandboxInfo.from_json((Path(state_dir) / "sandbox.json").read_text())


def asterisk_rx(info: SandboxInfo, command: str, *, carrier: bool = False, timeout: float = 10) -> str:
    """`asterisk -rx` inside the chroot, against the PBX (or, carrier=True, the carrier)."""
    return rx(info.rootfs, CARRIER_ETC if carrier else PBX_ETC, command, timeout=timeout)


def _contact_ok(contacts: dict[str, str], aor: str, port: int) -> bool:
    return re.search(rf"@127\.0\.0\.1:{port}(;|$)", contacts.get(aor, "")) is not None


def _contacts(rootfs: Path, *, with_status: bool = False) -> dict[str, str]:
    out = rx(rootfs, PBX_ETC, "pjsip show contacts", timeout=5)
    if with_status:  # {aor: status} e.g. carrier -> Avail
        return {m.group(1): m.group(2) for m in re.finditer(r"Contact:\s+(\S+?)/\S+\s+\S+\s+(\S+)", out)}
    return _phones.registered_contacts(out)


def carrier_reachable(rootfs: Path) -> bool:
    """Is the carrier trunk's contact Avail? Asks the PBX to qualify it now (the trunk's own
    qualify runs only once a minute, so a just-started PBX may not have asked yet)."""
    try:
        rx(rootfs, PBX_ETC, "pjsip qualify carrier", timeout=5)
    except SandboxError:
        return False
    return _contacts(rootfs, with_status=True).get("carrier") == "Avail"


def status(state_dir: Path) -> SandboxStatus:
    """What runs (carrier, pbx, each phone: pid, alive, registered), with the stored facts."""
    state_dir = Path(state_dir).resolve()
    try:
        info = load(state_dir)
    except (OSError, ValueError, KeyError, TypeError):
        info = None
    recs = {r.name: r for r in _procs.records(state_dir)}
    names = ["carrier", "pbx"] + [f"phone-{p.endpoint}" for p in info.phones] if info else sorted(recs)
    contacts: dict[str, str] = {}
    trunk = ""
    if info and "pbx" in recs and _procs.alive(recs["pbx"]):
        try:
            contacts = _contacts(info.rootfs)
            trunk = _contacts(info.rootfs, with_status=True).get("carrier", "")
        except SandboxError:
            pass
    procs = []
    for name in names:
        rec = recs.get(name)
        alive = rec is not None and _procs.alive(rec)
        detail = ""
        if info and name.startswith("phone-"):
            phone = next(p for p in info.phones if f"phone-{p.endpoint}" == name)
            registered = _contact_ok(contacts, phone.endpoint, phone.sip_port)
            detail = "registered" if registered else "unregistered"
            alive = alive and registered
        elif info and name == "pbx" and alive:
            detail = f"trunk {trunk or 'unknown'}"
        procs.append(ProcStatus(name, rec.pid if rec else None, alive, detail))
    return SandboxStatus(state_dir, info, tuple(procs))


def _matches(info: SandboxInfo, instance: str, phones: int, agi_port: int | None) -> bool:
    env_secret = os.environ.get("DUNLINE_AMI_SECRET")
    return (info.instance == instance and len(info.phones) == phones
            and (agi_port is None or info.agi_port == agi_port)
            and (env_secret is None or env_secret == info.ami_secret))


def _locked(state_dir: Path):
    """One up/down at a time per state dir."""
    return file_lock(state_dir / ".lock")


def up(state_dir: Path, *, instance: str = "demo", phones: int = 2, agi_port: int | None = None,
       cache_dir: Path = DEFAULT_CACHE_DIR) -> SandboxInfo:
    """Start carrier, PBX and phones; return once all are ready. Idempotent: a running sandbox
    with the same parameters is returned as is; anything else left in `state_dir` is stopped
    and started afresh. On failure everything started is stopped again."""
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root (chroot)")
    if not 0 <= phones <= MAX_PHONES:
        raise ValueError(f"phones must be 0..{MAX_PHONES}")
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        return _up(state_dir, instance, phones, agi_port, Path(cache_dir))


def _up(state_dir: Path, instance: str, phones: int, agi_port: int | None, cache_dir: Path) -> SandboxInfo:
    current = status(state_dir)
    if current.running and current.info and _matches(current.info, instance, phones, agi_port):
        return current.info
    _down(state_dir)
    (state_dir / "sandbox.json").unlink(missing_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    archive = _image.ensure_image(cache_dir)
    rootfs = state_dir / "rootfs"
    ensure_rootfs(archive, rootfs)
    try:
        info = _start(state_dir, rootfs, instance, phones, agi_port, _image.image_meta(cache_dir))
    except BaseException as exc:
        diagnostics = _diagnostics(state_dir, rootfs)
        _down(state_dir)
        if isinstance(exc, SandboxError):
            raise SandboxError(f"sandbox up failed: {exc}\n{diagnostics}") from exc
        raise
    write_private(state_dir / "sandbox.json", info.to_json())
    return info


def _start(state_dir: Path, rootfs: Path, instance: str, n_phones: int, agi_port: int | None,
           meta: dict) -> SandboxInfo:
    endpoints = [str(6000 + i) for i in range(1, n_phones + 1)]
    creds = load_secrets(state_dir, endpoints + [SUPERVISOR])
    ports = free_ports(n_phones * 2 + 4, with_next=n_phones)
    phone_sip, ctrl = ports[:n_phones], ports[n_phones:2 * n_phones]
    ami_port, pbx_sip, carrier_sip, free_agi = ports[2 * n_phones:]
    phones_dir = state_dir / "phones"
    phones = tuple(PhoneInfo(e, phone_sip[i], ctrl[i], phones_dir / e / "dump") for i, e in enumerate(endpoints))
    info = SandboxInfo(
        instance=instance, state_dir=state_dir, rootfs=rootfs, ami_host="127.0.0.1", ami_port=ami_port,
        ami_username=AMI_USERNAME, ami_secret=creds["ami_secret"], pbx_sip_port=pbx_sip,
        carrier_sip_port=carrier_sip, agi_port=agi_port or free_agi, phones=phones,
        recording_dir_pbx=RECORDING_DIR_PBX, recording_dir_host=rootfs / RECORDING_DIR_PBX.lstrip("/"),
        carrier_call_log=rootfs / CARRIER_CDR_CSV.lstrip("/"),
        asterisk_version=meta.get("asterisk_version", "Asterisk (version unknown)"),
        baresip_version=_phones.baresip_version())
    accounts = tuple(render.PhoneAccount(e, creds["phones"][e]) for e in endpoints + [SUPERVISOR])
    pbx_files = render.render_set("pbx", render.pbx_values(
        ami_port=ami_port, ami_secret=info.ami_secret, ami_username=AMI_USERNAME, pbx_sip_port=pbx_sip,
        carrier_sip_port=carrier_sip, agi_port=info.agi_port, phones=accounts,
        rtp_start=PBX_RTP[0], rtp_end=PBX_RTP[1], etc_dir=PBX_ETC, recording_dir=RECORDING_DIR_PBX))
    carrier_files = render.render_set("carrier", render.carrier_values(
        carrier_sip_port=carrier_sip, pbx_sip_port=pbx_sip, rtp_start=CARRIER_RTP[0], rtp_end=CARRIER_RTP[1],
        etc_dir=CARRIER_ETC))
    prepare_rootfs(rootfs, pbx_files, carrier_files)
    _rotate_call_log(state_dir, info.carrier_call_log)

    for name, etc, modules in (("carrier", CARRIER_ETC, CARRIER_MODULES), ("pbx", PBX_ETC, PBX_MODULES)):
        rec = _procs.spawn(state_dir, name, asterisk_argv(rootfs, etc), root=os.path.realpath(rootfs),
                           cmd_marker=f"{etc}/asterisk.conf", log_path=state_dir / "logs" / f"{name}.out")
        wait_for(f"{name} Asterisk fully booted",
                 lambda etc=etc: "fully booted" in rx(rootfs, etc, "core waitfullybooted", timeout=5),
                 timeout=BOOT_TIMEOUT, alive=lambda rec=rec: _procs.alive(rec), interval=0.05)
        loaded = rx(rootfs, etc, "module show")
        missing = [m for m in modules if not re.search(rf"^{re.escape(m)}\s.*\bRunning\b", loaded, re.M)]
        if missing:
            raise SandboxError(f"{name}: modules not running: {', '.join(missing)}")
    wait_for("AMI login", lambda: ami_login_ok(ami_port, AMI_USERNAME, info.ami_secret), timeout=READY_TIMEOUT)
    wait_for("carrier trunk reachable from the PBX", lambda: carrier_reachable(rootfs), timeout=READY_TIMEOUT)
    if not phones:
        return info
    speech = phones_dir / "speech.wav"
    _phones.make_speech_wav(rootfs, lambda src, dst: rx(rootfs, PBX_ETC, f"file convert {src} {dst}"), speech)
    recs = {}
    for index, phone in enumerate(phones, 1):
        rtp_start, rtp_end = phone_rtp_range(index)
        phone_dir = phones_dir / phone.endpoint
        _phones.write_config(phone_dir, render.phone_values(
            endpoint=phone.endpoint, password=creds["phones"][phone.endpoint], sip_port=phone.sip_port,
            ctrl_port=phone.ctrl_port, pbx_sip_port=pbx_sip, rtp_start=rtp_start, rtp_end=rtp_end,
            speech_wav=str(speech), dump_dir=str(phone.dump_dir)))
        recs[phone] = _procs.spawn(state_dir, f"phone-{phone.endpoint}", _phones.argv(phone_dir), root="/",
                                   cmd_marker=f" -f {phone_dir}",
                                   log_path=state_dir / "logs" / f"phone-{phone.endpoint}.out")

    def all_registered() -> bool:
        contacts = _contacts(rootfs)
        return all(_contact_ok(contacts, p.endpoint, p.sip_port) for p in phones)

    wait_for("every phone registered", all_registered, timeout=READY_TIMEOUT,
             alive=lambda: all(_procs.alive(r) for r in recs.values()))
    return info


def _rotate_call_log(state_dir: Path, call_log: Path) -> None:
    """A fresh carrier call log per `up` (a reused rootfs keeps the old one in logs/)."""
    if call_log.is_file() and not call_log.is_symlink():
        logs = state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        shutil.move(str(call_log), logs / f"carrier-Master-{time.strftime('%Y%m%dT%H%M%S')}.csv")


def _diagnostics(state_dir: Path, rootfs: Path) -> str:
    recs = sorted(_procs.records(state_dir), key=_procs.alive)  # dead ones first
    parts = ["processes: " + ", ".join(f"{r.name} {'alive' if _procs.alive(r) else 'DEAD'}" for r in recs)]
    parts += [tail(Path(r.log), 15) for r in recs]
    parts += [tail(rootfs / PBX_MESSAGES.lstrip("/"), 15), tail(rootfs / CARRIER_MESSAGES.lstrip("/"), 10)]
    return "\n".join(parts)


def down(state_dir: Path, *, purge: bool = False) -> None:
    """Stop every process this sandbox started (pids checked to be ours), copy the Asterisk logs
    and the carrier's call log into logs/, keep everything else (purge=True: delete the rootfs).
    Nothing is mounted by the sandbox, so nothing is unmounted. Idempotent."""
    state_dir = Path(state_dir).resolve()
    if not state_dir.exists():
        return
    with _locked(state_dir):
        _down(state_dir, purge=purge)


def _down(state_dir: Path, *, purge: bool = False) -> None:
    order = {"carrier": 2, "pbx": 1}
    for rec in sorted(_procs.records(state_dir), key=lambda r: order.get(r.name, 0)):
        _procs.stop(state_dir, rec)
    rootfs = state_dir / "rootfs"
    _stop_strays(state_dir, rootfs)
    if rootfs.is_dir():
        logs = state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for src, dst in ((PBX_MESSAGES, "pbx-messages.log"), (CARRIER_MESSAGES, "carrier-messages.log"),
                         (CARRIER_CDR_CSV, "carrier-Master.csv")):
            path = rootfs / src.lstrip("/")
            if path.is_file() and not path.is_symlink():
                shutil.copyfile(path, logs / dst)
    if purge:
        _image.remove_rootfs(rootfs)


def _stop_strays(state_dir: Path, rootfs: Path) -> None:
    """Processes of this sandbox without a pid file (e.g. an `up` killed between spawn and
    record): anything whose root is our rootfs, and baresip running our phone configs."""
    real_root = os.path.realpath(rootfs)
    marker = f" -f {state_dir}/phones/"
    for sig, pause in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 1.0)):
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                root = os.readlink(entry / "root")
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if (rootfs.is_dir() and root == real_root) or (cmdline.startswith(_phones.BARESIP) and marker in cmdline):
                found.append(int(entry.name))
        for pid in found:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if not found:
            return
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and any(_procs.running(p) for p in found):
            time.sleep(0.05)
