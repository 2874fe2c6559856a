"""The MCP gateway against a real second MCP server (``tests/mcp_upstream.py``) over Streamable HTTP and stdio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ToolsListChanged
from pydantic import ValidationError

from agora.gateway.direct import DirectCalls
from agora.gateway.direct import _answer as direct_answer
from agora_sdk import AgoraClient
from agora_sdk.errors import Unavailable

from .conftest import call, expect_error, new_tenant, ok, unique, until
from .hubproc import FixtureServer, HubProcess
from .test_mcp import agora_mcp, mcp_client

UPSTREAM = str(Path(__file__).parent / "mcp_upstream.py")
TOKEN = "upstream-secret"
LOOPBACK_ALLOWED = {"AGORA_EGRESS_ALLOW": "127.0.0.1/32"}


def upstream_server(*mode: str) -> FixtureServer:
    """The fixture MCP server over Streamable HTTP (``.origin + "/mcp"``), wanting the bearer TOKEN."""
    return FixtureServer(UPSTREAM, ["--http", "{port}", "--token", TOKEN, *mode], probe="/mcp")


def mcp_url(server: FixtureServer) -> str:
    return f"{server.origin}/mcp"



@pytest.fixture(scope="module")
def loopback_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub whose operator lets customers reach 127.0.0.1 (``--egress-allow``), where these tests' upstreams run: by
    default only the admin's upstreams may be local (tests/security/test_egress.py)."""
    hub = HubProcess(tmp_path_factory.mktemp("gateway-loopback"), env=LOOPBACK_ALLOWED).start()
    yield hub
    hub.stop()


@pytest.fixture
def upstream() -> Iterator[FixtureServer]:
    server = upstream_server().start()
    yield server
    server.kill()


@contextlib.contextmanager
def running(*mode: str) -> Iterator[FixtureServer]:
    server = upstream_server(*mode).start()
    try:
        yield server
    finally:
        server.kill()


def register(client: httpx.Client, **args: Any) -> dict[str, Any]:
    return ok(call(client, "agora.mcp_servers.register", **args))


def names(client: httpx.Client, category: str = "ext") -> dict[str, str]:
    return {t["name"]: t["status"] for t in ok(call(client, "agora.discovery.list", category=category))["services"]}


async def test_an_http_server_s_tools_are_called_over_rest_sdk_and_mcp_with_the_hub_s_own_token(sqlite_hub, upstream):
    server = unique("http").replace("-", "")[:20]
    with sqlite_hub.client() as admin:
        registered = register(admin, name=server, url=mcp_url(upstream), bearer_token=TOKEN)
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("gw")))
        listed = ok(call(admin, "agora.mcp_servers.list"))
    assert registered["state"] == "up" and f"ext.{server}.add" in registered["tools"]
    assert TOKEN not in str(listed) and "bearer_token" not in str(listed)  # the hub keeps its credentials to itself
    with sqlite_hub.client(agent["agent_token"]) as me:
        assert names(me)[f"ext.{server}.add"] == "active"
        schema = ok(call(me, "agora.discovery.schema", name=f"ext.{server}.add"))["input_schema"]
        assert set(schema["properties"]) == {"a", "b"}  # the upstream's own schema
        added = ok(me.post(f"/ext/{server}/add", json={"a": 2, "b": 40}))
        assert added["structured_content"] == {"result": 42} and not added["is_error"]
        seen = ok(me.post(f"/ext/{server}/seen_authorization", json={}))  # the agent's own token never goes upstream
        assert seen["structured_content"] == {"result": f"Bearer {TOKEN}"}
        invalid = ok(me.post(f"/ext/{server}/add", json={"a": "two"}))
        assert invalid["is_error"]  # the upstream validated and said why, as an MCP tool error
    with AgoraClient(sqlite_hub.url, agent["agent_token"]) as sdk:
        assert sdk.call(f"ext.{server}.shout", text="hi")["structured_content"] == {"result": "HI"}
    async with mcp_client(sqlite_hub, agent["agent_token"], "?toolsets=ext") as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool(f"ext.{server}.add", {"a": 1, "b": 2})
    assert f"ext.{server}.add" in tools and "agora.messaging.send" not in tools
    assert not result.is_error and result.structured_content == {"result": 3}


