"""Messaging on both engines: durable inboxes, redelivery, acks, broadcast, topics, long-poll, isolation."""

from __future__ import annotations

import threading
import time

import httpx

from .conftest import call, expect_error, new_tenant, ok, unique
from .hubproc import HubProcess


def agents_of(tenant: httpx.Client, hub: HubProcess, n: int) -> list[dict]:
    return [ok(call(tenant, "agora.agents.register", agent_name=unique(), capabilities=["msg"])) for _ in range(n)]


def receive(client: httpx.Client, **args) -> list[dict]:
    return ok(call(client, "agora.messaging.receive", **args))["messages"]


def long_poll(hub: HubProcess, token: str) -> tuple[threading.Thread, dict]:
    """A receive with wait=10 running in a thread (started, and given half a second to park)."""
    result: dict = {}

    def wait() -> None:
        with hub.client(token) as r:
            result["started"] = time.perf_counter()
            result["messages"] = receive(r, wait=10)
            result["ended"] = time.perf_counter()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    return waiter, result


def test_message_waits_for_an_offline_agent_and_arrives_once_acked(hub, admin):
    with new_tenant(admin, hub) as tenant:
        sender, receiver = agents_of(tenant, hub, 2)
        with hub.client(sender["agent_token"]) as s:
            receipt = ok(call(s, "agora.messaging.send", to_agent=receiver["agent_name"], content={"hello": 1}, performative="inform"))
        assert receipt["message_id"].startswith("msg_") and receipt["status"] == "queued" and receipt["kind"] == "direct"
        with hub.client(receiver["agent_token"]) as r:
            [msg] = receive(r)
            assert msg["message_id"] == receipt["message_id"] and msg["from_agent"] == sender["agent_id"]
            assert msg["content"] == {"hello": 1} and msg["delivery_count"] == 1 and msg["performative"] == "inform"
            assert receive(r) == []  # hidden while in flight
            assert ok(call(r, "agora.messaging.ack", message_ids=[msg["message_id"]]))["acked"] == 1
            assert ok(call(r, "agora.messaging.ack", message_ids=[msg["message_id"]]))["acked"] == 0  # idempotent


def test_a_single_direct_send_stores_every_field_it_was_given(hub, admin):
    """One direct message takes the send's short way (on PostgreSQL one statement): each field comes back as sent."""
    with new_tenant(admin, hub) as tenant:
        sender, receiver = agents_of(tenant, hub, 2)
        fields = {
            "message_type": "quote", "performative": "request", "intent": "price.ask", "priority": "high", "ttl": 3600,
            "content": {"sku": "ü-1", "n": [1, 2.5, None]}, "context": {"trace": "t-1"},
            "correlation": {"conversation_id": "conv-7"}, "expected": {"timeout_ms": 60_000},
        }  # fmt: skip
        with hub.client(sender["agent_token"]) as s:
            receipt = ok(call(s, "agora.messaging.send", to_agent=receiver["agent_id"], **fields))
        with hub.client(receiver["agent_token"]) as r:
            [msg] = receive(r)
    assert msg["message_id"] == receipt["message_id"] and msg["to_agent"] == receiver["agent_id"] and msg["kind"] == "direct"
    assert {k: msg[k] for k in ("message_type", "performative", "intent", "priority", "content", "context")} == {
        k: fields[k] for k in ("message_type", "performative", "intent", "priority", "content", "context")
    }
    assert msg["correlation"] == {"conversation_id": "conv-7"} and msg["expected"] == {"timeout_ms": 60_000}
    assert msg["expires_at"] is not None and msg["timestamp"] == receipt["timestamp"]


def test_unacked_message_comes_back_after_the_visibility_timeout(hub, admin):
    with new_tenant(admin, hub) as tenant:
        [agent] = agents_of(tenant, hub, 1)
        ok(call(tenant, "agora.messaging.send", to_agent=agent["agent_id"], content="again"))
        with hub.client(agent["agent_token"]) as r:
            [first] = receive(r, visibility_timeout=1)
            assert receive(r) == []
            time.sleep(1.2)
            [second] = receive(r)
            assert second["message_id"] == first["message_id"] and second["delivery_count"] == 2
            ok(call(r, "agora.messaging.ack", up_to=second["cursor"]))
            time.sleep(0.1)
            assert receive(r, visibility_timeout=1) == []


def test_sender_is_the_token_never_the_body_and_idempotency_keys_dedupe(hub, admin):
    with new_tenant(admin, hub) as tenant:
        a, b = agents_of(tenant, hub, 2)
        with hub.client(a["agent_token"]) as s:
            expect_error(call(s, "agora.messaging.send", to_agent=b["agent_id"], content="x", from_agent="system"), 422, "invalid_argument")
            first = ok(call(s, "agora.messaging.send", to_agent=b["agent_id"], content="once", idempotency_key="k1"))
            again = ok(call(s, "agora.messaging.send", to_agent=b["agent_id"], content="once", idempotency_key="k1"))
        assert again["message_id"] == first["message_id"] and again["status"] == "duplicate"
        with hub.client(b["agent_token"]) as r:
            got = receive(r)
        assert [m["message_id"] for m in got] == [first["message_id"]] and got[0]["from_agent"] == a["agent_id"]


