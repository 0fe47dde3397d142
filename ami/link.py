"""AmiLink: one supervised AMI connection (connect, login, resync, keepalive, reconnect).

Life of a session::

    connecting -> logging_in -> resyncing -> up -> (lost) -> backoff -> connecting ...

* Login is checked; a wrong secret during :meth:`AmiLink.start` is fatal
  (AmiLoginError), later ones are retried with backoff and counted.
* Every login runs CoreShowChannels and publishes ``Resynced`` then ``LinkUp`` before
  any event of that session (events arriving meanwhile are held back, in order).
* Own Ping every ``ping_interval``; no reply within ``ping_timeout`` drops the link.
* On loss: every pending action fails (AmiDisconnected, or AmiOutcomeUnknown for a
  non-idempotent action already written). Nothing is ever re-sent.
* Reconnect after ``backoff_delay()``: exponential, equal jitter, capped.

Subscribers get, in order: typed events (ami.events), Resynced, LinkUp, LinkDown.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ._panoramisk import AmiAction, AmiProtocol, HeaderValue, is_success, originate_headers
from .errors import (
    AmiActionError, AmiDisconnected, AmiError, AmiLoginError, AmiOutcomeUnknown, AmiTimeout,
)
from .events import AmiEvent, CoreShowChannel, parse_event

log = logging.getLogger(__name__)


class LinkState(str, Enum):
    """Where the supervised connection is."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    LOGGING_IN = "logging_in"
    RESYNCING = "resyncing"
    UP = "up"
    BACKOFF = "backoff"


@dataclass(frozen=True, slots=True)
class Resynced:
    """Every live channel after a (re)login; feed it to ``CallTracker.resync``."""

    channels: tuple[CoreShowChannel, ...]
    at: float


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The link is usable again (published right after Resynced)."""

    at: float
    logins: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The link went down (or was stopped); calls' fate is unknown until Resynced."""

    reason: str
    at: float


LinkItem = AmiEvent | Resynced | LinkUp | LinkDown


def backoff_delay(attempt: int, initial: float, maximum: float, jitter: float) -> float:
    """Delay before reconnect ``attempt`` (0-based); ``jitter`` in [0, 1).
    Equal jitter: half of the exponential step is fixed, so delays never decrease
    until the cap, and peers do not reconnect in lockstep."""
    step = min(maximum, initial * 2 ** min(attempt, 62))
    return step / 2 + step / 2 * jitter


