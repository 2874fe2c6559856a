"""Agents' A2A fronts, driven with the official ``a2a-sdk`` client over JSON-RPC and HTTP+JSON, in A2A 1.0 and 0.3,
against agents run by the SDK runtime (``examples/a2a_tck_agent.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.helpers import new_data_part, new_text_message
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError, TaskNotCancelableError, TaskNotFoundError, UnsupportedOperationError
from google.protobuf.json_format import MessageToDict

from agora.core.services.a2a import RECHECK

from .conftest import call, ok, unique
from .hubproc import HubProcess

AGENT = Path(__file__).resolve().parents[1] / "examples" / "a2a_tck_agent.py"
BINDINGS = ["JSONRPC", "HTTP+JSON"]
STATE = pb.TaskState


class AgentProcess:
    """The TCK example agent, run by the SDK runtime against a hub, under a name of its own."""

    def __init__(self, hub: HubProcess, key: str, access: str = "public"):
        self.hub, self.key, self.access = hub, key, access
        self.name = unique("a2a")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
        env |= {"AGORA_URL": self.hub.url, "AGORA_API_KEY": self.key, "TCK_AGENT_NAME": self.name, "TCK_AGENT_ACCESS": self.access}
        self.proc = subprocess.Popen([sys.executable, str(AGENT)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with httpx.Client(base_url=self.hub.url, headers={"Authorization": f"Bearer {self.key}"}) as c:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                found = call(c, "agora.query.agents", text=self.name).json().get("agents", [])
                if found and found[0]["a2a"] is not None and found[0]["status"] == "active":
                    self.agent_id = found[0]["agent_id"]
                    return self
                time.sleep(0.05)
        raise AssertionError("the A2A agent did not register")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"{self.hub.url}/a2a/agents/{self.agent_id}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def agent(request: pytest.FixtureRequest) -> Iterator[AgentProcess]:
    """The example agent on each engine's hub (PostgreSQL starts and ends a turn in one statement each)."""
    hub: HubProcess = request.getfixturevalue(f"{request.param}_hub")
    process = AgentProcess(hub, hub.admin_key).start()
    yield process
    process.stop()


