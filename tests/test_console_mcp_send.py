"""The console's MCP and Send pages without a browser: the form a schema makes and how its values are read, the
catalog's refusals shown in place with their status, nothing sent on bad input, tenancy of what is listed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from agora.transports.console.mcp import RAW, coerce, form_fields
from agora_sdk.wire.messaging import SendMessage
from agora_sdk.wire.tasks import AssignTask
from tests.conftest import call, new_tenant, ok, unique
from tests.hubproc import HubProcess
from tests.test_console_http import signed_in


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub-console-mcp")).start()
    yield hub
    hub.stop()


def csrf(client: httpx.Client) -> dict[str, str]:
    return {"csrf_token": client.cookies["agora_csrf"]}


# -- the form a schema makes --------------------------------------------------------------------------------------


def test_a_pydantic_schema_makes_typed_fields_and_values_are_read_by_type() -> None:
    fields = {f.name: f for f in form_fields(SendMessage.model_json_schema()) or []}
    assert fields["message_type"].kind == "text" and not fields["message_type"].required
    assert fields["performative"].kind == "choice" and "inform" in fields["performative"].choices  # $ref and | None
    assert fields["priority"].kind == "choice" and fields["priority"].choices == ("low", "normal", "high", "urgent")
    assert fields["ttl"].kind == "integer" and "≥ 1, ≤ 2592000" in fields["ttl"].hint
    assert fields["content"].kind == "json" and fields["context"].kind == "json" and fields["correlation"].kind == "json"

    args, errors = coerce(list(fields.values()), {"to_agent": "bob", "content": '{"a": [1, 2]}', "ttl": "60", "performative": "inform", "message_type": ""})
    assert errors == {} and args == {"to_agent": "bob", "content": {"a": [1, 2]}, "ttl": 60, "performative": "inform"}
    _, errors = coerce(list(fields.values()), {"ttl": "soon", "content": "{nope", "priority": "whenever"})
    assert errors["ttl"] == "a whole number, please" and errors["content"].startswith("not valid JSON")
    assert errors["priority"] == "one of the listed options, please"

    assign = {f.name: f for f in form_fields(AssignTask.model_json_schema()) or []}
    assert assign["task_type"].required and assign["run_if_dependency_fails"].kind == "boolean"
    assert assign["retry_backoff_seconds"].kind == "number"
    args, errors = coerce(list(assign.values()), {"task_type": "x", "retry_backoff_seconds": "1.5"})
    assert errors == {} and args["run_if_dependency_fails"] is False and args["retry_backoff_seconds"] == 1.5
    assert coerce(list(assign.values()), {"retry_backoff_seconds": "inf"})[1] == {"task_type": "required", "retry_backoff_seconds": "a number, please"}


def test_a_schema_too_intricate_for_fields_is_one_json_object() -> None:
    union = {"anyOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"type": "array"}]}
    assert form_fields(union) is None
    assert coerce(None, {RAW: '{"a": "b"}'}) == ({"a": "b"}, {})
    assert coerce(None, {RAW: "[1]"})[1][RAW].startswith("the input is a JSON object")
    assert form_fields({"type": "object", "additionalProperties": False}) == []
    tristate = form_fields({"type": "object", "properties": {"flag": {"type": ["boolean", "null"]}}})
    assert tristate is not None and tristate[0].kind == "tristate"
    assert coerce(tristate, {"flag": ""}) == ({}, {}) and coerce(tristate, {"flag": "false"}) == ({"flag": False}, {})


# -- the pages over HTTP ------------------------------------------------------------------------------------------


def test_try_it_calls_the_tool_as_the_principal_and_shows_bad_input_beside_the_field(hub: HubProcess) -> None:
    with hub.client() as admin:
        tenant = new_tenant(admin, hub)
        foreign = ok(call(admin, "agora.agents.register", agent_name=unique("foreign")))
    with tenant:
        mine = ok(call(tenant, "agora.agents.register", agent_name=unique("mine")))
        key = tenant.headers["Authorization"].removeprefix("Bearer ")
    with signed_in(hub, key) as b:
        page = b.get("/ui/mcp/tools/agora.query.agents")
        assert page.status_code == 200 and 'name="limit"' in page.text and "This tool changes things" not in page.text
        shown = b.post("/ui/mcp/tools/agora.query.agents/try", data={**csrf(b), "limit": "500", "capabilities": ""})
        assert shown.status_code == 200 and mine["agent_name"] in shown.text
        assert foreign["agent_name"] not in shown.text  # as the signed-in tenant, not as the hub

        bad = b.post("/ui/mcp/tools/agora.query.agents/try", data={**csrf(b), "limit": "lots"}, headers={"HX-Request": "true"})
        assert bad.status_code == 400 and 'id="arg-limit-error"' in bad.text and "a whole number" in bad.text
        assert bad.text.lstrip().startswith('<div id="mcp-try">')  # htmx gets the form back, not a page

        refused = b.post("/ui/mcp/tools/agora.query.agents/try", data={**csrf(b), "limit": "501"})
        assert refused.status_code == 422 and "less than or equal to 500" in refused.text and 'id="arg-limit-error"' in refused.text

        writes = b.get("/ui/mcp/tools/agora.agents.register")
        assert "This tool changes things" in writes.text
        assert b.get("/ui/mcp/tools/agora.no.such").status_code == 404
        assert b.post("/ui/mcp/tools/agora.query.agents/try", data={"limit": "1"}).status_code == 403  # no CSRF token


def test_the_tools_list_pages_and_filters(hub: HubProcess) -> None:
    with signed_in(hub, hub.admin_key) as b:
        first = b.get("/ui/mcp")
        assert first.status_code == 200 and "Upstream MCP servers" in first.text and "mcpServers" in first.text
        assert "/mcp?toolsets=" in first.text and "cursor=25" in first.text
        second = b.get("/ui/mcp?cursor=25", headers={"HX-Request": "true"})
        assert second.status_code == 200 and "<h1>" not in second.text and "26–" in second.text
        found = b.get("/ui/mcp?q=heartbeat&category=agents", headers={"HX-Request": "true"})
        assert "agora.agents.heartbeat" in found.text and "agora.task.assign" not in found.text
        assert b.get("/ui/mcp?cursor=-1").status_code == 400


def test_a_customer_cannot_register_a_loopback_server_and_is_told_beside_the_url(hub: HubProcess) -> None:
    with hub.client() as admin:
        tenant = new_tenant(admin, hub)
    with tenant:
        key = tenant.headers["Authorization"].removeprefix("Bearer ")
    with signed_in(hub, key) as b:
        form = {**csrf(b), "name": "local", "url": "http://127.0.0.1:9/mcp", "bearer_token": "s3cret"}
        refused = b.post("/ui/mcp/servers", data=form, headers={"HX-Request": "true"})
        assert 400 <= refused.status_code < 500 and 'id="mcp-reg-url-error"' in refused.text
        assert "s3cret" not in refused.text and 'value="http://127.0.0.1:9/mcp"' in refused.text
        missing = b.post("/ui/mcp/servers", data={**csrf(b), "name": ""})
        assert missing.status_code == 400 and 'id="mcp-reg-name-error"' in missing.text
    with hub.client(key) as again:
        assert ok(call(again, "agora.mcp_servers.list"))["servers"] == []


def test_send_refuses_bad_json_in_place_and_sends_nothing(hub: HubProcess) -> None:
    with hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("inbox")))
    with signed_in(hub, hub.admin_key) as b:
        page = b.get(f"/ui/send?to={agent['agent_name']}")
        assert page.status_code == 200 and f'value="{agent["agent_name"]}"' in page.text
        bad = b.post("/ui/send/message", headers={"HX-Request": "true"}, data={
            **csrf(b), "to_agent": agent["agent_id"], "content_format": "json", "content": '{"oops": ', "priority": "normal",
        })  # fmt: skip
        assert bad.status_code == 400 and 'id="msg-content-error"' in bad.text and "not valid JSON" in bad.text
        assert bad.text.lstrip().startswith('<section id="send-message"')
        no_one = b.post("/ui/send/message", data={**csrf(b), "to_agent": "nobody-here", "content": "hi", "priority": "normal"})
        assert no_one.status_code == 404 and 'role="alert"' in no_one.text
        bad_task = b.post("/ui/send/task", data={**csrf(b), "task_type": "x", "assignee": agent["agent_id"], "payload": "[1]", "priority": "normal"})
        assert bad_task.status_code == 400 and "a JSON object" in bad_task.text
        both = b.post("/ui/send/task", data={**csrf(b), "task_type": "x", "assignee": "a", "capabilities": "b", "priority": "normal"})
        assert both.status_code == 400 and "not both" in both.text
    with hub.client(agent["agent_token"]) as me:
        assert ok(call(me, "agora.messaging.receive"))["messages"] == []
        assert ok(call(me, "agora.task.claim"))["task"] is None


def test_an_agent_signed_in_sends_as_itself(hub: HubProcess) -> None:
    with hub.client() as admin:
        sender = ok(call(admin, "agora.agents.register", agent_name=unique("sender")))
        sink = ok(call(admin, "agora.agents.register", agent_name=unique("sink")))
    with signed_in(hub, sender["agent_token"]) as b:
        sent = b.post("/ui/send/message", data={**csrf(b), "to_agent": sink["agent_name"], "content": "hello", "priority": "high", "performative": "inform"})
        assert sent.status_code == 200 and 'role="status"' in sent.text
    with hub.client(sink["agent_token"]) as me:
        [message] = ok(call(me, "agora.messaging.receive"))["messages"]
    assert message["from_agent"] == sender["agent_id"] and message["content"] == "hello" and message["priority"] == "high"


def test_a_key_without_the_servers_scope_still_browses_tools_and_a_form_without_script_gets_a_page(hub: HubProcess) -> None:
    with hub.client() as admin:
        narrow = new_tenant(admin, hub, scopes=["agents:read"])
    with narrow:
        key = narrow.headers["Authorization"].removeprefix("Bearer ")
    with signed_in(hub, key) as b:
        page = b.get("/ui/mcp")
        assert page.status_code == 200 and "No servers to show" in page.text and "/ui/mcp/tools/agora.agents.get" in page.text
        refused = b.post("/ui/mcp/servers", data={**csrf(b), "name": "nope", "url": "https://example.com/mcp"})
        assert refused.status_code == 403 and "<h1>MCP</h1>" in refused.text and 'role="alert"' in refused.text
