"""The ``Agent`` runtime on its WebSocket channel against real hubs: pushed tasks and messages, flow control, the
HTTP fall-back behind a proxy that drops WebSockets, answers resent after a broken connection, pushing across
replicas, and nothing lost or completed twice when the hub is killed, the runtime is killed or the connection is cut
mid-frame."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
import httpx

from agora_sdk import Agent, AsyncAgoraClient

from .conftest import metric, unique
from .hubproc import HubProcess
from .tcp_proxy import proxy
from .test_agent_runtime import _status, _tool_calls, agent_for, eventually
from .test_tasks import ROOT


async def started(agent: Agent) -> None:
    """Start the agent and wait until its channel is open."""
    await agent.start()
    assert agent.channel is not None
    await asyncio.wait_for(agent.channel.up.wait(), 10)


def counting_http(agent: Agent) -> list[str]:
    """The paths of the HTTP requests the agent's client makes from now on."""
    paths: list[str] = []

    async def seen(request: httpx.Request) -> None:
        paths.append(request.url.path)

    agent.client._http.event_hooks["request"].append(seen)
    return paths


async def stats(admin: AsyncAgoraClient, task_type: str) -> dict[str, int]:
    listed = await admin.task.list(task_type=task_type, limit=500)
    counts: dict[str, int] = {}
    for task in listed.tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
    return counts


async def test_tasks_messages_replies_and_progress_travel_on_one_socket(sqlite_hub):
    agent = agent_for(sqlite_hub, unique("channel"), capabilities=["chan"])
    handled: list[int] = []

    @agent.on_task("chan_job")
    async def job(task):
        await task.progress(50, "half")
        handled.append(task.payload["n"])
        return task.payload["n"] + 1

    @agent.on_message()
    async def answer(msg):
        await msg.reply(f"re: {msg.content}")

    await started(agent)
    try:
        http = counting_http(agent)
        async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
            asker = await admin.agents.register(unique("asker"))
            async with AsyncAgoraClient(sqlite_hub.url, asker.agent_token) as me:
                ids = [(await admin.task.assign("chan_job", {"n": n}, required_capabilities=["chan"])).task_id for n in range(20)]
                await me.messaging.send(agent.name, "hi")
                inbox = await me.messaging.receive(wait=20)
                await eventually(lambda: _every(admin, ids, "completed"))
                results = [(await admin.task.get(t)).result for t in ids]
    finally:
        await agent.stop()
    assert sorted(handled) == list(range(20)) and sorted(results) == list(range(1, 21))
    assert [m.content for m in inbox] == ["re: hi"]
    assert http == []  # claims, outcomes, progress, the reply and its ack all went over the socket


async def _every(admin: AsyncAgoraClient, ids: list[str], status: str) -> bool:
    return all([(await admin.task.get(t)).status == status for t in ids])


async def test_a_runtime_is_pushed_no_more_tasks_than_its_free_slots(sqlite_hub):
    agent = agent_for(sqlite_hub, unique("narrow"), concurrency=2)
    gate = asyncio.Event()
    running: list[str] = []

    @agent.on_task("narrow_job")
    async def job(task):
        running.append(task.task_id)
        await gate.wait()
        return "ok"

    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
        ids = [(await admin.task.assign("narrow_job", {"n": n}, assignee=agent.name)).task_id for n in range(6)]
        await agent.start()
        try:
            await eventually(lambda: len(running) == 2)
            await asyncio.sleep(0.5)  # room for two: the others stay in the queue, free for any other worker
            counts = await stats(admin, "narrow_job")
            assert counts == {"in_progress": 2, "pending": 4}, counts
            gate.set()
            await eventually(lambda: _every(admin, ids, "completed"))
        finally:
            await agent.stop()
    assert sorted(running) == sorted(ids)