@contextlib.asynccontextmanager
async def a2a_client(url: str, binding: str = "JSONRPC", *, streaming: bool = False, version: str = "1.0", key: str | None = None) -> AsyncIterator[Client]:
    """The SDK's client for the agent at ``url``; 0.3 by reading its card as a 0.3 card."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        config = ClientConfig(httpx_client=http, supported_protocol_bindings=[binding], streaming=streaming, grpc_channel_factory=grpc.aio.insecure_channel)
        factory = ClientFactory(config)
        card = await factory.create_from_url(url)
        if version != "1.0":
            for interface in card._card.supported_interfaces:  # noqa: SLF001 - the client keeps the card it read
                interface.protocol_version = version
            card = factory.create(card._card)  # noqa: SLF001
        yield card
        await card.close()


def message(text: str, message_id: str, task_id: str | None = None, context_id: str | None = None) -> pb.SendMessageRequest:
    msg = new_text_message(text, role=pb.Role.ROLE_USER)
    msg.message_id = f"{message_id}-{unique('m')}"
    if task_id:
        msg.task_id = task_id
    if context_id:
        msg.context_id = context_id
    return pb.SendMessageRequest(message=msg)


async def send(client: Client, request: pb.SendMessageRequest) -> pb.StreamResponse:
    events = [e async for e in client.send_message(request)]
    assert len(events) == 1
    return events[0]


def texts(msg: pb.Message) -> list[str]:
    return [p.text for p in msg.parts if p.text]


@pytest.mark.parametrize("version", ["1.0", "0.3"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_send_completes_replies_and_returns_artifacts(agent, binding, version):
    async with a2a_client(agent.url, binding, version=version) as client:
        started = time.monotonic()
        done = (await send(client, message("hi", "tck-complete-task"))).task
        took = time.monotonic() - started  # woken when the task settles, not when a blocking send looks again
        data = (await send(client, message("hi", "tck-artifact-data"))).task
        reply = await send(client, message("hi", "tck-message-response"))
    assert done.status.state == STATE.TASK_STATE_COMPLETED and texts(done.status.message) == ["Hello from TCK"]
    assert took < RECHECK, took
    assert done.id.startswith("a2a_") and done.context_id.startswith("ctx_")
    assert MessageToDict(data.artifacts[0].parts[0])["data"] == {"key": "value", "count": 42}
    assert reply.HasField("message") and texts(reply.message) == ["Direct message response"]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_follow_up_with_only_the_task_id_continues_the_task_in_its_context(agent, binding):
    async with a2a_client(agent.url, binding) as client:
        asked = (await send(client, message("start", "tck-input-required"))).task
        assert asked.status.state == STATE.TASK_STATE_INPUT_REQUIRED
        answered = (await send(client, message("here you are", "tck-complete-task", task_id=asked.id))).task
        again = await client.get_task(pb.GetTaskRequest(id=asked.id, history_length=2))
        with pytest.raises(UnsupportedOperationError):  # a completed task takes no more messages
            await send(client, message("more", "tck-complete-task", task_id=asked.id))
        with pytest.raises(InvalidParamsError):
            await send(client, message("x", "tck-complete-task", task_id=(await send(client, message("s", "tck-input-required"))).task.id, context_id="ctx_other"))
    assert answered.id == asked.id and answered.context_id == asked.context_id
    assert answered.status.state == STATE.TASK_STATE_COMPLETED
    users = [texts(m) for m in answered.history if m.role == pb.Role.ROLE_USER]
    assert users == [["start"], ["here you are"]] and all(m.context_id == asked.context_id for m in answered.history)
    assert [texts(m) for m in again.history] == [["here you are"], ["Hello from TCK"]]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_streams_carry_the_task_then_its_updates_and_concurrent_subscribers_see_the_same(agent, binding):
    async with a2a_client(agent.url, binding, streaming=True) as client:
        streamed = [MessageToDict(e) async for e in client.send_message(message("go", "tck-stream-artifact-chunked"))]
        answered = [MessageToDict(e) async for e in client.send_message(message("go", "tck-message-response"))]
        waiting = (await send_unstreamed(agent.url, binding, message("wait", "tck-input-required"))).task

        shown = [asyncio.Event() for _ in range(3)]

        async def subscriber(i: int) -> list[dict[str, Any]]:
            seen = []
            async for e in client.subscribe(pb.SubscribeToTaskRequest(id=waiting.id)):
                seen.append(MessageToDict(e))
                shown[i].set()
            return seen

        watchers = [asyncio.create_task(subscriber(i)) for i in range(3)]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in shown)), 20)  # each has the task as it waits
        await send_unstreamed(agent.url, binding, message("go on", "tck-stream-001", task_id=waiting.id))
        seen = await asyncio.wait_for(asyncio.gather(*watchers), 20)
    assert "task" in streamed[0] and final_state(streamed) == "TASK_STATE_COMPLETED"
    chunks = [p["text"] for e in streamed if "artifactUpdate" in e for p in e["artifactUpdate"]["artifact"]["parts"]]
    snapshot_chunks = [p["text"] for a in streamed[0]["task"].get("artifacts", []) for p in a["parts"]]
    assert snapshot_chunks + chunks == ["chunk-1 ", "chunk-2"]  # nothing twice, nothing lost
    assert [list(e) for e in answered] == [["message"]]  # a reply that is only a message is the whole stream
    assert seen[0] == seen[1] == seen[2]  # every subscriber got the same events in the same order
    assert seen[0][0]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert seen[0][-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert any("artifactUpdate" in e for e in seen[0])


def final_state(stream: list[dict[str, Any]]) -> str:
    """The state a streamed send ended in. The stream starts with the task as it is once the agent has made its
    first move, so an agent that finished everything by then streams one Task, in its final state."""
    last = stream[-1]["statusUpdate"] if "statusUpdate" in stream[-1] else stream[-1]["task"]
    return str(last["status"]["state"])


async def send_unstreamed(url: str, binding: str, request: pb.SendMessageRequest, key: str | None = None) -> pb.StreamResponse:
    async with a2a_client(url, binding, key=key) as client:
        return await send(client, request)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_resubscribing_after_a_dropped_stream_resumes_the_task(agent, binding):
    async with a2a_client(agent.url, binding, streaming=True) as client:
        first = None
        async for event in client.send_message(message("slow", "test-resubscribe-message-id")):
            first = event
            break  # the client goes away while the agent works (it takes 4 s)
        assert first is not None and first.HasField("task")
        resumed = [MessageToDict(e) async for e in client.subscribe(pb.SubscribeToTaskRequest(id=first.task.id))]
    assert resumed[0]["task"]["id"] == first.task.id
    assert resumed[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_cancel_and_the_errors_around_it(agent, binding):
    async with a2a_client(agent.url, binding, streaming=True) as client:
        waiting = (await send(client, message("wait", "tck-input-required"))).task
        cancelled = await client.cancel_task(pb.CancelTaskRequest(id=waiting.id))
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(pb.CancelTaskRequest(id=waiting.id))
        with pytest.raises(TaskNotFoundError):
            await client.cancel_task(pb.CancelTaskRequest(id="a2a_0000000000000000"))
        with pytest.raises(TaskNotFoundError):
            await client.get_task(pb.GetTaskRequest(id="a2a_0000000000000000"))
        with pytest.raises(UnsupportedOperationError):
            [e async for e in client.subscribe(pb.SubscribeToTaskRequest(id=waiting.id))]  # nothing left to stream
    assert cancelled.id == waiting.id and cancelled.status.state == STATE.TASK_STATE_CANCELED


@pytest.mark.parametrize("binding", BINDINGS)
async def test_list_pages_through_the_callers_own_tasks(agent, binding):
    context = unique("ctx")
    async with a2a_client(agent.url, binding) as client:
        made = [(await send(client, message(f"n{i}", "tck-complete-task", context_id=context))).task.id for i in range(5)]
        pages, token = [], ""
        while True:
            page = await client.list_tasks(pb.ListTasksRequest(context_id=context, page_size=2, page_token=token))
            pages.append([t.id for t in page.tasks])
            token = page.next_page_token
            if not token:
                break
        with pytest.raises(InvalidParamsError):
            await client.list_tasks(pb.ListTasksRequest(page_size=1000))
    assert [len(p) for p in pages] == [2, 2, 1] and sorted(sum(pages, [])) == sorted(made)
    assert page.total_size == 5
    with agent.hub.client() as admin:
        other_key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("t")))["key"]
    async with a2a_client(agent.url, binding, key=other_key) as stranger:  # a public agent: anyone may call, each sees theirs
        assert list((await stranger.list_tasks(pb.ListTasksRequest(context_id=context))).tasks) == []


async def test_an_offline_agent_gets_its_task_queued_and_does_it_when_it_comes(hub):
    """On PostgreSQL the task and its turn are written in one statement: the turn's history is the transaction's."""
    later = AgentProcess(hub, hub.admin_key)
    with hub.client() as admin:
        registered = ok(call(admin, "agora.agents.register", agent_name=later.name, a2a={"access": "public"}))
        ok(call(admin, "agora.admin.override", target_id=registered["agent_id"], action="pause", reason="offline for the test"))
        ok(call(admin, "agora.admin.override", target_id=registered["agent_id"], action="resume", reason="still not running"))
        ok(call(admin, "agora.agents.heartbeat", agent=registered["agent_id"], status="inactive"))
    url = f"{hub.url}/a2a/agents/{registered['agent_id']}"
    started = time.monotonic()
    async with a2a_client(url) as client:
        queued = (await send(client, message("later", "tck-complete-task"))).task
    assert queued.status.state == STATE.TASK_STATE_SUBMITTED and time.monotonic() - started < 5  # no wait, no error
    later.start()
    try:
        async with a2a_client(url) as client:
            deadline = time.monotonic() + 20
            while (task := await client.get_task(pb.GetTaskRequest(id=queued.id))).status.state != STATE.TASK_STATE_COMPLETED:
                assert time.monotonic() < deadline, "the queued task was not done when the agent came"
                await asyncio.sleep(0.1)
    finally:
        later.stop()
    assert texts(task.status.message) == ["Hello from TCK"]
    assert turn_of(hub, registered["agent_id"], queued.id)[1] == [(None, "pending", None), ("pending", "in_progress", "attempt 1"), ("in_progress", "completed", "A2A completed")]


async def test_a_turn_handed_to_a_running_agent_is_leased_and_completed_with_its_history(agent):
    """PostgreSQL makes the task with its turn leased to the agent's channel, and ends the turn, in one statement each."""
    done = (await send_unstreamed(agent.url, "JSONRPC", message("hi", "tck-complete-task"), key=agent.key)).task
    assert done.status.state == STATE.TASK_STATE_COMPLETED
    turn, history = turn_of(agent.hub, agent.agent_id, done.id)
    assert history == [(None, "pending", None), ("pending", "in_progress", "attempt 1"), ("in_progress", "completed", "A2A completed")]
    assert (turn["status"], turn["attempts"], turn["progress"], turn["claimed_by"]) == ("completed", 1, 100, agent.agent_id)
    assert turn["finished_at"] is not None and turn["started_at"] is not None and turn["notes"] == "A2A completed"


