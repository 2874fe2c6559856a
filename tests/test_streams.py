"""Live streams: WebSocket /ws and SSE /events against real hubs, with the websockets and httpx clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from .conftest import call, metric, ok, unique
from .hubproc import HubProcess


def ws_url(hub: HubProcess, **params: str) -> str:
    return f"ws://127.0.0.1:{hub.port}/ws" + (f"?{urlencode(params)}" if params else "")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def register(admin: httpx.Client, name: str | None = None) -> dict[str, Any]:
    return ok(call(admin, "agora.agents.register", agent_name=name or unique("stream")))


def send(client: httpx.Client, to: str, content: Any, **extra: Any) -> str:
    return ok(call(client, "agora.messaging.send", to_agent=to, content=content, **extra))["message_id"]


@contextlib.asynccontextmanager
async def connect(hub: HubProcess, key: str, **params: str) -> AsyncIterator[websockets.ClientConnection]:
    async with websockets.connect(ws_url(hub, **params), additional_headers=bearer(key), open_timeout=10) as ws:
        ready = await frame(ws)
        assert ready["type"] == "ready" and ready["id"], ready
        yield ws


async def frame(ws: websockets.ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def messages(ws: websockets.ClientConnection, count: int) -> list[dict[str, Any]]:
    got = []
    while len(got) < count:
        f = await frame(ws)
        if "message" in f:
            got.append(f)
    return got


async def quiet(ws: websockets.ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Frames that arrive within ``seconds`` (expected: none)."""
    extra = []
    with contextlib.suppress(TimeoutError):
        while True:
            extra.append(await frame(ws, seconds))
    return extra


async def test_offline_agent_gets_its_backlog_then_live_messages(hub, admin):
    sender, receiver = register(admin), register(admin)
    with hub.client(sender["agent_token"]) as s:
        early = [send(s, receiver["agent_id"], {"n": i}) for i in range(3)]
        async with connect(hub, receiver["agent_token"]) as ws:
            backlog = await messages(ws, 3)
            assert [f["message"]["message_id"] for f in backlog] == early
            assert {f["type"] for f in backlog} == {"message_received"}
            assert backlog[0]["message"]["from_agent"] == sender["agent_id"]
            started = time.perf_counter()
            live = send(s, receiver["agent_name"], "live")
            (f,) = await messages(ws, 1)
            assert f["message"]["message_id"] == live and f["message"]["content"] == "live"
            assert time.perf_counter() - started < 2  # pushed, not polled


async def test_acks_over_the_websocket_and_bad_frames_keep_the_connection(hub, admin):
    sender, receiver = register(admin), register(admin)
    with hub.client(sender["agent_token"]) as s:
        ids = [send(s, receiver["agent_id"], i) for i in range(2)]
    async with connect(hub, receiver["agent_token"]) as ws:
        got = await messages(ws, 2)
        await ws.send("{not json")
        error = await frame(ws)
        assert error["type"] == "error" and error["code"] == "invalid_argument"
        await ws.send(json.dumps({"type": "dance", "ref": 7}))
        error = await frame(ws)
        assert (error["type"], error["ref"], error["code"]) == ("error", 7, "invalid_argument")
        await ws.send(json.dumps({"type": "ack", "message_ids": ["msg_0000000000000000"], "ref": "x"}))
        error = await frame(ws)
        assert (error["type"], error["code"]) == ("error", "not_found")
        await ws.send(json.dumps({"type": "ack", "message_ids": [got[0]["message"]["message_id"]], "ref": 1}))
        assert await frame(ws) == {"type": "acked", "ref": 1, "acked": 1}
        await ws.send(json.dumps({"type": "ack", "up_to": got[1]["message"]["cursor"], "ref": 2}))
        assert await frame(ws) == {"type": "acked", "ref": 2, "acked": 1}
        await ws.send(json.dumps({"type": "ping", "ref": 3}))
        assert await frame(ws) == {"type": "pong", "ref": 3}
    with hub.client(receiver["agent_token"]) as r:
        assert ok(call(r, "agora.messaging.receive", limit=10))["messages"] == []  # both acked: nothing left
    assert [m["message"]["message_id"] for m in got] == ids


