"""The sandbox's facts (SandboxInfo, stored as sandbox.json) and its status report."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ._runtime import CARRIER_RTP, PBX_RTP, phone_rtp_range


@dataclass(frozen=True)
class PhoneInfo:
    endpoint: str
    sip_port: int
    ctrl_port: int
    dump_dir: Path


@dataclass(frozen=True)
class SandboxInfo:
    instance: str
    state_dir: Path
    rootfs: Path
    ami_host: str
    ami_port: int
    ami_username: str
    ami_secret: str
    pbx_sip_port: int
    carrier_sip_port: int
    agi_port: int
    phones: tuple[PhoneInfo, ...]
    recording_dir_pbx: str
    recording_dir_host: Path
    carrier_call_log: Path
    asterisk_version: str
    baresip_version: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["phones"] = [{**p, "dump_dir": str(p["dump_dir"])} for p in data["phones"]]
        for key in ("state_dir", "rootfs", "recording_dir_host", "carrier_call_log"):
            data[key] = str(data[key])
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "SandboxInfo":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["phones"] = tuple(PhoneInfo(p["endpoint"], int(p["sip_port"]), int(p["ctrl_port"]), Path(p["dump_dir"]))
                               for p in data.get("phones", ()))
        for key in ("state_dir", "rootfs", "recording_dir_host", "carrier_call_log"):
            data[key] = Path(data[key])
        return cls(**data)


@dataclass(frozen=True)
class ProcStatus:
    name: str
    pid: int | None
    alive: bool
    detail: str = ""


@dataclass(frozen=True)
class SandboxStatus:
    state_dir: Path
    info: SandboxInfo | None
    processes: tuple[ProcStatus, ...] = field(default_factory=tuple)

    @property
    def running(self) -> bool:
        return self.info is not None and bool(self.processes) and all(p.alive for p in self.processes)

    def __str__(self) -> str:
        if self.info is None:
            extra = "".join(f"\n  {p.name}: pid {p.pid} {'alive' if p.alive else 'dead'}" for p in self.processes)
            return f"sandbox in {self.state_dir}: not set up{extra}"
        i = self.info
        lines = [f"sandbox {i.instance!r} in {i.state_dir}: {'running' if self.running else 'NOT RUNNING'}",
                 f"  {i.asterisk_version}; baresip {i.baresip_version or '?'}; rootfs {i.rootfs}"]
        ports = {"pbx": f"sip 127.0.0.1:{i.pbx_sip_port}  ami {i.ami_host}:{i.ami_port} (user {i.ami_username})"
                        f"  rtp {PBX_RTP[0]}-{PBX_RTP[1]}  FastAGI expected on 127.0.0.1:{i.agi_port}",
                 "carrier": f"sip 127.0.0.1:{i.carrier_sip_port}  rtp {CARRIER_RTP[0]}-{CARRIER_RTP[1]}"}
        for index, p in enumerate(i.phones, 1):
            first, last = phone_rtp_range(index)
            ports[f"phone-{p.endpoint}"] = (f"sip 127.0.0.1:{p.sip_port}  ctrl_tcp 127.0.0.1:{p.ctrl_port}"
                                            f"  rtp {first}-{last}  dump {p.dump_dir}")
        for proc in self.processes:
            state = "alive" if proc.alive else ("stopped" if proc.pid is None else "DEAD")
            lines.append(f"  {proc.name:<12} pid {proc.pid or '-':<8} {state:<6} {proc.detail:<14} "
                         f"{ports.get(proc.name, '')}".rstrip())
        lines += [f"  recordings: {i.recording_dir_host}  (PBX: {i.recording_dir_pbx})",
                  f"  carrier call log: {i.carrier_call_log}", f"  logs: {i.state_dir / 'logs'}"]
        return "\n".join(lines)
