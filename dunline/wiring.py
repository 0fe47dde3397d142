"""Adapters the service wires in: the sandbox PBX's facts as settings (ports, secret,
recording paths, phones), the configured archive store, the AMI link as the watchdog's
`PbxLink`."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from ami.errors import AmiError
from ami.link import AmiLink
from asterisk_conf import sandbox
from console.deps import WebSecurity
from dunline.settings import ConsoleSettings, RecordingSettings, Settings, load_settings
from people.accounts import Accounts
from people.sessions import SessionPolicy
from recorder import ledger_store
from recorder.archive import ArchiveStore, FilesystemArchive
from recorder.ledger import KeyMissing, Signer, create_key, fingerprint_of, load_signer
from recorder.ledger_store import Ledger
from recorder.witness import CheckpointWitness
from storage.clock import Clock
from storage.db import Database

log = logging.getLogger("dunline.wiring")


class KeyNotPinned(RuntimeError):
    """The signing key is not the one whose fingerprint is pinned in the settings."""


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


def open_accounts(settings: Settings, db: Database, clock: Clock) -> Accounts:
    """Users and sessions with the configured session lifetimes."""
    c = settings.console
    return Accounts(db, clock, sessions=SessionPolicy(idle=timedelta(minutes=c.session_idle_minutes),
                                                      absolute=timedelta(hours=c.session_hours)))


def web_security(console: ConsoleSettings) -> WebSecurity:
    return WebSecurity.build(console.port, console.public_url, console.allowed_hosts)


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


def checkpoint_witness(recording: RecordingSettings, store: ArchiveStore) -> CheckpointWitness:
    years = max([recording.witness_retention_years, *(y for _, y in recording.client_retention_years())])
    return CheckpointWitness(store, retain_years=years)


def init_key(recording: RecordingSettings) -> Signer:
    """Make the ledger's signing key (FileExistsError if there is one): the one way a key is made."""
    signer = create_key(recording.ledger_key_path())
    log.warning("created the ledger signing key %s, fingerprint %s: give this fingerprint to the client and "
                "pin it (recording.ledger_key_fingerprint); `recordings verify` trusts no other key",
                recording.ledger_key_path(), fingerprint_of(signer.public_key))
    return signer


async def open_ledger(settings: Settings, db: Database, store: ArchiveStore, clock: Clock, *,
                      create_if_new: bool = False) -> Ledger:
    """The ledger with its signing key and witness. A missing key is made only when asked and
    only for a ledger without entries (first start); a key other than the pinned one is refused."""
    recording = settings.recording
    try:
        signer = load_signer(recording.ledger_key_path())
    except KeyMissing:
        if not create_if_new:
            raise
        async with db.session() as session:
            if await ledger_store.head(session) is not None:
                raise KeyMissing(f"{recording.ledger_key_path()}: the ledger has entries but the key that signed "
                                 "them is gone; restore it (a new key would prove nothing of them)") from None
        signer = init_key(recording)
    pinned = recording.ledger_key_fingerprint
    if pinned and fingerprint_of(signer.public_key) != pinned:
        raise KeyNotPinned(f"{recording.ledger_key_path()} is not the pinned ledger key "
                           f"(fingerprint {fingerprint_of(signer.public_key)}, pinned {pinned})")
    return Ledger(db, signer, clock, recording.checkpoint_every, witness=checkpoint_witness(recording, store))