def test_a_tenant_s_server_is_seen_by_that_tenant_only(loopback_hub, upstream):
    server = unique("ten").replace("-", "")[:20]
    with loopback_hub.client() as admin:
        acme, other = new_tenant(admin, loopback_hub), new_tenant(admin, loopback_hub)
    with acme, other:
        register(acme, name=server, url=mcp_url(upstream), bearer_token=TOKEN)
        assert f"ext.{server}.add" in names(acme)
        assert f"ext.{server}.add" not in names(other)
        expect_error(other.post(f"/ext/{server}/add", json={"a": 1, "b": 1}), 404, "not_found")
        assert server not in {s["name"] for s in ok(call(other, "agora.mcp_servers.list"))["servers"]}
        foreign = expect_error(call(other, "agora.mcp_servers.remove", name=server), 404, "not_found")
        ghost = expect_error(call(other, "agora.mcp_servers.remove", name=server + "x"), 404, "not_found")
        assert (foreign["message"], foreign["details"]) == (ghost["message"].replace(server + "x", server), ghost["details"])
        assert ok(call(acme, "agora.mcp_servers.remove", name=server))["removed"] is True
        assert f"ext.{server}.add" not in names(acme)


def test_bad_registrations_are_refused_with_the_field(loopback_hub, upstream):
    server = unique("bad").replace("-", "")[:20]
    with loopback_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("gw")))
        missing = expect_error(call(admin, "agora.mcp_servers.register", name=server, command="/no/such/command"), 400, "invalid_argument")
        assert missing["details"]["field"] == "command"
        both = expect_error(call(admin, "agora.mcp_servers.register", name=server, url=mcp_url(upstream), command="python"), 422, "invalid_argument")
        assert "either url" in both["message"]
        register(admin, name=server, url=mcp_url(upstream), bearer_token=TOKEN)
        expect_error(call(admin, "agora.mcp_servers.register", name=server, url=mcp_url(upstream)), 409, "conflict")
        ok(call(admin, "agora.mcp_servers.remove", name=server))
    with loopback_hub.client(agent["agent_token"]) as me:
        expect_error(call(me, "agora.mcp_servers.register", name=unique("x")[:20], url=mcp_url(upstream)), 403, "permission_denied")
    with loopback_hub.client() as admin:
        tenant = unique("tenant")
        customer, reader = (
            loopback_hub.client(ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, **scopes))["key"])
            for scopes in ({}, {"scopes": ["agents:read"]})
        )
    with customer, reader:
        command = expect_error(call(customer, "agora.mcp_servers.register", name=server, command=sys.executable), 403, "permission_denied")
        assert "only the admin" in command["message"]  # a tenant never runs commands on the hub's host
        scoped = expect_error(call(reader, "agora.mcp_servers.register", name=server, url=mcp_url(upstream)), 403, "permission_denied")
        assert scoped["details"]["missing_scopes"] == ["mcp_servers:write"]
        register(customer, name=server, url=mcp_url(upstream), bearer_token=TOKEN)
        no_call = expect_error(reader.post(f"/ext/{server}/add", json={"a": 1, "b": 1}), 403, "permission_denied")
        assert no_call["details"]["missing_scopes"] == ["tools:call"]
        assert ok(customer.post(f"/ext/{server}/add", json={"a": 1, "b": 1}))["structured_content"] == {"result": 2}
        ok(call(customer, "agora.mcp_servers.remove", name=server))


def test_a_dead_upstream_marks_its_tools_unavailable_and_they_return_with_it(sqlite_hub, upstream):
    server = unique("dead").replace("-", "")[:20]
    with sqlite_hub.client() as admin:
        register(admin, name=server, url=mcp_url(upstream), bearer_token=TOKEN)
        upstream.kill()
        until(lambda: names(admin).get(f"ext.{server}.add") == "unavailable", "tools not marked unavailable")
        down = expect_error(admin.post(f"/ext/{server}/add", json={"a": 1, "b": 1}), 503, "unavailable")
        assert down["details"]["reason"] == "upstream_down" and down["details"]["last_error"]
        assert ok(call(admin, "agora.agents.list"))["count"] >= 0  # the hub itself is unaffected
        upstream.start()
        until(lambda: names(admin).get(f"ext.{server}.add") == "active", "the upstream's tools did not come back")
        assert ok(admin.post(f"/ext/{server}/add", json={"a": 1, "b": 1}))["structured_content"] == {"result": 2}
        ok(call(admin, "agora.mcp_servers.remove", name=server))


