"""The client package stands alone and maps hub errors back to typed exceptions."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from agora_sdk import (
    AgoraClient,
    AsyncAgoraClient,
    NotFound,
    Unauthenticated,
    Unavailable,
)

from .conftest import unique
from .hubproc import free_port


def test_sdk_never_imports_the_server():
    code = (
        "import sys, agora_sdk, agora_sdk.wire.agents, agora_sdk.wire.admin, agora_sdk.wire.discovery; "
        "leaked = [m for m in sys.modules if m == 'agora' or m.startswith('agora.')]; "
        "assert not leaked, leaked"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_every_http_client_of_a_process_verifies_with_one_tls_context():
    """httpx loads the whole CA bundle for each client it builds (~45 ms of CPU): the hub built clients on its event
    loop (a push round, a bridged agent, its own hosting node) and stalled every request that long each time."""
    import httpx2

    from agora.core.egress import EgressPolicy
    from agora_sdk.tls import tls_context

    def context(client: Any) -> Any:
        return client._transport._pool._ssl_context  # (httpx keeps the context its connections are made with here)

    sync_client, async_client = AgoraClient("http://127.0.0.1:9"), AsyncAgoraClient("http://127.0.0.1:9")
    async with EgressPolicy().acting_for(admin=False).client() as egress, EgressPolicy().acting_for(admin=True).client(httpx2) as upstream:
        clients = [sync_client._http, async_client._http, egress, upstream]
        assert all(context(c) is tls_context() for c in clients)
    sync_client.close()
    await async_client.aclose()


def test_an_agent_runs_on_uvloop_where_it_is_installed():
    """``Agent.run`` ran on asyncio's own loop: every frame, hand-off and answer of the runtime cost more CPU, and a
    handler's round trip (message → handler → reply, an A2A turn) waits on it."""
    import asyncio

    import uvloop

    from agora_sdk import agent as agent_module

    loops: list[type] = []

    async def main() -> None:
        loops.append(type(asyncio.get_running_loop()))

    agent_module._run(main())
    assert loops == [uvloop.Loop]


def test_sync_client_calls_tools_and_raises_typed_errors(sqlite_hub):
    with AgoraClient(sqlite_hub.url, data_dir=sqlite_hub.data_dir) as client:
        assert client.config.key_source.endswith("admin.key")
        reg = client.call("agora.agents.register", agent_name=unique(), capabilities=["sdk"])
        assert client.call("agents.get", agent=reg["agent_id"])["agent_name"] == reg["agent_name"]
        with pytest.raises(NotFound) as err:
            client.call("agora.agents.get", agent="nobody")
        assert err.value.code == "not_found" and err.value.status == 404
    with AgoraClient(sqlite_hub.url, "agora_sk_wrong") as client, pytest.raises(Unauthenticated):
        client.call("agora.admin.health")
    with AgoraClient(f"http://127.0.0.1:{free_port()}", "agora_sk_x") as client, pytest.raises(Unavailable):
        client.call("agora.admin.health")


async def test_async_client_has_the_same_api(sqlite_hub):
    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        health = await client.call("agora.admin.health")
        assert health["status"] == "healthy"
        with pytest.raises(NotFound):
            await client.call("agora.nope.tool")


def test_every_catalog_tool_has_its_typed_sdk_method():
    """A tool added without regenerating ``agora_sdk/_tools.py`` fails here."""
    from agora.catalog import sdkgen
    from agora.catalog.registry import build_catalog

    assert sdkgen.TARGET.read_text() == sdkgen.render(), "run: python -m agora.catalog.sdkgen"
    for client_class in (AgoraClient, AsyncAgoraClient):
        client = client_class("http://127.0.0.1:1", "agora_sk_x")
        for tool in build_catalog():
            target: object = client
            for part in tool.name.split(".")[1:]:
                target = getattr(target, part)
            assert callable(target), tool.name
            assert tool.output_model.__name__ in str(target.__annotations__["return"]), tool.name


def test_typed_methods_take_seed_style_arguments_and_return_wire_models(sqlite_hub):
    from agora_sdk.types import MessageType, TaskStatus

    with AgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
        peer = admin.agents.register(unique("peer"), capabilities=["sdk-typed"])
        with AgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
            registration = client.register(unique("typed"), capabilities=["sdk-typed"], service_tier="premium")
            assert client.agent_id == registration.agent_id and client.api_key == registration.agent_token
            assert len(registration.available_services) == len(client.discovery.list())
            receipt = client.messaging.send(peer.agent_name, {"n": 1}, message_type=MessageType.TASK_COMPLETION)
            assert receipt.message_id.startswith("msg_") and receipt.status == "queued"
            task = client.task.assign("review", {"file": "a.md"}, assignee=registration.agent_id, priority="high")
            tasks = client.task.list(agent_id=registration.agent_id, status=TaskStatus.PENDING)
            assert len(tasks) == 1 and [t.task_id for t in tasks] == [task.task_id] and tasks[0].priority.name == "high"
            assert client.task.update(task_id=task.task_id, status=TaskStatus.IN_PROGRESS).claimed_by == registration.agent_id
            assert client.task.update(task_id=task.task_id, status=TaskStatus.COMPLETED, notes="ok").status == "completed"
            agents = client.query.agents(capabilities=["sdk-typed"])
            assert {a.agent_name for a in agents} >= {peer.agent_name, registration.agent_name}
            schema = client.discovery.schema("agora.messaging.send")
            assert schema.input_schema["properties"]["to_agent"]
        with AgoraClient(sqlite_hub.url, peer.agent_token) as peer_client:
            inbox = peer_client.messaging.receive()
            assert inbox[0].content == {"n": 1} and inbox[0].message_type == "task_completion"
            assert peer_client.messaging.ack([inbox[0].message_id]).acked == 1


def test_connection_errors_are_retried_until_the_hub_is_back(tmp_path):
    from .hubproc import HubProcess

    hub = HubProcess(tmp_path / "hub").start()
    hub.stop()
    with AgoraClient(hub.url, hub.admin_key, retries=40) as client:  # backoff up to 5 s: room for a slow restart
        import threading

        result: list[object] = []
        caller = threading.Thread(target=lambda: result.append(client.admin.health()))
        caller.start()
        try:
            hub.start()
            caller.join(60)
        finally:
            hub.stop()
    assert result and result[0].status == "healthy"


async def test_long_polls_outlast_the_client_timeout(sqlite_hub):
    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key, timeout=0.5) as client:
        me = await client.register(unique("poller"))
        started = time.perf_counter()
        inbox = await client.messaging.receive(wait=1.5)
        assert len(inbox) == 0 and time.perf_counter() - started >= 1.4
        assert me.agent_id == client.agent_id


def test_events_resume_after_the_last_event_taken(sqlite_hub):
    with AgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
        me = admin.agents.register(unique("listener"))
        with AgoraClient(sqlite_hub.url, me.agent_token) as client:
            admin.messaging.send(me.agent_id, "one")
            stream = client.events(["message_received"])
            first = next(stream)
            stream.close()
            assert first.type == "message_received" and first.message.content == "one"
            client.messaging.ack([first.message.message_id])
            admin.messaging.send(me.agent_id, "two")
            again = next(client.events(["message_received"], resume=first.id))
            assert again.message.content == "two"
    with AgoraClient(sqlite_hub.url, "agora_sk_wrong") as client, pytest.raises(Unauthenticated):
        next(client.events())
