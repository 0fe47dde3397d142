"""AmiLink against the scripted FakeAmi server (no Asterisk needed).

Timing: short intervals make the tests fast; every wait has a generous bound and no
test asserts a wall-clock duration tightly.
"""
from __future__ import annotations

import asyncio
import logging
import random
import socket

import pytest

from ami import (
    AmiActionError, AmiDisconnected, AmiLink, AmiLoginError, AmiOutcomeUnknown, AmiTimeout,
    CoreShowChannel, FullyBooted, LinkDown, LinkState, LinkUp, Newchannel, OriginateResponse,
    Resynced, UserEvent, backoff_delay,
)
from tests.integration.fake_ami import FakeAmi

CHANNEL = {"Channel": "PJSIP/carrier-00000001", "Uniqueid": "attempt-1", "Linkedid": "attempt-1",
           "ChannelState": "6", "ChannelStateDesc": "Up", "Context": "dunline-out",
           "Exten": "s", "Duration": "00:00:42", "BridgeId": ""}


@pytest.fixture
async def fake():
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make_link(fake):
    links: list[AmiLink] = []

    def make(**kw) -> AmiLink:
        options = dict(ping_interval=0.2, ping_timeout=0.5, action_timeout=2.0,
                       backoff_initial=0.02, backoff_max=0.2, rng=random.Random(7))
        options.update(kw)
        secret = options.pop("secret", fake.secret)
        link = AmiLink("127.0.0.1", options.pop("port", fake.port), fake.username, secret,
                       **options)
        links.append(link)
        return link

    yield make
    for link in links:
        await link.stop()


