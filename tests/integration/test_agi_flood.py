"""A hostile local client against the FastAGI server over real loopback sockets: 500 idle
connections, then 500 requests with forged tokens; the PBX's request with its attempt's
token is still served, every forgery is refused, and the log stays bounded."""
from __future__ import annotations

import asyncio
import logging

from agi_scripts.server import AgiSession, FastAgiServer
from storage.call_tokens import CallTokens
from tests.integration.test_fastagi_server import env_block

TOKENS = CallTokens(b"s" * 32)
ATTEMPT = "e" * 32


def authorize(request):
    attempt = request.query.get("attempt", "")
    return None if TOKENS.check(attempt, request.query.get("token")) else "no valid token"


async def served(server: FastAgiServer, attempt: str = ATTEMPT) -> bytes:
    """The PBX's request: environment at once, then the handler's one command."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(env_block(f"bind?attempt={attempt}&token={TOKENS.token_for(attempt)}", uniqueid=attempt))
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


async def test_a_flood_of_idle_connections_cannot_cost_a_real_call(caplog):
    async def bind(session: AgiSession) -> None:
        await session.command("SET VARIABLE", "DUNLINE_BOUND", "1", timeout=0.5)

    server = FastAgiServer({"bind": bind}, port=0, authorize=authorize, max_pending=256,
                           max_pending_per_peer=128, header_timeout=5.0)
    await server.start()
    flood: list[asyncio.StreamWriter] = []
    try:
        caplog.set_level(logging.INFO, logger="dunline.agi")
        for _ in range(500):  # connect and say nothing; more than any limit
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            flood.append(writer)
        await asyncio.sleep(0.3)  # they have been idle for longer than the eviction age
        reply = await served(server)
        assert reply.startswith(b"SET VARIABLE"), "the real call is served during the flood"
        stats = server.stats
        assert stats.evicted + stats.rejected >= 500 - 128
        assert len(caplog.records) <= 20, "a flood writes a bounded log"
        assert server.suppressed_refusal_logs > 0
    finally:
        for writer in flood:
            writer.close()
        await server.close(drain_timeout=1)


async def test_forged_tokens_are_refused_and_the_real_one_served():
    calls: list[str] = []

    async def bind(session: AgiSession) -> None:
        calls.append(session.query["attempt"])

    server = FastAgiServer({"bind": bind}, port=0, authorize=authorize)
    await server.start()
    try:
        async def forged(n: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(env_block(f"bind?attempt={ATTEMPT}&token={n:064x}", uniqueid=ATTEMPT))
            await writer.drain()
            try:
                return await asyncio.wait_for(reader.read(), 5)
            except ConnectionResetError:  # refused and closed before the answer was read: a refusal too
                return b"(reset)"
            finally:
                writer.close()

        answers = await asyncio.gather(*(forged(n) for n in range(500)), served(server))
        # each forged request is refused for its token, or (one peer holding more connections
        # than max_pending_per_peer) rejected before it is read, or (on a loaded host, idle
        # while the loop was busy) evicted for a newcomer; each ends one way; none is served
        assert set(answers[:-1]) <= {b"FAILURE\n", b"(reset)", b""} and b"FAILURE\n" in answers
        stats = server.stats
        assert calls == [ATTEMPT] and stats.sessions == 1
        assert stats.refused + stats.rejected + stats.evicted == 500
    finally:
        await server.close(drain_timeout=1)
