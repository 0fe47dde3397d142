"""Typed AMI events and the bytes -> messages parser. Pure: no I/O, no clock.

* :class:`AmiParser` turns the raw AMI byte stream into header dicts (one per message).
* :func:`parse_event` turns one event's headers into a frozen, slotted dataclass.

Timestamps (``at``) are supplied by the caller's clock; nothing here reads the time.
"""
from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import AmiProtocolError

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent:
    """Base of every event about one channel (the call is keyed by ``uniqueid``)."""

    at: float
    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    channel_state: int = -1  # Asterisk ChannelState: 0 Down, 5 Ringing, 6 Up; -1 unknown
    channel_state_desc: str = ""
    pbx_at: float | None = None  # the PBX's own clock (Timestamp header, manager.conf timestampevents)


@dataclass(frozen=True, slots=True, kw_only=True)
class Newchannel(ChannelEvent):
    """A channel was created (for our Originate: uniqueid == the ChannelId we set)."""

    caller_id_num: str = ""
    context: str = ""
    exten: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Newstate(ChannelEvent):
    """The channel's state changed (Ringing, Up, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(ChannelEvent):
    """The channel is gone. ``cause`` is the Q.850 cause; 0 when absent or invalid."""

    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEvent(ChannelEvent):
    """Base of DialBegin/DialEnd. The channel fields describe the caller, which is
    absent (empty ``uniqueid``) when the dial comes from an Originate; ``dest_*`` is
    the dialled channel (for an Originate: our call, uniqueid == ChannelId)."""

    dest_channel: str = ""
    dest_uniqueid: str = ""
    dest_linkedid: str = ""
    dest_channel_state: int = -1
    dial_string: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialBegin(DialEvent):
    """A dial started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEnd(DialEvent):
    """A dial ended with ``dial_status`` (ANSWER, BUSY, NOANSWER, CONGESTION, ...)."""

    dial_status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEnter(ChannelEvent):
    """The channel entered a bridge (it is talking to someone)."""

    bridge_uniqueid: str = ""
    bridge_num_channels: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeLeave(ChannelEvent):
    """The channel left a bridge."""

    bridge_uniqueid: str = ""
    bridge_num_channels: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class VarSet(ChannelEvent):
    """A channel variable was set (read class ``dialplan``)."""

    variable: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(ChannelEvent):
    """``UserEvent()`` from the dialplan (channel fields empty if sent by an action)."""

    userevent: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannel(ChannelEvent):
    """One live channel listed by CoreShowChannels (used by the resync)."""

    context: str = ""
    exten: str = ""
    application: str = ""
    application_data: str = ""
    duration: int = 0  # seconds
    bridge_id: str = ""
    caller_id_num: str = ""
    action_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateResponse:
    """Final fate of an async Originate. ``uniqueid`` is '' when no channel was made
    (Asterisk sends ``<null>``): match it by ``action_id`` then."""

    at: float
    action_id: str = ""
    response: str = ""  # 'Success' or 'Failure'
    reason: int = 0  # 0 failure, 1 hung up, 3 ring timeout, 4 answered, 5 busy, 8 congestion
    channel: str = ""
    uniqueid: str = ""
    context: str = ""
    exten: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FullyBooted:
    """Asterisk finished booting (sent after login to users with ``system`` read)."""

    at: float
    status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown:
    """Asterisk is stopping; the socket closes next."""

    at: float
    shutdown: str = ""  # 'Cleanly' or 'Uncleanly'
    restart: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactStatus:
    """A phone's registration changed (PJSIP, read class ``system``): ``status`` is Created,
    Removed (unregistered), Reachable, Unreachable (qualify failed), Updated, ..."""

    at: float
    aor: str = ""  # the phone's AOR, named like its endpoint (the collector's extension)
    endpoint: str = ""
    uri: str = ""
    status: str = ""

    @property
    def lost(self) -> bool:
        """The phone can no longer be reached: unregistered or failing its qualify."""
        return self.status in ("Removed", "Unreachable")


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent:
    """Any event not modelled above, or a modelled one too broken to use."""

    at: float
    name: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


