"""Adapters the service wires in: the sandbox PBX's facts as settings (ports, secret,
recording paths, phones), the configured archive store, the AMI link as the watchdog's
`PbxLink`."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ami.errors import AmiError
from ami.link import AmiLink
from asterisk_conf import sandbox
from dunline.settings import RecordingSettings, Settings, load_settings
from recorder.archive import ArchiveStore, FilesystemArchive


def sandbox_overrides(info: "sandbox.SandboxInfo") -> dict[str, dict[str, Any]]:
    return {
        "ami": {"host": info.ami_host, "port": info.ami_port, "username": info.ami_username,
                "secret": info.ami_secret},
        "agi": {"port": info.agi_port},
        "recording": {"dir_pbx": info.recording_dir_pbx, "dir_host": str(info.recording_dir_host)},
        "pbx": {"collectors": [p.endpoint for p in info.phones]},
    }


def settings_with_sandbox(config: str | None, state_dir: Path | None = None,
                          extra: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Settings from file/env; if a sandbox is up in `state_dir`, its facts fill the PBX parts."""
    base = load_settings(config)
    state = Path(state_dir or base.sandbox_dir)
    overrides: dict[str, dict[str, Any]] = {}
    if (state / "sandbox.json").exists():
        overrides.update(sandbox_overrides(sandbox.load(state)))
    for section, values in (extra or {}).items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(config, overrides=overrides)


def open_archive_store(recording: RecordingSettings) -> ArchiveStore:
    """The configured archive store: the local filesystem, or S3 with Object Lock."""
    if recording.store == "s3":
        from recorder.s3_store import S3ObjectLockArchive

        store = S3ObjectLockArchive.from_endpoint(
            recording.s3_endpoint or None, recording.s3_bucket, recording.s3_region,
            recording.s3_access_key or None, recording.s3_secret_key or None, prefix=recording.s3_prefix)
        store.ensure_bucket()
        return store
    return FilesystemArchive(Path(recording.archive_dir))


class AmiPbxLink:
    """The AMI link as the watchdog's probes see it (recorder.watchdog.probes.PbxLink):
    a failed query is None ("cannot tell"), never an AMI exception."""

    def __init__(self, link: AmiLink) -> None:
        self._link = link

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def last_ping_rtt(self) -> float | None:
        return self._link.last_ping_rtt

    async def query(self, action: str) -> Mapping[str, str] | None:
        try:
            return await self._link.action(action)
        except AmiError:
            return None