def turn_of(hub: HubProcess, agent_id: str, a2a_task_id: str) -> tuple[dict[str, Any], list[tuple[str | None, str, str | None]]]:
    """The turn that carried the A2A task's first message to the agent, and its history."""
    with hub.client() as admin:
        turns = ok(call(admin, "agora.task.list", agent=agent_id, task_type="a2a.message", limit=500))["tasks"]
        turn = next(t for t in turns if t["payload"]["a2a_task_id"] == a2a_task_id)
        history = ok(call(admin, "agora.task.history", task_id=turn["task_id"]))["transitions"]
    return turn, [(h["from_status"], h["to_status"], h["note"]) for h in history]


async def test_a_private_front_wants_a_key_of_its_tenant(sqlite_hub):
    with sqlite_hub.client() as admin:
        tenant = unique("tenant")
        own_key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant))["key"]
        other_key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("t")))["key"]
    private = AgentProcess(sqlite_hub, own_key, access="private").start()
    try:
        card = httpx.get(f"{private.url}/.well-known/agent-card.json").json()  # by id: how to authenticate is public
        assert card["securityRequirements"] == [{"schemes": {"agora": {}}}] and "agora" in card["securitySchemes"]
        assert httpx.get(f"{sqlite_hub.url}/a2a/agents/{private.name}/.well-known/agent-card.json").status_code == 404
        anonymous = httpx.post(private.url, json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}, headers={"A2A-Version": "1.0"})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
        foreign = httpx.post(private.url, json={}, headers={"A2A-Version": "1.0", "Authorization": f"Bearer {other_key}"})
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == -32001
        async with a2a_client(private.url, key=own_key) as client:
            done = (await send(client, message("hi", "tck-complete-task"))).task
        async with a2a_client(private.url, key=sqlite_hub.admin_key) as client:  # an admin reaches every tenant's front
            by_admin = (await send(client, message("hi", "tck-complete-task"))).task
    finally:
        private.stop()
    assert done.status.state == by_admin.status.state == STATE.TASK_STATE_COMPLETED


