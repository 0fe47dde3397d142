"""Collector phones: baresip 1.0.0 on the host, headless, sending a speech WAV.

baresip's aufile source plays the WAV once and the call is hung up at its end ("audio
error: end of file"), so the speech file is long: Asterisk's own prompts (converted by the
sandbox PBX itself with `file convert`), concatenated to 15 minutes.
"""
from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

from . import render
from ._errors import SandboxError

BARESIP = "baresip"
SPEECH_SECONDS = 15 * 60
RATE = 8000
# a collector's voice: Allison's longer prompts (the carrier talks with other ones)
SPEECH_PROMPTS = ("demo-instruct", "demo-moreinfo", "demo-abouttotry", "demo-echotest", "demo-nogo",
                  "vm-options", "vm-instructions")
GAP_SECONDS = 0.4


def make_speech_wav(rootfs: Path, convert, out: Path) -> None:
    """Write `out`: 8 kHz 16-bit mono speech, SPEECH_SECONDS long.

    `convert(src_in_chroot, dst_in_chroot)` runs the PBX's `file convert`."""
    if out.is_file() and out.stat().st_size > RATE * 2 * 60:
        return
    work_rel = "tmp/dunline-speech"
    work = rootfs / work_rel
    if work.is_symlink():
        raise SandboxError(f"{work} is a symlink")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    work.chmod(0o777)  # the PBX writes here as the chroot's asterisk user
    try:
        pieces = []
        for name in SPEECH_PROMPTS:
            convert(f"/usr/share/asterisk/sounds/en/{name}.gsm", f"/{work_rel}/{name}.wav")
            with wave.open(str(work / f"{name}.wav")) as handle:
                if (handle.getframerate(), handle.getsampwidth(), handle.getnchannels()) != (RATE, 2, 1):
                    raise SandboxError(f"{name}.wav is not 8 kHz 16-bit mono")
                pieces.append(handle.readframes(handle.getnframes()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    gap = b"\0\0" * int(RATE * GAP_SECONDS)
    one_round = b"".join(piece + gap for piece in pieces)
    rounds = -(-SPEECH_SECONDS * RATE * 2 // len(one_round))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with wave.open(str(tmp), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(one_round * rounds)
    tmp.replace(out)


def write_config(phone_dir: Path, values: dict[str, object]) -> None:
    phone_dir.mkdir(parents=True, exist_ok=True)
    Path(str(values["dump_dir"])).mkdir(parents=True, exist_ok=True)
    for name, text in render.render_set("baresip", values).items():
        path = phone_dir / name
        path.write_text(text)
        path.chmod(0o600)  # accounts holds the SIP password


def argv(phone_dir: Path) -> list[str]:
    return [BARESIP, "-f", str(phone_dir)]


def baresip_version() -> str:
    try:
        proc = subprocess.run([BARESIP, "-h"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "baresip not found"
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("baresip v"):
            return line.split()[1].lstrip("v")
    return "unknown"


def registered_contacts(contacts_output: str) -> dict[str, str]:
    """{endpoint: contact uri} from `pjsip show contacts` (AORs named like the endpoints)."""
    found = {}
    for line in contacts_output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "Contact:" and "/" in parts[1]:
            aor, uri = parts[1].split("/", 1)
            found[aor] = uri
    return found


def send_command(ctrl_port: int, command: str, params: str = "", *, timeout: float = 5.0) -> str:
    """One command to a phone over baresip's ctrl_tcp (a netstring of JSON), e.g.
    ("uareg", "0"): unregister; ("uareg", "300"): register again. Returns the response's data."""
    import json
    import socket

    body = json.dumps({"command": command, "params": params, "token": "dunline"}).encode()
    with socket.create_connection(("127.0.0.1", ctrl_port), timeout=timeout) as conn:
        conn.sendall(str(len(body)).encode() + b":" + body + b",")
        buffer = b""
        while True:  # netstrings; the response is the one carrying our token (events may come first)
            chunk = conn.recv(65536)
            if not chunk:
                raise SandboxError(f"phone on ctrl port {ctrl_port} closed the connection")
            buffer += chunk
            while b":" in buffer:
                size, _, rest = buffer.partition(b":")
                if not size.isdigit() or len(rest) < int(size) + 1:
                    break
                message, buffer = json.loads(rest[:int(size)]), rest[int(size) + 1:]
                if message.get("response") and message.get("token") == "dunline":
                    if not message.get("ok", False):
                        raise SandboxError(f"phone refused {command} {params}: {message.get('data', '')}")
                    return str(message.get("data", ""))
