"""FastAgiServer over real loopback sockets, with asyncio clients playing Asterisk.

Every timeout is small; each test takes well under a second.
"""
from __future__ import annotations

import asyncio
import logging

import pytest

from agi_scripts.errors import AgiCommandError, AgiHangup, AgiProtocolError, AgiTimeout
from agi_scripts.server import AgiSession, FastAgiServer

STEP = 2.0  # upper bound for anything that should happen "at once"
FAILED = b"FAILURE\n"  # res_agi: AGISTATUS=FAILURE
RESET = b"<connection reset>"


def env_block(script: str = "bind?attempt=abc", uniqueid: str = "1733000000.1",
              args: tuple[str, ...] = ()) -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:4573/{script}",
        "agi_channel: PJSIP/carrier-00000001",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 22.1.0",
        "agi_callerid: 5551234",
        "agi_calleridname: unknown",
        "agi_context: dunline-outbound",
        "agi_extension: s",
        "agi_priority: 3",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140000000000",
        *(f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)),
    ]
    return "".join(line + "\n" for line in lines).encode() + b"\n"


class FakeAsterisk:
    """The PBX side of one FastAGI connection."""

    opened: list[FakeAsterisk] = []  # closed after each test by the fixture below

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        FakeAsterisk.opened.append(self)

    @classmethod
    async def connect(cls, server: FastAgiServer) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    @classmethod
    async def start(cls, server: FastAgiServer, **env: object) -> FakeAsterisk:
        pbx = await cls.connect(server)
        await pbx.send(env_block(**env))  # type: ignore[arg-type]
        return pbx

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), STEP)
        assert line.endswith(b"\n"), f"expected a command, got {line!r}"
        return line.decode()[:-1]

    async def answer(self, expected: str, *reply: bytes) -> None:
        assert await self.command() == expected
        await self.send(b"".join(reply))

    async def ended(self) -> bytes:
        """Wait for the server to end the connection; what it sent last (``b""``, or
        ``FAILED`` when it told Asterisk AGISTATUS=FAILURE), ``RESET`` on a reset."""
        try:
            return await asyncio.wait_for(self.reader.read(), STEP)
        except ConnectionResetError:
            return RESET

    def close(self) -> None:
        self.writer.close()


@pytest.fixture(autouse=True)
async def close_fake_clients():
    FakeAsterisk.opened = []
    yield
    for pbx in FakeAsterisk.opened:
        pbx.writer.close()
        try:
            await pbx.writer.wait_closed()
        except OSError:
            pass


