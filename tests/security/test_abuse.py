"""Abuse controls: rate limits per key and tool class, per address without a key, the brake on guessing keys, and
revocation that reaches every replica at once."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import httpx
import pytest
import websockets

from agora_sdk import AgoraClient
from agora_sdk.errors import RateLimited

from ..conftest import call, expect_error, ok, unique
from ..hubproc import HubProcess


def register(admin: httpx.Client, hub: HubProcess) -> httpx.Client:
    agent = ok(call(admin, "agora.agents.register", agent_name=unique("abuse")))
    return hub.client(agent["agent_token"])


def from_address(address: str) -> dict[str, str]:
    """A request as if from ``address`` (the hub believes X-Forwarded-For from loopback, its default trusted proxy)."""
    return {"X-Forwarded-For": address}


def test_a_key_past_its_write_limit_gets_429_and_others_do_not(tmp_path: Path):
    hub = HubProcess(tmp_path, extra_args=["--rate-limit", "agent.write=5/m:5", "--rate-limit", "agent.read=100/s:100"]).start()
    try:
        with hub.client() as admin, register(admin, hub) as flooder, register(admin, hub) as other:
            receiver = ok(call(admin, "agora.agents.register", agent_name=unique("receiver")))
            answers = [call(flooder, "agora.messaging.send", to_agent=receiver["agent_id"], content=n) for n in range(6)]
            assert [r.status_code for r in answers[:5]] == [200] * 5
            refused = answers[-1]
            error = expect_error(refused, 429, "rate_limited")
            assert error["details"]["tool_class"] == "write" and error["details"]["limit"] == "5/m:5"
            wait = error["details"]["retry_after_seconds"]
            assert 10 < wait <= 12 and refused.headers["Retry-After"] == str(math.ceil(wait))
            with hub.client(flooder.headers["Authorization"].removeprefix("Bearer ")) as again:  # a new connection
                ok(call(again, "agora.query.agents"))  # reads have their own budget
                expect_error(call(again, "agora.messaging.send", to_agent=receiver["agent_id"], content="no"), 429, "rate_limited")
            ok(call(other, "agora.messaging.send", to_agent=receiver["agent_id"], content="other"))  # another key: untouched
            for n in range(20):  # the admin is not limited by default
                ok(call(admin, "agora.query.agents"))
            # A refused call changed nothing: exactly what was accepted arrived.
            with hub.client(receiver["agent_token"]) as r:
                got = ok(call(r, "agora.messaging.receive", limit=100))["messages"]
            assert sorted(str(m["content"]) for m in got) == sorted(["0", "1", "2", "3", "4", "other"])
    finally:
        hub.stop()


def test_a_connection_told_to_wait_is_not_read_before_its_retry_after(tmp_path: Path):
    """A flood on kept-alive connections costs the hub one request per connection per Retry-After."""
    hub = HubProcess(tmp_path, extra_args=["--rate-limit", "agent.write=1/s:1"]).start()
    try:
        with hub.client() as admin:
            agent = ok(call(admin, "agora.agents.register", agent_name=unique("hasty")))
        with hub.client(agent["agent_token"]) as hasty:
            for n in range(10):  # one a second is allowed: a second one right away is refused
                if (answer := call(hasty, "agora.messaging.send", to_agent="broadcast", content=n)).status_code == 429:
                    break
            told_at = time.monotonic()
            assert expect_error(answer, 429, "rate_limited")["details"]["retry_after_seconds"] <= 1.0
            with hub.client() as other:  # others are answered at once meanwhile
                ok(call(other, "agora.query.agents"))
                assert time.monotonic() - told_at < 0.5
            call(hasty, "agora.messaging.send", to_agent="broadcast", content="again")  # same connection: held first
            assert time.monotonic() - told_at >= 0.95
    finally:
        hub.stop()


def test_requests_without_a_key_are_limited_per_address(tmp_path: Path):
    hub = HubProcess(tmp_path, extra_args=["--rate-limit", "anonymous=3/m:3"]).start()
    try:
        statuses = [httpx.get(hub.url + "/health", headers=from_address("203.0.113.7")).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        assert httpx.get(hub.url + "/health", headers=from_address("203.0.113.8")).status_code == 200  # its own bucket
        # A whole IPv6 /64 is one source: hopping inside it does not help.
        v6 = [httpx.get(hub.url + "/health", headers=from_address(f"2001:db8::{n}")).status_code for n in range(1, 6)]
        assert v6[3:] == [429, 429]
        with hub.client() as admin:
            ok(admin.get("/health", headers=from_address("203.0.113.7")))  # a key is not counted per address
    finally:
        hub.stop()


def test_guessing_keys_slows_down_then_locks_the_source_out(tmp_path: Path):
    hub = HubProcess(
        tmp_path,
        extra_args=["--auth-failure-rate", "60/m:4", "--auth-lockout-after", "6", "--auth-lockout-seconds", "2"],
    ).start()
    try:
        attacker = from_address("198.51.100.23")
        with hub.client() as admin:
            agent = ok(call(admin, "agora.agents.register", agent_name=unique("victim")))

        def guess() -> httpx.Response:
            return httpx.post(hub.url + "/agora/agents/list", headers={**attacker, "Authorization": "Bearer agora_sk_" + "x" * 43})

        assert [guess().status_code for _ in range(4)] == [401] * 4
        slowed = expect_error(guess(), 429, "rate_limited")  # the burst is spent: slow down (nothing is checked)
        assert slowed["details"]["reason"] == "slowed_down"
        time.sleep(1.1)  # one more try a second
        assert guess().status_code == 401
        time.sleep(1.1)
        assert guess().status_code == 401  # the 6th failure within the hour: locked out from now on
        locked = expect_error(guess(), 429, "rate_limited")
        assert locked["details"]["reason"] == "locked_out"
        # While locked out, even a real key is not looked at from that address (nothing to learn there)…
        real = httpx.post(hub.url + "/agora/agents/list", headers={**attacker, "Authorization": f"Bearer {agent['agent_token']}"})
        expect_error(real, 429, "rate_limited")
        # …except the hub's own admin key, and other addresses are not affected.
        ok(httpx.post(hub.url + "/agora/agents/list", headers={**attacker, "Authorization": f"Bearer {hub.admin_key}"}))
        ok(httpx.post(hub.url + "/agora/agents/list", headers={**from_address("198.51.100.24"), "Authorization": f"Bearer {agent['agent_token']}"}))
        time.sleep(2.2)
        ok(httpx.post(hub.url + "/agora/agents/list", headers={**attacker, "Authorization": f"Bearer {agent['agent_token']}"}))
    finally:
        hub.stop()


def test_the_sdk_waits_out_a_429_and_succeeds(tmp_path: Path):
    hub = HubProcess(tmp_path, extra_args=["--rate-limit", "agent.write=4/s:2"]).start()
    try:
        with hub.client() as admin:
            agent = ok(call(admin, "agora.agents.register", agent_name=unique("patient")))
        client = AgoraClient(hub.url, agent["agent_token"], retries=5)
        started = time.monotonic()
        for n in range(6):
            client.messaging.send("broadcast", n)
        assert time.monotonic() - started >= 0.8  # 2 at once, then one every 0.25 s
        impatient = AgoraClient(hub.url, agent["agent_token"], retries=0)
        with pytest.raises(RateLimited):
            for n in range(5):
                impatient.messaging.send("broadcast", n)
    finally:
        hub.stop()


def test_limits_and_lockouts_hold_across_replicas(two_replicas):
    one, two = two_replicas
    # Both replicas run with the defaults; a lockout made through one refuses the source on the other.
    attacker = from_address("192.0.2.99")
    bad = {**attacker, "Authorization": "Bearer agora_sk_" + "y" * 43}
    statuses = []
    for n in range(30):
        statuses.append(httpx.post((one if n % 2 else two).url + "/agora/agents/list", headers=bad).status_code)
    assert statuses.count(401) == 20, statuses  # the default burst of 20 failures, shared by both replicas
    assert statuses[20:] == [429] * 10


@pytest.mark.parametrize("what", ["revoke_key", "deregister_agent"])
def test_revocation_reaches_another_replica_within_a_second(two_replicas, what: str):
    one, two = two_replicas
    with one.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("revoked")))
        if what == "revoke_key":
            created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
            key, key_id = created["key"], created["info"]["key_id"]
        else:
            key = agent["agent_token"]
    with two.client(key) as on_two:
        ok(call(on_two, "agora.query.agents"))  # cached on the second replica now
        with one.client() as admin:
            if what == "revoke_key":
                ok(call(admin, "agora.admin.keys.revoke", key_id=key_id))
            else:
                ok(call(admin, "agora.agents.deregister", agent=agent["agent_id"]))
        revoked_at = time.monotonic()
        while call(on_two, "agora.query.agents").status_code != 401:
            assert time.monotonic() - revoked_at < 1.0, "the key still works on the other replica after 1 s"
            time.sleep(0.01)


@pytest.mark.parametrize("where", ["same replica", "other replica"])
def test_a_revoked_keys_open_websocket_is_closed(two_replicas, where: str):
    one, two = two_replicas
    stream_hub = one if where == "same replica" else two
    with one.client() as admin:
        created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))

    async def watch() -> tuple[int | None, float]:
        url = stream_hub.url.replace("http", "ws") + "/ws"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {created['key']}"}) as ws:
            await ws.recv()  # ready
            with one.client() as admin:
                ok(call(admin, "agora.admin.keys.revoke", key_id=created["info"]["key_id"]))
            revoked_at = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            return (closed.value.rcvd.code if closed.value.rcvd else None), time.monotonic() - revoked_at

    code, seconds = asyncio.run(watch())
    assert code == 1008 and seconds < 1.0
