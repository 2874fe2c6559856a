"""The bridge outward: agents registered with ``a2a_card_url`` are remote A2A agents (``tests/a2a_remote.py``, a real
``a2a-sdk`` server) that the hub calls to do their tasks, and whose A2A tasks it mirrors for its own A2A callers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types import a2a_pb2 as pb

from .conftest import call, expect_error, ok, unique, until
from .hubproc import FixtureServer
from .test_a2a import a2a_client, message, send, texts

REMOTE = str(Path(__file__).parent / "a2a_remote.py")
TOKEN = "remote-secret"


def remote_agent(*options: str) -> FixtureServer:
    """The remote A2A agent (``tests/a2a_remote.py``), wanting the bearer TOKEN; its card is at ``.origin``."""
    return FixtureServer(REMOTE, ["--port", "{port}", "--token", TOKEN, *options], probe="/.well-known/agent-card.json")


@pytest.fixture
def remote() -> Iterator[FixtureServer]:
    process = remote_agent().start()
    yield process
    process.kill()



def finished(admin: httpx.Client, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        task = ok(call(admin, "agora.task.get", task_id=task_id))
        return task if task["status"] in ("completed", "failed", "dead_letter", "cancelled") else None

    return until(done, f"task {task_id} never finished")


def test_a_remote_agent_does_agora_tasks_over_a2a(sqlite_hub, remote):
    with sqlite_hub.client() as admin:
        registered = ok(call(admin, "agora.agents.register", agent_name=unique("remote"), a2a_card_url=remote.origin, a2a_token=TOKEN))
        agent = registered["agent"]
        echoed = ok(call(admin, "agora.task.assign", task_type="echo", assignee=agent["agent_id"], payload={"x": 1, "why": "test"}))
        refused = ok(call(admin, "agora.task.assign", task_type="echo", assignee=agent["agent_id"], payload={"text": "refuse"}))
        done, no = finished(admin, echoed["task_id"]), finished(admin, refused["task_id"])
    assert agent["capabilities"] == ["echo", "review-docs"] and agent["description"] == "An A2A agent outside the hub"
    assert agent["a2a_remote"]["card_url"] == remote.origin and TOKEN not in str(registered)  # the hub keeps the token
    assert done["status"] == "completed" and done["result"]["state"] == "TASK_STATE_COMPLETED"
    assert done["result"]["artifacts"][0]["parts"][0]["data"] == {"x": 1, "why": "test"}
    assert done["result"]["text"] == "done:" and done["result"]["remote_task_id"]
    assert no["status"] == "failed" and "rejected" in no["last_error"] and no["attempts"] == 1  # its verdict: no retry


def test_a_remote_agent_that_is_down_or_answers_garbage_fails_the_task_clearly(sqlite_hub, remote):
    liar = remote_agent("--garbage-calls").start()
    try:
        with sqlite_hub.client() as admin:
            down = ok(call(admin, "agora.agents.register", agent_name=unique("down"), a2a_card_url=remote.origin, a2a_token=TOKEN))["agent_id"]
            lying = ok(call(admin, "agora.agents.register", agent_name=unique("liar"), a2a_card_url=liar.origin, a2a_token=TOKEN))["agent_id"]
            remote.kill()
            lost = ok(call(admin, "agora.task.assign", task_type="echo", assignee=down, payload={"n": 1}, max_attempts=2))
            garbled = ok(call(admin, "agora.task.assign", task_type="echo", assignee=lying, payload={"n": 2}, max_attempts=1))
            gone, nonsense = finished(admin, lost["task_id"]), finished(admin, garbled["task_id"])
            nowhere = expect_error(call(admin, "agora.agents.register", agent_name=unique("x"), a2a_card_url=remote.origin), 400, "invalid_argument")
            assert ok(call(admin, "agora.query.agents", limit=1))  # the hub itself is fine
    finally:
        liar.kill()
    assert gone["status"] == "dead_letter" and gone["attempts"] == 2 and "remote A2A agent" in gone["last_error"], (gone["last_error"], gone["attempts"])
    assert nonsense["status"] == "dead_letter" and "remote A2A agent" in nonsense["last_error"]
    assert nowhere["details"]["field"] == "a2a_card_url" and "no A2A agent card" in nowhere["message"]


@pytest.mark.parametrize("streaming", [True, False])
async def test_a2a_callers_of_a_bridged_agent_get_the_remote_agents_answers(sqlite_hub, streaming):
    remote = remote_agent(*([] if streaming else ["--no-streaming"])).start()
    try:
        with sqlite_hub.client() as admin:
            agent = ok(call(admin, "agora.agents.register", agent_name=unique("front"), a2a_card_url=remote.origin,
                            a2a_token=TOKEN, a2a={"access": "public"}))["agent_id"]  # fmt: skip
        async with a2a_client(f"{sqlite_hub.url}/a2a/agents/{agent}") as client:
            asked = (await send(client, message("ask", "bridge"))).task
            answered = (await send(client, message("this one", "bridge", task_id=asked.id))).task
            echoed = (await send(client, message("slow 0.3", "bridge"))).task
    finally:
        remote.kill()
    assert asked.status.state == pb.TaskState.TASK_STATE_INPUT_REQUIRED and texts(asked.status.message) == ["which one?"]
    assert answered.id == asked.id and answered.status.state == pb.TaskState.TASK_STATE_COMPLETED
    assert texts(answered.status.message) == ["got this one"]  # the follow-up reached the same remote task
    assert echoed.status.state == pb.TaskState.TASK_STATE_COMPLETED and [p.text for p in echoed.artifacts[0].parts] == ["slow 0.3"]


def test_a_message_to_a_remote_agent_is_answered_by_it(sqlite_hub, remote):
    with sqlite_hub.client() as admin:
        bridged = ok(call(admin, "agora.agents.register", agent_name=unique("listener"), a2a_card_url=remote.origin, a2a_token=TOKEN))
        asker = ok(call(admin, "agora.agents.register", agent_name=unique("asker")))
    with sqlite_hub.client(asker["agent_token"]) as me:
        sent = ok(call(me, "agora.messaging.send", to_agent=bridged["agent_id"], content="hello there",
                       correlation={"conversation_id": "conv-1"}))  # fmt: skip
        replies = until(lambda: ok(call(me, "agora.messaging.receive", wait=1))["messages"], "no reply from the remote agent")
    reply = replies[0]
    assert reply["from_agent"] == bridged["agent_id"] and reply["performative"] == "inform"
    assert reply["correlation"] == {"reply_to": sent["message_id"], "conversation_id": "conv-1"}
    assert reply["content"]["state"] == "TASK_STATE_COMPLETED" and reply["content"]["text"] == "done: hello there"
    assert reply["content"]["artifacts"][0]["parts"] == [{"text": "hello there"}]


def remote_cancellations(remote: FixtureServer) -> list[str]:
    return httpx.get(f"{remote.origin}/cancelled", headers={"Authorization": f"Bearer {TOKEN}"}).json()


async def test_cancelling_a_bridged_task_cancels_it_on_the_remote_agent(sqlite_hub, remote):
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("cancel"), a2a_card_url=remote.origin,
                        a2a_token=TOKEN, a2a={"access": "public"}))["agent_id"]  # fmt: skip
        # An Agora task, cancelled by its creator while the remote agent works on it.
        working = ok(call(admin, "agora.task.assign", task_type="echo", assignee=agent, payload={"text": "slow 30"}))
        until(lambda: ok(call(admin, "agora.task.get", task_id=working["task_id"]))["status"] == "in_progress", "never claimed")
        await asyncio.sleep(0.5)  # the remote agent has the task
        ok(call(admin, "agora.task.cancel", task_id=working["task_id"], reason="changed my mind"))
        until(lambda: "slow 30" in remote_cancellations(remote), "the remote task was not cancelled")
        assert ok(call(admin, "agora.task.get", task_id=working["task_id"]))["status"] == "cancelled"
    # An A2A caller of the bridged agent's front on this hub, cancelling its task there.
    async with a2a_client(f"{sqlite_hub.url}/a2a/agents/{agent}") as client:
        request = message("slow 31", "bridge")
        request.configuration.return_immediately = True
        started = (await send(client, request)).task
        await asyncio.sleep(1)
        cancelled = await client.cancel_task(pb.CancelTaskRequest(id=started.id))
    assert cancelled.status.state == pb.TaskState.TASK_STATE_CANCELED
    until(lambda: "slow 31" in remote_cancellations(remote), "the remote task of the A2A caller was not cancelled")


def test_a_message_and_a_task_payload_become_the_same_parts(sqlite_hub, remote):
    """Text is a text part whether it came as a string or as {"text": …}; any other object is a data part."""
    with sqlite_hub.client() as admin:
        bridged = ok(call(admin, "agora.agents.register", agent_name=unique("parts"), a2a_card_url=remote.origin, a2a_token=TOKEN))["agent_id"]
        asker = ok(call(admin, "agora.agents.register", agent_name=unique("asker")))
        tasks = [ok(call(admin, "agora.task.assign", task_type="echo", assignee=bridged, payload=p))["task_id"]
                 for p in ({"text": "as a task"}, {"text": "with more", "n": 1})]  # fmt: skip
        done = [finished(admin, t)["result"]["artifacts"][0]["parts"] for t in tasks]
    with sqlite_hub.client(asker["agent_token"]) as me:
        for content in ({"text": "as a message"}, {"text": "with more", "n": 2}):
            ok(call(me, "agora.messaging.send", to_agent=bridged, content=content))
            reply = until(lambda: ok(call(me, "agora.messaging.receive", wait=1))["messages"], "no reply from the remote agent")[0]
            done.append(reply["content"]["artifacts"][0]["parts"])
            ok(call(me, "agora.messaging.ack", message_ids=[reply["message_id"]]))
    assert done == [[{"text": "as a task"}], [{"data": {"text": "with more", "n": 1}}],
                    [{"text": "as a message"}], [{"data": {"text": "with more", "n": 2}}]]  # fmt: skip
