"""Roles are scopes (issue 57): a key limited to a role of its tenant carries that role's scopes, and every door holds
it to them the same way — REST, MCP, A2A, the work channel — with the catalog's ``permission_denied`` naming the roles
that would allow the call, and nothing changed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import UnsupportedOperationError

from agora.catalog.registry import build_catalog
from agora.core.auth import ROLE_SCOPES, Role

from ..conftest import call, expect_error, ok, unique
from ..hubproc import HubProcess
from ..test_a2a import a2a_client, message
from ..test_mcp import mcp_client

VIEWER = ROLE_SCOPES[Role.viewer]
# Not read-only, yet open to a viewer: the chat keeps the conversation's own memory (it calls every other tool as the
# caller, so a viewer's chat changes nothing of the tenant); agora.tools.call runs a named tool under that tool's rights;
# a person's second factor is their own, not the tenant's.
VIEWER_MAY_CALL = {"agora.marketplace.chat", "agora.tools.call", "agora.users.set_second_factor"}


def _keys(admin: httpx.Client, hub: HubProcess) -> dict[str, httpx.Client]:
    """A new tenant with a key for each role."""
    tenant = unique("roles")
    keys = {}
    for role in Role:
        made = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, role=role.value, name=f"{role.value} key"))
        assert made["info"]["role"] == role.value and set(made["info"]["scopes"]) == ROLE_SCOPES[role]
        keys[role.value] = hub.client(made["key"])
    return keys


def _refused(response: httpx.Response, role: str, *allowed: str) -> dict[str, Any]:
    error = expect_error(response, 403, "permission_denied")
    assert f"which the {role} role does not have" in error["message"], error
    assert error["details"]["role"] == role and error["details"]["roles_allowing"] == list(allowed), error
    return error


def test_every_tool_that_changes_something_is_closed_to_a_viewer() -> None:
    """The catalog holds itself to the viewer role: a tool that is not read-only needs a scope a viewer lacks."""
    open_to_viewer = {
        t.name for t in build_catalog() if not t.read_only and not t.admin_only and t.scopes <= VIEWER
    }
    assert open_to_viewer == VIEWER_MAY_CALL


def test_a_viewer_reads_and_is_refused_every_change_on_rest(hub: HubProcess, admin: httpx.Client) -> None:
    keys = _keys(admin, hub)
    developer, viewer = keys["developer"], keys["viewer"]
    agent = ok(call(developer, "agora.agents.register", agent_name=unique("worker"), capabilities=["sum"]))
    task = ok(call(developer, "agora.task.assign", task_type="sum", payload={"a": 1}, required_capabilities=["sum"]))

    assert ok(call(viewer, "agora.agents.get", agent=agent["agent_id"]))["agent_name"] == agent["agent_name"]
    assert ok(call(viewer, "agora.task.get", task_id=task["task_id"]))["status"] == "pending"
    ok(call(viewer, "agora.billing.invoice"))

    changing = [t for t in build_catalog() if not t.read_only and not t.admin_only and t.name not in VIEWER_MAY_CALL]
    for tool in changing:  # refused before its input is read: an empty body is enough
        error = expect_error(call(viewer, tool.name), 403, "permission_denied")
        assert error["details"]["role"] == "viewer", (tool.name, error)
    _refused(call(viewer, "agora.task.cancel", task_id=task["task_id"]), "viewer", "operator", "developer", "admin")
    assert ok(call(viewer, "agora.task.get", task_id=task["task_id"]))["status"] == "pending"  # nothing changed


def test_each_role_may_do_what_it_names_and_no_more(hub: HubProcess, admin: httpx.Client) -> None:
    keys = _keys(admin, hub)
    operator, developer, billing, tenant_admin = keys["operator"], keys["developer"], keys["billing"], keys["admin"]
    worker = ok(call(developer, "agora.agents.register", agent_name=unique("worker"), capabilities=["sum"]))

    # An operator intervenes: sends, cancels; but registers no agent and publishes nothing.
    ok(call(operator, "agora.messaging.send", to_agent=worker["agent_id"], content="hello"))
    task = ok(call(operator, "agora.task.assign", task_type="sum", required_capabilities=["sum"]))
    assert ok(call(operator, "agora.task.cancel", task_id=task["task_id"]))["status"] == "cancelled"
    _refused(call(operator, "agora.agents.register", agent_name=unique("nope")), "operator", "developer", "admin")
    _refused(call(operator, "agora.mcp_servers.register", name=unique("srv"), url="http://127.0.0.1:9/mcp"), "operator", "developer", "admin")

    # Billing reads the bills and changes nothing else.
    ok(call(billing, "agora.billing.usage"))
    _refused(call(billing, "agora.messaging.send", to_agent=worker["agent_id"], content="x"), "billing", "operator", "developer", "admin")

    # A tenant's admin manages its keys, never beyond its own rights (no admin key, no other tenant).
    made = ok(call(tenant_admin, "agora.admin.keys.create", role="viewer", name="script"))
    own_tenant = ok(call(developer, "agora.agents.get", agent=worker["agent_id"]))["tenant_id"]
    assert made["info"]["role"] == "viewer" and made["info"]["tenant_id"] == own_tenant
    expect_error(call(tenant_admin, "agora.admin.keys.create", kind="admin", role="admin"), 400, "invalid_argument")
    expect_error(call(tenant_admin, "agora.admin.keys.create", kind="admin"), 403, "permission_denied")
    _refused(call(developer, "agora.admin.keys.create", role="viewer"), "developer", "admin")
    expect_error(call(admin, "agora.admin.keys.create", role="viewer", scopes=["agents:read"]), 400, "invalid_argument")


async def test_mcp_holds_a_viewer_to_its_role(sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        keys = _keys(admin, sqlite_hub)
        agent = ok(call(keys["developer"], "agora.agents.register", agent_name=unique("mcp")))
    viewer_key = keys["viewer"].headers["authorization"].removeprefix("Bearer ")
    async with mcp_client(sqlite_hub, viewer_key) as client:
        read = await client.call_tool("agora.agents.get", {"agent": agent["agent_id"]})
        assert not read.is_error
        denied = await client.call_tool("agora.messaging.send", {"to_agent": agent["agent_id"], "content": "hi"})
    assert denied.is_error and denied.meta["agora/error"]["code"] == "permission_denied"
    assert denied.meta["agora/error"]["details"]["roles_allowing"] == ["operator", "developer", "admin"]


async def test_a2a_holds_a_viewer_to_its_role(sqlite_hub: HubProcess) -> None:
    """A viewer's key reads an agent's A2A front but sends nothing and cancels nothing; an operator's sends."""
    with sqlite_hub.client() as admin:
        keys = _keys(admin, sqlite_hub)
        agent = ok(call(keys["developer"], "agora.agents.register", agent_name=unique("front"), a2a={"access": "private"}))
    url = f"{sqlite_hub.url}/a2a/agents/{agent['agent_id']}"
    key_of = {role: client.headers["authorization"].removeprefix("Bearer ") for role, client in keys.items()}
    request = message("hello", "roles")
    request.configuration.return_immediately = True  # no agent runs behind this front: the task waits for one
    async with a2a_client(url, key=key_of["operator"]) as operator:
        sent = [e async for e in operator.send_message(request)]
        task = sent[-1].task
        assert task.id
    async with a2a_client(url, key=key_of["viewer"]) as viewer:
        listed = await viewer.list_tasks(pb.ListTasksRequest(page_size=10))  # a viewer reads (A2A tasks are each caller's own)
        assert list(listed.tasks) == []
        with pytest.raises(UnsupportedOperationError, match="which the viewer role does not have"):
            [e async for e in viewer.send_message(message("hello", "roles"))]
        with pytest.raises(UnsupportedOperationError, match=r"the role\(s\) that allow it: operator, developer, admin"):
            await viewer.cancel_task(pb.CancelTaskRequest(id=task.id))
    with sqlite_hub.client() as admin:
        tasks = ok(call(admin, "agora.task.list", agent=agent["agent_id"], limit=10))["tasks"]
    assert len(tasks) == 1 and tasks[0]["status"] != "cancelled"  # the viewer's send made no task, its cancel did nothing


async def test_the_work_channel_holds_a_viewer_to_its_role(sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        keys = _keys(admin, sqlite_hub)
    viewer_key = keys["viewer"].headers["authorization"].removeprefix("Bearer ")
    ws_url = sqlite_hub.url.replace("http", "ws") + "/ws?types=none"
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {viewer_key}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(json.dumps({"type": "call", "ref": "1", "tool": "agora.agents.register", "args": {"agent_name": unique("ws")}}))
        answer = json.loads(await ws.recv())
    assert answer["type"] == "error" and answer["ref"] == "1" and answer["code"] == "permission_denied", answer
    assert answer["details"]["roles_allowing"] == ["developer", "admin"]