async def test_a_crashed_upstream_gets_one_answer_from_the_first_call_on_and_its_tools_stay_listed(sqlite_hub, upstream):
    server = unique("crash").replace("-", "")[:20]
    changes = asyncio.Event()
    with sqlite_hub.client() as admin:
        register(admin, name=server, url=mcp_url(upstream), bearer_token=TOKEN)
        async with legacy_client(sqlite_hub, sqlite_hub.admin_key, on_change(changes)) as session:
            await session.list_tools()
            await asyncio.sleep(0.5)  # the session's standalone stream opens
            changes.clear()
            upstream.kill()
            # At once, before the hub's supervisor noticed, and every time after: 503 with when to try again.
            for _ in range(3):
                down = admin.post(f"/ext/{server}/add", json={"a": 1, "b": 1})
                refusal = expect_error(down, 503, "unavailable")
                assert refusal["details"]["reason"] == "upstream_down" and int(down.headers["retry-after"]) >= 1
            listed = [t.name for t in (await session.list_tools()).tools]
            assert f"ext.{server}.add" in listed  # still listed over MCP while discovery says unavailable
            until(lambda: names(admin).get(f"ext.{server}.add") == "unavailable", "tools not marked unavailable")
            answered = await session.call_tool(f"ext.{server}.add", {"a": 1, "b": 1})
            assert answered.is_error and answered.meta["agora/error"]["code"] == "unavailable"
            assert answered.meta["agora/error"]["details"]["retry_after_seconds"] >= 1
            async with asyncio.timeout(10):
                await changes.wait()  # its going is announced
            changes.clear()
            upstream.start()
            async with asyncio.timeout(20):
                await changes.wait()  # and its coming back
            assert (await session.call_tool(f"ext.{server}.add", {"a": 2, "b": 3})).structured_content == {"result": 5}
        ok(call(admin, "agora.mcp_servers.remove", name=server))


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_progress_and_cancellation_pass_through_the_gateway(sqlite_hub, upstream, mode):
    server = unique("relay").replace("-", "")[:20]
    with sqlite_hub.client() as admin:
        register(admin, name=server, url=mcp_url(upstream), bearer_token=TOKEN)
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with mcp_client(sqlite_hub, sqlite_hub.admin_key, mode=mode) as client:
            counted = await client.call_tool(f"ext.{server}.count", {"steps": 3}, progress_callback=on_progress)
            assert counted.structured_content == {"result": "counted to 3"}
            assert seen == [(1, 3, "step 1 of 3"), (2, 3, "step 2 of 3"), (3, 3, "step 3 of 3")]
            key = unique("wait")
            waiting = asyncio.create_task(client.call_tool(f"ext.{server}.wait", {"key": key}))
            await asyncio.sleep(1)
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        cancelled = lambda: ok(admin.post(f"/ext/{server}/was_cancelled", json={"key": key}))["structured_content"]  # noqa: E731
        until(lambda: cancelled() == {"result": True}, "the cancelled call went on upstream")
        ok(call(admin, "agora.mcp_servers.remove", name=server))


def test_a_hanging_upstream_times_out_without_holding_up_anything_else(sqlite_hub, upstream):
    server = unique("slow").replace("-", "")[:20]
    with sqlite_hub.client() as admin:
        register(admin, name=server, url=mcp_url(upstream), bearer_token=TOKEN, timeout_seconds=1)
        with AgoraClient(sqlite_hub.url, sqlite_hub.admin_key, retries=0) as sdk, ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            hanging = pool.submit(sdk.call, f"ext.{server}.slow", seconds=10)
            time.sleep(0.2)
            assert ok(admin.post(f"/ext/{server}/add", json={"a": 1, "b": 1}))["structured_content"] == {"result": 2}
            assert not hanging.done()  # the other caller was served while this one waited on the upstream
            with pytest.raises(Unavailable) as hung:
                hanging.result(timeout=10)
        assert hung.value.status == 504 and hung.value.details["reason"] == "upstream_timeout"
        assert time.monotonic() - started < 5
        assert ok(admin.post(f"/ext/{server}/add", json={"a": 2, "b": 2}))["structured_content"] == {"result": 4}
        ok(call(admin, "agora.mcp_servers.remove", name=server))


