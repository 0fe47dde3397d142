"""From the `[policy]` settings section to validated PolicySettings (fails at start-up).

    [policy]
    profile = "client-default"          # client-default | cn-banking-2026 | us-reg-f
    window = "08:00-20:00"              # every open weekday, debtor-local
    closed_weekdays = ["sun"]
    holidays = ["2027-02-17"]           # debtor-local dates, no calls
    last_dial_margin_min = 10
    appointment_tolerance_min = 5
    caps = "attempts_per_number_per_day=2,min_gap_minutes=30"
    regions = ["XJ=Asia/Urumqi|Asia/Shanghai"]   # client region codes -> candidate zones

    [policy_clients.<client>]           # a client's rules: overrides on top of [policy]
    [policy_campaigns.<campaign>]       # a campaign's: overrides on top of its client's

Every error names the setting (`policy.window: ...`). `PolicyBook` answers which rules
apply to a case (campaign, else client, else global).
"""
from __future__ import annotations

from dataclasses import fields
from datetime import date, time
from collections.abc import Mapping
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.policy import Caps, DayWindow, PolicySettings, PolicySettingsError, profile, with_overrides
from dialer.policy.model import WEEKDAYS


class PolicyConfigLike(Protocol):
    profile: str
    window: str
    closed_weekdays: tuple[str, ...]
    holidays: tuple[str, ...]
    last_dial_margin_min: int
    appointment_tolerance_min: int
    caps: str
    regions: tuple[str, ...]


def _time(text: str, name: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise PolicySettingsError(f"policy.{name}: {text!r} is not a HH:MM time") from None


def build_policy(config: PolicyConfigLike) -> PolicySettings:
    """The profile with the configured overrides, validated; PolicySettingsError names the setting."""
    base = profile(config.profile)
    changes: dict[str, Any] = {}
    windows = list(base.windows)
    if config.window:
        start_text, sep, end_text = config.window.partition("-")
        if not sep:
            raise PolicySettingsError(f"policy.window: {config.window!r} is not START-END")
        start, end = _time(start_text, "window"), _time(end_text, "window")
        if end <= start:
            raise PolicySettingsError(f"policy.window: end {end} must be after start {start}")
        windows = [DayWindow(start, end)] * 7
    for day in config.closed_weekdays:
        if day not in WEEKDAYS:
            raise PolicySettingsError(f"policy.closed_weekdays: {day!r} is not one of {', '.join(WEEKDAYS)}")
        windows[WEEKDAYS.index(day)] = None
    if config.window or config.closed_weekdays:
        changes["windows"] = tuple(windows)
    if config.holidays:
        try:
            changes["holidays"] = frozenset(date.fromisoformat(d) for d in config.holidays)
        except ValueError as exc:
            raise PolicySettingsError(f"policy.holidays: {exc}") from None
    for name in ("last_dial_margin_min", "appointment_tolerance_min"):
        value = getattr(config, name)
        if value != -1:
            if value < 0:
                raise PolicySettingsError(f"policy.{name}: {value} must not be negative")
            changes[name] = value
    if config.caps:
        caps: dict[str, int | None] = {}
        known = {f.name for f in fields(Caps)}
        for item in config.caps.split(","):
            key, sep, value = (part.strip() for part in item.partition("="))
            if not sep or key not in known:
                raise PolicySettingsError(f"policy.caps: {item.strip()!r} is not one of {', '.join(sorted(known))}=N")
            try:
                number = None if value.lower() == "none" else int(value)
            except ValueError:
                raise PolicySettingsError(f"policy.caps: {key}={value!r} is not a whole number") from None
            if number is not None and number < 0:
                raise PolicySettingsError(f"policy.caps: {key}={number} must not be negative")
            caps[key] = number
        changes["caps"] = caps
    if config.regions:
        regions = []
        for entry in config.regions:
            code, sep, zones = (part.strip() for part in entry.partition("="))
            names = frozenset(z.strip() for z in zones.split("|") if z.strip())
            if not sep or not code or not names:
                raise PolicySettingsError(f"policy.regions: {entry!r} is not CODE=Zone|Zone")
            for name in names:
                try:
                    ZoneInfo(name)
                except (ZoneInfoNotFoundError, ValueError):
                    raise PolicySettingsError(f"policy.regions: unknown time zone {name!r} for {code}") from None
            regions.append((code, names))
        changes["extra_regions"] = tuple(regions)
    try:
        return with_overrides(base, **changes) if changes else base
    except PolicySettingsError as exc:
        message = str(exc)
        raise PolicySettingsError(message if message.startswith("policy.") else f"policy.{message}") from None


class PolicyBook:
    """Which rules apply to a case: its campaign's, else its client's, else the global ones.

    A campaign's settings are overrides on top of its client's rules (so a campaign can
    narrow a window without dropping the client's profile); they are resolved up front
    for every configured client, and for any other client on top of the global rules.
    """

    def __init__(self, default: PolicySettings, clients: Mapping[str, PolicySettings] | None = None,
                 campaigns: Mapping[tuple[str | None, str], PolicySettings] | None = None) -> None:
        self.default = default
        self.clients = dict(clients or {})
        self.campaigns = dict(campaigns or {})

    @classmethod
    def of(cls, rules: PolicySettings | PolicyBook) -> PolicyBook:
        return rules if isinstance(rules, PolicyBook) else cls(rules)

    def for_case(self, client: str, campaign: str | None = None) -> PolicySettings:
        if campaign:
            found = self.campaigns.get((client, campaign)) or self.campaigns.get((None, campaign))
            if found is not None:
                return found
        return self.clients.get(client, self.default)


class LayeredPolicyConfig(Protocol):
    policy: PolicyConfigLike
    policy_clients: tuple[tuple[str, PolicyConfigLike], ...]
    policy_campaigns: tuple[tuple[str, Any], ...]

    def policy_for(self, client: str, campaign: str | None = None) -> PolicyConfigLike: ...


def build_policy_book(settings: LayeredPolicyConfig) -> PolicyBook:
    """Every rule set the settings define, validated (PolicySettingsError names the setting)."""
    clients = {client: build_policy(cfg) for client, cfg in settings.policy_clients}
    campaigns: dict[tuple[str | None, str], PolicySettings] = {}
    for campaign, _overrides in settings.policy_campaigns:
        campaigns[(None, campaign)] = build_policy(settings.policy_for("", campaign))
        for client in clients:
            campaigns[(client, campaign)] = build_policy(settings.policy_for(client, campaign))
    return PolicyBook(build_policy(settings.policy), clients, campaigns)
