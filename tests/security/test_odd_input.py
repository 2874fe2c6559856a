"""Odd but well-formed input that once got a 500 or a misleading answer: each now gets a clear 4xx or a plain 200."""

from __future__ import annotations

import pytest

from tests.conftest import call, expect_error, new_tenant, ok, unique


@pytest.mark.parametrize("month", ["0000-01", "1969-12", "9999-12"])
def test_an_invoice_for_a_month_outside_the_calendar_is_a_clear_refusal(admin, hub, month):
    customer = new_tenant(admin, hub)
    error = expect_error(call(customer, "agora.billing.invoice", month=month), 422, "invalid_argument")
    assert error["details"]["errors"][0]["field"] == "month"


def test_a_paused_agent_s_heartbeat_is_recorded_and_it_stays_paused(admin):
    agent = ok(call(admin, "agora.agents.register", agent_name=unique()))["agent_id"]
    ok(call(admin, "agora.admin.override", target_id=agent, action="pause", reason="maintenance"))
    ack = ok(call(admin, "agora.agents.heartbeat", agent=agent, status="active"))
    assert ack["status"] == "paused" and ack["last_heartbeat"], ack
    assert ok(call(admin, "agora.agents.get", agent=agent))["status"] == "paused"


@pytest.mark.parametrize(
    "body",
    [
        b'{"agent_name": "first", "agent_name": "second"}',
        b'{"agent_name": "x", "metadata": {"k": 1, "k": 2}}',
        b'{"agent_name": "x", "metadata": {"url": "http://a:1", "url": "http://b:2"}}',
    ],
)
def test_a_key_given_twice_is_refused_and_nothing_is_registered(admin, body):
    before = ok(call(admin, "agora.agents.list", limit=500))["count"]
    response = admin.post("/agora/agents/register", content=body, headers={"Content-Type": "application/json"})
    error = expect_error(response, 400, "invalid_argument")
    assert "twice" in error["message"] and error["details"]["key"] in ("agent_name", "k", "url")
    assert ok(call(admin, "agora.agents.list", limit=500))["count"] == before


def test_colons_inside_strings_are_no_repeated_keys(admin):
    name = unique()
    body = b'{"agent_name": "%s", "description": "at 12:30: ready", "metadata": {"a": "b:c"}}' % name.encode()
    response = admin.post("/agora/agents/register", content=body, headers={"Content-Type": "application/json"})
    assert ok(response)["agent_name"] == name


def test_a_tool_s_name_written_as_a_path_names_the_path_it_is_at(admin):
    error = expect_error(admin.post("/agora/admin/keys.create", json={"kind": "customer"}), 404, "not_found")
    assert error["details"]["path"] == "/agora/admin/keys/create", error
    assert "POST, not POST" not in error["message"]


def test_a_wrong_method_names_the_methods_the_tool_takes(admin):
    response = admin.request("PUT", "/agora/admin/keys/create", json={})
    error = expect_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST", response.headers
    assert error["details"]["allowed"] == "POST" and "POST" in error["message"], error


def test_deep_nesting_with_colons_in_its_strings_is_a_clear_refusal_or_accepted(admin):
    metadata = b'[{"a:b": ' * 1000 + b"1" + b"}]" * 1000  # parsed by orjson, then looked over for repeated keys
    body = b'{"agent_name": "%s", "metadata": {"deep": %s}}' % (unique().encode(), metadata)
    response = admin.post("/agora/agents/register", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400, 422), response.text[:300]
