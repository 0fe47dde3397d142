"""A scripted AMI server on 127.0.0.1 (random free port) for protocol edge cases.

It speaks just enough AMI: the banner, Login, Ping, CoreShowChannels, async
Originate ("successfully queued", then Newchannel + OriginateResponse events) and an
Error for anything else. Knobs let a test refuse logins, mute pings, drop the
connection when an Originate arrives, never answer some actions, push raw bytes, and
close/reopen the listener. Every received action is recorded with its connection
number; repeated headers are kept as lists.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Mapping

BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def encode(headers: Mapping[str, str]) -> bytes:
    """One AMI message."""
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


class FakeAmi:
    """The server. ``await start()``, ``await stop()``; see module docstring."""

    def __init__(self, *, username: str = "dunline", secret: str = "s3cret") -> None:
        self.username, self.secret = username, secret
        self.refuse_login = False
        self.answer_pings = True
        self.drop_on_originate = False
        self.silent_actions: set[str] = set()  # lower-case action names never answered
        self.channels: list[dict[str, str]] = []  # CoreShowChannel headers
        self.after_login: list[dict[str, str]] = [{"Event": "FullyBooted", "Status": "Fully Booted"}]
        self.originate_delay = 0.02
        self.actions: list[tuple[int, dict[str, list[str]]]] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._uniq = itertools.count(1)

    # -- control -----------------------------------------------------------------
    async def start(self) -> None:
        """Listen (on a random port the first time, on the same port afterwards)."""
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close_listener(self) -> None:
        """Stop accepting: new connections are refused (existing ones stay)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop_connections(self) -> None:
        """Abort every client connection (like a dead TCP link)."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        """Close everything and wait for every task of the server."""
        await self.close_listener()
        self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def send_raw(self, *chunks: bytes, pause: float = 0.01) -> None:
        """Write chunks to every client, pausing between them (separate TCP reads)."""
        for chunk in chunks:
            for writer in list(self._writers):
                writer.write(chunk)
                await writer.drain()
            await asyncio.sleep(pause)

    async def send_event(self, headers: Mapping[str, str]) -> None:
        """Push one event to every client."""
        await self.send_raw(encode(headers), pause=0)

    def count(self, action: str) -> int:
        """How many times an action was received, over all connections."""
        return sum(1 for _, h in self.actions if h.get("Action", [""])[0].lower() == action.lower())

    def received(self, action: str) -> list[dict[str, list[str]]]:
        """Every received action of that name."""
        return [h for _, h in self.actions if h.get("Action", [""])[0].lower() == action.lower()]

    @staticmethod
    async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``predicate`` until true (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.005)

    # -- protocol ------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        conn = self.connections
        try:
            writer.write(BANNER)
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, list[str]] = {}
                for line in raw.decode().split("\r\n"):
                    key, sep, value = line.partition(": ")
                    if sep:
                        headers.setdefault(key, []).append(value)
                self.actions.append((conn, headers))
                if not await self._answer(writer, headers):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self._tasks.discard(task)

    async def _answer(self, writer: asyncio.StreamWriter, h: dict[str, list[str]]) -> bool:
        """Reply to one action; False to close the connection."""
        name = h.get("Action", [""])[0].lower()
        aid = h.get("ActionID", [""])[0]
        if name in self.silent_actions:
            return True
        if name == "login":
            ok = (not self.refuse_login and h.get("Username") == [self.username]
                  and h.get("Secret") == [self.secret])
            if not ok:
                writer.write(encode({"Response": "Error", "ActionID": aid,
                                     "Message": "Authentication failed"}))
                await writer.drain()
                return False
            writer.write(encode({"Response": "Success", "ActionID": aid,
                                 "Message": "Authentication accepted"}))
            for event in self.after_login:
                writer.write(encode(event))
        elif name == "ping":
            if self.answer_pings:
                writer.write(encode({"Response": "Success", "ActionID": aid, "Ping": "Pong",
                                     "Timestamp": f"{time.time():.6f}"}))
        elif name == "coreshowchannels":
            writer.write(encode({"Response": "Success", "ActionID": aid, "EventList": "start",
                                 "Message": "Channels will follow"}))
            for channel in self.channels:
                writer.write(encode({"Event": "CoreShowChannel", "ActionID": aid, **channel}))
            writer.write(encode({"Event": "CoreShowChannelsComplete", "ActionID": aid,
                                 "EventList": "Complete", "ListItems": str(len(self.channels))}))
        elif name == "originate":
            if self.drop_on_originate:
                writer.transport.abort()
                return False
            writer.write(encode({"Response": "Success", "ActionID": aid,
                                 "Message": "Originate successfully queued"}))
            task = asyncio.create_task(self._originate_events(writer, h, aid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            writer.write(encode({"Response": "Error", "ActionID": aid,
                                 "Message": "Invalid/unknown command"}))
        return True

    async def _originate_events(self, writer: asyncio.StreamWriter,
                                h: dict[str, list[str]], aid: str) -> None:
        await asyncio.sleep(self.originate_delay)
        uid = h.get("ChannelId", [f"fake.{next(self._uniq)}"])[0]
        channel = h.get("Channel", [""])[0] + "-00000001"
        with contextlib.suppress(ConnectionError):
            writer.write(encode({"Event": "Newchannel", "Channel": channel, "Uniqueid": uid,
                                 "Linkedid": uid, "ChannelState": "0",
                                 "ChannelStateDesc": "Down"}))
            writer.write(encode({"Event": "OriginateResponse", "ActionID": aid,
                                 "Response": "Success", "Channel": channel,
                                 "Context": h.get("Context", [""])[0],
                                 "Exten": h.get("Exten", [""])[0], "Reason": "4",
                                 "Uniqueid": uid}))
            await writer.drain()