async def test_behind_a_proxy_that_drops_websockets_the_runtime_works_over_http(sqlite_hub):
    with proxy(sqlite_hub.port, refuse_websockets=True) as p:
        agent = Agent(unique("proxied"), url=p.url, api_key=sqlite_hub.admin_key)
        heard: list[str] = []

        @agent.on_task("proxied_job")
        async def job(task):
            return "done over http"

        @agent.on_message()
        async def hear(msg):
            heard.append(msg.content)

        await agent.start()
        try:
            async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
                task = await admin.task.assign("proxied_job", assignee=agent.name)
                await admin.messaging.send(agent.name, "over http")
                await eventually(lambda: _status(admin, task.task_id, "completed"))
                await eventually(lambda: heard == ["over http"])
            assert agent.channel is None  # it gave the socket up
        finally:
            await agent.stop()


async def test_an_answer_lost_with_its_connection_is_sent_again_and_counts_once(sqlite_hub):
    with proxy(sqlite_hub.port) as p:
        agent = Agent(unique("resender"), url=p.url, api_key=sqlite_hub.admin_key)
        started, release = asyncio.Event(), asyncio.Event()
        runs: list[str] = []

        @agent.on_task("resend_job")
        async def job(task):
            runs.append(task.task_id)
            started.set()
            await release.wait()
            return {"run": len(runs)}

        await agent.start()
        try:
            async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
                task = await admin.task.assign("resend_job", assignee=agent.name)
                await asyncio.wait_for(started.wait(), 10)
                p.swallow_answers = True  # the outcome reaches the hub; its acknowledgement never comes back
                release.set()
                await eventually(lambda: _status(admin, task.task_id, "completed"))
                p.swallow_answers = False
                assert agent.channel is not None
                connections = agent.channel.connections
                p.cut(0)
                # The runtime reconnects and sends the unanswered outcome again: the lease fences it, nothing changes.
                await eventually(lambda: agent.channel is not None and agent.channel.connections > connections and agent.channel.up.is_set())
                second = await admin.task.assign("resend_job", assignee=agent.name)
                await eventually(lambda: _status(admin, second.task_id, "completed"))
                history = await admin.task.history(task.task_id)
                done = await admin.task.get(task.task_id)
        finally:
            await agent.stop()
    assert [t.to_status for t in history].count("completed") == 1 and done.result == {"run": 1}
    assert runs == [task.task_id, second.task_id]


async def test_a_runtime_on_one_replica_is_pushed_work_assigned_through_another(two_replicas):
    one, two = two_replicas
    agent = agent_for(one, unique("replicated"))

    @agent.on_task("across")
    async def job(task):
        return "pushed from the other replica"

    await started(agent)
    try:
        http = counting_http(agent)
        async with AsyncAgoraClient(two.url, two.admin_key) as admin:
            task = await admin.task.assign("across", assignee=agent.name)
            await eventually(lambda: _status(admin, task.task_id, "completed"), timeout=10)
    finally:
        await agent.stop()
    assert http == []