def test_a_stdio_server_is_started_supervised_and_stopped_by_the_hub(sqlite_hub):
    server = unique("stdio").replace("-", "")[:20]
    with sqlite_hub.client() as admin:
        before = set(_upstream_children(sqlite_hub))  # stdio servers other tests registered on this hub
        registered = register(admin, name=server, command=sys.executable, args=[UPSTREAM, "--stdio"])
        assert registered["state"] == "up" and registered["transport"] == "stdio"
        assert ok(admin.post(f"/ext/{server}/shout", json={"text": "from stdio"}))["structured_content"] == {"result": "FROM STDIO"}
        assert ok(admin.post(f"/ext/{server}/seen_authorization", json={}))["structured_content"] == {"result": "stdio"}
        started = set(_upstream_children(sqlite_hub)) - before
        assert len(started) == 1, "the hub did not start the stdio server"
        ok(call(admin, "agora.mcp_servers.remove", name=server))
        until(lambda: not started & set(_upstream_children(sqlite_hub)), "the stdio server outlived its removal")
        expect_error(admin.post(f"/ext/{server}/shout", json={"text": "x"}), 404, "not_found")


def test_registered_servers_survive_a_hub_restart(tmp_path, upstream):
    hub = HubProcess(tmp_path / "hub").start()
    try:
        with hub.client() as admin:
            register(admin, name="persist", url=mcp_url(upstream), bearer_token=TOKEN)
        hub.stop()
        hub.start()
        with hub.client() as admin:
            until(lambda: names(admin).get("ext.persist.add") == "active", "the server was not reconnected after a restart")
            assert ok(admin.post("/ext/persist/add", json={"a": 20, "b": 22}))["structured_content"] == {"result": 42}
    finally:
        hub.stop()


def _upstream_children(hub: HubProcess) -> list[str]:
    assert hub.proc is not None
    found = subprocess.run(["pgrep", "-P", str(hub.proc.pid), "-f", "mcp_upstream.py"], capture_output=True, text=True)
    return found.stdout.split()


def test_an_upstream_that_answers_garbage_is_reported_and_the_hub_carries_on(sqlite_hub):
    with sqlite_hub.client() as admin, running("--garbage") as junk, running("--garbage-results") as liar:
        junk_name, liar_name = unique("junk").replace("-", "")[:20], unique("liar").replace("-", "")[:20]
        refused = call(admin, "agora.mcp_servers.register", name=junk_name, url=mcp_url(junk), bearer_token=TOKEN, timeout_seconds=3)
        assert expect_error(refused, 400, "invalid_argument")["details"] == {"field": "url"}  # not an MCP server: not stored
        assert junk_name not in {s["name"] for s in ok(call(admin, "agora.mcp_servers.list"))["servers"]}
        register(admin, name=liar_name, url=mcp_url(liar), bearer_token=TOKEN)
        lie = expect_error(admin.post(f"/ext/{liar_name}/add", json={"a": 1, "b": 2}), 502, "unavailable")
        assert lie["details"]["reason"] == "upstream_error" and liar_name in lie["message"]
        assert ok(call(admin, "agora.query.agents", limit=1))  # the hub serves on
        ok(call(admin, "agora.mcp_servers.remove", name=liar_name))


async def test_a_tool_list_change_reaches_the_hub_and_its_mcp_clients_at_once(tmp_path, upstream):
    # Polling every 10 minutes: whatever arrives within the test's time came by notification.
    hub = HubProcess(tmp_path / "hub", extra_args=["--mcp-gateway-refresh", "600"], env=LOOPBACK_ALLOWED).start()  # a tenant's upstream
    changed, over_stdio, leaked = asyncio.Event(), asyncio.Event(), asyncio.Event()

    try:
        with hub.client() as admin:
            other = new_tenant(admin, hub)
            tenant = new_tenant(admin, hub)
            with tenant:
                register(tenant, name="grower", url=mcp_url(upstream), bearer_token=TOKEN)
            tenant_key = tenant.headers["authorization"].split()[1]
            async with (
                legacy_client(hub, tenant_key, on_change(changed)) as session,
                legacy_client(hub, other.headers["authorization"].split()[1], on_change(leaked)) as stranger,
                mcp_client(hub, tenant_key, mode="2026-07-28") as modern,
                modern.listen(tools_list_changed=True) as subscription,
                Client(agora_mcp(hub, tenant_key), mode="legacy", message_handler=on_change(over_stdio)) as desktop,
                Client(agora_mcp(hub, tenant_key), mode="2026-07-28") as modern_desktop,
                modern_desktop.listen(tools_list_changed=True) as desktop_subscription,
            ):
                assert "ext.grower.fresh" not in [t.name for t in (await session.list_tools()).tools]
                await stranger.list_tools()
                await desktop.list_tools()
                await asyncio.sleep(1)  # the sessions' standalone streams and agora mcp's listen stream open
                grown = await modern.call_tool("ext.grower.grow", {"name": "fresh"})
                assert grown.structured_content == {"result": "fresh"}
                async with asyncio.timeout(20):
                    await changed.wait()
                    await over_stdio.wait()
                    assert isinstance(await anext(aiter(subscription)), ToolsListChanged)
                    assert isinstance(await anext(aiter(desktop_subscription)), ToolsListChanged)
                assert "ext.grower.fresh" in [t.name for t in (await desktop.list_tools()).tools]
                assert "ext.grower.fresh" in [t.name for t in (await session.list_tools()).tools]
                echoed = await session.call_tool("ext.grower.fresh", {"text": "new"})
                assert echoed.structured_content == {"result": "new"}
                await asyncio.sleep(0.5)
                assert not leaked.is_set()  # another tenant never hears of this tenant's servers
            other.close()
    finally:
        hub.stop()


