"""The Agent Bus envelope door (seed 004): POST /bus/publish mapped onto tasks, presence and messages."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import call, expect_error, new_tenant, ok, unique


def register(client: httpx.Client, *capabilities: str) -> dict[str, Any]:
    return ok(call(client, "agora.agents.register", agent_name=unique("bus"), capabilities=list(capabilities)))


def publish(client: httpx.Client, **envelope: Any) -> httpx.Response:
    return client.post("/bus/publish", json={"message_id": unique("m"), **envelope})


def test_a_bus_agent_assigns_takes_and_completes_work(hub, admin):
    tenant = new_tenant(admin, hub)
    boss, worker = register(tenant), register(tenant, "ocr")
    with hub.client(boss["agent_token"]) as b, hub.client(worker["agent_token"]) as w:
        envelope = {"message_id": unique("m"), "sender": boss["agent_name"], "target": worker["agent_name"],
                    "type": "task_assignment", "priority": "high", "content": {"task_type": "ocr", "page": 3}}
        first = ok(b.post("/bus/publish", json=envelope))
        again = ok(b.post("/bus/publish", json=envelope))  # the same message_id: the same task, not a second
        assert first["tool"] == "agora.task.assign" and first["result"]["task_id"] == again["result"]["task_id"]
        task_id = first["result"]["task_id"]
        task = ok(call(b, "agora.task.get", task_id=task_id))
        assert (task["task_type"], task["priority"], task["payload"]) == ("ocr", "high", {"task_type": "ocr", "page": 3})

        claimed = ok(call(w, "agora.task.claim"))
        assert claimed["task"]["task_id"] == task_id
        expect_error(publish(w, type="task_completion", content={"task_id": task_id, "result": 1}), 409, "conflict")  # no lease
        done = ok(publish(w, type="task_completion", content={"task_id": task_id, "lease_token": claimed["lease"]["token"], "result": {"text": "hi"}}))
        assert (done["tool"], done["result"]["status"], done["result"]["result"]) == ("agora.task.update", "completed", {"text": "hi"})

        ok(publish(w, type="state_update", content={"status": "busy"}))
        assert ok(call(b, "agora.agents.get", agent=worker["agent_id"]))["status"] == "busy"
        ok(publish(w, type="error_report", content={"error": "scanner jammed"}))
        assert ok(call(b, "agora.agents.get", agent=worker["agent_id"]))["status"] == "error"

        help_id = unique("m")
        ok(w.post("/bus/publish", json={"message_id": help_id, "target": boss["agent_id"], "type": "assistance_request",
                                        "content": {"need": "a second pair of eyes"}, "correlation_id": "conv-1"}))
        (message,) = ok(call(b, "agora.messaging.receive", wait=5))["messages"]
        assert (message["message_type"], message["performative"], message["from_agent"]) == ("assistance_request", "request", worker["agent_id"])
        assert message["correlation"] == {"conversation_id": "conv-1"}


def test_an_error_report_naming_a_task_fails_it_and_may_retry(hub, admin):
    worker = register(admin, "flaky")
    task_id = ok(call(admin, "agora.task.assign", task_type="flaky", assignee=worker["agent_id"]))["task_id"]
    with hub.client(worker["agent_token"]) as w:
        lease = ok(call(w, "agora.task.claim"))["lease"]["token"]
        retried = ok(publish(w, type="error_report", content={"task_id": task_id, "lease_token": lease, "error": "timeout", "retryable": True}))
        assert (retried["result"]["status"], retried["result"]["last_error"]) == ("pending", "timeout")


def test_bad_bus_envelopes_get_clear_errors(hub, admin):
    me, other = register(admin), register(admin)
    with hub.client(me["agent_token"]) as c:
        expect_error(publish(c, type="gossip"), 422, "invalid_argument")
        expect_error(c.post("/bus/publish", json={"type": "state_update"}), 422, "invalid_argument")  # no message_id
        expect_error(publish(c, type="task_completion", content={}), 422, "invalid_argument")
        expect_error(publish(c, type="state_update", sender=other["agent_name"]), 403, "permission_denied")
        expect_error(publish(c, type="assistance_request", target="nobody-" + unique()), 404, "not_found")
        expect_error(publish(c, type="task_assignment", priority="urgent"), 422, "invalid_argument")