def test_cards_are_cached_and_only_agents_with_a_front_have_one(agent):
    first = httpx.get(f"{agent.hub.url}/a2a/agents/{agent.name}/.well-known/agent-card.json", headers={"A2A-Version": "1.0"})
    card = first.json()
    assert first.status_code == 200 and "max-age" in first.headers["cache-control"] and first.headers["last-modified"]
    assert [(i["protocolBinding"], i["protocolVersion"], i["url"]) for i in card["supportedInterfaces"]] == [
        ("JSONRPC", "1.0", agent.url), ("HTTP+JSON", "1.0", agent.url), ("JSONRPC", "0.3", agent.url), ("HTTP+JSON", "0.3", agent.url),
    ]  # fmt: skip
    assert card["capabilities"]["streaming"] and "url" not in card and "preferredTransport" not in card  # 1.0 only
    again = httpx.get(f"{agent.url}/.well-known/agent-card.json", headers={"If-None-Match": first.headers["etag"], "A2A-Version": "1.0"})
    assert again.status_code == 304
    with agent.hub.client() as admin:
        plain = ok(call(admin, "agora.agents.register", agent_name=unique("plain")))
    assert httpx.get(f"{agent.hub.url}/a2a/agents/{plain['agent_id']}/.well-known/agent-card.json").status_code == 404
    missing = httpx.post(f"{agent.hub.url}/a2a/agents/nobody-here", json={}, headers={"A2A-Version": "1.0"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == -32001


def test_bad_requests_get_a2a_errors(agent):
    def rpc(body: Any, **headers: str) -> dict[str, Any]:
        return httpx.post(agent.url, content=body if isinstance(body, bytes) else None, json=None if isinstance(body, bytes) else body,
                          headers={"A2A-Version": "1.0", "Content-Type": "application/json", **headers}).json()  # fmt: skip

    def code(answer: dict[str, Any]) -> int:
        return int(answer["error"]["code"])

    assert code(rpc(b"{not json")) == -32700
    assert code(rpc({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "a2a_0000000000000000"}})) == -32001
    assert code(rpc({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}})) in (-32602, -32600)
    assert code(rpc({"jsonrpc": "2.0", "id": 1, "method": "NoSuchMethod", "params": {}})) == -32601
    assert code(rpc({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}, **{"A2A-Version": "99.0"})) == -32009
    assert code(rpc(b"GetTask('x')", **{"Content-Type": "text/plain"})) == -32005
    not_found = rpc({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "a2a_0000000000000000"}})
    assert not_found["error"]["data"][0]["@type"].endswith("google.rpc.ErrorInfo")
    rest = httpx.get(f"{agent.url}/tasks/a2a_0000000000000000", headers={"A2A-Version": "1.0"})
    assert rest.status_code == 404 and rest.json()["error"]["status"] == "NOT_FOUND"
    # historyLength is 0 or more, on every binding; a SendMessage refused for it sends nothing
    assert code(rpc({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "a2a_0000000000000000", "historyLength": -1}})) == -32602
    listed = httpx.get(f"{agent.url}/tasks", headers={"A2A-Version": "1.0"})
    assert listed.status_code == 200, listed.text
    before = int(listed.json().get("totalSize", 0))
    refused = rpc({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": "m-history", "role": "ROLE_USER", "parts": [{"text": "hello"}]}, "configuration": {"historyLength": -2}}})
    assert code(refused) == -32602 and "historyLength" in refused["error"]["message"]
    assert int(httpx.get(f"{agent.url}/tasks", headers={"A2A-Version": "1.0"}).json().get("totalSize", 0)) == before
    negative = httpx.get(f"{agent.url}/tasks/a2a_0000000000000000", params={"historyLength": -1}, headers={"A2A-Version": "1.0"})
    assert negative.status_code == 400 and negative.json()["error"]["status"] == "INVALID_ARGUMENT"
    bogus = httpx.get(f"{agent.url}/tasks", params={"status": "TASK_STATE_BOGUS"}, headers={"A2A-Version": "1.0"})
    assert bogus.status_code == 400 and "status" in bogus.json()["error"]["message"]  # not an unfiltered list
    assert code(rpc({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"status": "TASK_STATE_BOGUS"}})) == -32602
    assert "result" in rpc({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"status": "TASK_STATE_WORKING"}})
    working = httpx.get(f"{agent.url}/tasks", params={"status": "TASK_STATE_WORKING"}, headers={"A2A-Version": "1.0"})
    assert working.status_code == 200, working.text
    # an HTTP+JSON body that is not JSON is refused as such (415), not read as JSON anyway
    plain = httpx.post(f"{agent.url}/message:send", content=b'{"message": {}}', headers={"A2A-Version": "1.0", "Content-Type": "text/plain"})
    assert plain.status_code == 415 and plain.json()["error"]["details"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    # JSON-RPC: a well-formed request with bad params is Invalid params (the SDK's 0.3 layer said Invalid Request)...
    legacy = {"Content-Type": "application/json"}  # no A2A-Version: 0.3
    bad_params = httpx.post(agent.url, json={"jsonrpc": "2.0", "id": 3, "method": "message/send", "params": {"message": {"parts": "x"}}}, headers=legacy)
    assert bad_params.json()["error"]["code"] == -32602 and bad_params.json()["id"] == 3
    # ...and an envelope that is not a request stays Invalid Request
    assert code(rpc({"jsonrpc": "1.0", "id": 1, "method": "GetTask", "params": {"id": "x"}})) == -32600
    assert code(rpc({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "GetTask", "params": {"id": "x"}})) == -32600
    # HTTP+JSON answers are application/json (spec 11.1), application/a2a+json to a caller that asks for it
    body = {"message": {"messageId": "tck-complete-task-ct", "role": "ROLE_USER", "parts": [{"text": "hi"}]}}
    for accept, media_type in (("*/*", "application/json"), ("application/a2a+json", "application/a2a+json")):
        sent = httpx.post(f"{agent.url}/message:send", json=body, headers={"A2A-Version": "1.0", "Accept": accept}, timeout=30)
        assert sent.status_code == 200 and sent.headers["content-type"] == media_type, (accept, sent.headers)


def test_anonymous_callers_of_a_public_front_are_rate_limited(tmp_path):
    hub = HubProcess(tmp_path / "hub", extra_args=["--a2a-public-rate", "5"]).start()
    try:
        with hub.client() as admin:
            agent = ok(call(admin, "agora.agents.register", agent_name="limited", a2a={"access": "public"}))
        url = f"{hub.url}/a2a/agents/{agent['agent_id']}/tasks"
        answers = [httpx.get(url, headers={"A2A-Version": "1.0"}) for _ in range(7)]
        keyed = httpx.get(url, headers={"A2A-Version": "1.0", "Authorization": f"Bearer {hub.admin_key}"})
    finally:
        hub.stop()
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1 and answers[-1].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert keyed.status_code == 200  # a caller with a key is known and not limited per address


class Webhook:
    """An HTTP receiver in a thread that records every POST (headers and JSON body); it can refuse the first few."""

    def __init__(self, refuse_first: int = 0):
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hook.refused < refuse_first:
                    hook.refused += 1
                    self.send_response(503)
                else:
                    hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                """Quiet: http.server's own request log is noise in test output."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self) -> list[str]:
        return [b["statusUpdate"]["status"]["state"] for _, b in self.received if "statusUpdate" in b]

    def close(self) -> None:
        self.server.shutdown()


async def until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_push_notifications_reach_the_webhook_in_order_with_its_credentials(agent, binding):
    hook, flaky = Webhook(), Webhook(refuse_first=2)
    try:  # the admin's webhooks may be on loopback (a customer's may not: tests/security/test_egress.py)
        async with a2a_client(agent.url, binding, streaming=True, key=agent.hub.admin_key) as client:
            request = message("start", "tck-input-required")
            inline = request.configuration.task_push_notification_config
            inline.id, inline.url = "inline", hook.url
            inline.authentication.scheme, inline.authentication.credentials = "Bearer", "hook-secret"
            waiting = (await send(client, request)).task
            made = await client.create_task_push_notification_config(
                pb.TaskPushNotificationConfig(task_id=waiting.id, id="later", url=flaky.url, token="tok-1")
            )
            listed = await client.list_task_push_notification_configs(pb.ListTaskPushNotificationConfigsRequest(task_id=waiting.id))
            fetched = await client.get_task_push_notification_config(pb.GetTaskPushNotificationConfigRequest(task_id=waiting.id, id="later"))
            await send(client, message("go on", "tck-complete-task", task_id=waiting.id))
            await until(lambda: "TASK_STATE_COMPLETED" in hook.states() and "TASK_STATE_COMPLETED" in flaky.states())
            await client.delete_task_push_notification_config(pb.DeleteTaskPushNotificationConfigRequest(task_id=waiting.id, id="later"))
            await client.delete_task_push_notification_config(pb.DeleteTaskPushNotificationConfigRequest(task_id=waiting.id, id="later"))
            with pytest.raises(InvalidParamsError):
                await client.get_task_push_notification_config(pb.GetTaskPushNotificationConfigRequest(task_id=waiting.id, id="later"))
            with pytest.raises(TaskNotFoundError):
                await client.create_task_push_notification_config(pb.TaskPushNotificationConfig(task_id="a2a_0000000000000000", id="x", url=hook.url))
    finally:
        hook.close()
        flaky.close()
    assert made.id == "later" and {c.id for c in listed.configs} == {"inline", "later"} and fetched.url == flaky.url
    assert fetched.token == made.token == ""  # write-only, like the credentials
    assert all(not c.token and not c.authentication.credentials for c in listed.configs)
    assert hook.states() == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED"]
    assert all(h["authorization"] == "Bearer hook-secret" for h, _ in hook.received)
    assert flaky.refused == 2 and flaky.states()[-1] == "TASK_STATE_COMPLETED"  # refused twice, then got it all, in order
    assert flaky.states()[0] == "TASK_STATE_SUBMITTED" and all(h["x-a2a-notification-token"] == "tok-1" for h, _ in flaky.received)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_hub_is_an_a2a_directory_of_its_agents(sqlite_hub, binding):
    tag = unique("skill")
    with sqlite_hub.client() as admin:
        tenant_key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("t")))["key"]
    with sqlite_hub.client(tenant_key) as tenant:
        shown = ok(call(tenant, "agora.agents.register", agent_name=unique("pub"), capabilities=[tag], a2a={"access": "public"}))
        hidden = ok(call(tenant, "agora.agents.register", agent_name=unique("priv"), capabilities=[tag], a2a={"access": "private"}))
        ok(call(tenant, "agora.agents.register", agent_name=unique("none"), capabilities=[tag]))  # no A2A front: never listed
    card = httpx.get(f"{sqlite_hub.url}/.well-known/agent-card.json").json()
    assert card == httpx.get(f"{sqlite_hub.url}/a2a/.well-known/agent-card.json").json()
    assert card["name"] == "Agora" and {s["id"] for s in card["skills"]} == {"find_agents", "describe_agent"}

    def request(data: dict[str, Any]) -> pb.SendMessageRequest:
        req = message("", "directory")
        del req.message.parts[:]
        req.message.parts.append(new_data_part(data))
        return req

    async with a2a_client(sqlite_hub.url, binding) as anonymous:
        seen = (await send(anonymous, request({"capabilities": [tag]}))).message
        about = (await send(anonymous, message(f"describe {shown['agent_name']}", "directory"))).message
        private = (await send(anonymous, request({"describe_agent": hidden["agent_id"]}))).message
    async with a2a_client(sqlite_hub.url + "/a2a", binding, key=tenant_key) as member:
        theirs = (await send(member, request({"capabilities": [tag]}))).message

    def data(msg: pb.Message) -> dict[str, Any]:
        return next(MessageToDict(p)["data"] for p in msg.parts if p.HasField("data"))

    assert [a["agent_id"] for a in data(seen)["agents"]] == [shown["agent_id"]]  # anonymous: public fronts only
    assert {a["agent_id"] for a in data(theirs)["agents"]} == {shown["agent_id"], hidden["agent_id"]}
    assert data(seen)["agents"][0]["card_url"].endswith(f"/a2a/agents/{shown['agent_id']}/.well-known/agent-card.json")
    assert data(about)["agent"]["capabilities"] == [tag] and data(private)["agent"] is None


async def test_an_a2a_front_served_by_one_replica_for_an_agent_working_through_the_other(two_replicas):
    """PostgreSQL and Redis: the caller waits and streams on one replica, the agent works through the other."""
    one, two = two_replicas
    agent = AgentProcess(two, two.admin_key).start()
    hook = Webhook()
    try:
        url = f"{one.url}/a2a/agents/{agent.agent_id}"
        async with a2a_client(url, streaming=True, key=one.admin_key) as client:
            request = message("start", "tck-input-required")
            request.configuration.task_push_notification_config.url = hook.url
            waiting = (await send_unstreamed(url, "JSONRPC", request, key=one.admin_key)).task
            events = [MessageToDict(e) async for e in client.send_message(message("go on", "tck-stream-001", task_id=waiting.id))]
            listed = await client.list_tasks(pb.ListTasksRequest(page_size=10))
        await until(lambda: "TASK_STATE_COMPLETED" in hook.states())
    finally:
        agent.stop()
        hook.close()
    assert waiting.status.state == STATE.TASK_STATE_INPUT_REQUIRED
    assert events[0]["task"]["id"] == waiting.id and final_state(events) == "TASK_STATE_COMPLETED"
    assert waiting.id in [t.id for t in listed.tasks]
    assert hook.states()[0] == "TASK_STATE_SUBMITTED" and hook.states()[-1] == "TASK_STATE_COMPLETED"


def test_the_sdks_opentelemetry_spans_are_off_unless_the_operator_asks():
    """They cost up to ~15% of a round trip, sent nowhere without a tracer provider (the OpenTelemetry API is
    installed regardless: mcp and FastAPI depend on it)."""
    env = {k: v for k, v in os.environ.items() if k != "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED"}
    probe = "import agora.transports.a2a; from a2a.utils import telemetry; print(telemetry.otel_installed, telemetry.otel_enabled)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False"], out.stderr