@pytest.fixture
async def make_server():
    servers: list[FastAgiServer] = []

    async def factory(routes, **kwargs) -> FastAgiServer:
        kwargs.setdefault("header_timeout", 0.5)
        kwargs.setdefault("command_timeout", 1.0)
        server = FastAgiServer(routes, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.close(drain_timeout=0.5)
        assert server.stats.active == 0


async def wait_until(predicate, timeout: float = STEP) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def simple_session(server: FastAgiServer) -> None:
    """A complete one-command session: proves the server still serves."""
    pbx = await FakeAsterisk.start(server, script="ping")
    await pbx.answer('VERBOSE "pong" 1', b"200 result=1\n")
    assert await pbx.ended() == b""


async def ping(session: AgiSession) -> None:
    await session.verbose("pong")


# --- the normal case ------------------------------------------------------------------------

async def test_full_session(make_server):
    seen: dict[str, object] = {}

    async def bind(session: AgiSession) -> None:
        seen["route"], seen["query"], seen["args"] = session.route, dict(session.query), session.args
        seen["channel"], seen["uniqueid"] = session.channel, session.uniqueid
        seen["callerid"] = await session.get_variable("CALLERID(num)")
        seen["unset"] = await session.get_variable("NOPE")
        seen["exec"] = await session.exec("MixMonitor", "/rec/a b.wav", "b")
        await session.set_variable("DUNLINE_BOUND", 'say "1"')
        seen["hung_up"] = session.hung_up

    server = await make_server({"bind": bind, "ping": ping})
    pbx = await FakeAsterisk.start(server, script="bind?attempt=abc%2F1&n=+1555", args=("x", "y"))
    await pbx.answer('GET VARIABLE "CALLERID(num)"', b"200 result=1 (5551234)\n")
    await pbx.answer('GET VARIABLE "NOPE"', b"200 result=0\r\n")
    await pbx.answer('EXEC "MixMonitor" "/rec/a b.wav,b"', b"200 result=0\n")
    await pbx.answer('SET VARIABLE "DUNLINE_BOUND" "say \\"1\\""', b"200 result=1\n")
    assert await pbx.ended() == b""
    assert seen == {
        "route": "bind", "query": {"attempt": "abc/1", "n": "+1555"}, "args": ("x", "y"),
        "channel": "PJSIP/carrier-00000001", "uniqueid": "1733000000.1",
        "callerid": "5551234", "unset": None, "exec": 0, "hung_up": False,
    }
    stats = server.stats
    assert (stats.connections, stats.sessions, stats.errors, stats.rejected) == (1, 1, 0, 0)


async def test_error_replies_and_520_block_fully_consumed(make_server):
    outcome: list[object] = []

    async def handler(session: AgiSession) -> None:
        for call in (lambda: session.command("GET VARIABLE"),
                     lambda: session.command("NO SUCH"),
                     lambda: session.exec("Nope"),
                     lambda: session.get_variable("X")):
            try:
                outcome.append(await call())
            except AgiCommandError as exc:
                outcome.append(exc.code)

    server = await make_server({"bind": handler})
    pbx = await FakeAsterisk.start(server)
    await pbx.answer("GET VARIABLE", b"520-Invalid command syntax.  Proper usage follows:\n",
                     b" Usage: GET VARIABLE <variablename>\n", b"200 result=1 (not a reply)\n",
                     b"520 End of proper usage.\n")
    await pbx.answer("NO SUCH", b"510 Invalid or unknown command\n")
    await pbx.answer('EXEC "Nope"', b"200 result=-2\n")
    await pbx.answer('GET VARIABLE "X"', b"200 result=1 (right one)\n")
    assert await pbx.ended() == b""
    assert outcome == [520, 510, 200, "right one"]


# --- the PBX side misbehaving or hanging up -----------------------------------------------------

async def test_hangup_line_mid_command(make_server):
    outcome: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.exec("Playback", "hello")
        except AgiHangup:
            outcome["hung_up"] = session.hung_up
        try:
            await session.get_variable("X")
        except AgiHangup:
            outcome["later"] = "refused"
        await session.hangup()  # a no-op now
        raise AgiHangup("let it propagate")  # a normal end, not an error

    server = await make_server({"bind": handler, "ping": ping})
    pbx = await FakeAsterisk.start(server)
    assert await pbx.command() == 'EXEC "Playback" "hello"'
    await pbx.send(b"HANGUP\n")
    assert await pbx.ended() == b""  # no GET VARIABLE, no HANGUP command were sent
    assert outcome == {"hung_up": True, "later": "refused"}
    assert (server.stats.hangups, server.stats.errors) == (1, 0)
    await simple_session(server)


async def test_hangup_seen_without_a_command(make_server):
    ready = asyncio.Event()
    flags: list[bool] = []

    async def handler(session: AgiSession) -> None:
        ready.set()
        await wait_until(lambda: session.hung_up)
        flags.append(session.hung_up)

    server = await make_server({"bind": handler})
    pbx = await FakeAsterisk.start(server)
    await asyncio.wait_for(ready.wait(), STEP)
    await pbx.send(b"HANGUP\n")
    assert await pbx.ended() == b""
    assert flags == [True]


async def test_511_dead_channel(make_server):
    errors: list[BaseException] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.exec("Playback", "x")
        except AgiHangup as exc:
            errors.append(exc)
        assert session.hung_up

    server = await make_server({"bind": handler})
    pbx = await FakeAsterisk.start(server)
    await pbx.answer('EXEC "Playback" "x"', b"511 Command Not Permitted on a dead channel or intercept routine\n")
    assert await pbx.ended() == b""
    assert len(errors) == 1 and server.stats.errors == 0


async def test_eof_mid_command(make_server):
    errors: list[BaseException] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.get_variable("X")
        except AgiHangup as exc:
            errors.append(exc)
        assert session.hung_up

    server = await make_server({"bind": handler, "ping": ping})
    pbx = await FakeAsterisk.start(server)
    assert await pbx.command() == 'GET VARIABLE "X"'
    pbx.close()
    await wait_until(lambda: server.stats.active == 0)
    assert len(errors) == 1
    await simple_session(server)


async def test_command_timeout_then_late_reply_is_not_taken_for_the_next(make_server):
    outcome: list[object] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.get_variable("SLOW")
        except AgiTimeout:
            outcome.append("timeout")
        outcome.append(await session.command("GET VARIABLE", "NEXT", timeout=STEP))

    server = await make_server({"bind": handler}, command_timeout=0.2)
    pbx = await FakeAsterisk.start(server)
    assert await pbx.command() == 'GET VARIABLE "SLOW"'
    assert await pbx.command() == 'GET VARIABLE "NEXT"'  # sent after the timeout
    await pbx.send(b"200 result=1 (slow)\n200 result=1 (next)\n")
    assert await pbx.ended() == b""
    assert outcome[0] == "timeout" and getattr(outcome[1], "data") == "next"


async def test_garbage_reply_and_overlong_line(make_server):
    errors: list[BaseException] = []

    async def handler(session: AgiSession) -> None:
        with pytest.raises(AgiProtocolError) as info:
            await session.get_variable("X")
        errors.append(info.value)
        with pytest.raises(AgiProtocolError):
            await session.get_variable("Y")  # the link stays unusable

    server = await make_server({"bind": handler})
    for garbage in (b"HTTP/1.1 200 OK\n", b"200 result=1 (" + b"x" * 9000 + b")\n"):
        pbx = await FakeAsterisk.start(server)
        assert await pbx.command() == 'GET VARIABLE "X"'
        await pbx.send(garbage)
        assert await pbx.ended() == b""
    assert len(errors) == 2


async def test_client_closing_before_headers_does_not_hurt(make_server):
    server = await make_server({"ping": ping})
    for _ in range(5):
        pbx = await FakeAsterisk.connect(server)
        pbx.close()
    half = await FakeAsterisk.connect(server)
    await half.send(b"agi_network: yes\nagi_network_scr")  # EOF mid-environment
    half.close()
    await wait_until(lambda: server.stats.header_failures == 6)
    await asyncio.sleep(0)  # the loop is responsive
    await simple_session(server)
    assert server.stats.errors == 0


async def test_silent_client_hits_header_timeout(make_server, caplog):
    caplog.set_level(logging.INFO, logger="dunline.agi")
    server = await make_server({"ping": ping}, header_timeout=0.2)
    silent = await FakeAsterisk.connect(server)
    await silent.send(b"agi_network: yes\n")  # then nothing
    other = asyncio.create_task(simple_session(server))  # served meanwhile
    assert await silent.ended() == FAILED
    await asyncio.wait_for(other, STEP)
    assert server.stats.header_failures == 1
    assert "no AGI environment within" in caplog.text


async def test_garbage_header_closes_without_calling_a_handler(make_server, caplog):
    called: list[str] = []

    async def handler(session: AgiSession) -> None:
        called.append(session.route)

    server = await make_server({"bind": handler, "": handler})
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"agi_network_script: ../etc\n\n",
                 b"agi_x: " + b"y" * 9000 + b"\n\n"):
        pbx = await FakeAsterisk.connect(server)
        await pbx.send(junk)
        assert await pbx.ended() == FAILED
    assert called == [] and server.stats.header_failures == 3
    assert "garbled AGI environment" in caplog.text


