"""Broadcasts and topic messages a live stream hands out as lent ranges (not an inbox row each) keep every rule of an
inbox delivery: hidden until acked, back after the visibility timeout, ackable by id or up to a cursor, resent to a
resumed connection, and found by ``receive`` once they come back."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from .conftest import call, ok, unique
from .hubproc import HubProcess
from .test_streams import connect, frame, messages, quiet, register

SHARED = "broadcast_message,topic_message"


def tenant_agents(admin: httpx.Client, count: int) -> list[dict[str, Any]]:
    tenant = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
    with httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {tenant['key']}"}) as customer:
        return [register(customer) for _ in range(count)]


def broadcast(hub: HubProcess, sender: dict[str, Any], count: int) -> list[str]:
    with hub.client(sender["agent_token"]) as s:
        return [ok(call(s, "agora.messaging.send", to_agent="broadcast", content={"n": n}))["message_id"] for n in range(count)]


async def ack(ws: Any, **body: Any) -> int:
    await ws.send(json.dumps({"type": "ack", **body}))
    answer = await frame(ws)
    assert answer["type"] == "acked", answer
    return int(answer["acked"])


async def test_lent_broadcasts_come_back_unless_acked(hub, admin):
    sender, receiver = tenant_agents(admin, 2)
    async with connect(hub, receiver["agent_token"], types=SHARED, visibility_timeout="1") as ws:
        sent = broadcast(hub, sender, 4)
        first = await messages(ws, 4)
        assert [f["message"]["message_id"] for f in first] == sent
        assert {f["message"]["delivery_count"] for f in first} == {1}
        assert await ack(ws, up_to=first[1]["message"]["cursor"]) == 2
        assert await ack(ws, message_ids=[sent[3]]) == 1
        started = time.perf_counter()
        (again,) = await messages(ws, 1)  # the third, never acked
        assert 0.8 < time.perf_counter() - started < 5
        assert (again["message"]["message_id"], again["message"]["delivery_count"]) == (sent[2], 2)
        assert await ack(ws, message_ids=[sent[2]]) == 1
        assert await quiet(ws, 1.5) == []
    with hub.client(receiver["agent_token"]) as r:
        assert ok(call(r, "agora.messaging.receive", limit=10))["messages"] == []
        missing = call(r, "agora.messaging.ack", message_ids=[sent[0]])  # acked once already: no longer in the inbox
        assert missing.status_code == 200 and missing.json()["acked"] == 0


async def test_a_lent_message_left_by_a_closed_stream_is_received_after_its_timeout(hub, admin):
    sender, receiver = tenant_agents(admin, 2)
    with hub.client(receiver["agent_token"]) as r:
        ok(call(r, "agora.messaging.subscribe", topics=["builds.*"]))
        async with connect(hub, receiver["agent_token"], types=SHARED, visibility_timeout="1") as ws:
            (sent,) = broadcast(hub, sender, 1)
            with hub.client(sender["agent_token"]) as s:
                published = ok(call(s, "agora.messaging.publish", topic="builds.main", content="green"))["message_id"]
            got = await messages(ws, 2)
            assert [f["type"] for f in got] == ["broadcast_message", "topic_message"]
        assert ok(call(r, "agora.messaging.receive", limit=10))["messages"] == []  # still hidden
        time.sleep(1.2)
        back = ok(call(r, "agora.messaging.receive", limit=10))["messages"]
        assert [(m["message_id"], m["delivery_count"]) for m in back] == [(sent, 2), (published, 2)]
        assert ok(call(r, "agora.messaging.ack", message_ids=[sent, published]))["acked"] == 2


async def test_a_resumed_stream_gets_what_went_to_the_lost_connection_at_once(hub, admin):
    sender, receiver = tenant_agents(admin, 2)
    async with connect(hub, receiver["agent_token"], types=SHARED) as ws:
        sent = broadcast(hub, sender, 4)
        got = await messages(ws, 4)
        resume = got[1]["id"]  # the client processed two frames (and acked none); the other two were lost
    async with connect(hub, receiver["agent_token"], types=SHARED, resume=resume) as ws:
        again = await messages(ws, 2)
        assert [(f["message"]["message_id"], f["message"]["delivery_count"]) for f in again] == [(sent[2], 2), (sent[3], 2)]
        assert await quiet(ws, 0.5) == []  # the two it saw wait out their visibility timeout
        assert await ack(ws, up_to=again[-1]["message"]["cursor"]) == 4
    with hub.client(receiver["agent_token"]) as r:
        assert ok(call(r, "agora.messaging.receive", limit=10, visibility_timeout=1))["messages"] == []


async def test_unsubscribing_drops_what_the_subscription_lent(hub, admin):
    sender, receiver = tenant_agents(admin, 2)
    with hub.client(receiver["agent_token"]) as r:
        sub = ok(call(r, "agora.messaging.subscribe", topics=["builds.*"]))
        async with connect(hub, receiver["agent_token"], types=SHARED, visibility_timeout="1") as ws:
            with hub.client(sender["agent_token"]) as s:
                ok(call(s, "agora.messaging.publish", topic="builds.main", content="green"))
            await messages(ws, 1)
            ok(call(r, "agora.messaging.unsubscribe", subscription_id=sub["subscription_id"]))
            assert await quiet(ws, 1.5) == []  # no subscription, nothing comes back
        assert ok(call(r, "agora.messaging.receive", limit=10))["messages"] == []


async def test_batch_frames_carry_what_the_hub_has_at_hand_and_resume_after_any_event(hub, admin):
    sender, receiver = tenant_agents(admin, 2)
    sent = broadcast(hub, sender, 5)  # waiting before the stream opens: the first read finds them all
    async with connect(hub, receiver["agent_token"], types=SHARED, batch="1") as ws:
        batch = await frame(ws)
        assert batch["type"] == "batch" and batch["id"] == batch["events"][-1]["id"]
        assert [e["message"]["message_id"] for e in batch["events"]] == sent
        assert {e["type"] for e in batch["events"]} == {"broadcast_message"}
    async with connect(hub, receiver["agent_token"], types=SHARED, batch="true", resume=batch["events"][2]["id"]) as ws:
        again = await frame(ws)
        assert [(e["message"]["message_id"], e["message"]["delivery_count"]) for e in again["events"]] == [(sent[3], 2), (sent[4], 2)]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(hub, receiver["agent_token"], batch="maybe"):
            pass
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body)["error"]["details"]["field"] == "batch"
    sse_refused = httpx.get(f"http://127.0.0.1:{hub.port}/events?batch=1", headers={"Authorization": f"Bearer {receiver['agent_token']}"})
    assert sse_refused.status_code == 400  # a WebSocket option only


def test_rendered_messages_are_kept_once_and_completed_when_dropped_meanwhile():
    from agora.core.rendered import RenderedMessages

    renders: list[int] = []

    def render(row: dict[str, Any]) -> dict[str, Any]:
        renders.append(row["seq"])
        return {"id": row["message_id"], "count": row["delivery_count"]}

    def lent(seq: int, whole: bool = True) -> dict[str, Any]:
        row = {"seq": seq, "subscription_id": None, "delivery_count": 1, "lent": True}
        return row | ({"message_id": f"m{seq}"} if whole else {})

    cache = RenderedMessages(render, capacity=2)
    fetched: list[list[int]] = []

    def fetch(seqs: list[int]) -> list[dict[str, Any]]:
        fetched.append(seqs)
        return [{"seq": s, "message_id": f"m{s}", "delivery_count": 9} for s in seqs]

    assert cache.render([lent(1), lent(2)], fetch) == [b'{"id":"m1","count":1}', b'{"id":"m2","count":1}']
    assert (1, None) in cache and cache.render([lent(1, whole=False)], fetch) == [b'{"id":"m1","count":1}']
    assert renders == [1, 2] and fetched == []  # the second time from the cache
    cache.render([lent(3)], fetch)  # over capacity: the oldest (1) goes
    assert (1, None) not in cache and (3, None) in cache
    # A row that came without its body because 1 was known then is completed (its own delivery count kept).
    assert cache.render([lent(1, whole=False)], fetch) == [b'{"id":"m1","count":1}'] and fetched == [[1]]
    inbox_row = {"seq": 7, "subscription_id": None, "delivery_count": 3, "message_id": "m7"}  # not lent: never kept
    assert cache.render([inbox_row], fetch) == [b'{"id":"m7","count":3}'] and (7, None) not in cache


async def test_an_ack_by_id_cuts_one_message_out_of_what_was_lent(hub, admin):
    sender, receiver = tenant_agents(admin, 2)
    sent = broadcast(hub, sender, 4)  # waiting before the stream opens: lent in one range
    async with connect(hub, receiver["agent_token"], types=SHARED, visibility_timeout="1", batch="1") as ws:
        (first,) = [await frame(ws)]
        assert [e["message"]["message_id"] for e in first["events"]] == sent
        assert await ack(ws, message_ids=[sent[1], sent[3]]) == 2
        assert await ack(ws, message_ids=[sent[1]]) == 0  # again: nothing more to ack, and no error
        back = await frame(ws, timeout=5)  # the two left come back together after the timeout
        assert [(e["message"]["message_id"], e["message"]["delivery_count"]) for e in back["events"]] == [(sent[0], 2), (sent[2], 2)]
        assert await ack(ws, up_to=back["events"][-1]["message"]["cursor"]) == 2
        assert await quiet(ws, 1.5) == []