async def next_item(queue: asyncio.Queue, kind: type | tuple[type, ...] = object,
                    timeout: float = 5.0):
    """The next queue item of that type (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            item = await queue.get()
            if isinstance(item, kind):
                return item


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_start_publishes_resync_before_any_event(fake, make_link):
    fake.channels = [CHANNEL]
    fake.after_login = [{"Event": "FullyBooted", "Status": "Fully Booted"},
                        {"Event": "Newchannel", "Uniqueid": "x-2", "Channel": "PJSIP/a-2",
                         "ChannelState": "0"}]
    link = make_link()
    queue = link.subscribe()
    await link.start(login_timeout=5)
    items = [await next_item(queue) for _ in range(4)]
    assert [type(i) for i in items] == [Resynced, LinkUp, FullyBooted, Newchannel]
    (channel,) = items[0].channels
    assert isinstance(channel, CoreShowChannel)
    assert (channel.uniqueid, channel.channel_state, channel.duration) == ("attempt-1", 6, 42)
    assert link.connected and link.state is LinkState.UP
    assert (link.logins, link.drops, link.server_version) == (1, 0, "9.0.0")


async def test_wrong_secret_raises_login_error_and_stops(fake, make_link):
    link = make_link(secret="wrong")
    with pytest.raises(AmiLoginError):
        await link.start(login_timeout=5)
    assert link.state is LinkState.STOPPED
    assert link.consecutive_login_failures == 1
    await asyncio.sleep(0.1)
    assert fake.count("Login") == 1  # no silent retry loop


async def test_start_times_out_when_refused_but_keeps_retrying(make_link):
    link = make_link(port=free_port())
    with pytest.raises(AmiTimeout):
        await link.start(login_timeout=0.3)
    assert link.state in (LinkState.BACKOFF, LinkState.CONNECTING)
    await FakeAmi.wait_until(lambda: link.consecutive_failures >= 2)
    await link.stop()
    assert link.state is LinkState.STOPPED


async def test_originate_returns_when_queued_and_events_reach_subscribers(fake, make_link):
    link = make_link()
    await link.start()
    queue = link.subscribe()
    response = await link.originate(
        "PJSIP/0611223344@carrier", context="dunline-out", exten="s", channel_id="attempt-9",
        variables={"ATTEMPT": "attempt-9", "CAMPAIGN": "c1"}, caller_id="Dunline <100>")
    assert response["Message"] == "Originate successfully queued"
    newchannel = await next_item(queue, Newchannel)
    assert newchannel.uniqueid == "attempt-9"
    final = await next_item(queue, OriginateResponse)
    assert (final.action_id, final.uniqueid, final.reason) == (response["ActionID"], "attempt-9", 4)
    (sent,) = fake.received("Originate")
    assert sent["Variable"] == ["ATTEMPT=attempt-9", "CAMPAIGN=c1"]  # two Variable: lines
    assert sent["Async"] == ["true"] and sent["ChannelId"] == ["attempt-9"]
    assert sent["Timeout"] == ["30000"] and sent["CallerID"] == ["Dunline <100>"]


async def test_drop_after_originate_sent_is_outcome_unknown_and_never_resent(fake, make_link):
    fake.channels = [CHANNEL]
    link = make_link()
    queue = link.subscribe()
    await link.start()
    fake.drop_on_originate = True
    with pytest.raises(AmiOutcomeUnknown) as info:
        await link.originate("PJSIP/1@carrier", context="c", exten="s", channel_id="a-1")
    assert not isinstance(info.value, (AmiDisconnected, AmiTimeout))
    fake.drop_on_originate = False
    fake.channels = []
    assert isinstance(await next_item(queue, LinkDown), LinkDown)
    resynced = await next_item(queue, Resynced)
    assert resynced.channels == ()  # resync on the new login reflects the new state
    await next_item(queue, LinkUp)
    await asyncio.sleep(0.3)  # a few pings later: still nothing re-sent
    assert fake.count("Originate") == 1
    assert fake.count("CoreShowChannels") == 2 and fake.connections == 2
    assert (link.drops, link.logins) == (1, 2)


async def test_pending_idempotent_action_fails_disconnected_on_drop(fake, make_link):
    link = make_link()
    await link.start()
    fake.silent_actions = {"status"}
    pending = asyncio.create_task(link.action("Status"))
    await FakeAmi.wait_until(lambda: fake.count("Status") == 1)
    fake.drop_connections()
    with pytest.raises(AmiDisconnected):
        await pending


async def test_action_timeouts(fake, make_link):
    link = make_link(action_timeout=0.2)
    await link.start()
    fake.silent_actions = {"status", "originate"}
    with pytest.raises(AmiTimeout):
        await link.action("Status")
    with pytest.raises(AmiOutcomeUnknown):  # written, no reply: fate unknown
        await link.originate("PJSIP/1@carrier", context="c", exten="s", channel_id="a-2")
    assert link.connected


async def test_action_error_and_fail_fast_when_down(fake, make_link):
    link = make_link()
    with pytest.raises(AmiDisconnected):
        await link.originate("PJSIP/1@carrier", context="c", exten="s", channel_id="a-3")
    await link.start()
    with pytest.raises(AmiActionError, match="Invalid/unknown command"):
        await link.action("Bogus", Foo="bar")
    with pytest.raises(ValueError):
        await link.originate("PJSIP/1@carrier", context="c", exten="s", channel_id="x" * 150)
    with pytest.raises(ValueError):
        await link.originate("PJSIP/1@carrier", context="c", exten="s", channel_id="a",
                             variables={"A": "1,B=2"})
    with pytest.raises(ValueError):
        await link.action("Setvar", Variable="X\r\nAction: Originate")
    assert fake.count("Originate") == 0 and fake.count("Setvar") == 0


async def test_unanswered_pings_force_reconnect(fake, make_link):
    link = make_link(ping_interval=0.05, ping_timeout=0.1)
    queue = link.subscribe()
    await link.start()
    fake.answer_pings = False
    down = await next_item(queue, LinkDown)
    assert "pong" in down.reason
    fake.answer_pings = True
    await next_item(queue, Resynced)
    await next_item(queue, LinkUp)
    assert link.drops == 1 and link.logins == 2 and fake.count("CoreShowChannels") == 2


async def test_reconnect_delays_increase(fake, make_link, caplog):
    caplog.set_level(logging.WARNING, logger="ami.link")
    link = make_link(backoff_initial=0.01, backoff_max=10.0)
    await link.start()
    await fake.close_listener()
    fake.drop_connections()
    await FakeAmi.wait_until(lambda: link.consecutive_failures >= 4)
    await fake.start()  # same port
    await FakeAmi.wait_until(lambda: link.logins == 2 and link.connected)
    delays = [r.args[-1] for r in caplog.records if "reconnect attempt" in r.getMessage()]
    assert len(delays) >= 4
    assert all(a <= b for a, b in zip(delays, delays[1:]))
    assert delays[3] > delays[0]
    assert link.consecutive_failures == 0


def test_backoff_delay_is_exponential_with_bounded_jitter():
    for jitter in (0.0, 0.5, 0.999):
        delays = [backoff_delay(n, 0.5, 30.0, jitter) for n in range(12)]
        assert all(a <= b for a, b in zip(delays, delays[1:]))
        assert all(d <= 30.0 for d in delays) and delays[-1] >= 15.0
    assert 0.25 <= backoff_delay(0, 0.5, 30.0, 0.3) <= 0.5
    assert backoff_delay(10_000, 0.5, 30.0, 0.0) == 15.0


async def test_split_utf8_character_survives(fake, make_link):
    link = make_link()
    await link.start()
    queue = link.subscribe()
    data = "Event: UserEvent\r\nUserEvent: Note\r\nText: café\r\n\r\n".encode()
    cut = data.index("é".encode()) + 1
    await fake.send_raw(data[:cut], data[cut:])
    event = await next_item(queue, UserEvent)
    assert event.headers["Text"] == "café"


async def test_full_queue_drops_oldest(fake, make_link):
    link = make_link(event_queue_size=3)
    await link.start()
    queue = link.subscribe()
    for n in range(5):
        await fake.send_event({"Event": "UserEvent", "UserEvent": f"n{n}"})
    await FakeAmi.wait_until(lambda: link.dropped_events >= 2)
    names = [queue.get_nowait().userevent for _ in range(3)]
    assert names == ["n2", "n3", "n4"]


async def test_endless_line_drops_the_link(fake, make_link):
    link = make_link()
    queue = link.subscribe()
    await link.start()
    await fake.send_raw(b"X" * 70_000)
    down = await next_item(queue, LinkDown)
    assert "protocol error" in down.reason
    await next_item(queue, LinkUp)


async def test_stop_fails_pending_and_leaves_no_task(fake, make_link):
    link = make_link()
    queue = link.subscribe()
    await link.start()
    fake.silent_actions = {"status"}
    pending = asyncio.create_task(link.action("Status"))
    await FakeAmi.wait_until(lambda: fake.count("Status") == 1)
    await link.stop()
    with pytest.raises(AmiDisconnected):
        await pending
    assert link.state is LinkState.STOPPED and link.drops == 0
    assert (await next_item(queue, LinkDown)).reason == "stopped"
    await fake.stop()
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()


async def test_stop_during_backoff_leaves_no_task(make_link):
    link = make_link(port=free_port())
    with pytest.raises(AmiTimeout):
        await link.start(login_timeout=0.1)
    await link.stop()
    await link.stop()  # idempotent
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()