async def test_unknown_route_is_closed_or_sent_to_fallback(make_server):
    server = await make_server({"bind": ping})
    pbx = await FakeAsterisk.start(server, script="nope?attempt=1")
    assert await pbx.ended() == FAILED
    assert (server.stats.unknown_routes, server.stats.sessions) == (1, 0)

    routes_seen: list[str] = []

    async def fallback(session: AgiSession) -> None:
        routes_seen.append(session.route)

    server = await make_server({"bind": ping}, fallback=fallback)
    pbx = await FakeAsterisk.start(server, script="nope/deeper")
    assert await pbx.ended() == b""
    assert routes_seen == ["nope/deeper"]


# --- our side misbehaving ---------------------------------------------------------------------

async def test_handler_exception_is_logged_and_server_survives(make_server, caplog):
    async def broken(session: AgiSession) -> None:
        raise RuntimeError("boom")

    def not_async(session: AgiSession) -> None:
        return None

    server = await make_server({"bind": broken, "sync": not_async, "ping": ping})  # type: ignore[dict-item]
    for script in ("bind?attempt=1", "sync"):
        pbx = await FakeAsterisk.start(server, script=script, uniqueid="1733000000.42")
        assert await pbx.ended() == FAILED
    assert server.stats.errors == 2
    assert "route 'bind' failed (uniqueid=1733000000.42" in caplog.text and "boom" in caplog.text
    assert "is not async" in caplog.text
    await simple_session(server)


