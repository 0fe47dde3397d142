"""Settings: one typed object, read from a TOML file plus environment, validated at start.

Precedence: built-in defaults < TOML file (`--config` or $DUNLINE_CONFIG) < environment
(`DUNLINE_<SECTION>_<KEY>`, e.g. DUNLINE_DATABASE_URL, DUNLINE_AMI_SECRET). Secrets such as
the AMI password come from the environment or the sandbox state, never from the repo.
A bad value stops start-up with a message naming the setting.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from recorder.watchdog.runner import WatchdogSettings


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///var/dunline.db"
    # where facts wait while the database cannot take them (storage/journal.py);
    # "" = beside an SQLite database, else var/dunline-facts.journal
    journal_file: str = ""

    def journal_path(self) -> Path:
        return Path(self.journal_file) if self.journal_file else self.state_path("dunline-facts.journal")

    def state_path(self, name: str) -> Path:
        """A file of the service's own state: beside an SQLite database, else under var/."""
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).resolve().parent / name
        return Path("var", name).resolve()


@dataclass(frozen=True, slots=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "dunline"
    secret: str = ""
    ping_interval_s: float = 5.0
    ping_timeout_s: float = 3.0
    action_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    max_sessions: int = 200  # requests with a valid token served at once
    max_pending: int = 256  # connections still sending their environment, in all
    max_pending_per_peer: int = 128  # ...and from one peer address
    header_timeout_s: float = 2.0  # the PBX sends its environment at once
    token_key_file: str = ""  # the secret of the per-attempt tokens; "" = beside the database


@dataclass(frozen=True, slots=True)
class PbxSettings:
    trunk: str = "carrier"
    outbound_context: str = "dunline-outbound"
    ring_timeout_s: int = 30
    collectors: tuple[str, ...] = ("6001",)
    # dials deciding and writing at once (the rest wait their turn in the process, not in the
    # database's busy handler); per-number exclusion is the database's lease either way
    dial_concurrency: int = 4


@dataclass(frozen=True, slots=True)
class FloorSettings:
    """Collectors' seats (dialer/floor.py): each collector's phone held open for the shift and
    an answered debtor bridged to a ready one at once; off: the collector's phone is rung."""

    seats: bool = False
    open_at_start: bool = False  # ring every pbx.collectors phone for a seat when the service starts
    seats_per_phone: int = 1  # >1 only where one phone stands for several collectors (the sandbox bench)
    answer_wait_s: float = 2.0  # an answered debtor waits at most this for a ready collector, then is abandoned
    wrap_up_s: float = 0.0  # after a call, a seat is ready again after this (or when the collector says so)
    campaign_tick_s: float = 0.5  # how often running campaigns' pacers are asked how many lines to dial


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    dir_pbx: str = "/var/spool/asterisk/monitor/dunline"
    dir_host: str = "/var/spool/asterisk/monitor/dunline"
    archive_dir: str = "var/archive"
    retention_years: int = 3
    start_timeout_s: float = 2.0  # MixMonitor must have opened the file before the bridge
    grow_timeout_s: float = 5.0  # ...and the file must grow within this (32 KB write steps)
    client_retention: tuple[str, ...] = ()  # "CLIENT=YEARS": clients who keep recordings longer
    playback_format: str = ""  # "" | mp3 | opus: a compressed copy for listening (evidence stays WAV)
    store: str = "fs"  # fs | s3 (S3 with Object Lock, compliance mode)
    s3_endpoint: str = ""  # e.g. https://s3.eu-central-1.amazonaws.com; "" = AWS default
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_access_key: str = ""  # from the environment: DUNLINE_RECORDING_S3_ACCESS_KEY
    s3_secret_key: str = ""  # DUNLINE_RECORDING_S3_SECRET_KEY
    ledger_key_file: str = ""  # Ed25519 key signing ledger checkpoints; "" = beside archive_dir
    # the SHA-256 fingerprint of that key's public half, pinned: `recordings verify` trusts no other
    ledger_key_fingerprint: str = ""
    checkpoint_every: int = 50  # sign the ledger head every N entries (and at shutdown)
    checkpoint_interval_s: float = 60.0  # ...and this often while there are new entries
    witness_retention_years: int = 10  # the checkpoints' witnesses outlive the recordings they cover
    ingest_workers: int = 4  # recordings archived at a time (at least ingest_processes, to keep them busy)
    ingest_processes: int = 0  # processes for ingest's signal checks; 0: one per core (os.cpu_count())

    def client_retention_years(self) -> tuple[tuple[str, int], ...]:
        """The parsed client_retention; a bad entry or one below the floor is an error."""
        parsed: list[tuple[str, int]] = []
        for item in self.client_retention:
            client, sep, years = item.partition("=")
            if not sep or not client.strip() or not years.strip().isdigit():
                raise SettingsError(f"recording.client_retention: {item!r} is not CLIENT=YEARS")
            if int(years) < self.retention_years:
                raise SettingsError(f"recording.client_retention: {client.strip()} keeps {years} years, "
                                    f"below recording.retention_years ({self.retention_years})")
            parsed.append((client.strip(), int(years)))
        return tuple(parsed)

    def ledger_key_path(self) -> Path:
        if self.ledger_key_file:
            return Path(self.ledger_key_file)
        return Path(self.archive_dir).resolve().parent / "ledger-key.pem"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The dialing rules: a profile plus overrides (see dialer/policy_config.py)."""

    profile: str = "client-default"  # client-default | cn-banking-2026 | us-reg-f
    window: str = ""  # "HH:MM-HH:MM" for every open weekday; "" keeps the profile's
    closed_weekdays: tuple[str, ...] = ()
    holidays: tuple[str, ...] = ()  # ISO dates
    last_dial_margin_min: int = -1  # -1 keeps the profile's
    appointment_tolerance_min: int = -1
    caps: str = ""  # "attempts_per_number_per_day=2,min_gap_minutes=30"
    regions: tuple[str, ...] = ()  # "CODE=Zone|Zone": the client's region codes -> candidate zones


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Where the weekly report's files go: <weekly_dir>/<week>/ (PDF, XLSX, charts), written by
    `dunline report weekly` and, with `weekly_auto`, by the service itself for each week just
    ended (dunline/report_task.py; the production image turns it on)."""

    weekly_dir: str = "var/reports"
    weekly_auto: bool = False
    weekly_locale: str = "zh-CN"  # zh-CN | en


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    host: str = "127.0.0.1"
    port: int = 8088
    allow_public: bool = False  # bind beyond loopback only when explicitly allowed
    # the address people use, behind a reverse proxy (e.g. https://dunline.example.com): its
    # host is answered and its origin may send state changes; https makes cookies Secure
    public_url: str = ""
    allowed_hosts: tuple[str, ...] = ()  # further Host headers answered ("host[:port]")
    session_idle_minutes: int = 120  # a session ends after this long without a request
    session_hours: int = 12  # ...and this long after sign-in, whatever


@dataclass(frozen=True, slots=True)
class VisitsSettings:
    """Field visits' photos and recordings (cases/registers_store.py): private files under `dir`;
    their data is purged six months on (cases/visit_purge.py) by the service every
    `purge_interval_s` (0: only by `dunline visits purge`)."""

    dir: str = "var/visits"
    purge_interval_s: float = 86400.0


@dataclass(frozen=True, slots=True)
class QcSettings:
    """Quality control (cases/qc.py): each week's sample of every collector's recorded calls."""

    sample_size: int = 5  # calls per collector and week, unless a run names its own size
    weekly_auto: bool = True  # the service makes each finished week's samples by itself (dunline/qc_task.py)


@dataclass(frozen=True, slots=True)
class WatchdogConfig(WatchdogSettings):
    """The recording-chain watchdog and the dialing gate: the runner's thresholds
    (recorder/watchdog/runner.py, WatchdogSettings) plus what the service wires."""

    enabled: bool = True  # off: no gate at all (only for tests that are not about it)
    canary_number: str = "15551100000"  # a carrier number that answers and talks
    canary_timeout_s: float = 40.0
    webhook_url: str = ""  # alarms are POSTed here as JSON (besides the log)


@dataclass(frozen=True, slots=True)
class ComplaintSettings:
    """Complaints' alarms (cases/complaints_store.py): how often the pass looks for complaints
    due soon or overdue, and where their alarms are POSTed as JSON."""

    check_interval_s: float = 60.0
    webhook_url: str = ""  # "" = watchdog.webhook_url (and none when that is empty too)


@dataclass(frozen=True, slots=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    pbx: PbxSettings = field(default_factory=PbxSettings)
    floor: FloorSettings = field(default_factory=FloorSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    reports: ReportSettings = field(default_factory=ReportSettings)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    visits: VisitsSettings = field(default_factory=VisitsSettings)
    qc: QcSettings = field(default_factory=QcSettings)
    complaints: ComplaintSettings = field(default_factory=ComplaintSettings)
    # per-client overrides of [policy]: TOML tables [policy_clients.<client>]
    policy_clients: tuple[tuple[str, PolicyConfig], ...] = ()
    # per-campaign overrides on top of the case's client's rules: [policy_campaigns.<name>]
    policy_campaigns: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    sandbox_dir: str = "var/sandbox"

    def policy_for(self, client: str, campaign: str | None = None) -> PolicyConfig:
        """The rules' configuration for a case: the campaign's overrides on top of the
        client's configuration, which is the global one unless the client has its own."""
        config = dict(self.policy_clients).get(client, self.policy)
        overrides = dict(self.policy_campaigns).get(campaign or "")
        if overrides is None:
            return config
        return _merge(config, f"policy_campaigns.{campaign}", dict(overrides))

    def validate(self) -> Settings:
        for section, name in (("ami", "port"), ("agi", "port"), ("console", "port")):
            port = getattr(getattr(self, section), name)
            if not 0 < port < 65536:
                raise SettingsError(f"{section}.{name}: {port} is not a TCP port")
        if self.recording.retention_years < 3:
            raise SettingsError("recording.retention_years: the contract requires at least 3")
        self.recording.client_retention_years()
        if self.recording.playback_format not in ("", "mp3", "opus"):
            raise SettingsError(f"recording.playback_format: {self.recording.playback_format!r} "
                                "is not mp3, opus or empty")
        if self.reports.weekly_locale not in ("zh-CN", "en"):
            raise SettingsError(f"reports.weekly_locale: {self.reports.weekly_locale!r} is not zh-CN or en")
        if self.recording.store not in ("fs", "s3"):
            raise SettingsError(f"recording.store: {self.recording.store!r} is not fs or s3")
        if self.recording.store == "s3" and not self.recording.s3_bucket:
            raise SettingsError("recording.s3_bucket: needed when recording.store = \"s3\"")
        w = self.watchdog
        for name in ("interval_s", "canary_interval_s", "canary_retry_s", "canary_timeout_s",
                     "reconcile_after_s", "ingest_max_age_s", "ingest_stall_s", "journal_stuck_s", "journal_starved_s",
                     "clock_max_skew_s"):
            if getattr(w, name) <= 0:
                raise SettingsError(f"watchdog.{name}: must be positive")
        if w.canary_tries < 1 or w.canary_recheck_s < 0:
            raise SettingsError("watchdog.canary_tries: at least 1; watchdog.canary_recheck_s: not negative")
        if w.interval_s > 1.0:
            raise SettingsError("watchdog.interval_s: the gate must close within 1 s; at most 1.0")
        if not 0 <= w.ingest_low_water < w.ingest_high_water:
            raise SettingsError("watchdog.ingest_low_water: at least 0 and below watchdog.ingest_high_water "
                                f"({w.ingest_low_water} / {w.ingest_high_water})")
        if w.webhook_url and not w.webhook_url.startswith(("http://", "https://")):
            raise SettingsError(f"watchdog.webhook_url: {w.webhook_url!r} is not an http(s) URL")
        if not 1 <= self.complaints.check_interval_s <= 600:
            raise SettingsError("complaints.check_interval_s: 1 to 600 (an alarm is at most that late)")
        if self.complaints.webhook_url and not self.complaints.webhook_url.startswith(("http://", "https://")):
            raise SettingsError(f"complaints.webhook_url: {self.complaints.webhook_url!r} is not an http(s) URL")
        fingerprint = self.recording.ledger_key_fingerprint
        if fingerprint and (len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint)):
            raise SettingsError("recording.ledger_key_fingerprint: 64 lower-case hex digits (as `dunline recordings "
                                "init-key` prints it)")
        if self.recording.checkpoint_interval_s <= 0:
            raise SettingsError("recording.checkpoint_interval_s: must be positive")
        if self.recording.witness_retention_years < self.recording.retention_years:
            raise SettingsError("recording.witness_retention_years: at least recording.retention_years")
        if self.recording.ingest_workers < 1:
            raise SettingsError("recording.ingest_workers: must be at least 1")
        if self.recording.ingest_processes < 0:
            raise SettingsError("recording.ingest_processes: 0 (one per core) or more")
        if self.recording.checkpoint_every < 1:
            raise SettingsError("recording.checkpoint_every: must be at least 1")
        if not self.visits.dir or self.visits.purge_interval_s < 0:
            raise SettingsError("visits.dir: a directory; visits.purge_interval_s: 0 (off) or more seconds")
        if not 1 <= self.pbx.dial_concurrency <= 64:
            raise SettingsError("pbx.dial_concurrency: 1 to 64")
        if self.pbx.ring_timeout_s <= 0:
            raise SettingsError("pbx.ring_timeout_s: must be positive")
        if not self.pbx.collectors:
            raise SettingsError("pbx.collectors: at least one collector endpoint is needed")
        if not 0 < self.floor.answer_wait_s <= 2.0:
            raise SettingsError("floor.answer_wait_s: above 0 and at most 2 (an answered debtor waits no longer)")
        if self.floor.wrap_up_s < 0 or not 1 <= self.floor.seats_per_phone <= 8:
            raise SettingsError("floor.wrap_up_s: not negative; floor.seats_per_phone: 1 to 8")
        if self.console.host not in ("127.0.0.1", "::1", "localhost") and not self.console.allow_public:
            raise SettingsError("console.host: binding beyond loopback needs console.allow_public = true")
        c = self.console
        if c.public_url:
            parts = urlsplit(c.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
                    or parts.query or parts.fragment:
                raise SettingsError(f"console.public_url: {c.public_url!r} is not a URL like https://dunline.example.com")
        for host in c.allowed_hosts:
            if not host or any(ch in host for ch in "/@ ?#"):
                raise SettingsError(f"console.allowed_hosts: {host!r} is not host[:port]")
        if not 1 <= c.session_idle_minutes <= 24 * 60:
            raise SettingsError("console.session_idle_minutes: between 1 and 1440")
        if not 1 <= c.session_hours <= 24:
            raise SettingsError("console.session_hours: between 1 and 24")
        if not 1 <= self.qc.sample_size <= 100:
            raise SettingsError("qc.sample_size: 1 to 100 calls per collector and week")
        from dialer.policy import PolicySettingsError
        from dialer.policy_config import build_policy

        configs = [("policy", self.policy),
                   *((f"policy_clients.{c}", cfg) for c, cfg in self.policy_clients)]
        for campaign, _ in self.policy_campaigns:  # on top of every client's rules
            configs += [(f"policy_campaigns.{campaign}", self.policy_for(client, campaign))
                        for client in ("", *(c for c, _ in self.policy_clients))]
        for name, config in configs:
            try:
                build_policy(config)
            except PolicySettingsError as exc:
                message = str(exc)
                if message.startswith("policy."):
                    message = message[len("policy."):]
                elif not message.startswith("profile"):
                    message = f"profile: {message}"
                raise SettingsError(f"{name}.{message}") from None
        return self


def _coerce(section: str, name: str, current: Any, value: Any) -> Any:
    try:
        if isinstance(current, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            return tuple(value) if isinstance(value, list) else tuple(
                v.strip() for v in str(value).split(",") if v.strip())
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{section}.{name}: invalid value {value!r}") from None


def _merge(section_obj: Any, section: str, values: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in fields(section_obj)}
    changes = {}
    for name, value in values.items():
        if name not in known:
            raise SettingsError(f"{section}.{name}: unknown setting")
        changes[name] = _coerce(section, name, getattr(section_obj, name), value)
    return replace(section_obj, **changes)


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """Defaults, then the TOML file, then `overrides` (e.g. the sandbox), then environment."""
    env = os.environ if env is None else env
    settings = Settings()
    layers: list[Mapping[str, Any]] = []
    path = path or env.get("DUNLINE_CONFIG")
    if path:
        try:
            layers.append(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {path}: {exc}") from None
    if overrides:
        layers.append(overrides)
    env_layer: dict[str, dict[str, str]] = {}
    for f in fields(settings):
        prefix = f"DUNLINE_{f.name.upper()}_"
        for key, value in env.items():
            if key.startswith(prefix):
                env_layer.setdefault(f.name, {})[key[len(prefix):].lower()] = value
    layers.append(env_layer)
    for layer in layers:
        for section, values in layer.items():
            if section == "sandbox_dir":
                settings = replace(settings, sandbox_dir=str(values))
                continue
            if section == "policy_campaigns":
                if not isinstance(values, Mapping) or not all(isinstance(v, Mapping) for v in values.values()):
                    raise SettingsError("policy_campaigns: expected tables [policy_campaigns.<campaign>]")
                campaigns = dict(settings.policy_campaigns)
                for campaign, overrides in values.items():
                    _merge(settings.policy, f"policy_campaigns.{campaign}", overrides)  # names known?
                    merged = {**dict(campaigns.get(campaign, ())), **overrides}
                    campaigns[campaign] = tuple(sorted(merged.items()))
                settings = replace(settings, policy_campaigns=tuple(sorted(campaigns.items())))
                continue
            if section == "policy_clients":
                if not isinstance(values, Mapping):
                    raise SettingsError("policy_clients: expected tables [policy_clients.<client>]")
                clients = dict(settings.policy_clients)
                for client, overrides in values.items():
                    if not isinstance(overrides, Mapping):
                        raise SettingsError(f"policy_clients.{client}: expected a table")
                    base = clients.get(client, settings.policy)
                    clients[client] = _merge(base, f"policy_clients.{client}", overrides)
                settings = replace(settings, policy_clients=tuple(sorted(clients.items())))
                continue
            if not hasattr(settings, section) or not isinstance(values, Mapping):
                raise SettingsError(f"{section}: unknown settings section")
            settings = replace(settings, **{section: _merge(getattr(settings, section), section, values)})
    return settings.validate()
