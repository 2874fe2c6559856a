"""The MCP door with the official ``mcp`` client: the catalog as tools, the caller's rights, toolsets, both revisions."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from agora.catalog.registry import build_catalog

from .conftest import call, new_tenant, ok, unique
from .hubproc import HubProcess


@contextlib.asynccontextmanager
async def mcp_client(hub, key: str, query: str = "", mode: str = "auto") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{hub.url}/mcp{query}", http_client=http), mode=mode) as client:
        yield client


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_every_catalog_tool_is_listed_in_catalog_order(sqlite_hub, mode):
    async with mcp_client(sqlite_hub, sqlite_hub.admin_key, mode=mode) as client:
        # The built-in catalog (ext.* are tools of MCP servers other tests registered on this hub).
        tools = [t for t in (await client.list_tools()).tools if not t.name.startswith("ext.")]
        again = [t for t in (await client.list_tools()).tools if not t.name.startswith("ext.")]
    catalog = list(build_catalog())
    assert [t.name for t in tools] == [t.name for t in catalog] == [t.name for t in again]
    for listed, tool in zip(tools, catalog):
        assert listed.description == tool.description and listed.input_schema["type"] == "object"
        assert listed.annotations.read_only_hint == tool.read_only


async def test_a_call_acts_as_the_calling_agent_with_structured_and_text_results(sqlite_hub):
    with sqlite_hub.client() as admin:
        alice = ok(call(admin, "agora.agents.register", agent_name=unique("mcp-alice")))
        bob = ok(call(admin, "agora.agents.register", agent_name=unique("mcp-bob")))
    async with mcp_client(sqlite_hub, alice["agent_token"]) as client:
        sent = await client.call_tool("agora.messaging.send", {"to_agent": bob["agent_name"], "content": "over MCP"})
    assert not sent.is_error
    assert sent.structured_content["message_id"].startswith("msg_")
    assert json.loads(sent.content[0].text) == sent.structured_content
    with sqlite_hub.client(bob["agent_token"]) as c:
        inbox = ok(call(c, "agora.messaging.receive"))["messages"]
    assert [(m["from_agent"], m["content"]) for m in inbox] == [(alice["agent_id"], "over MCP")]


async def test_tool_errors_are_results_the_model_can_read(sqlite_hub):
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("mcp-err")))
    async with mcp_client(sqlite_hub, agent["agent_token"]) as client:
        missing = await client.call_tool("agora.messaging.send", {"to_agent": "nobody-" + unique(), "content": "x"})
        invalid = await client.call_tool("agora.task.update", {"task_id": "task_0000000000000000", "progress": 101})
        forbidden = await client.call_tool("agora.admin.keys.list", {})
    assert missing.is_error and missing.meta["agora/error"]["code"] == "not_found"
    assert invalid.is_error and invalid.meta["agora/error"]["code"] == "invalid_argument"
    assert forbidden.is_error and forbidden.meta["agora/error"]["code"] == "permission_denied"
    assert missing.content[0].text.startswith("not_found: ")
    # Not as structured content: that must fit the tool's output schema (strict clients refuse the result otherwise).
    assert missing.structured_content is invalid.structured_content is forbidden.structured_content is None


async def test_toolsets_narrow_the_list_and_the_calls(sqlite_hub):
    async with mcp_client(sqlite_hub, sqlite_hub.admin_key, "?toolsets=messaging,task") as client:
        names = [t.name for t in (await client.list_tools()).tools]
        with pytest.raises(MCPError, match="unknown tool"):
            await client.call_tool("agora.admin.health", {})
    assert {n.split(".")[1] for n in names} == {"messaging", "task", "tools"}  # the meta-tools are always there
    r = httpx.post(f"{sqlite_hub.url}/mcp?toolsets=nope", headers={"Authorization": f"Bearer {sqlite_hub.admin_key}"}, json={})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "toolsets"


def test_the_mcp_door_needs_a_key_and_a_local_host_header(sqlite_hub):
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    anonymous = httpx.post(f"{sqlite_hub.url}/mcp", json=body, headers=headers)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    rebound = httpx.post(
        f"{sqlite_hub.url}/mcp", json=body,
        headers={**headers, "Authorization": f"Bearer {sqlite_hub.admin_key}", "Host": "evil.example", "Origin": "http://evil.example"},
    )  # fmt: skip
    assert rebound.status_code in (403, 421)


async def test_search_and_call_reach_tools_outside_the_loaded_toolsets(sqlite_hub):
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("mcp-meta")))
    async with mcp_client(sqlite_hub, agent["agent_token"], "?toolsets=tools") as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["agora.tools.search", "agora.tools.call", "agora.tools.start"]
        found = (await client.call_tool("agora.tools.search", {"text": "send message"})).structured_content
        assert found["tools"][0]["name"] == "agora.messaging.send" and found["tools"][0]["input_schema"]["properties"]
        in_category = (await client.call_tool("agora.tools.search", {"category": "task", "limit": 50})).structured_content
        assert {t["name"].split(".")[1] for t in in_category["tools"]} == {"task"}
        me = await client.call_tool("agora.tools.call", {"name": "agora.agents.get", "arguments": {"agent": agent["agent_id"]}})
        denied = await client.call_tool("agora.tools.call", {"name": "agora.admin.keys.list", "arguments": {}})
        nested = await client.call_tool("agora.tools.call", {"name": "agora.tools.call", "arguments": {}})
    assert me.structured_content["result"]["agent_name"] == agent["agent_name"]
    assert denied.is_error and denied.meta["agora/error"]["code"] == "permission_denied"
    assert nested.is_error and nested.meta["agora/error"]["code"] == "invalid_argument"


async def test_resources_and_prompts(sqlite_hub):
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("mcp-res"), capabilities=["review"]))
        task = ok(call(admin, "agora.task.assign", task_type="review", assignee=agent["agent_id"]))["task_id"]
        other = new_tenant(admin, sqlite_hub)
        stranger = ok(call(other, "agora.agents.register", agent_name=unique("mcp-stranger")))
    async with mcp_client(sqlite_hub, agent["agent_token"]) as client:
        assert [r.uri for r in (await client.list_resources()).resources] == ["agora://services"]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        assert templates == ["agora://agents/{agent}", "agora://tasks/{task_id}"]
        services = json.loads((await client.read_resource("agora://services")).contents[0].text)
        card = json.loads((await client.read_resource(f"agora://agents/{agent['agent_name']}")).contents[0].text)
        task_doc = json.loads((await client.read_resource(f"agora://tasks/{task}")).contents[0].text)
        with pytest.raises(MCPError, match="not_found"):
            await client.read_resource(f"agora://agents/{stranger['agent_id']}")  # another tenant's: not there
        prompt_names = [p.name for p in (await client.list_prompts()).prompts]
        intro = await client.get_prompt("introduce_yourself", {"agent_name": "Helper", "capabilities": "review, docs"})
        with pytest.raises(MCPError, match="needs: capability"):
            await client.get_prompt("find_collaborators", {})
    assert len([s for s in services["services"] if s["category"] != "ext"]) == len(build_catalog())  # ext.*: other tests' servers
    assert card["agent_id"] == agent["agent_id"] and card["capabilities"] == ["review"]
    assert task_doc["status"] == "pending" and [t["to_status"] for t in task_doc["transitions"]] == ["pending"]
    assert {"introduce_yourself", "find_collaborators", "delegate_task"} <= set(prompt_names)
    text = intro.messages[0].content.text
    assert "agora.agents.register" in text and "['review', 'docs']" in text


def agora_mcp(hub, key: str, *args: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")} | {"AGORA_URL": hub.url, "AGORA_API_KEY": key}
    return StdioServerParameters(command=str(Path(sys.executable).parent / "agora"), args=["mcp", *args], env=env)


async def test_agora_mcp_serves_the_hub_over_stdio_as_the_keys_agent(sqlite_hub):
    with sqlite_hub.client() as admin:
        alice = ok(call(admin, "agora.agents.register", agent_name=unique("stdio-alice")))
        bob = ok(call(admin, "agora.agents.register", agent_name=unique("stdio-bob")))
    async with Client(agora_mcp(sqlite_hub, alice["agent_token"], "--toolsets", "messaging")) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        sent = await client.call_tool("agora.messaging.send", {"to_agent": bob["agent_id"], "content": "from a desktop"})
        missing = await client.call_tool("agora.messaging.send", {"to_agent": "nobody-" + unique(), "content": "x"})
        with pytest.raises(MCPError):
            await client.call_tool("agora.task.list", {})  # outside the toolsets
        card = await client.read_resource(f"agora://agents/{bob['agent_id']}")
    assert names == [t.name for t in build_catalog() if t.category in ("messaging", "tools")]
    assert not sent.is_error and sent.structured_content["message_id"].startswith("msg_")
    assert missing.is_error and missing.content[0].text.startswith("not_found:")
    assert json.loads(card.contents[0].text)["agent_name"] == bob["agent_name"]
    with sqlite_hub.client(bob["agent_token"]) as c:
        inbox = ok(call(c, "agora.messaging.receive"))["messages"]
    assert [(m["from_agent"], m["content"]) for m in inbox] == [(alice["agent_id"], "from a desktop")]


async def test_agora_mcp_rides_out_a_hub_restart(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    try:
        async with Client(agora_mcp(hub, hub.admin_key)) as client:
            before = await client.call_tool("agora.query.agents", {})
            hub.stop()
            down = await client.call_tool("agora.query.agents", {})
            hub.start()
            after = await client.call_tool("agora.query.agents", {})
    finally:
        hub.stop()
    assert not before.is_error and not after.is_error
    assert down.is_error and "hub unreachable" in down.content[0].text


def test_agora_mcp_refuses_to_start_with_a_bad_key_or_toolset(sqlite_hub):
    params = agora_mcp(sqlite_hub, "agora_sk_wrong")
    bad_key = subprocess.run([params.command, *params.args], env=params.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    params = agora_mcp(sqlite_hub, sqlite_hub.admin_key, "--toolsets", "task,nonsense")
    bad_set = subprocess.run([params.command, *params.args], env=params.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert (bad_key.returncode, "unauthenticated" in bad_key.stderr) == (4, True), bad_key.stderr
    assert (bad_set.returncode, "unknown toolset(s) nonsense" in bad_set.stderr) == (2, True), bad_set.stderr
