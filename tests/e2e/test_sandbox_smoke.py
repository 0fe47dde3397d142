"""Smoke test of the sandbox PBX itself (no dunline service): it boots, records a bridged call
with speech on both legs, the carrier logs it, hang-up causes reach the PBX, and down() really
stops everything (and up() works again after it)."""
from __future__ import annotations

import array
import csv
import math
import os
import socket
import subprocess
import time
import uuid
import wave
from pathlib import Path

import pytest

from asterisk_conf import sandbox
from tests.e2e.conftest import require_sandbox_host

pytestmark = pytest.mark.e2e


class Ami:
    """A minimal blocking AMI client for the test: send actions, collect every message."""

    def __init__(self, info: sandbox.SandboxInfo):
        self.sock = socket.create_connection((info.ami_host, info.ami_port), timeout=5)
        self.buf = b""
        self.messages: list[dict[str, str]] = []
        assert self.sock.recv(100).startswith(b"Asterisk Call Manager")
        reply = self.action("Login", Username=info.ami_username, Secret=info.ami_secret)
        assert reply["Response"] == "Success", reply

    def close(self) -> None:
        self.sock.close()

    def send(self, action: str, **headers: str | list[str]) -> str:
        action_id = uuid.uuid4().hex
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        for key, value in headers.items():
            lines += [f"{key}: {v}" for v in (value if isinstance(value, list) else [value])]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    def action(self, action: str, **headers) -> dict[str, str]:
        action_id = self.send(action, **headers)
        return self.wait(lambda m: m.get("ActionID") == action_id and "Response" in m)

    def wait(self, predicate, timeout: float = 20.0) -> dict[str, str]:
        """The first message so far (or arriving within `timeout`) that matches."""
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages[seen:]:
                if predicate(message):
                    return message
            seen = len(self.messages)
            if time.monotonic() >= deadline:
                raise AssertionError(f"no matching AMI message within {timeout}s")
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError("AMI closed the connection")
            self.buf += data
            while b"\r\n\r\n" in self.buf:
                raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
                self.messages.append(dict(line.split(": ", 1) for line in raw.decode().split("\r\n")
                                          if ": " in line))

    def events(self, name: str, uniqueid: str) -> list[dict[str, str]]:
        return [m for m in self.messages if m.get("Event") == name and m.get("Uniqueid") == uniqueid]


def _processes_of(info: sandbox.SandboxInfo) -> list[str]:
    """asterisk/baresip processes of this instance (rooted in its rootfs, or using its phone dirs)."""
    found = []
    root = os.path.realpath(info.rootfs)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            proc_root = os.readlink(entry / "root")
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "Z":
            continue
        if proc_root == root or (cmd.startswith("baresip") and f"{info.state_dir}/phones/" in cmd):
            found.append(f"{entry.name} {cmd}")
    return found


def _leg(path: Path) -> tuple[float, float, float]:
    """(duration s, RMS, how much the 200 ms RMS varies) of a 16-bit mono WAV."""
    with wave.open(str(path)) as handle:
        assert (handle.getsampwidth(), handle.getnchannels()) == (2, 1), path
        rate = handle.getframerate()
        samples = array.array("h", handle.readframes(handle.getnframes()))
    duration = len(samples) / rate
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
    step = rate // 5
    windows = [math.sqrt(sum(s * s for s in samples[i:i + step]) / step) for i in range(0, len(samples) - step, step)]
    mean = sum(windows) / max(1, len(windows))
    spread = math.sqrt(sum((w - mean) ** 2 for w in windows) / max(1, len(windows))) / max(mean, 1.0)
    return duration, rms, spread


@pytest.fixture(scope="module")
def sandbox_up(tmp_path_factory):
    require_sandbox_host()
    state = tmp_path_factory.mktemp("sandbox-smoke")
    try:
        yield state, sandbox.up(state, instance=f"smoke{os.getpid()}", phones=2)
    finally:
        sandbox.down(state, purge=True)


def test_status_shows_everything_alive(sandbox_up):
    state, info = sandbox_up
    st = sandbox.status(state)
    assert st.running, str(st)
    assert [p.name for p in st.processes] == ["carrier", "pbx", "phone-6001", "phone-6002"]
    assert all(p.alive and p.pid for p in st.processes), str(st)
    assert "Asterisk 22" in info.asterisk_version
    assert sandbox.load(state) == info
    assert oct((state / "sandbox.json").stat().st_mode & 0o777) == "0o600"
    modules = sandbox.asterisk_rx(info, "module show like app_mixmonitor")
    assert "Running" in modules
    assert "Running" in sandbox.asterisk_rx(info, "module show like cdr_csv", carrier=True)
    contacts = sandbox.asterisk_rx(info, "pjsip show endpoints")
    assert "6900" in contacts and "carrier" in contacts


def _sockets(info: sandbox.SandboxInfo, flags: str = "-lntup") -> list[str]:
    """`ss` lines of this instance's processes."""
    pids = {line.split()[0] for line in _processes_of(info)}
    out = subprocess.run(["ss", "-H", flags], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]


def test_everything_listens_on_loopback_only(sandbox_up):
    _, info = sandbox_up
    ours = _sockets(info)
    tcp = [line.split()[4] for line in ours if line.startswith("tcp")]
    assert tcp and all(addr.startswith("127.0.0.1:") for addr in tcp), ours
    local = {line.split()[4] for line in ours}
    for port in (info.pbx_sip_port, info.carrier_sip_port, info.ami_port):
        assert f"127.0.0.1:{port}" in local
    # no IAX2, no HTTP/ARI, no SIP on a wildcard address
    assert not any(addr.endswith((":4569", ":8088", ":5060")) for addr in local), ours


