"""A2A 0.3 and 1.0 side by side on one Agora agent: an ``a2a-sdk`` 0.3.x client (in a virtualenv of its own,
installed from the package registry) and the 1.0 client exchange messages with it over every binding each has."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.types import a2a_pb2_grpc as a2a_grpc

from .conftest import REQUIRE_SERVICES, call, ok, unique
from .hubproc import HubProcess, free_port
from .test_a2a import BINDINGS, AgentProcess, Webhook, a2a_client, message, send, texts

A2A_V03 = "a2a-sdk[grpc]==0.3.26"
CLIENT = Path(__file__).parent / "a2a_v03_client.py"


@pytest.fixture(scope="session")
def v03_python() -> Path:
    """The python of a virtualenv holding the 0.3 SDK, made once per machine (cached between runs)."""
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agora-tests" / re.sub(r"\W+", "-", A2A_V03)
    python = home / "bin" / "python"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other xdist worker waits for the one making it
        if not (home / "ready").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
            done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", A2A_V03], capture_output=True, text=True)
            if done.returncode != 0:
                reason = f"{A2A_V03} could not be installed: {done.stderr[-1000:]}"
                if REQUIRE_SERVICES:
                    pytest.fail(f"AGORA_REQUIRE_SERVICES=1 but {reason}")
                pytest.skip(reason)
            (home / "ready").touch()
    return python


GRPC_DEFAULT = "v03-grpc-agent"  # the agent reached naming none: gRPC calls without a tenant (0.3 has none), the root card


@pytest.fixture(scope="module")
def grpc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub serving the A2A gRPC binding too, where the agent of ``agent`` answers untenanted gRPC calls and shows its
    card at the hub's root."""
    port = free_port()
    extra = ["--a2a-grpc-port", str(port), "--a2a-default-agent", GRPC_DEFAULT]
    hub = HubProcess(tmp_path_factory.mktemp("grpc-hub"), extra_args=extra).start()
    hub.grpc_target = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def agent(grpc_hub: HubProcess) -> Iterator[AgentProcess]:
    process = AgentProcess(grpc_hub, grpc_hub.admin_key)
    process.name = GRPC_DEFAULT
    yield process.start()
    process.stop()