def test_urgent_before_normal_and_filters(hub, admin):
    with new_tenant(admin, hub) as tenant:
        [agent] = agents_of(tenant, hub, 1)
        batch = [
            {"to_agent": agent["agent_id"], "content": "low", "priority": "low"},
            {"to_agent": agent["agent_id"], "content": "normal"},
            {"to_agent": agent["agent_id"], "content": "urgent", "priority": 4, "message_type": "alert"},
            {"to_agent": agent["agent_id"], "content": "high", "priority": "high", "correlation": {"conversation_id": "c9"}},
        ]
        assert ok(call(tenant, "agora.messaging.send_batch", messages=batch))["count"] == 4
        with hub.client(agent["agent_token"]) as r:
            assert [m["content"] for m in receive(r, message_type="alert", visibility_timeout=1)] == ["urgent"]
            assert [m["content"] for m in receive(r, conversation_id="c9", visibility_timeout=1)] == ["high"]
            time.sleep(1.1)
            assert [m["content"] for m in receive(r, limit=10)] == ["urgent", "high", "normal", "low"]


def test_broadcast_reaches_every_agent_of_the_tenant_once(hub, admin):
    with new_tenant(admin, hub) as tenant, new_tenant(admin, hub) as other:
        agents = agents_of(tenant, hub, 6)
        [outsider] = agents_of(other, hub, 1)
        with hub.client(agents[0]["agent_token"]) as s:
            receipt = ok(call(s, "agora.messaging.send", to_agent="broadcast", content="all hands", message_type="introduction"))
        assert receipt["kind"] == "broadcast"
        for agent in agents[1:]:
            with hub.client(agent["agent_token"]) as r:
                [msg] = receive(r)
                assert msg["message_id"] == receipt["message_id"] and msg["kind"] == "broadcast"
                ok(call(r, "agora.messaging.ack", message_ids=[msg["message_id"]]))
                assert receive(r) == []
        with hub.client(agents[0]["agent_token"]) as me:
            assert receive(me) == []  # not to its own sender
        with hub.client(outsider["agent_token"]) as o:
            assert receive(o) == []  # never to another tenant
        [late] = agents_of(tenant, hub, 1)
        with hub.client(late["agent_token"]) as r:
            assert receive(r) == []  # sent before it registered


def test_topics_reach_matching_subscriptions(hub, admin):
    with new_tenant(admin, hub) as tenant:
        ci, other = agents_of(tenant, hub, 2)
        with hub.client(ci["agent_token"]) as c:
            sub = ok(call(c, "agora.messaging.subscribe", topics=["builds.*"]))
            assert sub["subscription_id"].startswith("sub_")
            ok(call(tenant, "agora.messaging.publish", topic="builds.eu.failed", content="red"))
            ok(call(tenant, "agora.messaging.send", topic="deploys.done", content="ignored"))
            ok(call(tenant, "agora.messaging.publish", topic="builds.ok", content="green"))
            got = receive(c)
            assert [m["content"] for m in got] == ["red", "green"]
            assert {m["subscription_id"] for m in got} == {sub["subscription_id"]} and got[0]["topic"] == "builds.eu.failed"
            ok(call(c, "agora.messaging.unsubscribe", subscription_id=sub["subscription_id"]))
            expect_error(call(c, "agora.messaging.unsubscribe", subscription_id=sub["subscription_id"]), 404, "not_found")
            ok(call(tenant, "agora.messaging.publish", topic="builds.ok", content="after"))
            assert receive(c, visibility_timeout=1) == []
        with hub.client(other["agent_token"]) as o:
            assert receive(o) == []


def test_long_poll_wakes_when_a_message_lands(hub, admin):
    with new_tenant(admin, hub) as tenant:
        [agent] = agents_of(tenant, hub, 1)
        waiter, result = long_poll(hub, agent["agent_token"])
        sent_at = time.perf_counter()
        ok(call(tenant, "agora.messaging.send", to_agent=agent["agent_id"], content="ping"))
        waiter.join(15)
        assert [m["content"] for m in result["messages"]] == ["ping"]
        # The poll was parked before the send (not answered at once, empty) and woke soon after it.
        assert result["started"] < sent_at < result["ended"] < sent_at + 3


