"""Errors raised by the ``ami`` package.

Nothing from panoramisk or asyncio's transport layer leaks out of ``ami/``: every
failure is one of these classes.

The one rule callers must respect: :class:`AmiOutcomeUnknown` is *not* a subclass of
:class:`AmiDisconnected` or :class:`AmiTimeout`, so an ``except AmiDisconnected: retry``
never re-sends an Originate whose fate is unknown.
"""
from __future__ import annotations

from collections.abc import Mapping


class AmiError(Exception):
    """Base class of every error of the AMI link."""


class AmiLoginError(AmiError):
    """Asterisk rejected the Login (wrong username/secret, or ACL)."""


class AmiTimeout(AmiError):
    """No reply in time: login, an idempotent action, or the link itself.

    When raised for an idempotent action, nothing happened (or it is harmless to
    repeat). For a non-idempotent action already written, see AmiOutcomeUnknown.
    """


class AmiDisconnected(AmiError):
    """The link is down, or went down before the action could have had an effect.

    Safe to retry later: the action was either never written to the socket or is
    idempotent (Ping, Status, Getvar, Hangup, ...).
    """


class AmiOutcomeUnknown(AmiError):
    """A non-idempotent action (Originate, Redirect, ...) was written to the socket,
    and then the link dropped or no reply came in time.

    Asterisk may or may not have executed it. It must NEVER be re-sent: reconcile
    instead (an Originate is found again by its ChannelId, which is its Uniqueid).
    """

    def __init__(self, message: str, *, action: str = "", action_id: str = "") -> None:
        super().__init__(message)
        self.action = action
        self.action_id = action_id


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error`` (or another non-success) to an action."""

    def __init__(self, message: str, response: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.response: dict[str, str] = dict(response or {})


class AmiProtocolError(AmiError):
    """The peer broke the AMI framing (e.g. an endless line). It is the peer's fault;
    the link drops the connection and reconnects."""


__all__ = [
    "AmiError",
    "AmiLoginError",
    "AmiTimeout",
    "AmiDisconnected",
    "AmiOutcomeUnknown",
    "AmiActionError",
    "AmiProtocolError",
]
