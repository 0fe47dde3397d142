"""dunline.ami: Asterisk Manager Interface link, typed events and a pure call tracker.

* :class:`AmiLink` -- supervised connection (login, resync, keepalive, reconnect).
* :func:`parse_event` / :class:`AmiParser` -- pure bytes -> headers -> typed events.
* :class:`CallTracker` -- pure call state from events.

panoramisk is used inside ``ami/`` only; nothing of it is exported.
"""
from .errors import (
    AmiActionError, AmiDisconnected, AmiError, AmiLoginError, AmiOutcomeUnknown,
    AmiProtocolError, AmiTimeout,
)
from .events import (
    AmiEvent, AmiParser, BridgeEnter, BridgeLeave, ChannelEvent, ContactStatus, CoreShowChannel, DialBegin,
    DialEnd, DialEvent, FullyBooted, Hangup, Newchannel, Newstate, OriginateResponse,
    Shutdown, UnknownEvent, UserEvent, VarSet, parse_event,
)
from .link import AmiLink, LinkDown, LinkItem, LinkState, LinkUp, Resynced, backoff_delay
from .tracker import CallState, CallTracker, CallUpdate, UpdateKind

__all__ = [
    "AmiActionError", "AmiDisconnected", "AmiError", "AmiLoginError", "AmiOutcomeUnknown",
    "AmiProtocolError", "AmiTimeout",
    "AmiEvent", "AmiParser", "BridgeEnter", "BridgeLeave", "ChannelEvent", "ContactStatus", "CoreShowChannel",
    "DialBegin", "DialEnd", "DialEvent", "FullyBooted", "Hangup", "Newchannel", "Newstate",
    "OriginateResponse", "Shutdown", "UnknownEvent", "UserEvent", "VarSet", "parse_event",
    "AmiLink", "LinkDown", "LinkItem", "LinkState", "LinkUp", "Resynced", "backoff_delay",
    "CallState", "CallTracker", "CallUpdate", "UpdateKind",
]
