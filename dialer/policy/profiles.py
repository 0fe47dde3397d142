"""Named rule profiles and per-client/campaign overrides.

The shipped profiles carry no caller IDs: approved numbers are per client, so a profile
used as-is blocks every call with ``caller_id`` until ``with_overrides`` supplies a pool.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import time
from typing import Any

from .model import Caps, PolicySettings, PolicySettingsError, every_day, validate_settings

PROFILES: dict[str, PolicySettings] = {
    # The client contract (default, China): 08:00-21:00 every day, modest caps.
    "client-default": PolicySettings(
        name="client-default",
        windows=every_day(time(8, 0), time(21, 0)),
        last_dial_margin_min=0,
        caps=Caps(attempts_per_number_per_day=3, min_gap_minutes=15),
        appointment_tolerance_min=5,
    ),
    # 2026 Chinese banking-association guideline + internet-finance standard.
    "cn-banking-2026": PolicySettings(
        name="cn-banking-2026",
        windows=every_day(time(8, 0), time(22, 0)),
        caps=Caps(unanswered_per_number_per_day=6, connected_per_case_per_day=3),
        appointment_tolerance_min=5,
    ),
    # US FDCPA / Regulation F: 7-in-7 and 7 days quiet after a conversation.
    "us-reg-f": PolicySettings(
        name="us-reg-f",
        windows=every_day(time(8, 0), time(21, 0)),
        caps=Caps(max_per_case_7d=7, quiet_days_after_conversation=7),
        appointment_tolerance_min=5,
    ),
}

for _p in PROFILES.values():
    validate_settings(_p)

DEFAULT_PROFILE = "client-default"


def profile(name: str) -> PolicySettings:
    """The named profile; unknown names raise ``PolicySettingsError``."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(PROFILES))
        raise PolicySettingsError(f"profile: unknown profile {name!r} (known: {known})") from None


def with_overrides(base: PolicySettings, **changes: Any) -> PolicySettings:
    """A validated copy of ``base`` with fields replaced.

    ``caps`` may be given as a dict of cap fields to change (the others are kept).
    Unknown field names raise ``PolicySettingsError`` naming them.
    """
    caps = changes.pop("caps", None)
    if isinstance(caps, dict):
        try:
            changes["caps"] = replace(base.caps, **caps)
        except TypeError as exc:
            raise PolicySettingsError(f"caps: {exc}") from None
    elif caps is not None:
        changes["caps"] = caps
    try:
        updated = replace(base, **changes)
    except TypeError as exc:
        raise PolicySettingsError(f"overrides: {exc}") from None
    return validate_settings(updated)