async def test_websocket_resume_loses_nothing_and_repeats_nothing_acked(hub, admin):
    sender, receiver = register(admin), register(admin)
    with hub.client(sender["agent_token"]) as s:
        first = [send(s, receiver["agent_id"], i) for i in range(6)]
        async with connect(hub, receiver["agent_token"]) as ws:
            got = await messages(ws, 6)
            # The client processed and acked the first three; frames 4-6 were "lost" with the connection.
            await ws.send(json.dumps({"type": "ack", "message_ids": first[:3]}))
            assert (await frame(ws))["acked"] == 3
            resume = got[2]["id"]
        await asyncio.sleep(0.3)  # the hub sees the socket close (a message sent before may be handed to the closing stream)
        later = [send(s, receiver["agent_id"], i) for i in range(6, 9)]  # sent while disconnected
        async with connect(hub, receiver["agent_token"], resume=resume) as ws:
            again = await messages(ws, 6)
            assert [f["message"]["message_id"] for f in again] == first[3:] + later
            assert [f["message"]["delivery_count"] for f in again] == [2, 2, 2, 1, 1, 1]
            assert await quiet(ws, 0.5) == []


async def test_visibility_timeout_redelivers_over_the_stream(hub, admin):
    sender, receiver = register(admin), register(admin)
    with hub.client(sender["agent_token"]) as s:
        msg = send(s, receiver["agent_id"], "again")
    async with connect(hub, receiver["agent_token"], visibility_timeout="1") as ws:
        (first,) = await messages(ws, 1)
        started = time.perf_counter()
        (second,) = await messages(ws, 1)  # never acked: back after a second
        assert second["message"]["message_id"] == msg and second["message"]["delivery_count"] == 2
        assert 0.8 < time.perf_counter() - started < 5
        assert first["message"]["delivery_count"] == 1


async def test_a_message_sent_to_a_live_stream_by_id_is_handed_to_it_as_it_is_sent(hub, admin):
    """The send hands the delivery out to the stream in its own statement (no wake-up, read or write of the stream's):
    in order, delivered once, acked as any, back after its visibility timeout when it is not; by name it is read."""
    sender, receiver = register(admin), register(admin)
    handed, read = 'agora_messages_streamed_total{how="handed"}', 'agora_messages_streamed_total{how="read"}'
    before = metric(hub, handed), metric(hub, read)
    with hub.client(sender["agent_token"]) as s:
        async with connect(hub, receiver["agent_token"], visibility_timeout="1", messages="3") as ws:
            await ws.send(json.dumps({"type": "ping"}))  # answered once the stream runs (and takes hand-offs)
            assert (await frame(ws))["type"] == "pong"
            sent = []
            for i in range(6):
                sent.append(send(s, receiver["agent_id"], i))
                (got,) = await messages(ws, 1)
                assert got["message"]["message_id"] == sent[-1] and got["message"]["delivery_count"] == 1
                assert got["message"]["content"] == i and got["message"]["from_agent"] == sender["agent_id"]
                await ws.send(json.dumps({"type": "credit", "messages": 1}))
            assert (metric(hub, handed) - before[0], metric(hub, read) - before[1]) == (6, 0)
            await ws.send(json.dumps({"type": "ack", "message_ids": sent[:5]}))
            assert (await frame(ws))["acked"] == 5
            (again,) = await messages(ws, 1)  # the sixth, never acked: back after a second, read from the store
            assert again["message"]["message_id"] == sent[5] and again["message"]["delivery_count"] == 2
            await ws.send(json.dumps({"type": "ack", "message_ids": [sent[5]]}))
            assert (await frame(ws))["acked"] == 1
            by_name = send(s, receiver["agent_name"], "by name")
            assert [f["message"]["message_id"] for f in await messages(ws, 1)] == [by_name]
            assert (metric(hub, handed) - before[0], metric(hub, read) - before[1]) == (6, 2)


async def test_broadcast_and_topics_reach_every_stream(hub, admin):
    tenant = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
    with hub.client(tenant["key"]) as customer:
        agents = [register(customer) for _ in range(4)]
        for a in agents[1:]:
            with hub.client(a["agent_token"]) as c:
                ok(call(c, "agora.messaging.subscribe", topics=["builds.*"]))
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(connect(hub, a["agent_token"])) for a in agents[1:]]
            with hub.client(agents[0]["agent_token"]) as s:
                ok(call(s, "agora.messaging.send", to_agent="broadcast", content="to all"))
                ok(call(s, "agora.messaging.publish", topic="builds.main", content="green"))
            for ws in sockets:
                got = await messages(ws, 2)
                assert [(f["type"], f["message"]["content"]) for f in got] == [
                    ("broadcast_message", "to all"),
                    ("topic_message", "green"),
                ]


