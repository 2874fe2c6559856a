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


GRPC_DEFAULT = "v03-grpc-agent"  # the agent that answers gRPC calls naming no tenant (0.3 has none)


@pytest.fixture(scope="module")
def grpc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub serving the A2A gRPC binding too, where the agent of ``agent`` answers untenanted gRPC calls."""
    port = free_port()
    extra = ["--a2a-grpc-port", str(port), "--a2a-grpc-default-agent", GRPC_DEFAULT]
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


def v03_client(python: Path, url: str, binding: str, card: str) -> dict[str, object]:
    done = subprocess.run([str(python), str(CLIENT), url, binding, card], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("binding", [*BINDINGS, "GRPC"])
async def test_a_0_3_client_and_a_1_0_client_talk_with_one_agora_agent(agent, v03_python, binding):
    for card in ("legacy", "negotiated"):  # the 0.3 card at agent.json, and at agent-card.json asked for as 0.3
        seen = v03_client(v03_python, agent.url, binding, card)
        assert seen == {
            "card": "0.3.0",
            "tck-complete-task": {"state": "completed", "text": ["Hello from TCK"], "read_back": "completed"},
            "tck-message-response": {"message": ["Direct message response"]},
        }, (card, seen)
    async with a2a_client(agent.url, binding) as client:  # the 1.0 SDK, from the 1.0 card (gRPC: its tenant)
        done = (await send(client, message("hi", "tck-complete-task"))).task
        reply = await send(client, message("hi", "tck-message-response"))
    assert done.status.state == pb.TaskState.TASK_STATE_COMPLETED and texts(done.status.message) == ["Hello from TCK"]
    assert texts(reply.message) == ["Direct message response"]


@pytest.mark.parametrize("where", ["agent", "hub"])
def test_the_card_is_1_0_unless_0_3_is_asked_for(grpc_hub, agent, where):
    base = agent.url if where == "agent" else grpc_hub.url
    card = httpx.get(f"{base}/.well-known/agent-card.json")
    strict = card.json()
    assert card.headers["vary"] == "A2A-Version"
    assert not {"url", "preferredTransport", "protocolVersion", "additionalInterfaces"} & strict.keys()  # 1.0 fields only
    declared = {(i["protocolBinding"], i["protocolVersion"], i.get("tenant")) for i in strict["supportedInterfaces"]}
    tenant = agent.agent_id if where == "agent" else None  # the hub's directory answers gRPC only by its tenant ""
    assert declared == {(b, v, None) for b in BINDINGS for v in ("1.0", "0.3")} | {("GRPC", "1.0", tenant)} | (
        {("GRPC", "0.3", None)} if where == "agent" else set()  # this agent answers calls without a tenant
    )
    legacy = httpx.get(f"{base}/.well-known/agent.json").json()
    assert legacy == httpx.get(f"{base}/.well-known/agent-card.json", headers={"A2A-Version": "0.3"}).json()
    assert legacy["protocolVersion"] == "0.3.0" and legacy["preferredTransport"] == "JSONRPC"
    assert legacy["url"] == strict["supportedInterfaces"][0]["url"] and "supportedInterfaces" not in legacy
    http_json = {"transport": "HTTP+JSON", "url": legacy["url"]}
    assert legacy["additionalInterfaces"] == ([http_json, {"transport": "GRPC", "url": grpc_hub.grpc_target}] if where == "agent" else [http_json])


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
