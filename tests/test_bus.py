"""Notifiers: the in-process one, and the Redis one that lets hub replicas wake each other."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from agora.bus import Event, InProcessNotifier, Notifier, open_notifier
from agora.bus.redis import RedisNotifier

from .conftest import REDIS_URL

FAST = {"min_backoff": 0.02, "max_backoff": 0.2}  # reconnect quickly: tests wait for it


@pytest.fixture
def channel() -> str:
    return f"agora:test:{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def pair(redis_url: str, channel: str) -> AsyncIterator[tuple[RedisNotifier, RedisNotifier]]:
    """Two notifiers on one channel, standing for two hub replicas."""
    a = RedisNotifier(redis_url, channel, client_name=f"{channel}:a", **FAST)
    b = RedisNotifier(redis_url, channel, client_name=f"{channel}:b", **FAST)
    await a.start()
    await b.start()
    assert a.healthy() and b.healthy()
    yield a, b
    await a.close()
    await b.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def take(q: asyncio.Queue[Event], n: int, timeout: float = 3.0) -> list[Event]:
    async def run() -> list[Event]:
        return [await q.get() for _ in range(n)]

    return await asyncio.wait_for(run(), timeout)


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def events(n: int, tenant: str | None = "t1") -> list[Event]:
    return [Event("agent_updated", tenant, {"seq": i, "nested": {"ok": True}, "tags": ["a", "b"]}) for i in range(n)]


class Proxy:
    """A TCP proxy in front of Redis that a test can cut, freeze and restore: Redis going away without touching
    the shared server. Frozen, it accepts and holds connections but forwards nothing (a half-open peer)."""

    def __init__(self, target: str) -> None:
        from redis.connection import parse_url

        kwargs = parse_url(target)
        self.host, self.target_port = kwargs.get("host", "127.0.0.1"), int(kwargs.get("port", 6379))
        self.port = closed_port()
        self.flowing = asyncio.Event()
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> Proxy:
        self.flowing.set()
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):  # either side went away
                    while data := await src.read(65536):
                        await self.flowing.wait()
                        dst.write(data)
                        await dst.drain()
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


# -- in-process and the factory ------------------------------------------------------------------------------------


async def test_open_notifier_without_url_is_in_process() -> None:
    assert type(open_notifier(None)) is InProcessNotifier
    assert type(open_notifier("")) is InProcessNotifier
    n = open_notifier("redis://127.0.0.1:1/0", channel="x")
    assert isinstance(n, RedisNotifier) and isinstance(n, Notifier) and n.channel == "x"
    await n.close()  # never started: closing is still fine


async def test_in_process_slow_subscriber_drops() -> None:
    n = InProcessNotifier()
    slow, fast = n.subscribe(maxsize=2), n.subscribe()
    for e in events(10):
        await n.publish(e)
    assert slow.qsize() == 2 and n.dropped == 8
    assert [e.data["seq"] for e in await take(fast, 10)] == list(range(10))


# -- Redis ---------------------------------------------------------------------------------------------------------


async def test_events_reach_every_replica_exactly_once_in_order(pair: tuple[RedisNotifier, RedisNotifier]) -> None:
    a, b = pair
    qa, qb, qb2 = a.subscribe(), b.subscribe(), b.subscribe()
    sent = events(200) + [Event("system", None, {})]
    for e in sent:
        await a.publish(e)
    for q in (qa, qb, qb2):
        assert await take(q, len(sent)) == sent
    # B has them all, so Redis has handled A's PUBLISHes: a marker from B now reaches A after A's own echoes, and
    # once A has it, any duplicate would have arrived before it.
    marker = Event("marker", "t2", {"from": "b"})
    await b.publish(marker)
    for q in (qa, qb, qb2):
        assert await take(q, 1) == [marker]
        await asyncio.sleep(0.02)
        assert q.empty()
    assert a.dropped == b.dropped == 0


async def test_a_deployment_on_its_own_channel_hears_only_its_own_replicas(pair: tuple[RedisNotifier, RedisNotifier], redis_url: str) -> None:
    """Two hubs on one Redis with --redis-channel each: a replica hears its partner, never the other hub."""
    a, b = pair
    other = open_notifier(redis_url, channel=f"{a.channel}:other", **FAST)
    await other.start()
    try:
        qb, q_other = b.subscribe(), other.subscribe()
        await other.publish(Event("agent_updated", "t1", {"seq": -1}))
        for e in events(3):
            await a.publish(e)
        assert [e.data["seq"] for e in await take(qb, 3)] == [0, 1, 2]  # (the other hub's event did not come first)
        assert [e.data["seq"] for e in await take(q_other, 1)] == [-1]  # its own, locally
        await asyncio.sleep(0.2)
        assert qb.empty() and q_other.empty()
    finally:
        await other.close()


async def test_replicas_see_concurrent_publishers_in_the_same_order(
    pair: tuple[RedisNotifier, RedisNotifier],
) -> None:
    a, b = pair
    qa, qb = a.subscribe(), b.subscribe()

    async def burst(task: int) -> None:
        for i in range(5):
            await a.publish(Event("e", None, {"task": task, "i": i}))
            await asyncio.sleep(0)

    await asyncio.gather(*(burst(t) for t in range(40)))
    local, remote = await take(qa, 200), await take(qb, 200)
    assert remote == local  # the outbox keeps the local order, and so one connection and pipelining


async def test_local_delivery_when_redis_unreachable(caplog: pytest.LogCaptureFixture, channel: str) -> None:
    n = RedisNotifier(f"redis://127.0.0.1:{closed_port()}/0", channel, **FAST)
    q = n.subscribe()
    with caplog.at_level(logging.INFO, logger="agora.bus"):
        await n.start()  # does not raise
        assert not n.healthy()
        started = time.monotonic()
        for e in events(5):
            await n.publish(e)
        assert time.monotonic() - started < 0.1
        assert [e.data["seq"] for e in await take(q, 5)] == list(range(5))
        await asyncio.sleep(0.3)  # several reconnect attempts
        assert not n.healthy()
        warnings = [r for r in caplog.records if r.name == "agora.bus" and r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings  # once per outage, not once per attempt
        started = time.monotonic()
        await n.close()
        assert time.monotonic() - started < 1.0


async def test_slow_subscriber_drops_and_others_get_everything(pair: tuple[RedisNotifier, RedisNotifier]) -> None:
    a, b = pair
    slow_a, fast_a = a.subscribe(maxsize=5), a.subscribe()
    slow_b, fast_b = b.subscribe(maxsize=3), b.subscribe(maxsize=500)
    for e in events(200):
        await a.publish(e)
    for q in (fast_a, fast_b):
        assert [e.data["seq"] for e in await take(q, 200)] == list(range(200))
    assert slow_a.qsize() == 5 and a.dropped == 195
    assert slow_b.qsize() == 3 and b.dropped == 197
    assert [e.data["seq"] for e in await take(slow_b, 3)] == [0, 1, 2]  # the oldest kept, the rest dropped
    b.unsubscribe(slow_b)
    await a.publish(Event("after", None))
    await take(fast_b, 1)
    assert slow_b.empty() and b.dropped == 197


async def test_close_is_fast_and_sends_what_is_queued(redis_url: str, channel: str) -> None:
    n, other = RedisNotifier(redis_url, channel), RedisNotifier(redis_url, channel)
    await n.start()
    await other.start()
    q = other.subscribe()
    assert n.healthy()
    for e in events(100):
        await n.publish(e)
    started = time.monotonic()
    await n.close()
    assert time.monotonic() - started < 1.0
    assert not n.healthy()
    assert [e.data["seq"] for e in await take(q, 100)] == list(range(100))
    await other.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("agora-redis-notifier")]


async def test_reconnects_after_its_connection_is_killed(pair: tuple[RedisNotifier, RedisNotifier]) -> None:
    import redis.asyncio as aioredis

    a, b = pair
    qa = a.subscribe()
    async with aioredis.Redis.from_url(REDIS_URL, decode_responses=True) as admin:
        # Only A's subscriber connection: the server may be shared with other test runs.
        ids = [c["id"] for c in await admin.client_list(_type="pubsub") if c["name"] == f"{a.channel}:a"]
        assert len(ids) == 1
        assert await admin.client_kill_filter(_id=ids[0]) == 1
    # Events flow again within a few seconds (anything published while reconnecting may be lost: that is allowed).
    deadline = time.monotonic() + 5
    while True:
        assert time.monotonic() < deadline, "no event from B reached A after the kill"
        await b.publish(Event("ping", None, {}))
        with contextlib.suppress(TimeoutError):
            await take(qa, 1, timeout=0.1)
            break
    assert a.healthy() and b.healthy()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[Proxy]:
    p = await Proxy(redis_url).start()
    yield p
    await p.cut()


async def test_outage_and_recovery(
    caplog: pytest.LogCaptureFixture, redis_url: str, channel: str, proxy: Proxy
) -> None:
    a = RedisNotifier(proxy.url, channel, **FAST)
    b = RedisNotifier(redis_url, channel, **FAST)
    await a.start()
    await b.start()
    qa, qb = a.subscribe(), b.subscribe()
    try:
        with caplog.at_level(logging.INFO, logger="agora.bus"):
            await b.publish(Event("before", None))
            assert (await take(qa, 1))[0].type == "before"
            await take(qb, 1)

            await proxy.cut()
            await eventually(lambda: not a.healthy())
            await a.publish(Event("during", None))  # local delivery only, no exception
            assert (await take(qa, 1))[0].type == "during"
            await asyncio.sleep(0.3)  # several failed reconnects
            warnings = [r for r in caplog.records if r.name == "agora.bus" and r.levelno == logging.WARNING]
            assert len(warnings) == 1, warnings

            await proxy.start()
            await eventually(a.healthy)
            await b.publish(Event("b-after", None))
            assert (await take(qa, 1))[0].type == "b-after"
            await a.publish(Event("a-after", None))  # its pooled publishing connection was cut too
            assert [e.type for e in await take(qb, 2)] == ["b-after", "a-after"]
            assert any("again" in r.getMessage() for r in caplog.records if r.name == "agora.bus")
    finally:
        await a.close()
        await b.close()


async def test_half_open_connection_is_detected(redis_url: str, channel: str, proxy: Proxy) -> None:
    """Redis that stops answering without closing (a partition): the PING watchdog notices, publish stays bounded."""
    a = RedisNotifier(
        proxy.url, channel, ping_interval=0.2, publish_timeout=0.2, connect_timeout=0.2, outbox_size=10, **FAST
    )
    await a.start()
    qa = a.subscribe()
    try:
        assert a.healthy()
        proxy.flowing.clear()
        started = time.monotonic()
        for e in events(50):  # it still believes it is connected: the outbox fills up, then drops
            await a.publish(e)
        assert time.monotonic() - started < 0.1
        assert [e.data["seq"] for e in await take(qa, 50)] == list(range(50))
        assert a.unsent >= 40
        await eventually(lambda: not a.healthy(), timeout=2)
        proxy.flowing.set()
        await eventually(a.healthy, timeout=3)
    finally:
        started = time.monotonic()
        await a.close()
        assert time.monotonic() - started < 1.0