def test_isolation_and_bad_input(hub, admin):
    with new_tenant(admin, hub) as tenant, new_tenant(admin, hub) as other:
        a, b = agents_of(tenant, hub, 2)
        [foreign] = agents_of(other, hub, 1)
        for to in (foreign["agent_id"], foreign["agent_name"], "agent_0000000000000000", unique("ghost")):
            error = expect_error(call(tenant, "agora.messaging.send", to_agent=to, content="x"), 404, "not_found")
            assert foreign["agent_id"] not in str(error["details"]) or to == foreign["agent_id"]
        with hub.client(foreign["agent_token"]) as rf:
            assert receive(rf) == []  # the refused sends stored nothing
        ok(call(tenant, "agora.messaging.send", to_agent=a["agent_id"], content="for a"))
        with hub.client(a["agent_token"]) as ra, hub.client(b["agent_token"]) as rb:
            [msg] = receive(ra)
            expect_error(call(rb, "agora.messaging.ack", message_ids=[msg["message_id"]]), 404, "not_found")
            expect_error(call(rb, "agora.messaging.receive", agent=a["agent_id"]), 403, "permission_denied")
        with hub.client(foreign["agent_token"]) as rf:
            expect_error(call(rf, "agora.messaging.receive", agent=a["agent_id"]), 404, "not_found")
        big = "x" * (300 * 1024)
        expect_error(call(tenant, "agora.messaging.send", to_agent=a["agent_id"], content=big), 413, "payload_too_large")
        expect_error(call(tenant, "agora.messaging.send", to_agent=a["agent_id"], topic="t", content="x"), 422, "invalid_argument")
        expect_error(call(tenant, "agora.messaging.send", to_agent=a["agent_id"], content="x", priority=9), 422, "invalid_argument")
        batch = [{"to_agent": a["agent_id"], "content": "kept?"}, {"to_agent": unique("ghost"), "content": "no"}]
        expect_error(call(tenant, "agora.messaging.send_batch", messages=batch), 404, "not_found")
        with hub.client(a["agent_token"]) as ra:
            assert receive(ra, visibility_timeout=1) == []  # the refused batch stored nothing


def test_request_without_a_reply_in_time_brings_the_sender_a_timeout_failure(hub, admin):
    tenant = new_tenant(admin, hub)
    asker, silent, helpful = agents_of(tenant, hub, 3)
    with hub.client(asker["agent_token"]) as a:
        started = time.monotonic()
        unanswered = ok(call(a, "agora.messaging.send", to_agent=silent["agent_id"], content="2+2?", performative="request",
                             correlation={"conversation_id": "math"}, expected={"type": "inform", "timeout_ms": 500}))
        answered = ok(call(a, "agora.messaging.send", to_agent=helpful["agent_id"], content="3+3?", performative="request",
                           expected={"type": "inform", "timeout_ms": 800}))
        with hub.client(helpful["agent_token"]) as h:
            ok(call(h, "agora.messaging.send", to_agent=asker["agent_id"], content=6, performative="inform",
                    correlation={"reply_to": answered["message_id"]}))
        got = receive(a, wait=10, performative="failure")
        assert 0.4 < time.monotonic() - started < 5
        (failure,) = got
        assert (failure["from_agent"], failure["intent"], failure["performative"]) == ("system", "timeout", "failure")
        assert failure["content"]["original_message_id"] == unanswered["message_id"]
        assert failure["content"] == {
            "error": "Request timeout", "timeout": 500, "original_message_id": unanswered["message_id"],
            "to_agent": silent["agent_id"], "topic": None,
        }
        assert failure["correlation"] == {"reply_to": unanswered["message_id"], "conversation_id": "math"}
        time.sleep(1.2)  # past the answered request's deadline: its reply came in time, so no failure for it
        later = receive(a, wait=0)
        assert [m["content"] for m in later] == [6]
    expect_error(call(admin, "agora.messaging.send", to_agent=silent["agent_id"], content="x", expected={"timeout_ms": 0}), 422, "invalid_argument")


def test_messages_survive_a_restart(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    try:
        with hub.client() as admin:
            agent = ok(call(admin, "agora.agents.register", agent_name="durable"))
            sent = ok(call(admin, "agora.messaging.send_batch", messages=[{"to_agent": "durable", "content": i} for i in range(50)]))
    finally:
        hub.stop()
    hub = HubProcess(tmp_path / "hub").start()
    try:
        with hub.client(agent["agent_token"]) as r:
            got = receive(r, limit=100)
        assert [m["message_id"] for m in got] == [rc["message_id"] for rc in sent["receipts"]]
    finally:
        hub.stop()


def test_two_replicas_on_postgres_and_redis_wake_each_others_receivers(two_replicas):
    one, two = two_replicas
    with one.client() as admin_one:
        agent = ok(call(admin_one, "agora.agents.register", agent_name="replicated"))
    waiter, result = long_poll(two, agent["agent_token"])
    sent_at = time.perf_counter()
    with one.client() as admin_one:
        ok(call(admin_one, "agora.messaging.send", to_agent="replicated", content="across replicas"))
    waiter.join(15)
    assert [m["content"] for m in result["messages"]] == ["across replicas"]
    assert result["ended"] < sent_at + 3  # woken through Redis, not by the 10 s long-poll running out