def test_bridged_call_is_recorded_on_both_legs_and_logged_by_the_carrier(sandbox_up):
    _, info = sandbox_up
    number = "15551100001"  # carrier: answer after 1 s, then talk until hung up
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    rec = f"{info.recording_dir_pbx}/{name}"
    chan_id = uuid.uuid4().hex
    ami = Ami(info)
    try:
        assert ami.action("Ping")["Response"] == "Success"
        reply = ami.action("Originate", Channel=f"PJSIP/{number}@carrier", Context="dunline-selftest", Exten="s",
                           Priority="1", Async="true", ChannelId=chan_id, Timeout="15000",
                           Variable=[f"DUNLINE_REC={rec}", "DUNLINE_COLLECTOR=6001"])
        assert reply["Response"] == "Success", reply
        assert ami.wait(lambda m: m.get("Event") == "OriginateResponse")["Reason"] == "4"
        answered = time.monotonic()
        ami.wait(lambda m: m.get("Event") == "BridgeEnter" and m.get("Uniqueid") == chan_id)
        shows = ami.action("CoreShowChannels")
        assert shows["Response"] == "Success", shows
        # the media of both Asterisks is on loopback, in their own RTP ranges
        rtp = [line.split()[3] for line in _sockets(info, "-anup")
               if "asterisk" in line and 20000 <= int(line.split()[3].rsplit(":", 1)[1]) <= 27999]
        assert len(rtp) >= 6 and all(addr.startswith("127.0.0.1:") for addr in rtp), rtp
        time.sleep(6)
        channel = ami.events("Newchannel", chan_id)[0]["Channel"]
        assert ami.action("Hangup", Channel=channel)["Response"] == "Success"
        hangup = ami.wait(lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == chan_id)
        call_seconds = time.monotonic() - answered
        for event in ("Newchannel", "Newstate", "DialEnd", "BridgeEnter", "Hangup"):
            assert ami.events(event, chan_id), f"no {event} event for the originated channel"
        phone = ami.wait(lambda m: m.get("Event") == "DialEnd" and m.get("DestChannel", "").startswith("PJSIP/6001"))
        assert phone["DialStatus"] == "ANSWER"
        assert hangup["Cause"] in ("16", "0"), hangup  # hung up by us (AMI); the far end sees 16
    finally:
        ami.close()

    host_dir = info.recording_dir_host
    files = {leg: host_dir / f"{name}{suffix}.wav" for leg, suffix in (("mix", ""), ("rx", "-rx"), ("tx", "-tx"))}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(p.is_file() and p.stat().st_size > 44 for p in files.values()):
        time.sleep(0.2)
    time.sleep(0.5)  # MixMonitor closes the files (and fixes the header) just after the hang-up
    legs = {leg: _leg(path) for leg, path in files.items()}
    print("legs (duration s, rms, spread):", legs, "call", call_seconds)
    for leg, (duration, rms, spread) in legs.items():
        assert abs(duration - call_seconds) < 2.0, (leg, legs, call_seconds)
        assert rms > 300, (leg, legs)          # silence is < 100; Asterisk's threshold is 256
        # speech comes and goes; a steady tone (ringback, a test tone) has a spread near 0
        assert spread > (0.15 if leg == "mix" else 0.3), (leg, legs)
    with files["rx"].open("rb") as rx, files["tx"].open("rb") as tx:
        assert rx.read() != tx.read()

    deadline = time.monotonic() + 5
    rows: list[list[str]] = []
    while time.monotonic() < deadline and not rows:
        if info.carrier_call_log.exists():
            with info.carrier_call_log.open(newline="") as handle:
                rows = [row for row in csv.reader(handle) if number in row]
        time.sleep(0.2)
    assert len(rows) == 1, rows
    assert "ANSWERED" in rows[0]
    dumps = list(info.phones[0].dump_dir.glob("*-enc.wav"))
    assert dumps, "the phone dumps what it sent"


@pytest.mark.parametrize("number, cause", [("15552000001", "17"), ("15554000001", "34"), ("19990000001", "1"),
                                           ("15553000001", "19")])
def test_carrier_outcomes_reach_the_pbx_as_hangup_causes(sandbox_up, number, cause):
    _, info = sandbox_up
    chan_id = uuid.uuid4().hex
    ami = Ami(info)
    try:
        ami.action("Originate", Channel=f"PJSIP/{number}@carrier", Context="dunline-selftest", Exten="s",
                   Priority="1", Async="true", ChannelId=chan_id, Timeout="3000",
                   Variable=["DUNLINE_REC=/tmp/never", "DUNLINE_COLLECTOR=6002"])
        hangup = ami.wait(lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == chan_id, timeout=15)
    finally:
        ami.close()
    assert hangup["Cause"] == cause, hangup


def test_down_stops_everything_and_up_works_again(sandbox_up):
    state, info = sandbox_up
    assert _processes_of(info)
    sandbox.down(state)
    assert _processes_of(info) == []
    assert not sandbox.status(state).running
    assert (state / "logs" / "pbx-messages.log").is_file()
    assert (state / "logs" / "carrier-Master.csv").is_file()
    sandbox.down(state)  # idempotent
    again = sandbox.up(state, instance=info.instance, phones=2)
    assert sandbox.status(state).running
    assert again.ami_secret == info.ami_secret
    assert sandbox.up(state, instance=info.instance, phones=2) == again  # running: returned as is
