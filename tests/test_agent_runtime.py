"""The ``Agent`` runtime against real hubs: handlers, retries after a crash, redelivery, restarts, graceful stop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agora_sdk import Agent, AsyncAgoraClient

from .conftest import unique
from .hubproc import HubProcess


async def eventually(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await _value(condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _value(result: object) -> object:
    return await result if asyncio.iscoroutine(result) else result


def agent_for(hub: HubProcess, name: str, **options: object) -> Agent:
    return Agent(name, url=hub.url, api_key=hub.admin_key, **options)  # type: ignore[arg-type]


async def test_task_handler_crash_is_retried_and_completes_once(sqlite_hub):
    calls: list[int] = []
    agent = agent_for(sqlite_hub, unique("flaky"), capabilities=["flaky"])

    @agent.on_task("flaky_job")
    async def flaky(task):
        calls.append(task.attempts)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        await task.progress(50, "half way")
        return {"ok": True, "attempt": task.attempts}

    await agent.start()
    try:
        async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
            task = await admin.task.assign("flaky_job", {"n": 1}, assignee=agent.name)
            await eventually(lambda: _status(admin, task.task_id, "completed"))
            done = await admin.task.get(task.task_id)
            history = await admin.task.history(task.task_id)
    finally:
        await agent.stop()
    assert calls == [1, 2]
    assert done.result == {"ok": True, "attempt": 2} and done.attempts == 2
    assert "RuntimeError: disk on fire" in [t.note for t in history if t.to_status == "pending"][-1]


def _tool_calls(hub: HubProcess, *tools: str) -> float:
    """How many calls of these tools the hub answered successfully so far."""
    with hub.client() as admin:
        text = admin.get("/metrics").text
    lines = [f'agora_tool_calls_total{{outcome="ok",tool="{tool}"}} ' for tool in tools]
    return sum(float(row.removeprefix(line)) for row in text.splitlines() for line in lines if row.startswith(line))


CLAIMS = ("agora.task.claim", "agora.task.claim_batch")
REPORTS = ("agora.task.update", "agora.task.update_batch")


async def test_free_slots_are_filled_by_one_claim_and_outcomes_reported_together(sqlite_hub):
    agent = agent_for(sqlite_hub, unique("bulk"), concurrency=10)
    running: list[int] = []
    most = [0]

    @agent.on_task("bulk_job")
    async def job(task):
        running.append(task.payload["n"])
        most[0] = max(most[0], len(running))
        await asyncio.sleep(0.3)
        running.remove(task.payload["n"])
        return task.payload["n"] * 2

    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
        ids = [(await admin.task.assign("bulk_job", {"n": n}, assignee=agent.name)).task_id for n in range(30)]
        claims, reports = _tool_calls(sqlite_hub, *CLAIMS), _tool_calls(sqlite_hub, *REPORTS)
        await agent.start()
        try:
            await eventually(lambda: _all_done(admin, ids))
        finally:
            await agent.stop()
        results = [(await admin.task.get(t)) for t in ids]
    assert [(r.result, r.attempts) for r in results] == [(n * 2, 1) for n in range(30)]
    assert most[0] == 10  # never more than concurrency, and the slots were all used
    # 30 tasks in 10 slots: a few claims and reports, not one per task.
    assert _tool_calls(sqlite_hub, *CLAIMS) - claims <= 10
    assert _tool_calls(sqlite_hub, *REPORTS) - reports <= 10


async def _all_done(client: AsyncAgoraClient, ids: list[str]) -> bool:
    listed = await client.task.list(status="completed", task_type="bulk_job", limit=100)
    return {t.task_id for t in listed.tasks} >= set(ids)


async def _status(client: AsyncAgoraClient, task_id: str, status: str) -> bool:
    return (await client.task.get(task_id)).status == status


async def test_message_is_acked_only_after_its_handler_returns(sqlite_hub):
    seen: list[tuple[str, int]] = []
    agent = agent_for(sqlite_hub, unique("picky"), visibility_timeout=1)

    @agent.on_message()
    async def picky(msg):
        seen.append((msg.content, msg.delivery_count))
        if msg.delivery_count == 1:
            raise ValueError("not yet")

    await agent.start()
    try:
        async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
            await admin.messaging.send(agent.name, "hello")
            await eventually(lambda: len(seen) >= 2)
            await asyncio.sleep(1.5)  # past another visibility timeout: an acked message does not come back
            left = await admin.messaging.receive(agent=agent.name)
    finally:
        await agent.stop()
    assert seen == [("hello", 1), ("hello", 2)]
    assert len(left) == 0


async def test_acks_of_messages_handled_together_go_in_few_calls(sqlite_hub):
    agent = agent_for(sqlite_hub, unique("reader"), concurrency=10, visibility_timeout=1)
    handled: list[int] = []

    @agent.on_message()
    async def read(msg):
        await asyncio.sleep(0.2)
        handled.append(msg.content["n"])

    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
        await agent.start()
        try:
            acks = _tool_calls(sqlite_hub, "agora.messaging.ack")
            await admin.messaging.send_batch(messages=[{"to_agent": agent.name, "content": {"n": n}} for n in range(30)])
            await eventually(lambda: len(handled) == 30)
            await eventually(lambda: _tool_calls(sqlite_hub, "agora.messaging.ack") > acks)
            await asyncio.sleep(1.5)  # past the visibility timeout: every one was acked, none comes back
            left = await admin.messaging.receive(agent=agent.name)
        finally:
            await agent.stop()
    assert sorted(handled) == list(range(30)) and len(left) == 0
    assert _tool_calls(sqlite_hub, "agora.messaging.ack") - acks <= 10  # 30 messages in 10 slots: not one call each


async def test_sync_handlers_reply_and_complete(sqlite_hub):
    worker_threads: set[str] = set()
    agent = agent_for(sqlite_hub, unique("syncy"))

    @agent.on_message()
    def answer(msg):
        worker_threads.add(threading.current_thread().name)
        msg.reply(f"re: {msg.content}")

    @agent.on_task()
    def anything(task):
        worker_threads.add(threading.current_thread().name)
        task.progress(10)
        return {"type": task.task_type}

    await agent.start()
    try:
        async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
            asker = await admin.agents.register(unique("asker"))
            async with AsyncAgoraClient(sqlite_hub.url, asker.agent_token) as me:
                sent = await me.messaging.send(agent.name, "hi")
                inbox = await me.messaging.receive(wait=20)
                task = await me.task.assign("whatever", assignee=agent.name)
                await eventually(lambda: _status(me, task.task_id, "completed"))
                result = (await me.task.get(task.task_id)).result
    finally:
        await agent.stop()
    assert [m.content for m in inbox] == ["re: hi"] and inbox[0].correlation["reply_to"] == sent.message_id
    assert result == {"type": "whatever"}
    assert threading.main_thread().name not in worker_threads


async def test_stop_lets_a_running_handler_finish(sqlite_hub):
    started = asyncio.Event()
    agent = agent_for(sqlite_hub, unique("slow"))

    @agent.on_task("slow")
    async def slow(task):
        started.set()
        await asyncio.sleep(1.0)
        return "finished"

    await agent.start()
    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
        task = await admin.task.assign("slow", assignee=agent.name)
        await asyncio.wait_for(started.wait(), 20)
        await agent.stop()
        done = await admin.task.get(task.task_id)
    assert done.status == "completed" and done.result == "finished"


@pytest.fixture
def own_hub(tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path / "hub").start()
    yield hub
    hub.stop()


async def test_agent_rides_out_a_hub_restart(own_hub):
    got: list[str] = []
    agent = agent_for(own_hub, unique("survivor"), heartbeat_interval=0.5)

    @agent.on_message()
    async def remember(msg):
        got.append(msg.content)

    @agent.on_task("job")
    async def job(task):
        return task.payload["n"] * 2

    await agent.start()
    try:
        async with AsyncAgoraClient(own_hub.url, own_hub.admin_key) as admin:
            await admin.messaging.send(agent.name, "before")
            await eventually(lambda: got == ["before"])
            await asyncio.to_thread(own_hub.stop)
            await asyncio.sleep(1.0)  # the agent's loops find the hub gone and back off
            await asyncio.to_thread(own_hub.start)
            await admin.messaging.send(agent.name, "after")
            task = await admin.task.assign("job", {"n": 21}, assignee=agent.name)
            await eventually(lambda: got == ["before", "after"], timeout=30)
            await eventually(lambda: _status(admin, task.task_id, "completed"), timeout=30)
            assert (await admin.task.get(task.task_id)).result == 42
    finally:
        await agent.stop()