async def test_hub_events_are_filtered_by_rights_and_type(hub, admin):
    mine = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
    other = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
    async with connect(hub, mine["key"], types="agent_*") as ws:
        with hub.client(other["key"]) as theirs:
            register(theirs)  # another tenant: never seen
        with hub.client(mine["key"]) as ours:
            agent = register(ours)
            with hub.client(agent["agent_token"]) as a:
                ok(call(a, "agora.agents.heartbeat", status="busy"))
        seen = [await frame(ws) for _ in range(2)]
        assert [f["type"] for f in seen] == ["agent_registered", "agent_status_changed"]
        assert seen[0]["data"]["agent_id"] == agent["agent_id"]
        assert seen[1]["data"] | {} == {
            "agent_id": agent["agent_id"], "agent_name": agent["agent_name"], "from": "active", "to": "busy"
        }
        assert await quiet(ws, 0.5) == []


async def test_agents_get_the_hub_events_they_subscribed_to(hub, admin):
    tenant = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
    with hub.client(tenant["key"]) as customer:
        watcher, quiet_one = register(customer), register(customer)
        with hub.client(watcher["agent_token"]) as w:
            ok(call(w, "agora.messaging.subscribe", event_types=["agent_registered"]))
        async with connect(hub, watcher["agent_token"]) as ws, connect(hub, quiet_one["agent_token"]) as other:
            newcomer = register(customer)
            f = await frame(ws)
            assert (f["type"], f["data"]["agent_id"]) == ("agent_registered", newcomer["agent_id"])
            assert await quiet(other, 0.5) == []  # not subscribed: tenant events are not pushed to it


