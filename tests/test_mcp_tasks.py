"""Long tool calls as tasks: agora.tools.start over REST, and MCP's tasks extension (SEP-2663) on /mcp, both backed
by Agora tasks of type tool.call that outlive the replica running them."""

from __future__ import annotations

import time
from typing import Any

import httpx

from .conftest import call, expect_error, ok, unique, until
from .hubproc import HubProcess

TASKS = "io.modelcontextprotocol/tasks"
REVISION = "2026-07-28"


def mcp(hub: HubProcess, key: str, method: str, params: dict[str, Any], name: str | None = None, extension: bool = True) -> dict[str, Any]:
    """One stateless 2026-07-28 request, declaring the tasks extension unless told not to."""
    capabilities = {"extensions": {TASKS: {}}} if extension else {}
    meta = {"io.modelcontextprotocol/protocolVersion": REVISION, "io.modelcontextprotocol/clientCapabilities": capabilities}
    headers = {"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": REVISION, "Mcp-Method": method,
               "Authorization": f"Bearer {key}"} | ({"Mcp-Name": name} if name else {})  # fmt: skip
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    return httpx.post(f"{hub.url}/mcp", json=body, headers=headers, timeout=30).json()


def task_call(hub: HubProcess, key: str, method: str, task_id: str, extension: bool = True) -> dict[str, Any]:
    return mcp(hub, key, method, {"taskId": task_id}, name=task_id, extension=extension)


def settled(hub: HubProcess, key: str, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        got = task_call(hub, key, "tasks/get", task_id)["result"]
        return got if got["status"] in ("completed", "failed", "cancelled") else None

    return until(done, f"task {task_id} did not end")


def test_agora_tools_start_runs_a_call_as_a_task(sqlite_hub):
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("runner")))
    with sqlite_hub.client(agent["agent_token"]) as me:
        started = ok(call(me, "agora.tools.start", name="agora.messaging.receive", arguments={"wait": 1}))
        assert started["task_type"] == "tool.call" and started["status"] == "in_progress"
        done = until(lambda: (t := ok(call(me, "agora.task.get", task_id=started["task_id"])))["status"] == "completed" and t, "never ended")
        assert done["result"] == {"name": "agora.messaging.receive", "output": {"messages": [], "count": 0}}
        # Checked before anything is stored: a refusal is the answer, and no task is left behind.
        before = ok(call(me, "agora.task.list", task_type="tool.call"))["total"]
        expect_error(call(me, "agora.tools.start", name="agora.messaging.receive", arguments={"wait": 999}), 422, "invalid_argument")
        expect_error(call(me, "agora.tools.start", name="agora.nothing.here"), 404, "not_found")
        assert ok(call(me, "agora.task.list", task_type="tool.call"))["total"] == before
        # A tool's own error fails the task with that error as its result.
        failing = ok(call(me, "agora.tools.start", name="agora.task.get", arguments={"task_id": "task_000000000000000000000000"}))
        failed = until(lambda: (t := ok(call(me, "agora.task.get", task_id=failing["task_id"])))["status"] == "failed" and t, "never failed")
        assert failed["result"]["error"]["code"] == "not_found" and failed["last_error"].startswith("not_found:")
        # Cancelling the task stops the call.
        waiting = ok(call(me, "agora.tools.start", name="agora.messaging.receive", arguments={"wait": 30}))
        assert ok(call(me, "agora.task.cancel", task_id=waiting["task_id"]))["status"] == "cancelled"


def test_an_mcp_client_with_the_tasks_extension_gets_a_task_for_a_long_call(sqlite_hub):
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("mcp-tasks")))
        stranger = ok(call(admin, "agora.agents.register", agent_name=unique("stranger")))
    key = agent["agent_token"]
    arguments = {"name": "agora.messaging.receive", "arguments": {"wait": 1}}
    created = mcp(sqlite_hub, key, "tools/call", arguments, name="agora.messaging.receive")["result"]
    assert created["resultType"] == "task" and created["status"] == "working" and "result" not in created
    assert created["pollIntervalMs"] > 0 and "ttlMs" in created and created["createdAt"].endswith("Z")
    working = task_call(sqlite_hub, key, "tasks/get", created["taskId"])["result"]
    assert working["status"] == "working" and "result" not in working
    done = settled(sqlite_hub, key, created["taskId"])
    assert done["status"] == "completed" and done["result"]["structuredContent"] == {"messages": [], "count": 0}
    with sqlite_hub.client(key) as me:  # the same call, as an Agora task
        assert ok(call(me, "agora.task.get", task_id=created["taskId"]))["task_type"] == "tool.call"
    # Without the extension: the call is answered at once, and tasks/* need the extension.
    plain = mcp(sqlite_hub, key, "tools/call", {"name": "agora.messaging.receive", "arguments": {}}, name="agora.messaging.receive", extension=False)
    assert plain["result"]["structuredContent"] == {"messages": [], "count": 0} and "taskId" not in plain["result"]
    assert task_call(sqlite_hub, key, "tasks/get", created["taskId"], extension=False)["error"]["code"] == -32021
    # Another caller's task, or none at all, is unknown alike.
    assert task_call(sqlite_hub, stranger["agent_token"], "tasks/get", created["taskId"])["error"]["code"] == -32602
    assert task_call(sqlite_hub, key, "tasks/get", "task_00000000000000000000")["error"]["code"] == -32602
    # Cancel acks, even when the task has ended already; the task says it was cancelled.
    long = mcp(sqlite_hub, key, "tools/call", {"name": "agora.messaging.receive", "arguments": {"wait": 30}}, name="agora.messaging.receive")
    cancelled = task_call(sqlite_hub, key, "tasks/cancel", long["result"]["taskId"])["result"]
    assert cancelled["resultType"] == "complete" and "taskId" not in cancelled
    assert settled(sqlite_hub, key, long["result"]["taskId"])["status"] == "cancelled"
    assert task_call(sqlite_hub, key, "tasks/cancel", long["result"]["taskId"])["result"]["resultType"] == "complete"
    # A tool's error is a completed task whose result says so.
    nowhere = {"name": "agora.marketplace.execute", "arguments": {"instance_id": "inst_00000000000000000000", "endpoint": "echo"}}
    refused = settled(sqlite_hub, key, mcp(sqlite_hub, key, "tools/call", nowhere, name="agora.marketplace.execute")["result"]["taskId"])
    assert refused["status"] == "completed" and refused["result"]["isError"]
    assert refused["result"]["_meta"]["agora/error"]["code"] == "not_found"


def test_a_call_lost_with_its_hub_is_a_failed_task_after_the_restart(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    try:
        with hub.client() as admin:
            agent = ok(call(admin, "agora.agents.register", agent_name="restarted"))
        key = agent["agent_token"]
        started = mcp(hub, key, "tools/call", {"name": "agora.messaging.receive", "arguments": {"wait": 60}}, name="agora.messaging.receive")
        task_id = started["result"]["taskId"]
        hub.stop(__import__("signal").SIGKILL)
        hub.start()
        began = time.monotonic()
        lost = settled(hub, key, task_id)
        assert lost["status"] == "failed" and "stopped before it finished" in lost["error"]["message"] and lost["error"]["code"] == -32603
        assert time.monotonic() - began < 25  # the lease (15 s) ran out, and the expiry job buried the call
        with hub.client(key) as me:
            assert ok(call(me, "agora.task.get", task_id=task_id))["status"] == "dead_letter"
    finally:
        hub.stop()
