"""Pure dialing policy: call window, frequency caps, suppressions, audit.

No I/O, no clock reads: ``now`` is always a parameter.  The entry point is
:func:`decide`; :func:`audit` re-checks stored attempts independently of it.
"""
from .audit import AuditedAttempt, AuditReport, Breach, audit
from .decide import decide
from .model import (
    Allowed,
    Appointment,
    AttemptRecord,
    Blocked,
    Caps,
    CaseFacts,
    DayWindow,
    Decision,
    PhoneFacts,
    PolicySettings,
    PolicySettingsError,
    every_day,
    validate_settings,
)
from .profiles import PROFILES, profile, with_overrides
from .window import in_window, next_window_open, window_violation
from .zones import candidate_zones

__all__ = [
    "Allowed", "Appointment", "AttemptRecord", "AuditReport", "AuditedAttempt", "Blocked",
    "Breach", "Caps", "CaseFacts", "DayWindow", "Decision", "PROFILES", "PhoneFacts",
    "PolicySettings", "PolicySettingsError", "audit", "candidate_zones", "decide",
    "every_day", "in_window", "next_window_open", "profile", "validate_settings",
    "window_violation", "with_overrides",
]