def runtime(hub_url: str, key: str, name: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.channel_runtime", hub_url, key, name, str(out), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def handled(out: Path) -> list[str]:
    return out.read_text().split() if out.exists() else []


async def test_kill_9_of_the_hub_mid_load_loses_and_completes_twice_no_pushed_task(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    out = tmp_path / "handled.txt"
    worker = None
    try:
        async with AsyncAgoraClient(hub.url, hub.admin_key) as admin:
            batch = [{"task_type": "crash_job", "required_capabilities": ["crash"], "payload": {"n": n}} for n in range(100)]
            ids = [r.task_id for _ in range(3) for r in (await admin.task.assign_batch(tasks=batch)).results]
        worker = runtime(hub.url, hub.admin_key, "crash-runtime", out, "--capability", "crash", "--lease", "3", "--concurrency", "4")
        await eventually(lambda: len(handled(out)) >= 60)
        hub.stop(signal.SIGKILL)  # mid-load: tasks pushed, outcomes in flight
        hub.start()
        async with AsyncAgoraClient(hub.url, hub.admin_key) as admin:
            await eventually(lambda: _counts(admin, "crash_job", {"completed": 300}), timeout=60)
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGKILL)
        hub.stop()
    assert set(handled(out)) == set(ids)


async def _counts(admin: AsyncAgoraClient, task_type: str, expected: dict[str, int]) -> bool:
    counts: dict[str, int] = {}
    cursor = None
    while True:
        page = await admin.task.list(task_type=task_type, limit=200, **({"cursor": cursor} if cursor else {}))
        for task in page.tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        cursor = page.next_cursor
        if not cursor:
            return counts == expected


async def test_a_killed_runtime_s_pushed_task_goes_to_another_runtime_after_its_lease(sqlite_hub, tmp_path):
    name = unique("doomed")
    out = tmp_path / "doomed.txt"
    doomed = runtime(sqlite_hub.url, sqlite_hub.admin_key, name, out, "--hold", "60", "--lease", "1")
    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
        try:
            task = await admin.task.assign("crash_job", assignee=name)
            await eventually(lambda: handled(out) == [task.task_id])
        finally:
            os.killpg(doomed.pid, signal.SIGKILL)  # mid-task, lease held, socket gone without a close
        rescuer = agent_for(sqlite_hub, name)

        @rescuer.on_task("crash_job")
        async def rescue(t):
            return "rescued"

        await rescuer.start()
        try:
            await eventually(lambda: _status(admin, task.task_id, "completed"))
            done = await admin.task.get(task.task_id)
        finally:
            await rescuer.stop()
    assert done.attempts == 2 and done.result == "rescued"


async def test_connections_cut_mid_frame_under_load_lose_and_complete_twice_nothing(sqlite_hub):
    with proxy(sqlite_hub.port) as p:
        agent = Agent(unique("cut"), url=p.url, api_key=sqlite_hub.admin_key, capabilities=["cuttable"], concurrency=8, lease_seconds=3)
        runs: list[str] = []

        @agent.on_task("cut_job")
        async def job(task):
            runs.append(task.task_id)
            await asyncio.sleep(0.002)
            return task.payload["n"]

        async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
            # Attempts to spare: a task pushed in a frame the cut destroyed waits out its lease and spends one.
            batch = [{"task_type": "cut_job", "required_capabilities": ["cuttable"], "payload": {"n": n}, "max_attempts": 10} for n in range(100)]
            ids = [r.task_id for _ in range(4) for r in (await admin.task.assign_batch(tasks=batch)).results]
            await agent.start()
            stop = threading.Event()

            def cutter() -> None:
                while not stop.wait(0.15):
                    p.cut(0.05)

            thread = threading.Thread(target=cutter)
            thread.start()
            try:
                await eventually(lambda: len(set(runs)) >= 300, timeout=60)
            finally:
                stop.set()
                thread.join()
            try:
                await eventually(lambda: _counts(admin, "cut_job", {"completed": 400}), timeout=60)
            finally:
                await agent.stop()
            results = sorted([(await admin.task.get(t)).result for t in ids[:50]])
    assert p.cuts >= 3
    assert set(runs) == set(ids)
    assert results == list(range(50))


async def test_a_result_too_large_for_one_frame_goes_over_http(tmp_path):
    hub = HubProcess(tmp_path / "hub", extra_args=["--ws-max-frame-bytes", "4096"]).start()
    try:
        agent = agent_for(hub, unique("bulky"))

        @agent.on_task("bulky")
        async def bulky(task):
            return {"text": "x" * 20_000}  # five times what the hub takes in one frame

        @agent.on_task("small")
        async def small(task):
            return "fits"

        await started(agent)
        try:
            async with AsyncAgoraClient(hub.url, hub.admin_key) as admin:
                big = await admin.task.assign("bulky", assignee=agent.name)
                await eventually(lambda: _status(admin, big.task_id, "completed"))
                little = await admin.task.assign("small", assignee=agent.name)
                await eventually(lambda: _status(admin, little.task_id, "completed"))
                assert (await admin.task.get(big.task_id)).result == {"text": "x" * 20_000}
            assert agent.channel.connections == 1  # the socket was never closed over it
        finally:
            await agent.stop()
    finally:
        hub.stop()


async def _parked(hub: HubProcess) -> None:
    """Until the runtime's channel has declared what it takes, looked for work and parked: its claims have stopped
    coming (a fixed sleep was too short on a loaded machine, and its first claim then fell inside the test's count)."""
    seen = None
    for _ in range(50):
        now = (_tool_calls(hub, "agora.task.claim_batch"), metric(hub, "agora_work_channels"))
        if now == seen and now[1] >= 1:
            return
        seen = now
        await asyncio.sleep(0.3)
    raise AssertionError(f"the channel never parked: {seen}")


def _send_message(text: str) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": unique("m"), "role": "ROLE_USER", "parts": [{"text": text}]}}}  # fmt: skip


async def test_an_a2a_turn_for_an_idle_runtime_is_leased_as_it_is_made_and_pushed_at_once(sqlite_hub):
    agent = agent_for(sqlite_hub, unique("handed"), a2a="public")

    @agent.on_a2a()
    async def hello(turn):
        return f"hello, {turn.text}"

    await started(agent)
    try:
        await _parked(sqlite_hub)
        claims = _tool_calls(sqlite_hub, "agora.task.claim_batch")
        handed = metric(sqlite_hub, 'agora_tasks_pushed_total{how="handed"}')
        assert metric(sqlite_hub, "agora_work_channels") >= 1
        async with httpx.AsyncClient(base_url=sqlite_hub.url, headers={"A2A-Version": "1.0"}, timeout=20) as http:
            answer = (await http.post(f"/a2a/agents/{agent.agent_id}", json=_send_message("you"))).json()
        task = answer["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED", answer
        assert task["status"]["message"]["parts"][0]["text"] == "hello, you"
        assert _tool_calls(sqlite_hub, "agora.task.claim_batch") == claims  # no claim: the turn was handed over
        assert metric(sqlite_hub, 'agora_tasks_pushed_total{how="handed"}') == handed + 1
        async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as admin:
            listed = await admin.task.list(task_type="a2a.message", agent=agent.name, limit=5)
            history = await admin.task.history(listed.tasks[0].task_id)
        moves = [(t.from_status, t.to_status) for t in history]
        assert moves[:2] == [(None, "pending"), ("pending", "in_progress")] and history[0].at == history[1].at
    finally:
        await agent.stop()


async def test_a_busy_runtime_with_room_is_handed_a2a_turns_and_one_without_room_claims_them_when_room_comes(sqlite_hub):
    agent = agent_for(sqlite_hub, unique("busy"), a2a="public", concurrency=2)
    gate, holding = asyncio.Event(), []

    @agent.on_a2a()
    async def answer(turn):
        if turn.text.startswith("hold"):
            holding.append(turn.text)
            await gate.wait()
        return f"done: {turn.text}"

    def pushed(how: str) -> float:
        return metric(sqlite_hub, f'agora_tasks_pushed_total{{how="{how}"}}')

    await started(agent)
    try:
        await _parked(sqlite_hub)
        async with httpx.AsyncClient(base_url=sqlite_hub.url, headers={"A2A-Version": "1.0"}, timeout=30) as http:

            def send(text: str) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(http.post(f"/a2a/agents/{agent.agent_id}", json=_send_message(text)))

            held = send("hold 1")
            await eventually(lambda: holding == ["hold 1"])
            claims, handed = _tool_calls(sqlite_hub, "agora.task.claim_batch"), pushed("handed")
            quick = (await send("quick")).json()["result"]["task"]  # one slot busy, one free: handed, no claim
            assert quick["status"]["message"]["parts"][0]["text"] == "done: quick"
            assert (_tool_calls(sqlite_hub, "agora.task.claim_batch"), pushed("handed")) == (claims, handed + 1)

            held_too = send("hold 2")  # the last free slot
            await eventually(lambda: holding == ["hold 1", "hold 2"])
            assert pushed("handed") == handed + 2
            waiting = send("no room")  # no slot free: not handed; it waits for the runtime's credit
            await asyncio.sleep(0.5)
            assert not waiting.done() and pushed("handed") == handed + 2
            gate.set()
            answers = [(await t).json()["result"]["task"]["status"]["message"]["parts"][0]["text"] for t in (held, held_too, waiting)]
            assert answers == ["done: hold 1", "done: hold 2", "done: no room"]
            assert _tool_calls(sqlite_hub, "agora.task.claim_batch") > claims  # claimed once room came back
    finally:
        await agent.stop()
