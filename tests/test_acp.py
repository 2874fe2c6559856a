"""The Agent Communication Protocol envelope door: POST /agent/message and GET /agent/messages on real hubs."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import call, expect_error, new_tenant, ok, unique


def register(client: httpx.Client) -> dict[str, Any]:
    return ok(call(client, "agora.agents.register", agent_name=unique("acp")))


def post(client: httpx.Client, envelope: dict[str, Any]) -> httpx.Response:
    return client.post("/agent/message", json=envelope)


def inbox(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    return ok(client.get("/agent/messages", params=params))["envelopes"]


def test_a_request_and_its_reply_travel_as_envelopes(hub, admin):
    tenant = new_tenant(admin, hub)
    orchestrator, calculator = register(tenant), register(tenant)
    with hub.client(orchestrator["agent_token"]) as o, hub.client(calculator["agent_token"]) as c:
        confirm = ok(post(o, {
            "id": "req-1", "ts": "2026-01-16T10:30:00Z", "type": "request", "sender": orchestrator["agent_name"],
            "to": [calculator["agent_name"]], "intent": "calculate", "task": "Calculate 5 + 3",
            "payload": {"a": 5, "b": 3, "op": "+"}, "context": {"session_id": "s-456"},
            "correlation": {"conversation_id": "conv-789"}, "expected": {"type": "inform", "timeout": 5000},
            "status": {"state": "pending", "progress": 0}, "security": {"token": "jwt-secret-here", "provider": "x"},
        }))
        assert (confirm["type"], confirm["sender"], confirm["correlation"]) == ("confirm", "agora", {"reply_to": "req-1"})
        (sent,) = confirm["payload"]["messages"]
        assert sent["status"] == "queued" and sent["to"] == calculator["agent_name"]

        (request,) = inbox(c, wait=5)
        assert request["id"] == sent["message_id"] and request["sender"] == orchestrator["agent_id"]
        assert (request["type"], request["intent"], request["task"]) == ("request", "calculate", "Calculate 5 + 3")
        assert request["payload"] == {"a": 5, "b": 3, "op": "+"}
        assert request["context"] == {"session_id": "s-456"}
        assert request["correlation"] == {"conversation_id": "conv-789"}
        assert request["expected"] == {"type": "inform", "timeout": 5000}
        assert request["status"] == {"state": "pending", "progress": 0}
        assert "jwt-secret-here" not in str(request) and "security" not in request  # never stored, never echoed

        ok(post(c, {"type": "inform", "to": [request["sender"]], "payload": {"result": 8},
                    "correlation": {"conversation_id": "conv-789", "reply_to": request["id"]}}))
        ok(call(c, "agora.messaging.ack", message_ids=[request["id"]]))
        (reply,) = inbox(o, wait=5)
        assert (reply["type"], reply["payload"]) == ("inform", {"result": 8})
        assert reply["correlation"] == {"conversation_id": "conv-789", "reply_to": sent["message_id"]}
        assert inbox(o, wait=1.5) == []  # the reply came in time: no timeout failure follows


def test_broadcast_resend_and_deployment_types(hub, admin):
    tenant = new_tenant(admin, hub)
    sender, a, b = register(tenant), register(tenant), register(tenant)
    with hub.client(sender["agent_token"]) as s:
        first = ok(post(s, {"id": "deploy-7", "type": "deploy", "to": ["broadcast"], "payload": {"agent": "x"}}))
        again = ok(post(s, {"id": "deploy-7", "type": "deploy", "to": ["broadcast"], "payload": {"agent": "x"}}))
        assert again["payload"]["messages"][0]["status"] == "duplicate"
        assert again["payload"]["messages"][0]["message_id"] == first["payload"]["messages"][0]["message_id"]
    for agent in (a, b):
        with hub.client(agent["agent_token"]) as c:
            (got,) = inbox(c, wait=5)
            assert (got["type"], got["to"], got["payload"]) == ("deploy", ["broadcast"], {"agent": "x"})


def test_bad_envelopes_get_clear_errors(hub, admin):
    one, two = new_tenant(admin, hub), new_tenant(admin, hub)
    me, other, foreigner = register(one), register(one), register(two)
    with hub.client(me["agent_token"]) as c:
        expect_error(post(c, {"type": "inform", "to": [other["agent_id"]], "sender": other["agent_id"], "payload": 1}), 403, "permission_denied")
        expect_error(post(c, {"type": "inform", "to": ["nobody-" + unique()], "payload": 1}), 404, "not_found")
        expect_error(post(c, {"type": "inform", "to": [foreigner["agent_id"]], "payload": 1}), 404, "not_found")
        error = expect_error(post(c, {"type": "inform", "to": [], "payload": 1}), 422, "invalid_argument")
        assert error["details"]["errors"][0]["field"] == "to"
        expect_error(post(c, {"type": "inform", "to": [other["agent_id"]], "bogus": 1}), 422, "invalid_argument")
        expect_error(c.post("/agent/message", content=b"{nope", headers={"content-type": "application/json"}), 400, "invalid_argument")
        expect_error(c.get("/agent/messages", params={"limit": 0}), 422, "invalid_argument")
        ok(post(c, {"type": "inform", "sender": me["agent_name"], "to": [other["agent_id"]], "payload": "as myself"}))
    with httpx.Client(base_url=hub.url) as anonymous:
        expect_error(anonymous.post("/agent/message", json={"type": "inform", "to": ["x"]}), 401, "unauthenticated")