AmiEvent = (
    Newchannel | Newstate | Hangup | DialBegin | DialEnd | BridgeEnter | BridgeLeave
    | VarSet | UserEvent | CoreShowChannel | OriginateResponse | FullyBooted | Shutdown
    | ContactStatus | UnknownEvent
)


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _seconds(text: str) -> int:
    """'HH:MM:SS' (CoreShowChannel Duration) -> seconds; 0 when invalid."""
    total = 0
    for part in text.split(":"):
        value = _int(part, -1)
        if value < 0:
            return 0
        total = total * 60 + value
    return total


def _epoch(text: str) -> float | None:
    """An AMI Timestamp ('1796286630.384228'); None when absent or not a sane time."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value < 1e11 else None


def _chan(h: Mapping[str, str], at: float) -> dict[str, object]:
    return dict(
        at=at, channel=h.get("channel", ""), uniqueid=h.get("uniqueid", ""),
        linkedid=h.get("linkedid", ""), channel_state=_int(h.get("channelstate", ""), -1),
        channel_state_desc=h.get("channelstatedesc", ""), pbx_at=_epoch(h.get("timestamp", "")),
    )


def _dest(h: Mapping[str, str]) -> dict[str, object]:
    return dict(
        dest_channel=h.get("destchannel", ""), dest_uniqueid=h.get("destuniqueid", ""),
        dest_linkedid=h.get("destlinkedid", ""),
        dest_channel_state=_int(h.get("destchannelstate", ""), -1),
        dial_string=h.get("dialstring", ""),
    )


_Builder = Callable[[Mapping[str, str], float, Mapping[str, str]], object]
_BUILDERS: dict[str, _Builder] = {
    "newchannel": lambda h, at, raw: Newchannel(
        **_chan(h, at), caller_id_num=h.get("calleridnum", ""),
        context=h.get("context", ""), exten=h.get("exten", "")),
    "newstate": lambda h, at, raw: Newstate(**_chan(h, at)),
    "hangup": lambda h, at, raw: Hangup(
        **_chan(h, at), cause=_int(h.get("cause", ""), 0), cause_txt=h.get("cause-txt", "")),
    "dialbegin": lambda h, at, raw: DialBegin(**_chan(h, at), **_dest(h)),
    "dialend": lambda h, at, raw: DialEnd(
        **_chan(h, at), **_dest(h), dial_status=h.get("dialstatus", "")),
    "bridgeenter": lambda h, at, raw: BridgeEnter(
        **_chan(h, at), bridge_uniqueid=h.get("bridgeuniqueid", ""),
        bridge_num_channels=_int(h.get("bridgenumchannels", ""), 0)),
    "bridgeleave": lambda h, at, raw: BridgeLeave(
        **_chan(h, at), bridge_uniqueid=h.get("bridgeuniqueid", ""),
        bridge_num_channels=_int(h.get("bridgenumchannels", ""), 0)),
    "varset": lambda h, at, raw: VarSet(
        **_chan(h, at), variable=h.get("variable", ""), value=h.get("value", "")),
    "userevent": lambda h, at, raw: UserEvent(
        **_chan(h, at), userevent=h.get("userevent", ""), headers=raw),
    "coreshowchannel": lambda h, at, raw: CoreShowChannel(
        **_chan(h, at), context=h.get("context", ""),
        exten=h.get("exten") or h.get("extension", ""),  # 'Extension' before Asterisk 12
        application=h.get("application", ""), application_data=h.get("applicationdata", ""),
        duration=_seconds(h.get("duration", "")), bridge_id=h.get("bridgeid", ""),
        caller_id_num=h.get("calleridnum", ""), action_id=h.get("actionid", "")),
    "originateresponse": lambda h, at, raw: OriginateResponse(
        at=at, action_id=h.get("actionid", ""), response=h.get("response", ""),
        reason=_int(h.get("reason", ""), 0), channel=h.get("channel", ""),
        uniqueid="" if h.get("uniqueid", "") == "<null>" else h.get("uniqueid", ""),
        context=h.get("context", ""), exten=h.get("exten", "")),
    "fullybooted": lambda h, at, raw: FullyBooted(at=at, status=h.get("status", "")),
    "contactstatus": lambda h, at, raw: ContactStatus(
        at=at, aor=h.get("aor", ""), endpoint=h.get("endpointname", ""), uri=h.get("uri", ""),
        status=h.get("contactstatus", "")),
    "shutdown": lambda h, at, raw: Shutdown(
        at=at, shutdown=h.get("shutdown", ""), restart=h.get("restart", "").lower() == "true"),
}
# Events about a channel that are useless without the channel's Uniqueid.
_NEEDS_UNIQUEID = frozenset(
    {"newchannel", "newstate", "hangup", "bridgeenter", "bridgeleave", "varset",
     "coreshowchannel"})


def parse_event(headers: Mapping[str, str], at: float) -> AmiEvent:
    """Build the typed event for one AMI event's headers. Never raises on garbage:
    header names are case-insensitive, non-str items are ignored, invalid numbers take
    defaults (a non-numeric Cause is 0), and an event missing the header it is keyed
    by (Uniqueid; Uniqueid or DestUniqueid for Dial*) becomes :class:`UnknownEvent`."""
    raw = MappingProxyType(
        {k: v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)})
    h = {k.lower(): v.strip() for k, v in raw.items()}
    name = h.get("event", "")
    key = name.lower()
    builder = _BUILDERS.get(key)
    broken = (key in _NEEDS_UNIQUEID and not h.get("uniqueid")) or (
        key in ("dialbegin", "dialend") and not (h.get("uniqueid") or h.get("destuniqueid")))
    if builder is None or broken:
        return UnknownEvent(at=at, name=name, headers=raw)
    return builder(h, at, raw)  # type: ignore[return-value]


BANNER_PREFIX = "Asterisk Call Manager/"


class AmiParser:
    """Incremental AMI stream parser: ``feed(bytes) -> list[dict[str, str]]``.

    * UTF-8 is decoded incrementally (a character split across reads survives;
      invalid bytes become U+FFFD instead of failing).
    * Messages end at an empty line (``\\r\\n\\r\\n``; a bare ``\\n`` is tolerated).
    * The ``Asterisk Call Manager/x.y`` banner is recorded in :attr:`banner`.
    * Lines without ``:`` are ignored. A repeated header's values are joined with
      ``\\n`` (e.g. Command ``Output:`` lines).
    * Bounded memory: a line longer than ``max_line`` characters or a message larger
      than ``max_message`` raises :class:`AmiProtocolError`; discard the parser then.
    """

    def __init__(self, *, max_line: int = 64 * 1024, max_message: int = 1024 * 1024) -> None:
        self.max_line = max_line
        self.max_message = max_message
        self.banner: str | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._message: dict[str, str] = {}
        self._size = 0
        self._first_line = True

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """Consume bytes; return every message completed by them, in order."""
        lines = (self._partial + self._decoder.decode(data)).split("\n")
        self._partial = lines.pop()
        if len(self._partial) > self.max_line:
            raise AmiProtocolError(f"AMI line longer than {self.max_line} characters")
        out: list[dict[str, str]] = []
        for raw in lines:
            line = raw.rstrip("\r")
            if len(line) > self.max_line:
                raise AmiProtocolError(f"AMI line longer than {self.max_line} characters")
            first, self._first_line = self._first_line, False
            if not line.strip():
                if self._message:
                    out.append(self._message)
                    self._message, self._size = {}, 0
                continue
            if first and line.startswith(BANNER_PREFIX):
                self.banner = line[len(BANNER_PREFIX):].strip()
                continue
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep or not key:
                continue
            value = value[1:] if value.startswith(" ") else value
            self._size += len(line)
            if self._size > self.max_message:
                raise AmiProtocolError(f"AMI message larger than {self.max_message} characters")
            old = self._message.get(key)
            self._message[key] = value if old is None else f"{old}\n{value}"
        return out


__all__ = [
    "AmiEvent", "AmiParser", "BridgeEnter", "BridgeLeave", "ChannelEvent", "CoreShowChannel",
    "DialBegin", "DialEvent", "DialEnd", "FullyBooted", "Hangup", "Newchannel", "Newstate",
    "OriginateResponse", "Shutdown", "UnknownEvent", "UserEvent", "VarSet", "parse_event",
]