def on_change(event: asyncio.Event) -> Any:
    """A message handler that sets ``event`` when a tools list change arrives."""

    async def handler(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            event.set()

    return handler


@contextlib.asynccontextmanager
async def legacy_client(hub: HubProcess, key: str, on_message: Any) -> AsyncIterator[Client]:
    """A 2025-11-25 session (initialize handshake, standalone stream for notifications)."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    transport = streamable_http_client(f"{hub.url}/mcp", http_client=http)
    async with http, Client(transport, mode="legacy", message_handler=on_message) as client:
        yield client


def test_a_server_registered_on_one_replica_is_served_by_the_other(two_replicas, upstream):
    one, two = two_replicas
    with one.client() as first, two.client() as second:
        register(first, name="shared", url=mcp_url(upstream), bearer_token=TOKEN)
        until(lambda: names(second).get("ext.shared.add") == "active", "the other replica never connected the server")
        assert ok(second.post("/ext/shared/add", json={"a": 40, "b": 2}))["structured_content"] == {"result": 42}
        expect_error(call(second, "agora.mcp_servers.register", name="shared", url=mcp_url(upstream)), 409, "conflict")
        ok(call(first, "agora.mcp_servers.remove", name="shared"))
        until(lambda: "ext.shared.add" not in names(second), "the other replica kept a removed server")


async def test_a_direct_call_answers_as_the_sdk_client_and_refuses_what_it_refuses(upstream):
    """``gateway/direct.py`` against the real server: the same results as the SDK client's (failures included), and
    the SDK client's refusals of a result that is not one and of structured content that breaks the output schema."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=auth) as http, Client(streamable_http_client(mcp_url(upstream), http_client=http)) as client:
        assert client.protocol_version == "2026-07-28"
        listings = {t.name: t for t in (await client.list_tools()).tools}
        direct = DirectCalls(mcp_url(upstream), http, client.protocol_version, {})
        unknown = listings["add"].model_copy(update={"name": "no_such_tool"})
        for listing, arguments in ((listings["add"], {"a": 2, "b": 3}), (listings["shout"], {"text": "héllo"}),
                                   (listings["seen_authorization"], {}), (listings["add"], {"a": "x"}), (unknown, {})):  # fmt: skip
            assert await direct.call(listing, arguments) == await client.call_tool(listing.name, arguments)
        lying = listings["add"].model_copy(update={"output_schema": {"type": "object", "properties": {"result": {"type": "string"}}, "required": ["result"]}})
        with pytest.raises(RuntimeError, match="Invalid structured content"):
            await direct.call(lying, {"a": 1, "b": 1})
    async with httpx2.AsyncClient(headers=auth) as http:
        with running("--garbage-results") as liar:
            with pytest.raises(ValidationError):
                await DirectCalls(mcp_url(liar), http, "2026-07-28", {}).call(listings["add"], {"a": 1, "b": 1})


def test_a_direct_call_reads_its_answer_from_an_event_stream_too():
    """A server that streamed (pings and notifications before the answer), as the SDK's server writes a stream."""
    answer = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "done"}], "isError": False}}
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}}
    events = [": ping", f"event: message\r\ndata: {json.dumps(note)}", f"event: message\r\ndata: {json.dumps(answer)}"]
    stream = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content="\r\n\r\n".join(events) + "\r\n\r\n")
    assert direct_answer(stream, 7) == answer
    with pytest.raises(ValueError, match="no answer"):
        direct_answer(stream, 8)
    with pytest.raises(ValueError, match="HTTP 401"):
        direct_answer(httpx2.Response(401, headers={"content-type": "text/plain"}, content="who are you"), 7)
