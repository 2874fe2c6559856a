"""Fault: Redis, the bus between replicas, goes away (issue 59, fault 2) — stopped, or cut off by a network that drops
everything (connections hang, nothing says they are dead). Two replicas on one PostgreSQL database reach a Redis
server of the test's own through a proxy: while Redis is away, a message sent through one replica reaches a receiver
long-polling the other within 1 s (wake-ups fall back to polling the store, not to the long-poll's timeout), sends
keep answering 200, ``/ready`` and ``agora_bus_up`` say the bus is down; when Redis is back they say so within 2 s."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import call, fresh_postgres_url, metric, ok, unique
from ..hubproc import HubProcess
from ..tcp_proxy import TcpProxy, proxy
from .redis_server import RedisServer


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[HubProcess, HubProcess, RedisServer, TcpProxy]]:
    redis = RedisServer().start()
    url = fresh_postgres_url(postgres_url)
    with proxy(redis.port) as network:
        env = {"AGORA_REDIS_URL": f"redis://127.0.0.1:{network.port}/0", "AGORA_REDIS_CHANNEL": f"agora:test:{uuid.uuid4().hex[:10]}"}
        one = HubProcess(tmp_path / "one", database_url=url, env=env).start()
        two = HubProcess(tmp_path / "two", database_url=url, env=env).start()
        try:
            yield one, two, redis, network
        finally:
            one.stop()
            two.stop()
            redis.stop()


def _delivery_seconds(sender: httpx.Client, receiver: httpx.Client, to: str, n: int) -> float:
    """Send through one replica while the receiver long-polls (wait=5) the other: seconds until it has the message."""
    received: list[float] = []

    def receive() -> None:
        got = ok(call(receiver, "agora.messaging.receive", wait=5))
        received.append(time.monotonic())
        assert got["messages"] and got["messages"][0]["content"] == f"m{n}", got
        ok(call(receiver, "agora.messaging.ack", message_ids=[m["message_id"] for m in got["messages"]]))

    polling = threading.Thread(target=receive)
    polling.start()
    time.sleep(0.3)  # parked
    sent = time.monotonic()
    ok(call(sender, "agora.messaging.send", to_agent=to, content=f"m{n}"))
    polling.join(10)
    return received[0] - sent


@pytest.mark.parametrize("fault", ["stopped", "cut off"])
def test_without_redis_replicas_deliver_within_a_second_and_say_the_bus_is_down(replicas, fault: str) -> None:
    one, two, redis, network = replicas
    away, back_again = (redis.stop, redis.start) if fault == "stopped" else (network.partition, network.heal)
    with one.client() as admin:
        sender = ok(call(admin, "agora.agents.register", agent_name=unique("sender")))
        receiver = ok(call(admin, "agora.agents.register", agent_name=unique("receiver")))
    with one.client(sender["agent_token"]) as on_one, two.client(receiver["agent_token"]) as on_two:
        assert _delivery_seconds(on_one, on_two, receiver["agent_id"], 0) < 1.0  # through Redis
        away()
        deadline = time.monotonic() + 10
        while httpx.get(two.url + "/ready").json().get("bus") != "down":
            assert time.monotonic() < deadline, "the replica never said the bus was down"
            time.sleep(0.1)
        while metric(two, "agora_bus_up") != 0:  # (set by the fallback's own loop, a quarter second at most later)
            assert time.monotonic() < deadline, "agora_bus_up never said the bus was down"
            time.sleep(0.05)
        delays = [_delivery_seconds(on_one, on_two, receiver["agent_id"], n) for n in range(1, 6)]
        assert max(delays) < 1.0, delays  # not the long-poll's 5 s
        back_again()  # on the same port
        back = time.monotonic()
        while any(httpx.get(hub.url + "/ready").json().get("bus") != "up" for hub in (one, two)):
            assert time.monotonic() - back < 2.0, "the replicas did not take Redis back within 2 s"
            time.sleep(0.05)
        assert _delivery_seconds(on_one, on_two, receiver["agent_id"], 9) < 0.5
    assert statistics.median(delays) < 0.6
