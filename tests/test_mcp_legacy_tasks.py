"""MCP tasks on 2025-11-25 sessions (that revision's tasks utility): a task-augmented tools/call answers a task at
once; tasks/get, tasks/result, tasks/list and tasks/cancel work on it; the session's stream hears its end."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from .conftest import call, ok, unique
from .hubproc import HubProcess
from .test_mcp_tasks import mcp

REVISION = "2025-11-25"


class Session:
    """A 2025-11-25 Streamable HTTP session, spoken with plain HTTP so every field on the wire is visible."""

    def __init__(self, hub: HubProcess, key: str):
        self.url = f"{hub.url}/mcp"
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
        answer = self._post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                             "params": {"protocolVersion": REVISION, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})  # fmt: skip
        self.capabilities = answer["result"]["capabilities"]
        self.headers |= {"Mcp-Protocol-Version": REVISION}
        httpx.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self.headers, timeout=10)
        self.notifications: list[dict[str, Any]] = []

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(self.url, json=body, headers=self.headers, timeout=60)
        if "mcp-session-id" in response.headers:
            self.headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return json.loads([line[5:] for line in response.text.splitlines() if line.startswith("data:")][-1])
        return response.json()

    def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})

    def listen(self, method: str) -> threading.Event:
        """Read the session's standalone stream in the background; the event is set when ``method`` arrives."""
        heard = threading.Event()

        def read() -> None:
            with httpx.stream("GET", self.url, headers=self.headers | {"Accept": "text/event-stream"}, timeout=60) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        self.notifications.append(message := json.loads(line[5:]))
                        if message.get("method") == method:
                            heard.set()
                            return

        threading.Thread(target=read, daemon=True).start()
        return heard


def _agent(hub: HubProcess) -> dict[str, Any]:
    with hub.client() as admin:
        return ok(call(admin, "agora.agents.register", agent_name=unique("legacy-tasks")))


def test_a_long_call_becomes_a_task_whose_result_arrives_when_it_ends(sqlite_hub):
    agent = _agent(sqlite_hub)
    session = Session(sqlite_hub, agent["agent_token"])
    assert session.capabilities["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    tools = {t["name"]: t for t in session.rpc("tools/list", {})["result"]["tools"]}
    assert tools["agora.messaging.receive"]["execution"] == {"taskSupport": "optional"}
    assert "execution" not in tools["agora.query.agents"]

    heard = session.listen("notifications/tasks/status")
    created = session.rpc("tools/call", {"name": "agora.messaging.receive", "arguments": {"wait": 30}, "task": {"ttl": 60_000}})["result"]
    task = created["task"]
    assert task["status"] == "working" and task["pollInterval"] > 0 and task["createdAt"].endswith("Z") and "ttl" in task
    got = session.rpc("tasks/get", {"taskId": task["taskId"]})["result"]
    assert got["taskId"] == task["taskId"] and got["status"] == "working"
    assert task["taskId"] in [t["taskId"] for t in session.rpc("tasks/list", {})["result"]["tasks"]]
    # It is an Agora task, visible as one.
    with sqlite_hub.client(agent["agent_token"]) as me:
        assert ok(call(me, "agora.task.get", task_id=task["taskId"]))["task_type"] == "tool.call"

        # A message arrives: the waiting receive returns it, as the task's result.
        done: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: done.update(session.rpc("tasks/result", {"taskId": task["taskId"]})))
        waiter.start()
        ok(call(me, "agora.messaging.send", to_agent=agent["agent_id"], content="hello"))
        waiter.join(30)
    result = done["result"]
    assert result["structuredContent"]["messages"][0]["content"] == "hello" and not result.get("isError")
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    assert session.rpc("tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "completed"
    assert heard.wait(10), session.notifications
    status = next(n for n in session.notifications if n.get("method") == "notifications/tasks/status")
    assert status["params"]["taskId"] == task["taskId"] and status["params"]["status"] == "completed"


def test_cancel_errors_and_strangers(sqlite_hub):
    agent, stranger = _agent(sqlite_hub), _agent(sqlite_hub)
    session = Session(sqlite_hub, agent["agent_token"])
    # A tool that takes no tasks: -32601; an unknown tool: -32602.
    assert session.rpc("tools/call", {"name": "agora.query.agents", "arguments": {}, "task": {}})["error"]["code"] == -32601
    assert session.rpc("tools/call", {"name": "agora.no.such", "arguments": {}, "task": {}})["error"]["code"] == -32602
    # Refused before it ran: no task, the refusal as an error.
    refused = session.rpc("tools/call", {"name": "agora.messaging.receive", "arguments": {"wait": 999}, "task": {}})
    assert refused["error"]["code"] == -32602 and "invalid_argument" in refused["error"]["message"]

    task = session.rpc("tools/call", {"name": "agora.messaging.receive", "arguments": {"wait": 30}, "task": {}})["result"]["task"]
    other = Session(sqlite_hub, stranger["agent_token"])
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        assert other.rpc(method, {"taskId": task["taskId"]})["error"]["code"] == -32602, method
    assert task["taskId"] not in [t["taskId"] for t in other.rpc("tasks/list", {})["result"]["tasks"]]

    cancelled = session.rpc("tasks/cancel", {"taskId": task["taskId"]})["result"]
    assert cancelled["taskId"] == task["taskId"] and cancelled["status"] == "cancelled"
    assert session.rpc("tasks/cancel", {"taskId": task["taskId"]})["error"]["code"] == -32602  # it ended already
    assert session.rpc("tasks/result", {"taskId": task["taskId"]})["error"]["code"] == -32602  # cancelled: no result

    # A tool's own error is a failed task here, and its result is the tool's isError result.
    failing = session.rpc("tools/call", {"name": "agora.messaging.receive", "arguments": {"agent": "nobody-at-all"}, "task": {}})["result"]["task"]
    result = session.rpc("tasks/result", {"taskId": failing["taskId"]})["result"]
    assert result["isError"] and result["_meta"]["agora/error"]["code"] in ("not_found", "permission_denied")
    assert session.rpc("tasks/get", {"taskId": failing["taskId"]})["result"]["status"] == "failed"


def test_the_2026_revision_has_no_tasks_result_or_list(sqlite_hub):
    agent = _agent(sqlite_hub)
    for method in ("tasks/result", "tasks/list"):
        assert mcp(sqlite_hub, agent["agent_token"], method, {"taskId": "task_000000000000000000000000"})["error"]["code"] == -32601
