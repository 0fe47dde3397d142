"""The FastAGI server: asyncio streams around the pure protocol of :mod:`.protocol`.

Asterisk runs ``AGI(agi://127.0.0.1:PORT/bind?attempt=...)``, connects, sends its
environment and then waits for our commands. One task per connection reads the
environment (bounded by ``header_timeout``), picks the handler by route and runs it with an
:class:`AgiSession`; while the handler runs, a reader task feeds every line to a
:class:`~.protocol.ReplyReader`, so a ``HANGUP`` line is seen as soon as it arrives and is
never taken for the reply to the next command. Every task is referenced and ended:
``close()`` stops accepting, drains, then cancels.
"""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from .admission import Admission, RateLimiter
from .errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
from .protocol import (FAILURE_LINE, MAX_LINE_BYTES, AgiReply, AgiRequest, EnvParser,
                       HangupNotice, Reply, ReplyReader, format_command, is_valid_route,
                       raise_for_reply)

Handler = Callable[["AgiSession"], Awaitable[None]]
# (request) -> None if it may be served, else why not (e.g. no valid token)
Authorize = Callable[[AgiRequest], "str | None"]
# (peer, the request if its environment arrived, reason): a refusal, for the audit trail
OnRefused = Callable[[str, "AgiRequest | None", str], None]
_APP_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_CLOSE_TIMEOUT = 2.0


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    """One ``\\n``-terminated line; EOF -> AgiHangup, overlong line -> AgiProtocolError."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise AgiHangup("connection closed by the PBX") from None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError(f"line longer than {MAX_LINE_BYTES} bytes") from None
    except ConnectionError as exc:
        raise AgiHangup(f"connection lost: {exc}") from None


class AgiSession:
    """One AGI conversation (one channel), handed to the route's handler.

    Commands are serialized; each raises AgiHangup once the channel is gone (HANGUP line,
    511, EOF), AgiCommandError on 510/520/other codes, AgiTimeout after ``timeout``
    seconds (default: the server's ``command_timeout``; a late reply is discarded).
    """

    def __init__(self, request: AgiRequest, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, command_timeout: float,
                 logger: logging.Logger) -> None:
        self.request = request
        self._reader, self._writer = reader, writer
        self._timeout = command_timeout
        self._log = logger
        self._state = ReplyReader()
        self._lock = asyncio.Lock()
        self._waiter: asyncio.Future[AgiReply] | None = None
        self._failure: AgiError | None = None  # the link is unusable (EOF, garbage, stalled write)
        self._pump = asyncio.get_running_loop().create_task(self._read_replies(),
                                                            name=f"agi-reader-{self.uniqueid}")

    @property
    def env(self) -> Mapping[str, str]:
        """The AGI environment (read-only)."""
        return self.request.env

    @property
    def route(self) -> str:
        """The route the request was dispatched on, e.g. ``bind``."""
        return self.request.route

    @property
    def query(self) -> Mapping[str, str]:
        """The URL query, percent-decoded (read-only)."""
        return self.request.query

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments after the URL in ``AGI(url,arg1,...)``."""
        return self.request.args

    @property
    def channel(self) -> str:
        return self.request.channel

    @property
    def uniqueid(self) -> str:
        return self.request.uniqueid

    @property
    def hung_up(self) -> bool:
        """True once the channel is known to be gone (HANGUP line, 511 or EOF)."""
        return self._state.hung_up or isinstance(self._failure, AgiHangup)

    async def command(self, name: str, *args: str | int, timeout: float | None = None) -> AgiReply:
        """Send one AGI command and return its 200 reply (see the class for errors)."""
        line = format_command(name, *args)
        limit = self._timeout if timeout is None else timeout
        async with self._lock:
            if self._failure is not None:
                raise type(self._failure)(str(self._failure))
            if self._pump.done():
                raise RuntimeError("AGI session used after its handler returned")
            waiter = asyncio.get_running_loop().create_future()
            self._state.expect(waiter)  # AgiHangup once hung up
            self._waiter, written = waiter, False
            try:
                async with asyncio.timeout(limit):
                    self._writer.write(line)
                    await self._writer.drain()
                    written = True
                    reply = await waiter
            except TimeoutError:
                if not written:  # a half-written command leaves the link in an unknown state
                    self._failure = AgiTimeout("the PBX stopped reading commands")
                raise AgiTimeout(f"{name}: no reply within {limit:g} s") from None
            except ConnectionError as exc:
                self._failure = AgiHangup(f"connection lost: {exc}")
                raise AgiHangup(str(self._failure)) from None
            finally:
                self._waiter = None
                if not waiter.done():
                    waiter.cancel()
        return raise_for_reply(reply)

    async def get_variable(self, name: str) -> str | None:
        """GET VARIABLE: the value (``""`` if set but empty), or None when unset."""
        reply = await self.command("GET VARIABLE", name)
        if reply.result == 1:
            return reply.data or ""
        if reply.result == 0:
            return None
        raise AgiCommandError(reply.code, f"unexpected GET VARIABLE reply: {reply.text}")

    async def set_variable(self, name: str, value: str) -> None:
        """SET VARIABLE name value."""
        await self.command("SET VARIABLE", name, value)

    async def exec(self, app: str, *args: str, timeout: float | None = None) -> int:
        """EXEC an application; ``args`` are joined with ``,`` into the application's single
        argument string. Returns the application's return code; -2 (no such
        application) raises AgiCommandError."""
        if not _APP_NAME.fullmatch(app):
            raise ValueError(f"invalid application name {app!r}")
        reply = await self.command("EXEC", app, *((",".join(args),) if args else ()), timeout=timeout)
        if reply.result == -2:
            raise AgiCommandError(reply.code, f"application {app!r} not found")
        if reply.result is None:
            raise AgiCommandError(reply.code, f"unexpected EXEC reply: {reply.text}")
        return reply.result

    async def verbose(self, message: str, level: int = 1) -> None:
        """VERBOSE: write ``message`` to the Asterisk console/log at ``level``."""
        await self.command("VERBOSE", message, level)

    async def hangup(self) -> None:
        """Hang up the channel; a no-op if it is already gone."""
        if not self.hung_up:
            try:
                await self.command("HANGUP")
            except AgiHangup:
                pass

    async def _read_replies(self) -> None:
        """Reader task: feed lines to the state machine and wake the waiting command."""
        try:
            while True:
                event = self._state.feed_line(await _read_line(self._reader))
                if isinstance(event, Reply):
                    if isinstance(event.tag, asyncio.Future) and not event.tag.done():
                        event.tag.set_result(event.reply)
                elif isinstance(event, HangupNotice):
                    self._log.info("AGI %s: channel %s hung up", self.route, self.channel)
                    self._wake(AgiHangup("the channel hung up"))
        except AgiError as exc:
            if isinstance(exc, AgiProtocolError):
                self._log.warning("AGI %s (uniqueid=%s): %s", self.route, self.uniqueid, exc)
            self._failure = exc
            self._wake(exc)
        except Exception as exc:  # a bug: keep the session consistent, never lose the error
            self._log.exception("AGI reader of %s (uniqueid=%s) failed", self.route, self.uniqueid)
            self._failure = AgiProtocolError(f"reader failed: {exc!r}")
            self._wake(self._failure)

    def _wake(self, exc: AgiError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(type(exc)(str(exc)))

    async def _stop_reader(self) -> None:
        """End the reader task (the server does this when the handler returns)."""
        self._pump.cancel()
        await asyncio.wait({self._pump})


@dataclasses.dataclass(slots=True)
class ServerStats:
    """Counters for health checks (``server.stats`` returns a snapshot)."""

    connections: int = 0  # TCP connections accepted
    rejected: int = 0  # closed at once: too many pending or sessions, or shutting down
    evicted: int = 0  # pending connections closed, idle, to make room for a new one
    refused: int = 0  # environment arrived, but `authorize` said no (e.g. no valid token)
    header_failures: int = 0  # closed before a valid environment (EOF, timeout, garbage)
    unknown_routes: int = 0  # no handler for the route (and no fallback)
    sessions: int = 0  # handlers started
    hangups: int = 0  # handlers ended by AgiHangup
    errors: int = 0  # handler exceptions and protocol errors
    active: int = 0  # connections being served now (reading the environment or in a handler)


class FastAgiServer:
    """Serves FastAGI requests on ``host:port`` (``port=0``: any free port, see ``.port``).

    ``routes`` maps a route (``bind``, ``calls/ended``) to an async handler; ``fallback``
    handles unknown routes (without one they are logged and closed). A connection waits as
    *pending* until its environment arrives (``agi_scripts/admission.py``: limits per peer
    and in all, the oldest idle one evicted for a newcomer); then ``authorize`` (if given)
    decides whether it may be served at all (a refusal is counted, logged at a bounded rate
    and passed to ``on_refused``); at most ``max_sessions`` authorized handlers run at once.
    Whenever a connection ends without its handler completing (refused, garbled, unknown
    route, handler exception, cancelled by ``close()``), a ``FAILURE`` line goes out first
    so the dialplan continues with AGISTATUS=FAILURE; a plain close would read as SUCCESS.
    """

    def __init__(self, routes: Mapping[str, Handler], *, host: str = "127.0.0.1", port: int = 0,
                 header_timeout: float = 5.0, command_timeout: float = 30.0,
                 max_sessions: int = 200, fallback: Handler | None = None,
                 logger: logging.Logger | None = None, authorize: Authorize | None = None,
                 on_refused: OnRefused | None = None, max_pending: int = 256, max_pending_per_peer: int = 128,
                 evict_idle_after_s: float = 0.1) -> None:
        for route, handler in routes.items():
            if not is_valid_route(route) or not callable(handler):
                raise ValueError(f"invalid AGI route {route!r} (or its handler is not callable)")
        if header_timeout <= 0 or command_timeout <= 0 or max_sessions < 1:
            raise ValueError("timeouts must be > 0 and max_sessions >= 1")
        self._routes, self._fallback = dict(routes), fallback
        self._host, self._port = host, port
        self._header_timeout, self._command_timeout = header_timeout, command_timeout
        self._max_sessions = max_sessions
        self._log = logger or logging.getLogger("dunline.agi")
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions = 0  # authorized handlers running
        self._writers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._admission = Admission(max_pending=max_pending, max_per_peer=max_pending_per_peer,
                                    evict_idle_after_s=evict_idle_after_s)
        self._authorize, self._on_refused = authorize, on_refused
        self._refusal_log = RateLimiter(burst=10, window_s=10.0)
        self._noise_log = RateLimiter(burst=10, window_s=10.0)  # connections that never became requests
        self._stats = ServerStats()
        self._closing = False

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAgiServer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def stats(self) -> ServerStats:
        return dataclasses.replace(self._stats, active=len(self._tasks))

    @property
    def suppressed_refusal_logs(self) -> int:
        """Log lines a flood did not get to write (refusals and broken connections)."""
        return self._refusal_log.total_suppressed + self._noise_log.total_suppressed

    async def start(self) -> None:
        if self._server is not None or self._closing:
            raise RuntimeError("FastAgiServer.start() called twice or after close()")
        self._server = await asyncio.start_server(self._accept, self._host, self._port,
                                                  limit=MAX_LINE_BYTES)

    async def close(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting; let sessions finish for ``drain_timeout`` s; cancel the rest."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=drain_timeout)
            if pending:
                self._log.warning("cancelling %d FastAGI sessions after %.1f s", len(pending), drain_timeout)
                for task in pending:
                    task.cancel()
                _, stuck = await asyncio.wait(pending, timeout=_CLOSE_TIMEOUT + 1.0)
                if stuck:
                    self._log.error("%d FastAGI sessions ignored cancellation", len(stuck))
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), _CLOSE_TIMEOUT)
            except TimeoutError:
                self._log.warning("FastAGI listener did not close in time")

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._stats.connections += 1
        peer = _peer(writer)
        host = peer.rsplit(":", 1)[0]
        if self._closing:
            self._refuse_at_once(writer, peer, "shutting down")
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        admitted, victim = self._admission.admit(task, host, time.monotonic())
        if not admitted:
            task.cancel()
            self._refuse_at_once(writer, peer, f"{len(self._admission)} connections waiting for their "
                                               f"environment ({self._admission.of_peer(host)} from {host})")
            return
        if victim is not None:
            self._stats.evicted += 1
            self._log_refusal(peer, None, "idle pending connection evicted for a newcomer")
            victim_writer = self._writers.get(victim)  # type: ignore[arg-type]
            victim.cancel()  # type: ignore[attr-defined]
            if victim_writer is not None:
                victim_writer.transport.abort()
        self._tasks.add(task)
        self._writers[task] = writer
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._writers.pop(task, None)
        self._admission.done(task)

    def _refuse_at_once(self, writer: asyncio.StreamWriter, peer: str, why: str) -> None:
        self._stats.rejected += 1
        self._log_refusal(peer, None, f"connection refused: {why}")
        writer.write(FAILURE_LINE)  # AGISTATUS=FAILURE; close() flushes, never blocks
        writer.close()

    def _log_refusal(self, peer: str, request: AgiRequest | None, reason: str) -> None:
        """Log at a bounded rate (a flood must not fill the disk), and tell on_refused."""
        allowed, suppressed = self._refusal_log.allow(time.monotonic())
        if allowed:
            more = f" ({suppressed} more refusals not logged)" if suppressed else ""
            what = f"{request.route} attempt={request.query.get('attempt', '')[:40]!r}" if request else "connection"
            self._log.warning("FastAGI %s from %s refused: %s%s", what, peer, reason, more)
        if self._on_refused is not None and request is not None:
            try:
                self._on_refused(peer, request, reason)
            except Exception:
                self._log.exception("on_refused failed")

    def _log_noise(self, level: int, message: str, *args: object) -> None:
        """Connections that closed, stalled or sent garbage before a request: logged at a
        bounded rate (a flood of them must not fill the disk)."""
        allowed, suppressed = self._noise_log.allow(time.monotonic())
        if allowed:
            self._log.log(level, message + (f" ({suppressed} more like it not logged)" if suppressed else ""),
                          *args)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: AgiSession | None = None
        failed = True  # unless the handler ends well, Asterisk is told AGISTATUS=FAILURE
        task = asyncio.current_task()
        counted = False
        try:
            request = await self._read_request(reader, _peer(writer), task)
            self._admission.done(task)
            if request is None:
                return
            if self._authorize is not None and (reason := self._authorize(request)) is not None:
                self._stats.refused += 1
                self._log_refusal(_peer(writer), request, reason)
                return
            if self._sessions >= self._max_sessions:
                self._stats.rejected += 1
                self._log_refusal(_peer(writer), request, f"{self._max_sessions} sessions running")
                return
            self._sessions += 1
            counted = True
            handler = self._routes.get(request.route, self._fallback)
            if handler is None:
                self._stats.unknown_routes += 1
                self._log.warning("unknown AGI route %r (uniqueid=%s, channel=%s): closing",
                                  request.route, request.uniqueid, request.channel)
                return
            session = AgiSession(request, reader, writer, command_timeout=self._command_timeout,
                                 logger=self._log)
            self._stats.sessions += 1
            failed = not await self._run(handler, session)
        except Exception:  # a bug here must not leave an unretrieved task exception
            self._stats.errors += 1
            self._log.exception("FastAGI connection from %s failed", _peer(writer))
        finally:
            if counted:
                self._sessions -= 1
            if session is not None:
                await session._stop_reader()
            await _close(writer, failed)

    async def _read_request(self, reader: asyncio.StreamReader, peer: str,
                            key: object = None) -> AgiRequest | None:
        parser = EnvParser()
        try:
            async with asyncio.timeout(self._header_timeout):
                line = await _read_line(reader)
                self._admission.started(key)
                while (env := parser.feed_line(line)) is None:
                    line = await _read_line(reader)
            return AgiRequest.from_env(env)
        except TimeoutError:
            self._log_noise(logging.WARNING, "FastAGI client %s sent no AGI environment within %g s: closing",
                            peer, self._header_timeout)
        except AgiHangup:
            self._log_noise(logging.INFO, "FastAGI client %s closed before sending its AGI environment", peer)
        except AgiProtocolError as exc:
            self._stats.errors += 1
            self._log_noise(logging.WARNING, "garbled AGI environment from %s: %s: closing", peer, exc)
        self._stats.header_failures += 1
        return None

    async def _run(self, handler: Handler, session: AgiSession) -> bool:
        """Run the handler; False if it failed (its exception is logged, never raised)."""
        try:
            result = handler(session)
            if not inspect.isawaitable(result):
                raise TypeError(f"AGI handler {handler!r} is not async")
            await result
        except AgiHangup as exc:
            self._stats.hangups += 1
            self._log.info("AGI %s ended by hang-up (uniqueid=%s): %s", session.route, session.uniqueid, exc)
        except Exception:
            self._stats.errors += 1
            self._log.exception("AGI handler for route %r failed (uniqueid=%s, channel=%s)",
                                session.route, session.uniqueid, session.channel)
            return False
        return True


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


async def _close(writer: asyncio.StreamWriter, failed: bool) -> None:
    """Close the connection (after a FAILURE line if ``failed``), flushing for at most a
    moment; abort if the peer is stuck."""
    if failed and not writer.is_closing():
        writer.write(FAILURE_LINE)
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), _CLOSE_TIMEOUT)
    except (TimeoutError, OSError):
        writer.transport.abort()
    except BaseException:
        writer.transport.abort()
        raise