async def test_sse_pushes_and_resumes_with_last_event_id(hub, admin):
    sender, receiver = register(admin), register(admin)
    headers = bearer(receiver["agent_token"])

    async def read(response: httpx.Response, count: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        current: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if not line:
                if current.get("event") not in (None, "ready"):
                    events.append(current)
                    if len(events) == count:
                        return events
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
        raise AssertionError("stream ended")

    with hub.client(sender["agent_token"]) as s:
        first = [send(s, receiver["agent_id"], i) for i in range(4)]
        async with httpx.AsyncClient(base_url=hub.url, timeout=10) as client:
            async with client.stream("GET", "/events", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                got = await asyncio.wait_for(read(response, 4), 10)
            assert [e["data"]["message"]["message_id"] for e in got] == first
            assert all(e["event"] == "message_received" and e["id"] == e["data"]["id"] for e in got)
            with hub.client(receiver["agent_token"]) as r:
                ok(call(r, "agora.messaging.ack", message_ids=first[:2]))
            later = send(s, receiver["agent_id"], "later")
            resumed = {**headers, "Last-Event-ID": got[1]["id"]}
            async with client.stream("GET", "/events", headers=resumed) as response:
                again = await asyncio.wait_for(read(response, 3), 10)
            assert [e["data"]["message"]["message_id"] for e in again] == first[2:] + [later]


async def test_stream_requests_are_checked_before_they_open(hub, admin):
    agent = register(admin)
    for params, status in (({}, 401), ({"resume": "bm9wZQ"}, 400), ({"types": "a b"}, 400), ({"bogus": "1"}, 400),
                           ({"visibility_timeout": "0"}, 400)):
        key = None if status == 401 else agent["agent_token"]
        headers = bearer(key) if key else {}
        with pytest.raises(InvalidStatus) as raised:
            async with websockets.connect(ws_url(hub, **params), additional_headers=headers, open_timeout=10):
                pass
        assert raised.value.response.status_code == status, params
        assert json.loads(raised.value.response.body)["error"]["code"] in ("unauthenticated", "invalid_argument")
        async with httpx.AsyncClient(base_url=hub.url, timeout=10) as client:
            response = await client.get("/events", params=params, headers=headers)
            assert response.status_code == status, (params, response.text)


@pytest.fixture(scope="module")
def tuned_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """Presence and slow-consumer limits short enough to watch in a test; WebSocket compression offered."""
    hub = HubProcess(
        tmp_path_factory.mktemp("tuned"), extra_args=["--offline-after", "2", "--stream-send-timeout", "1", "--ws-compression"]
    ).start()
    yield hub
    hub.stop()


async def test_presence_offline_after_silence_and_back_with_a_heartbeat(tuned_hub):
    with tuned_hub.client() as admin:
        silent, connected = register(admin), register(admin)
        async with connect(tuned_hub, connected["agent_token"]):
            async with connect(tuned_hub, tuned_hub.admin_key, types="agent_status_changed") as watcher:
                change = await frame(watcher, 10)  # within 2 s of silence and one sweep
            assert change["data"] == {
                "agent_id": silent["agent_id"], "agent_name": silent["agent_name"], "from": "active", "to": "offline",
                "reason": "silent",
            }
            offline = ok(call(admin, "agora.query.agents", status="offline"))["agents"]
            assert silent["agent_id"] in {a["agent_id"] for a in offline}
            assert connected["agent_id"] not in {a["agent_id"] for a in offline}  # a live stream keeps it present
        with tuned_hub.client(silent["agent_token"]) as s:
            assert ok(call(s, "agora.agents.heartbeat"))["status"] == "active"


def test_an_agent_registered_again_after_going_offline_stays_present_for_a_whole_span(tuned_hub):
    """Registering again (by the admin, as a hosting node's start does) is a sign of life: the agent is active and the
    2 s of silence that make it offline start again, rather than the next presence sweep (every 0.5 s) finding it
    silent since its first registration."""
    with tuned_hub.client() as admin:
        agent = register(admin)

        def status() -> str:
            return ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["status"]

        deadline = time.monotonic() + 10
        while status() != "offline" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status() == "offline"
        assert register(admin, agent["agent_name"])["agent_id"] == agent["agent_id"]
        again = time.monotonic()
        seen = set()
        while time.monotonic() - again < 1.5:
            seen.add(status())
            time.sleep(0.1)
        assert seen == {"active"}


async def test_many_live_streams_keep_their_agents_present_until_they_close(tuned_hub):
    """The replica writes the presence of every agent with a live stream at once (core/presence): thirty streams
    held past several spans of silence keep all thirty present, a second stream of the same agent closing does not
    count it gone, and once their streams close they go offline like any silent agent."""
    with tuned_hub.client() as admin:
        agents = [register(admin) for _ in range(30)]
        ids = {a["agent_id"] for a in agents}

        def offline() -> set[str]:
            return {a["agent_id"] for a in ok(call(admin, "agora.query.agents", status="offline", limit=200))["agents"]}

        async with contextlib.AsyncExitStack() as streams:
            for agent in agents:
                await streams.enter_async_context(connect(tuned_hub, agent["agent_token"]))
            async with connect(tuned_hub, agents[0]["agent_token"]):
                await asyncio.sleep(1)
            await asyncio.sleep(4)  # twice the silence that makes an agent offline
            assert not ids & offline()
        deadline = time.monotonic() + 15
        while ids - offline() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert not ids - offline()


async def test_websocket_compression_is_offered_only_when_turned_on(sqlite_hub, tuned_hub):
    for hub, offered in ((sqlite_hub, False), (tuned_hub, True)):
        with hub.client() as admin:
            agent = register(admin)
            async with connect(hub, agent["agent_token"]) as ws:
                extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
                assert ("permessage-deflate" in extensions) is offered, (hub.extra_args, extensions)
                sent = send(admin, agent["agent_id"], {"text": "x" * 5000})
                (f,) = await messages(ws, 1)
                assert f["message"]["message_id"] == sent and f["message"]["content"] == {"text": "x" * 5000}


def hub_rss_kib(hub: HubProcess) -> int:
    status = open(f"/proc/{hub.proc.pid}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def stalled_websocket(hub: HubProcess, key: str) -> tuple[socket.socket, dict[str, Any]]:
    """A WebSocket client that reads the handshake and the ready frame, then never reads again.

    (Client libraries keep reading into their own buffers, so a raw socket with a small receive window is the
    honest way to stop reading.)
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", hub.port))
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {key}\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    while len(rest) < 2 or len(rest) < 2 + rest[1]:
        rest += sock.recv(4096)
    assert rest[0] == 0x81 and rest[1] < 126  # the ready frame: one short unmasked text frame
    return sock, json.loads(rest[2 : 2 + rest[1]])


async def test_a_client_that_stops_reading_is_cut_off_and_resumes(tuned_hub):
    def load(s: httpx.Client, to: str) -> None:
        for start in range(0, 3000, 200):
            batch = [{"to_agent": to, "content": {"n": n, "pad": "x" * 4000}} for n in range(start, start + 200)]
            ok(call(s, "agora.messaging.send_batch", messages=batch))

    with tuned_hub.client() as admin:
        sender, receiver, bystander = register(admin), register(admin), register(admin)
        with tuned_hub.client(sender["agent_token"]) as s:
            load(s, bystander["agent_id"])  # the same 12 MB through the hub once, so the baseline includes it
            sock, ready = stalled_websocket(tuned_hub, receiver["agent_token"])
            rss_before = hub_rss_kib(tuned_hub)
            load(s, receiver["agent_id"])
        # The hub's send blocks once the socket buffers are full; after 1 s it hangs up instead of queueing 12 MB.
        deadline = time.monotonic() + 20
        while "slow consumer" not in tuned_hub.log_path.read_text() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert "slow consumer" in tuned_hub.log_path.read_text()
        assert hub_rss_kib(tuned_hub) - rss_before < 20_000  # flat: no queue of frames behind the client
        sock.close()
        # It comes back from the last frame it processed (the ready frame) and gets all of them, in order, once.
        seen: list[int] = []
        async with connect(tuned_hub, receiver["agent_token"], resume=ready["id"], types="message_received") as ws:
            while len(seen) < 3000:
                (f,) = await messages(ws, 1)  # (skipping the replies to our acks)
                seen.append(f["message"]["content"]["n"])
                if len(seen) % 500 == 0:
                    await ws.send(json.dumps({"type": "ack", "up_to": f["message"]["cursor"]}))
            after = [f["type"] for f in await quiet(ws, 0.5)]
            assert after[-1:] == ["acked"] and set(after) == {"acked"}  # the last ack's reply (an earlier one may lag); no message again
        assert seen == list(range(3000))


async def test_two_replicas_push_to_each_others_websockets(two_replicas):
    one, two = two_replicas
    with one.client() as admin_one:
        agent = register(admin_one)
        async with connect(two, agent["agent_token"]) as ws:
            started = time.perf_counter()
            send(admin_one, agent["agent_id"], "across replicas")
            (f,) = await messages(ws, 1)
            assert f["message"]["content"] == "across replicas"
            assert time.perf_counter() - started < 3  # woken through Redis


def test_stream_message_rendering_matches_the_wire_model():
    from datetime import UTC, datetime

    from agora.core.services.messaging import message_from_row, message_json

    base = {
        "seq": 42, "message_id": "msg_0123456789abcdef", "kind": "direct", "sender_id": "agent_0123456789abcdef",
        "recipient_id": "agent_fedcba9876543210", "topic": None, "subscription_id": None, "message_type": "info",
        "performative": None, "intent": None, "priority": 2, "content": "hi", "correlation": None, "expected": None,
        "context": {}, "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "expires_at": None,
        "delivery_count": 1,
    }
    full = {
        **base, "kind": "topic", "topic": "builds.main", "subscription_id": "sub_0123456789abcdef", "performative": "request",
        "intent": "build", "priority": 4, "content": {"n": [1, 2]}, "correlation": {"reply_to": "msg_0000000000000001"},
        "expected": {"timeout_ms": 5}, "context": {"k": "v"}, "expires_at": datetime(2026, 1, 3, tzinfo=UTC),
    }
    for row in (base, full):
        assert message_json(row) == message_from_row(row).model_dump(mode="json")


def _read_frames(sock: socket.socket, count: int, timeout: float) -> list[dict[str, Any]]:
    """Parse ``count`` server text frames (unmasked) off a raw WebSocket."""
    sock.settimeout(timeout)
    buffer, frames = b"", []

    def need(n: int) -> None:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed")
            buffer += chunk

    while len(frames) < count:
        need(2)
        length, offset = buffer[1] & 0x7F, 2
        if length == 126:
            need(4)
            length, offset = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            need(10)
            length, offset = int.from_bytes(buffer[2:10], "big"), 10
        need(offset + length)
        frames.append(json.loads(buffer[offset : offset + length]))
        buffer = buffer[offset + length :]
    return frames


@pytest.fixture(scope="module")
def roomy_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """Request bodies up to 16 MB, so one send_batch can fill a stream's socket (and the kernel's 4 MB buffers)."""
    hub = HubProcess(tmp_path_factory.mktemp("roomy"), extra_args=["--max-body-bytes", "16000000"]).start()
    yield hub
    hub.stop()


async def test_a_broadcast_that_lands_while_a_full_batch_is_being_sent_is_not_forgotten(roomy_hub):
    hub = roomy_hub
    with hub.client() as admin:
        sender, receiver = register(admin), register(admin)
    sock, _ready = stalled_websocket(hub, receiver["agent_token"])
    with hub.client(sender["agent_token"]) as s:
        # One wake-up, 150 messages of 60 kB: the stream reads a full batch of 100 (6 MB) and blocks on the socket.
        batch = [{"to_agent": receiver["agent_id"], "content": {"n": n, "pad": "x" * 60_000}} for n in range(150)]
        ok(call(s, "agora.messaging.send_batch", messages=batch))
        await asyncio.sleep(0.5)
        ok(call(s, "agora.messaging.send", to_agent="broadcast", content="while you were busy"))
    frames = await asyncio.to_thread(_read_frames, sock, 151, 15)
    sock.close()
    assert [f["type"] for f in frames].count("broadcast_message") == 1
    assert sorted(f["message"]["content"]["n"] for f in frames if f["type"] == "message_received") == list(range(150))