class AmiLink:
    """A supervised AMI connection built on panoramisk (see ami/_panoramisk.py)."""

    def __init__(
        self, host: str, port: int, username: str, secret: str, *,
        ping_interval: float = 5.0, ping_timeout: float = 3.0, action_timeout: float = 10.0,
        backoff_initial: float = 0.5, backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic, event_queue_size: int = 10000,
        rng: random.Random | None = None,
    ) -> None:
        """Nothing happens until start(). ``clock`` stamps events and markers (``at``);
        ``rng`` draws the backoff jitter; ``event_queue_size`` bounds each subscriber
        queue (and the events held back during a resync)."""
        if min(ping_interval, ping_timeout, action_timeout, backoff_initial) <= 0:
            raise ValueError("intervals and timeouts must be > 0")
        if backoff_max < backoff_initial or event_queue_size < 1:
            raise ValueError("backoff_max < backoff_initial or event_queue_size < 1")
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.action_timeout = action_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self._clock, self._rng = clock, rng or random.Random()
        self.event_queue_size = event_queue_size
        self._state = LinkState.STOPPED
        self._supervisor: asyncio.Task[None] | None = None
        self._protocol: AmiProtocol | None = None
        self._held: deque[AmiEvent] | None = None  # events held back during login/resync
        self._ready: asyncio.Future[None] | None = None
        self._was_up = False  # whether the current/last session reached 'up'
        self._subscribers: list[asyncio.Queue[LinkItem]] = []
        self.drops = 0  #: up sessions lost (not counting stop())
        self.logins = 0  #: successful logins
        self.consecutive_failures = 0  #: attempts in a row that did not reach 'up'
        self.consecutive_login_failures = 0  #: Login rejections in a row (alarm on it)
        self.dropped_events = 0  #: items dropped because a subscriber queue was full
        self.last_error = ""
        self.last_ping_rtt: float | None = None  #: seconds the last Ping took (watchdog)
        self.server_version: str | None = None

    @property
    def state(self) -> LinkState:
        """Current LinkState."""
        return self._state

    @property
    def connected(self) -> bool:
        """True when logged in and resynced: actions can be sent."""
        return self._state is LinkState.UP

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, login_timeout: float = 10.0) -> None:
        """Start the supervisor and wait until the first session is up (resynced).

        Raises AmiLoginError if Asterisk rejects the credentials (or refuses
        CoreShowChannels) during this first attempt -- the link is then stopped.
        Raises AmiTimeout if not up within ``login_timeout`` (connection refused,
        no reply...): the link then KEEPS retrying in the background; call stop() to
        give up. Later login failures never raise: they are retried and counted."""
        if self._supervisor is not None:
            raise RuntimeError("AmiLink already started")
        ready = self._ready = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ami:{self.host}")
        try:
            async with asyncio.timeout(login_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            self._ready = None
            ready.cancel()
            raise AmiTimeout(f"AMI {self.host}:{self.port} not up after {login_timeout}s "
                             f"(last error: {self.last_error or 'none'}); still retrying"
                             ) from None
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Cancel the supervisor, fail pending actions, close the socket; no task left."""
        task, self._supervisor = self._supervisor, None
        if task is None:
            return
        protocol = self._protocol
        while not task.done():  # loop: a cancel can be swallowed by library code
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI supervisor had failed: %r", task.exception())
        if protocol is not None:
            await asyncio.wait({protocol.lost}, timeout=1.0)
        self._state = LinkState.STOPPED

    # -- subscribers ---------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[LinkItem]:
        """A new bounded queue receiving every later item (events and markers).
        When full, the oldest item is dropped and counted in ``dropped_events``."""
        queue: asyncio.Queue[LinkItem] = asyncio.Queue(maxsize=self.event_queue_size)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LinkItem]) -> None:
        """Stop feeding ``queue``."""
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def _publish(self, item: LinkItem) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                self.dropped_events += 1
                if self.dropped_events & (self.dropped_events - 1) == 0:  # 1, 2, 4, 8...
                    log.warning("AMI subscriber queue full: %d item(s) dropped so far",
                                self.dropped_events)
            queue.put_nowait(item)

    def _on_event(self, protocol: AmiProtocol, headers: dict[str, str]) -> None:
        if protocol is not self._protocol:
            return
        event = parse_event(headers, self._clock())
        if self._held is None:
            self._publish(event)
            return
        if len(self._held) >= self.event_queue_size:
            self._held.popleft()
            self.dropped_events += 1
        self._held.append(event)

    # -- actions -------------------------------------------------------------------
    async def action(self, name: str, /, **headers: HeaderValue) -> dict[str, str]:
        """Send a simple action; return its Response headers. AmiActionError on
        ``Response: Error``; AmiTimeout/AmiDisconnected/AmiOutcomeUnknown otherwise."""
        return self._checked(await self._send({**headers, "Action": name}))

    async def list_action(self, name: str, /, **headers: HeaderValue) -> list[dict[str, str]]:
        """Send an EventList action (Status, CoreShowChannels...); return its events
        (without the final ``...Complete``)."""
        response, events = await self._send({**headers, "Action": name}, collect=True)
        self._checked(response)
        return events

    async def originate(
        self, channel: str, *, context: str, exten: str, priority: int = 1,
        channel_id: str, variables: Mapping[str, str] | None = None,
        caller_id: str | None = None, timeout_ms: int = 30000, account: str | None = None,
    ) -> dict[str, str]:
        """Async Originate; returns the Response (with ``ActionID``) once Asterisk says
        it is queued. The fate arrives later as an OriginateResponse event (same
        ActionID) and as channel events whose Uniqueid is ``channel_id``.
        ValueError on a bad argument (nothing sent); AmiActionError if refused;
        AmiDisconnected if the link is not up (nothing sent); AmiOutcomeUnknown if the
        link dropped or timed out after sending (never re-send: reconcile)."""
        headers = originate_headers(
            channel, context=context, exten=exten, priority=priority, channel_id=channel_id,
            variables=variables, caller_id=caller_id, timeout_ms=timeout_ms, account=account)
        return self._checked(await self._send(headers))

    def _checked(self, response: dict[str, str]) -> dict[str, str]:
        if not is_success(response):
            raise AmiActionError(response.get("Message", "") or "action failed", response)
        return response

    async def _send(self, headers: Mapping[str, HeaderValue], collect: bool = False) -> Any:
        protocol = self._protocol
        if self._state is not LinkState.UP or protocol is None:
            raise AmiDisconnected(f"{headers['Action']}: AMI link is {self._state.value}")
        return await self._request(protocol, headers, self.action_timeout, collect)

    async def _request(self, protocol: AmiProtocol, headers: Mapping[str, HeaderValue],
                       timeout: float, collect: bool = False) -> Any:
        action = AmiAction(headers, collect=collect)
        protocol.send(action)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: 3.11's can eat a cancel
                result = await action.future
        except TimeoutError:
            if action.sent and not action.idempotent:
                raise AmiOutcomeUnknown(
                    f"{action.name}: no reply within {timeout}s; outcome unknown, "
                    "do not re-send", action=action.name, action_id=action.id) from None
            raise AmiTimeout(f"{action.name}: no reply within {timeout}s") from None
        finally:
            protocol.forget(action)
        if isinstance(result, dict):
            result.setdefault("ActionID", action.id)
        return result

    # -- supervision -----------------------------------------------------------------
    async def _supervise(self) -> None:
        attempt = 0
        try:
            while True:
                try:
                    reason = await self._session(attempt)
                except AmiLoginError as exc:
                    self.consecutive_login_failures += 1
                    reason = str(exc)
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_exception(exc)
                        return
                    log.error("AMI login failed %d time(s) in a row: %s",
                              self.consecutive_login_failures, exc)
                except (OSError, AmiError, TimeoutError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # a bug must not kill the supervisor
                    log.exception("AMI session failed unexpectedly")
                    reason = f"unexpected {type(exc).__name__}: {exc}"
                self.last_error = reason
                if self._was_up:
                    attempt = 0
                else:
                    self.consecutive_failures += 1
                delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max,
                                      self._rng.random())
                attempt += 1
                log.warning("AMI %s:%s down (%s); reconnect attempt %d in %.3fs",
                            self.host, self.port, reason, attempt, delay)
                await asyncio.sleep(delay)
        finally:
            self._state = LinkState.STOPPED
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(AmiDisconnected("AMI link stopped during start()"))

    async def _session(self, attempt: int) -> str:
        """One connection, from connect to loss; returns why it ended."""
        self._state, self._held, self._was_up = LinkState.CONNECTING, deque(), False
        log.info("AMI connecting to %s:%s (attempt %d)", self.host, self.port, attempt + 1)
        try:
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(self.action_timeout):
                _, protocol = await loop.create_connection(
                    lambda: AmiProtocol(self._on_event), self.host, self.port)
            self._protocol = protocol
            self._state = LinkState.LOGGING_IN
            response = await self._request(protocol, {
                "Action": "Login", "Username": self.username, "Secret": self._secret,
                "Events": "on"}, self.action_timeout)
            if not is_success(response):
                raise AmiLoginError(f"AMI login as {self.username!r} refused: "
                                    f"{response.get('Message', '')}")
            self.logins += 1
            self.consecutive_login_failures = 0
            self.server_version = protocol.banner
            self._state = LinkState.RESYNCING
            response, listed = await self._request(
                protocol, {"Action": "CoreShowChannels"}, self.action_timeout, collect=True)
            if not is_success(response):
                raise AmiLoginError(f"CoreShowChannels refused for {self.username!r} "
                                    f"(needs write class 'reporting' or 'system'): "
                                    f"{response.get('Message', '')}")
            at = self._clock()
            channels = tuple(e for e in (parse_event(h, at) for h in listed)
                             if isinstance(e, CoreShowChannel))
            held, self._held = self._held, None
            self._state, self._was_up = LinkState.UP, True
            self.consecutive_failures = 0
            self._publish(Resynced(channels, at))
            self._publish(LinkUp(at, self.logins))
            for event in held:
                self._publish(event)
            log.info("AMI up (%s:%s, login #%d, %d live channel(s))",
                     self.host, self.port, self.logins, len(channels))
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            return await self._keepalive(protocol)
        finally:
            self._end_session()

    async def _keepalive(self, protocol: AmiProtocol) -> str:
        """Ping until the connection is lost; a missed pong drops it (half-open)."""
        while True:
            done, _ = await asyncio.wait({protocol.lost}, timeout=self.ping_interval)
            if done:
                return protocol.lost.result()
            sent = asyncio.get_running_loop().time()
            try:
                await self._request(protocol, {"Action": "Ping"}, self.ping_timeout)
                self.last_ping_rtt = asyncio.get_running_loop().time() - sent
            except AmiTimeout:
                protocol.shutdown(f"no pong within {self.ping_timeout}s")
            except AmiDisconnected:
                pass
            if protocol.reason is not None:
                return protocol.reason

    def _end_session(self) -> None:
        protocol, self._protocol, self._held = self._protocol, None, None
        self._state = LinkState.BACKOFF
        reason = "stopped"
        if protocol is not None:
            protocol.shutdown("stopped" if self._supervisor is None else "session ended")
            reason = protocol.reason or reason
        if self._was_up:
            if self._supervisor is not None:
                self.drops += 1
            self._publish(LinkDown(reason, self._clock()))


__all__ = ["AmiLink", "LinkDown", "LinkItem", "LinkState", "LinkUp", "Resynced",
           "backoff_delay"]
