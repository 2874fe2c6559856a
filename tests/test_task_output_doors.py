"""A task's output reaching MCP and A2A clients (issue 63): a long MCP tool call that waits on a task
(agora.marketplace.execute) sends each chunk as a progress notification's message, in order; run as an MCP task (the
tasks extension), the task's status message is the last line the call reported; an A2A turn's output streams to the
A2A caller as one artifact extended chunk by chunk (artifact-update events with append)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import MessageToDict

from .conftest import call, ok, unique, until
from .hubproc import HubProcess
from .test_a2a import a2a_client, message
from .test_catalog import _instance
from .test_mcp import mcp_client
from .test_mcp_tasks import mcp, settled, task_call

WORDS = ["Sunlight ", "is scattered ", "by the air."]


def _instance_agent(hub: HubProcess, admin: httpx.Client, pause: float, go: threading.Event | None = None) -> dict[str, Any]:
    """A running instance whose agent (a thread with the instance's key) emits WORDS, ``pause`` seconds apart (after
    ``go``, if given), then completes the task: execute's arguments."""
    instance_id = _instance(admin, "running")
    token = ok(call(admin, "agora.hosting.credentials", instance_id=instance_id))["agent_token"]

    def serve() -> None:
        with hub.client(token) as agent:
            claimed = ok(call(agent, "agora.task.claim", wait=20))
            task_id, lease = claimed["task"]["task_id"], claimed["lease"]["token"]
            for word in WORDS:
                ok(call(agent, "agora.task.emit", task_id=task_id, lease_token=lease, chunks=[{"text": word}]))
                if go is not None:
                    go.wait(20)
                    go.clear()
                time.sleep(pause)
            ok(call(agent, "agora.task.update", task_id=task_id, lease_token=lease, status="completed", result={"done": True}))

    threading.Thread(target=serve, daemon=True).start()
    return {"instance_id": instance_id, "endpoint": "explain", "parameters": {"question": "why blue?"}, "timeout": 30}


async def test_a_long_call_sends_the_task_s_output_as_progress_notifications(sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        arguments = _instance_agent(sqlite_hub, admin, pause=0.05)
    heard: list[tuple[float, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        heard.append((done, message))

    async with mcp_client(sqlite_hub, sqlite_hub.admin_key) as client:
        answer = await client.call_tool("agora.marketplace.execute", arguments, progress_callback=progress)
    assert not answer.is_error and answer.structured_content["result"] == {"done": True}
    assert [message for _, message in heard] == WORDS  # each chunk once, in order, all before the answer
    assert [done for done, _ in heard] == sorted(done for done, _ in heard)


def test_an_mcp_task_s_status_message_is_the_last_line_its_call_reported(sqlite_hub: HubProcess) -> None:
    go = threading.Event()
    with sqlite_hub.client() as admin:
        arguments = _instance_agent(sqlite_hub, admin, pause=0, go=go)
    key = sqlite_hub.admin_key
    created = mcp(sqlite_hub, key, "tools/call", {"name": "agora.marketplace.execute", "arguments": arguments}, name="agora.marketplace.execute")["result"]
    assert created["resultType"] == "task"
    for word in WORDS:
        until(lambda: task_call(sqlite_hub, key, "tasks/get", created["taskId"])["result"].get("statusMessage") == word, f"no status {word!r}")
        go.set()
    done = settled(sqlite_hub, key, created["taskId"])
    assert done["status"] == "completed" and done["result"]["structuredContent"]["result"] == {"done": True}
    with sqlite_hub.client() as admin:  # the run's output: a line per report
        output = ok(call(admin, "agora.task.watch", task_id=created["taskId"]))
    assert "".join(c["text"] for c in output["chunks"]) == "".join(w + "\n" for w in WORDS) and output["ended"]


async def test_an_a2a_turn_s_output_streams_as_one_artifact_extended_by_each_chunk(sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("streamer"), a2a={"access": "public"}))
    url = f"{sqlite_hub.url}/a2a/agents/{agent['agent_id']}"

    streaming = threading.Event()

    def answer() -> None:
        with sqlite_hub.client(agent["agent_token"]) as me:
            claimed = ok(call(me, "agora.task.claim", task_types=["a2a.message"], wait=20))
            streaming.wait(20)  # the caller has the task: what follows are its updates
            turn, lease = claimed["task"]["task_id"], claimed["lease"]["token"]
            for chunk in ({"text": "Sunlight "}, {"text": "is scattered"}, {"data": {"tokens": 3}}):
                ok(call(me, "agora.task.emit", task_id=turn, lease_token=lease, chunks=[chunk]))
            ok(call(me, "agora.a2a.update", task_id=turn, lease_token=lease, state="completed"))

    async with a2a_client(url, streaming=True, key=sqlite_hub.admin_key) as client:
        worker = threading.Thread(target=answer, daemon=True)
        worker.start()
        events = await asyncio.wait_for(_collect(client.send_message(message("why blue?", "stream")), streaming), 30)
    worker.join(10)
    updates = [e["artifactUpdate"] for e in events if "artifactUpdate" in e]
    assert [u["artifact"]["parts"] for u in updates] == [[{"text": "Sunlight "}], [{"text": "is scattered"}], [{"data": {"tokens": 3.0}}]]
    assert [u.get("append", False) for u in updates] == [False, True, True]  # made by the first chunk, then extended
    assert len({u["artifact"]["artifactId"] for u in updates}) == 1
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    done = events[-1]["statusUpdate"]["taskId"]
    async with a2a_client(url, key=sqlite_hub.admin_key) as client:
        task = MessageToDict(await client.get_task(pb.GetTaskRequest(id=done)))
    assert task["artifacts"][0]["parts"] == [{"text": "Sunlight "}, {"text": "is scattered"}, {"data": {"tokens": 3.0}}]


async def _collect(stream: Any, started: threading.Event) -> list[dict[str, Any]]:
    events = []
    async for event in stream:
        events.append(MessageToDict(event))
        started.set()
    return events