def v03_client(python: Path, url: str, binding: str) -> dict[str, object]:
    done = subprocess.run([str(python), str(CLIENT), url, binding], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


async def _as_1_0_client(url: str, binding: str) -> dict[str, object]:
    """What ``tests/a2a_v03_client.py`` does, with the 1.x SDK's defaults (its factory asks for the card naming 1.0)."""
    async with a2a_client(url, binding, streaming=True) as client:
        done = final(await events(client, message("hi", "tck-complete-task")))
        again = await client.get_task(pb.GetTaskRequest(id=done.id))
        reply = (await events(client, message("hi", "tck-message-response")))[-1]
        streamed = await events(client, message("hi", "tck-stream-001"))
        waiting = final(await events(client, message("hi", "tck-input-required")))
        cancelled = await client.cancel_task(pb.CancelTaskRequest(id=waiting.id))
    artifacts = [texts(a) for e in streamed if e.HasField("task") for a in e.task.artifacts]
    artifacts += [texts(e.artifact_update.artifact) for e in streamed if e.HasField("artifact_update")]
    return {
        "completed": (pb.TaskState.Name(done.status.state), texts(done.status.message), pb.TaskState.Name(again.status.state)),
        "replied": texts(reply.message), "streamed": (pb.TaskState.Name(final(streamed).status.state), artifacts),
        "cancelled": (pb.TaskState.Name(waiting.status.state), pb.TaskState.Name(cancelled.status.state)),
    }  # fmt: skip


async def events(client: Any, request: pb.SendMessageRequest) -> list[pb.StreamResponse]:
    return [e async for e in client.send_message(request)]


def final(streamed: list[pb.StreamResponse]) -> pb.Task:
    """The task as a stream of its events leaves it: the first event's task, then each status update's state."""
    task = next(e.task for e in streamed if e.HasField("task"))
    for e in streamed:
        if e.HasField("status_update"):
            task.status.CopyFrom(e.status_update.status)
    return task


@pytest.mark.parametrize("binding", [*BINDINGS, "GRPC"])
async def test_a_stock_0_3_client_and_a_1_0_client_work_with_one_agora_agent_with_their_defaults(agent, v03_python, binding):
    """A 0.3 client names no version anywhere, so the card at the agent's URL is one it reads: send, stream, get and
    cancel, as the 1.x client does with its own defaults at the same URL."""
    seen = v03_client(v03_python, agent.url, binding)
    assert seen == {
        "card": "0.3.0",
        "completed": {"state": "completed", "text": ["Hello from TCK"], "read_back": "completed"},
        "replied": ["Direct message response"],
        "streamed": {"state": "completed", "artifacts": [["Stream hello from TCK"]]},
        "cancelled": {"waited": "input-required", "state": "canceled"},
    }, seen
    assert await _as_1_0_client(agent.url, binding) == {
        "completed": ("TASK_STATE_COMPLETED", ["Hello from TCK"], "TASK_STATE_COMPLETED"),
        "replied": ["Direct message response"], "streamed": ("TASK_STATE_COMPLETED", [["Stream hello from TCK"]]),
        "cancelled": ("TASK_STATE_INPUT_REQUIRED", "TASK_STATE_CANCELED"),
    }  # fmt: skip


@pytest.mark.parametrize("where", ["agent", "hub"])
def test_a_card_asked_for_by_no_version_is_read_by_both_and_each_version_gets_its_own(grpc_hub, agent, where):
    """With no A2A-Version the card carries 1.0's fields and 0.3's (their SDK's merge); 1.0 gets the 1.0 card alone,
    0.3 (by header, query or the legacy location) the 0.3 card alone. The hub's root shows the default agent's card
    (``--a2a-default-agent``); the hub's own is beside its endpoint."""
    base = agent.url if where == "agent" else f"{grpc_hub.url}/a2a"
    strict = httpx.get(f"{base}/.well-known/agent-card.json", headers={"A2A-Version": "1.0"})
    assert strict.headers["vary"] == "A2A-Version"
    strict_card = strict.json()
    assert not {"url", "preferredTransport", "protocolVersion", "additionalInterfaces", "security"} & strict_card.keys()  # 1.0 fields only
    assert httpx.get(f"{base}/.well-known/agent-card.json", params={"A2A-Version": "1.0"}).json() == strict_card
    declared = {(i["protocolBinding"], i["protocolVersion"], i.get("tenant")) for i in strict_card["supportedInterfaces"]}
    tenant = agent.agent_id if where == "agent" else None  # the hub's directory answers gRPC only by its tenant ""
    assert declared == {(b, v, None) for b in BINDINGS for v in ("1.0", "0.3")} | {("GRPC", "1.0", tenant)} | (
        {("GRPC", "0.3", None)} if where == "agent" else set()  # this agent answers calls without a tenant
    )
    legacy = httpx.get(f"{base}/.well-known/agent.json").json()
    assert legacy == httpx.get(f"{base}/.well-known/agent-card.json", headers={"A2A-Version": "0.3"}).json()
    assert legacy["protocolVersion"] == "0.3.0" and legacy["preferredTransport"] == "JSONRPC"
    assert legacy["url"] == strict_card["supportedInterfaces"][0]["url"] and "supportedInterfaces" not in legacy
    http_json = {"transport": "HTTP+JSON", "url": legacy["url"]}
    assert legacy["additionalInterfaces"] == ([http_json, {"transport": "GRPC", "url": grpc_hub.grpc_target}] if where == "agent" else [http_json])

    both = httpx.get(f"{base}/.well-known/agent-card.json").json()
    assert {k: both[k] for k in strict_card} | {"securitySchemes": None} == strict_card | {"securitySchemes": None}
    merged = ("capabilities", "supportsAuthenticatedExtendedCard")  # (the merge leaves a false extended-card flag out)
    assert {k: both[k] for k in legacy if k not in merged} == {k: v for k, v in legacy.items() if k not in merged}
    if where == "agent":  # the hub's root shows the default agent (this one)
        assert httpx.get(f"{grpc_hub.url}/.well-known/agent-card.json").json() == both


def test_0_3_push_configs_are_complete(grpc_hub, agent):
    """0.3: the task's config is had by the task's id alone, and a delete answers a null result."""
    rpc = httpx.Client(base_url=agent.url, headers={"Authorization": f"Bearer {grpc_hub.admin_key}"}, timeout=30)

    def ask(method: str, params: dict[str, object]) -> dict[str, object]:
        answer = rpc.post("", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).json()
        assert "error" not in answer, answer
        return answer

    webhook = Webhook()
    hook = webhook.url
    with rpc, contextlib.closing(webhook):
        started = ask("message/send", {"message": {"kind": "message", "role": "user", "messageId": "tck-input-required-p",
                                                    "parts": [{"kind": "text", "text": "wait"}]}})  # fmt: skip
        task_id = started["result"]["id"]
        ask("tasks/pushNotificationConfig/set", {"taskId": task_id, "pushNotificationConfig": {"id": "hook-1", "url": hook}})
        got = ask("tasks/pushNotificationConfig/get", {"id": task_id})["result"]
        assert got["taskId"] == task_id and got["pushNotificationConfig"]["id"] == "hook-1" and got["pushNotificationConfig"]["url"] == hook
        deleted = ask("tasks/pushNotificationConfig/delete", {"id": task_id, "pushNotificationConfigId": "hook-1"})
        assert deleted == {"jsonrpc": "2.0", "id": 7, "result": None}
        assert ask("tasks/pushNotificationConfig/list", {"id": task_id})["result"] == []
        none = rpc.post("", json={"jsonrpc": "2.0", "id": 8, "method": "tasks/pushNotificationConfig/get", "params": {"id": task_id}}).json()
        assert none["error"]["code"] == -32602


async def test_grpc_admits_callers_as_http_does_and_refuses_other_versions(grpc_hub, agent):
    """A private front over gRPC wants a key of its tenant (metadata); an unknown agent is NOT_FOUND; an A2A-Version
    the endpoint does not speak is VersionNotSupported (UNIMPLEMENTED) before any work."""
    with grpc_hub.client() as admin:
        private = ok(call(admin, "agora.agents.register", agent_name=unique("grpc-private"), a2a={"access": "private"}))["agent_id"]
    async with grpc.aio.insecure_channel(grpc_hub.grpc_target) as channel:
        stub = a2a_grpc.A2AServiceStub(channel)
        asking = pb.GetTaskRequest(tenant=private, id="a2a_none")
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.GetTask(asking)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as keyed:
            await stub.GetTask(asking, metadata=[("authorization", f"Bearer {grpc_hub.admin_key}")])
        assert keyed.value.code() == grpc.StatusCode.NOT_FOUND and "a2a_none" in keyed.value.details()  # admitted: no such task
        with pytest.raises(grpc.aio.AioRpcError) as nobody:
            await stub.GetTask(pb.GetTaskRequest(tenant="agent_doesnotexist", id="x"))
        assert nobody.value.code() == grpc.StatusCode.NOT_FOUND and "no A2A agent" in nobody.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as no_state:  # a number no task state has
            await stub.ListTasks(pb.ListTasksRequest(tenant=agent.agent_id, status=99))
        assert no_state.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "status" in no_state.value.details()
        request = message("hi", "tck-complete-task")
        with pytest.raises(grpc.aio.AioRpcError) as future:
            await stub.SendMessage(pb.SendMessageRequest(tenant=agent.agent_id, message=request.message), metadata=[("a2a-version", "99.0")])
        assert future.value.code() == grpc.StatusCode.UNIMPLEMENTED
        sent = await stub.SendMessage(pb.SendMessageRequest(tenant=agent.agent_id, message=request.message), metadata=[("a2a-version", "1.0")])
    assert sent.task.status.state == pb.TaskState.TASK_STATE_COMPLETED
