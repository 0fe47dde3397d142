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
from collections.abc import Awaitable, Callable, Mapping

from .errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
from .protocol import (FAILURE_LINE, MAX_LINE_BYTES, AgiReply, AgiRequest, EnvParser,
                       HangupNotice, Reply, ReplyReader, format_command, is_valid_route,
                       raise_for_reply)

Handler = Callable[["AgiSession"], Awaitable[None]]
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
    rejected: int = 0  # closed at once: over max_sessions or shutting down
    header_failures: int = 0  # closed before a valid environment (EOF, timeout, garbage)
    unknown_routes: int = 0  # no handler for the route (and no fallback)
    sessions: int = 0  # handlers started
    hangups: int = 0  # handlers ended by AgiHangup
    errors: int = 0  # handler exceptions and protocol errors
    active: int = 0  # connections being served now (reading the environment or in a handler)


class FastAgiServer:
    """Serves FastAGI requests on ``host:port`` (``port=0``: any free port, see ``.port``).

    ``routes`` maps a route (``bind``, ``calls/ended``) to an async handler; ``fallback``
    handles unknown routes (without one they are logged and closed). Beyond
    ``max_sessions`` concurrent connections, new ones are closed at once. Whenever a
    connection ends without its handler completing (refused, garbled, unknown route,
    handler exception, cancelled by ``close()``), a ``FAILURE`` line goes out first so the
    dialplan continues with AGISTATUS=FAILURE; a plain close would read as SUCCESS.
    """

    def __init__(self, routes: Mapping[str, Handler], *, host: str = "127.0.0.1", port: int = 0,
                 header_timeout: float = 5.0, command_timeout: float = 30.0,
                 max_sessions: int = 200, fallback: Handler | None = None,
                 logger: logging.Logger | None = None) -> None:
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
        if self._closing or len(self._tasks) >= self._max_sessions:
            self._stats.rejected += 1
            why = "shutting down" if self._closing else f"{self._max_sessions} sessions running"
            self._log.warning("FastAGI connection from %s refused: %s", _peer(writer), why)
            writer.write(FAILURE_LINE)  # AGISTATUS=FAILURE; close() flushes, never blocks
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: AgiSession | None = None
        failed = True  # unless the handler ends well, Asterisk is told AGISTATUS=FAILURE
        try:
            request = await self._read_request(reader, _peer(writer))
            if request is None:
                return
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
            if session is not None:
                await session._stop_reader()
            await _close(writer, failed)

    async def _read_request(self, reader: asyncio.StreamReader, peer: str) -> AgiRequest | None:
        parser = EnvParser()
        try:
            async with asyncio.timeout(self._header_timeout):
                while (env := parser.feed_line(await _read_line(reader))) is None:
                    pass
            return AgiRequest.from_env(env)
        except TimeoutError:
            self._log.warning("FastAGI client %s sent no AGI environment within %g s: closing",
                              peer, self._header_timeout)
        except AgiHangup:
            self._log.info("FastAGI client %s closed before sending its AGI environment", peer)
        except AgiProtocolError as exc:
            self._stats.errors += 1
            self._log.warning("garbled AGI environment from %s: %s: closing", peer, exc)
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
