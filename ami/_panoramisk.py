"""Boundary with panoramisk 1.4 -- the only module of dunline that imports it.

We keep panoramisk's pieces that work: :class:`panoramisk.actions.Action` (ActionID
generation, case-insensitive headers, the future) and :class:`AMIProtocol` (its
pending-action registry ``responses`` and ``send``). We replace what is broken
(see /work/shared/notes/ami-agi.md):

* ``data_received`` decoded each chunk with ``errors='ignore'`` (split UTF-8 characters
  dropped) and had unbounded buffering -> our :class:`~ami.events.AmiParser`.
* completion was guessed from message text (an async Originate only resolved with its
  OriginateResponse, which then never reached event handlers; a list action answered
  ``Response: Error`` never resolved) -> :meth:`AmiAction.add_message`: a plain action
  completes on its first ``Response``; a list action on an error or on its
  ``...Complete`` event. Events sharing an action's ActionID are NOT swallowed
  (OriginateResponse reaches subscribers).
* ``close``/``connection_lost`` queued pending actions for a re-send after reconnect
  (duplicate Originate) and told the Manager to reconnect every 2 s -> we never queue
  anything: every pending future fails now (AmiDisconnected, or AmiOutcomeUnknown for
  a non-idempotent action already written), and reconnecting is ami.link's job.
* ``panoramisk.Manager`` is not used at all (no login result, no backoff, unchecked
  Ping, replay on FullyBooted, handlers spawned without references).
* Serialization uses CRLF explicitly: importing ``panoramisk.testing`` anywhere in the
  process changes panoramisk's global EOL. A header dict value would be serialized as
  its repr, so callers pass lists for repeated headers (``Variable``).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from panoramisk import actions as _pk_actions
from panoramisk.ami_protocol import AMIProtocol

from .errors import AmiDisconnected, AmiOutcomeUnknown, AmiProtocolError
from .events import AmiParser

log = logging.getLogger(__name__)

HeaderValue = str | int | float | bool | Sequence[str]

# Actions that are harmless to repeat or that change nothing. Any other action that
# was written when the link died (or timed out) fails with AmiOutcomeUnknown.
IDEMPOTENT_ACTIONS = frozenset({
    "ping", "login", "logoff", "challenge", "events", "coreshowchannels", "corestatus",
    "coresettings", "status", "getvar", "setvar", "hangup", "listcommands",
    "showdialplan", "pjsipshowendpoints", "pjsipshowendpoint", "pjsipshowcontacts",
    "pjsipshowregistrationsoutbound", "queuestatus", "queuesummary", "dbget",
})
_SUCCESS = frozenset({"success", "follows", "goodbye"})


def _text(name: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif not isinstance(value, (str, int, float)):
        raise TypeError(f"AMI header {name!r}: unsupported value {value!r}")
    text = str(value)
    if "\r" in text or "\n" in text:
        raise ValueError(f"AMI header {name!r}: CR/LF not allowed in {text!r}")
    return text


def normalize_headers(headers: Mapping[str, HeaderValue]) -> dict[str, str | list[str]]:
    """Validate headers (no CR/LF injection) and turn values into str, or a list of
    str for a repeated header."""
    out: dict[str, str | list[str]] = {}
    for name, value in headers.items():
        if not name or any(c in name for c in ":\r\n "):
            raise ValueError(f"invalid AMI header name {name!r}")
        if isinstance(value, (list, tuple)):
            out[name] = [_text(name, v) for v in value]
        else:
            out[name] = _text(name, value)
    return out


def is_success(response: Mapping[str, str]) -> bool:
    """True for ``Response: Success`` (or Follows/Goodbye)."""
    return response.get("Response", "").strip().lower() in _SUCCESS


MAX_CHANNEL_ID = 149  # Asterisk AST_MAX_PUBLIC_UNIQUEID
# Asterisk splits each Variable header on ',' and strips quotes/backslashes from it.
_BAD_VAR_CHARS = frozenset(',"\\\r\n')


def originate_headers(
    channel: str, *, context: str, exten: str, priority: int, channel_id: str,
    variables: Mapping[str, str] | None, caller_id: str | None, timeout_ms: int,
    account: str | None,
) -> dict[str, HeaderValue]:
    """Headers of an async Originate, validated (ValueError): ChannelId 1..149
    characters; variable names without '='; no comma, quote, backslash or CR/LF in
    variables (Asterisk would split or unquote them). One ``Variable:`` line each."""
    if not channel_id or len(channel_id) > MAX_CHANNEL_ID:
        raise ValueError(f"channel_id must be 1..{MAX_CHANNEL_ID} characters")
    headers: dict[str, HeaderValue] = {
        "Action": "Originate", "Channel": channel, "Context": context, "Exten": exten,
        "Priority": priority, "ChannelId": channel_id, "Timeout": timeout_ms, "Async": "true"}
    if caller_id is not None:
        headers["CallerID"] = caller_id
    if account is not None:
        headers["Account"] = account
    pairs = [(str(k), str(v)) for k, v in (variables or {}).items()]
    for key, value in pairs:
        if not key or "=" in key or _BAD_VAR_CHARS & set(key + value):
            raise ValueError(f"originate variable {key!r}={value!r}: '=' in the name, or a "
                             "comma, quote, backslash or CR/LF")
    if pairs:
        headers["Variable"] = [f"{k}={v}" for k, v in pairs]
    return headers


class AmiAction(_pk_actions.Action):
    """One action in flight: panoramisk's Action with explicit completion rules.

    ``future`` resolves to the Response headers dict, or for a list action
    (``collect=True``) to ``(response, [event headers...])`` (the terminating
    ``...Complete`` event excluded)."""

    def __init__(self, headers: Mapping[str, HeaderValue], *, collect: bool = False) -> None:
        clean = normalize_headers(headers)
        if "action" not in {k.lower() for k in clean}:
            raise ValueError("AMI action without 'Action' header")
        if "actionid" in {k.lower() for k in clean}:
            raise ValueError("ActionID is generated by the link")
        super().__init__(clean)
        self.name = str(self["Action"])
        self.collect = collect
        self.sent = False  # True once handed to the transport
        self.response: dict[str, str] | None = None
        self.events: list[dict[str, str]] = []

    @property
    def idempotent(self) -> bool:
        """Whether failing it with AmiDisconnected (caller may retry) is safe."""
        return self.name.lower() in IDEMPOTENT_ACTIONS

    def __str__(self) -> str:
        lines = [f"Action: {self['Action']}", f"ActionID: {self['ActionID']}"]
        for key, value in self.items():
            if key.lower() in ("action", "actionid"):
                continue
            values = value if isinstance(value, list) else [value]
            lines.extend(f"{key}: {v}" for v in values)
        return "\r\n".join(lines) + "\r\n\r\n"

    def add_message(self, message: dict[str, str]) -> bool:  # type: ignore[override]
        """Take one message with our ActionID; return True (and resolve) when done."""
        if self.response is None:
            self.response = message
            if not self.collect or not is_success(message):
                return self._resolve(message)
            return False
        name = message.get("Event", "")
        if name.endswith("Complete") or message.get("EventList", "").lower() == "complete":
            return self._resolve((self.response, self.events))
        self.events.append(message)
        return False

    def wants(self, message: dict[str, str]) -> bool:
        """Whether a message carrying our ActionID is part of our reply: the first
        Response (not an event), then, for a list action, its events."""
        if "Event" not in message:
            return self.response is None and "Response" in message
        return self.collect and self.response is not None

    def _resolve(self, result: object) -> bool:
        if not self.future.done():
            self.future.set_result(result)
        return True


class AmiProtocol(AMIProtocol):
    """panoramisk's protocol with our parser, completion rules and no replay.

    Unmatched events go to ``on_event(protocol, headers)``. ``lost`` resolves with
    the reason once the transport is really closed."""

    def __init__(self, on_event: Callable[[AmiProtocol, dict[str, str]], None]) -> None:
        self._on_event = on_event
        self.parser = AmiParser()
        self.reason: str | None = None
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self.log = log

    @property
    def banner(self) -> str | None:
        """The version from the ``Asterisk Call Manager/x.y`` banner, once seen."""
        return self.parser.banner

    def send(self, data: AmiAction, as_list: bool | None = None) -> asyncio.Future:  # type: ignore[override]
        """Register and write the action; AmiDisconnected if the link is closing."""
        if self.closed or self.reason is not None or self.transport.is_closing():
            raise AmiDisconnected(f"{data.name}: AMI connection is closed")
        future = super().send(data, as_list=None)
        data.sent = True
        return future

    def forget(self, action: AmiAction) -> None:
        """Stop waiting for a reply to ``action`` (timed out or cancelled)."""
        if self.responses.get(action.id) is action:
            del self.responses[action.id]

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.parser.feed(data)
        except AmiProtocolError as exc:
            self.shutdown(f"protocol error: {exc}")
            return
        for message in messages:
            if self.reason is not None:
                return
            self.handle_message(message)

    def handle_message(self, message: dict[str, str]) -> None:  # type: ignore[override]
        action = self.responses.get(message.get("ActionID", ""))
        if action is not None and action.wants(message):
            if action.add_message(message):
                self.forget(action)
        elif "Event" in message:
            self._on_event(self, message)
        else:
            log.debug("AMI reply to no pending action: %r", message)

    def shutdown(self, reason: str) -> None:
        """Drop the connection now: fail pending actions, abort the transport."""
        if self.reason is None:
            self.reason = reason
        self._fail_pending()
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def close(self) -> None:
        """panoramisk's close() queued pending actions for a re-send: never do that."""
        self.shutdown("closed")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reason is None:
            self.reason = f"connection lost: {exc!r}" if exc else "connection closed by peer"
        self.closed = True
        self._fail_pending()
        if not self.lost.done():
            self.lost.set_result(self.reason)

    def _fail_pending(self) -> None:
        pending = {id(a): a for a in self.responses.values()}.values()
        self.responses.clear()
        for action in pending:
            if action.future.done():
                continue
            if action.sent and not action.idempotent:
                action.future.set_exception(AmiOutcomeUnknown(
                    f"{action.name} was sent, then the AMI link dropped ({self.reason}); "
                    "its outcome is unknown: do not re-send, reconcile",
                    action=action.name, action_id=action.id))
            else:
                action.future.set_exception(
                    AmiDisconnected(f"{action.name}: AMI link dropped ({self.reason})"))