async def test_injection_is_refused_before_anything_is_written(make_server):
    async def handler(session: AgiSession) -> None:
        with pytest.raises(ValueError):
            await session.set_variable("X", "a\nEXEC System rm")
        await session.verbose("pong")

    server = await make_server({"bind": handler})
    pbx = await FakeAsterisk.start(server)
    await pbx.answer('VERBOSE "pong" 1', b"200 result=1\n")
    assert await pbx.ended() == b""


def test_route_table_is_validated():
    with pytest.raises(ValueError):
        FastAgiServer({"Bind": ping})
    with pytest.raises(ValueError):
        FastAgiServer({"bind?x": ping})


# --- capacity and shutdown ------------------------------------------------------------------------

async def test_concurrency_limit_rejects_at_once(make_server):
    release = asyncio.Event()

    async def hold(session: AgiSession) -> None:
        await release.wait()

    server = await make_server({"bind": hold, "ping": ping}, max_sessions=2)
    held = [await FakeAsterisk.start(server) for _ in range(2)]
    await wait_until(lambda: server.stats.sessions == 2)
    extra = await FakeAsterisk.start(server)
    assert await extra.ended() in (FAILED, RESET)  # closed immediately, not queued
    assert server.stats.rejected == 1
    release.set()
    for pbx in held:
        assert await pbx.ended() == b""
    await wait_until(lambda: server.stats.active == 0)
    await simple_session(server)


async def test_close_drains_then_cancels(make_server):
    finishing = asyncio.Event()
    outcome: list[str] = []

    async def quick(session: AgiSession) -> None:
        await finishing.wait()
        await session.verbose("done")
        outcome.append("quick finished")

    async def stuck(session: AgiSession) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            outcome.append("stuck cancelled")
            raise

    server = await make_server({"quick": quick, "stuck": stuck})
    port = server.port
    pbx_quick = await FakeAsterisk.start(server, script="quick")
    pbx_stuck = await FakeAsterisk.start(server, script="stuck")
    await wait_until(lambda: server.stats.sessions == 2)

    closing = asyncio.create_task(server.close(drain_timeout=0.3))
    await asyncio.sleep(0.05)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
    finishing.set()
    await pbx_quick.answer('VERBOSE "done" 1', b"200 result=1\n")
    await asyncio.wait_for(closing, STEP)
    assert outcome == ["quick finished", "stuck cancelled"]
    assert server.stats.active == 0
    assert await pbx_quick.ended() == b"" and await pbx_stuck.ended() == FAILED


async def test_session_used_after_its_handler_returned_fails_fast(make_server):
    kept: list[AgiSession] = []

    async def handler(session: AgiSession) -> None:
        kept.append(session)

    server = await make_server({"bind": handler})
    pbx = await FakeAsterisk.start(server)
    assert await pbx.ended() == b""
    with pytest.raises(RuntimeError, match="after its handler returned"):
        await kept[0].verbose("too late")
