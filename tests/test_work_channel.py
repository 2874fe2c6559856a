"""The work channel on /ws: tool calls answered on the socket and tasks pushed to an agent up to its credit, against
real hubs with a raw ``websockets`` client (the SDK runtime's use of it is in test_agent_channel.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from .conftest import call, expect_error, ok, unique
from .hubproc import HubProcess
from .test_streams import connect, frame, register


async def until_frame(ws: websockets.ClientConnection, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next frame of ``kind`` (frames of other kinds before it are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        got = await frame(ws, max(0.01, deadline - time.monotonic()))
        if got["type"] == kind:
            return got


async def no_frame(ws: websockets.ClientConnection, kind: str, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        await until_frame(ws, kind, seconds)


def assign(admin: httpx.Client, capability: str, count: int = 1, **extra: Any) -> list[str]:
    tasks = [{"task_type": "job", "required_capabilities": [capability], "payload": {"n": n}, **extra} for n in range(count)]
    return [t["task_id"] for t in ok(call(admin, "agora.task.assign_batch", tasks=tasks))["results"]]


def complete(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"task_id": c["task"]["task_id"], "lease_token": c["lease"]["token"], "status": "completed", "result": {"ok": 1}} for c in claims]


async def call_frame(ws: websockets.ClientConnection, ref: int, tool: str, **args: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "call", "ref": ref, "tool": tool, "args": args}))
    while True:
        got = await frame(ws)
        if got.get("ref") == ref and got["type"] in ("result", "error"):
            return got


def task_of(admin: httpx.Client, task_id: str) -> dict[str, Any]:
    return ok(call(admin, "agora.task.get", task_id=task_id))


async def test_calls_are_answered_on_the_socket_as_the_connection_principal(hub: HubProcess, admin: httpx.Client) -> None:
    sender, receiver = register(admin), register(admin)
    async with connect(hub, sender["agent_token"], types="none") as ws:
        sent = await call_frame(ws, 1, "agora.messaging.send", to_agent=receiver["agent_name"], content="hi")
        assert sent["type"] == "result" and sent["result"]["message_id"], sent
        inbox = ok(call(httpx.Client(base_url=admin.base_url, headers={"Authorization": f"Bearer {receiver['agent_token']}"}),
                        "agora.messaging.receive"))
        assert [m["from_agent"] for m in inbox["messages"]] == [sender["agent_id"]]
        # An agent acts only as itself, on the socket as over REST; a refusal carries the REST answer's code and status.
        refused = await call_frame(ws, 2, "agora.agents.heartbeat", agent=receiver["agent_name"])
        assert (refused["type"], refused["status"], refused["code"]) == ("error", 403, "permission_denied"), refused
        bad = await call_frame(ws, 3, "agora.messaging.send", to_agent=receiver["agent_name"])
        assert (bad["code"], bad["status"]) == ("invalid_argument", 422), bad
        unknown = await call_frame(ws, 4, "agora.nothing.here")
        assert unknown["status"] == 404, unknown
        await ws.send(json.dumps({"type": "call", "ref": 5, "tool": 7}))
        assert (await until_frame(ws, "error"))["ref"] == 5
        # Several frames in one: each answered.
        await ws.send(json.dumps({"type": "batch", "frames": [{"type": "ping", "ref": "a"}, {"type": "ping", "ref": "b"}]}))
        assert [(await frame(ws))["ref"] for _ in range(2)] == ["a", "b"]


async def test_tasks_are_pushed_up_to_the_credit_and_more_as_credit_returns(hub: HubProcess, admin: httpx.Client) -> None:
    capability = unique("cap")
    worker = ok(call(admin, "agora.agents.register", agent_name=unique("worker"), capabilities=[capability]))
    ids = assign(admin, capability, 5)
    async with connect(hub, worker["agent_token"], types="none") as ws:
        await ws.send(json.dumps({"type": "take", "ref": 1, "capacity": 2, "lease_seconds": 30}))
        taking = await until_frame(ws, "taking")
        assert (taking["ref"], taking["capacity"], taking["credit"]) == (1, 2, 2)
        pushed: list[dict[str, Any]] = []
        while len(pushed) < 2:
            pushed += (await until_frame(ws, "tasks"))["claims"]
        assert len(pushed) == 2
        await no_frame(ws, "tasks", 0.5)  # no credit left: nothing more is pushed, the other tasks stay queued
        queued = [t for t in ids if task_of(admin, t)["status"] == "pending"]
        assert len(queued) == 3
        # A pushed task is a claimed task: in progress, leased to this agent, with a fencing token.
        first = task_of(admin, pushed[0]["task"]["task_id"])
        assert (first["status"], first["claimed_by"]) == ("in_progress", worker["agent_id"])
        # The outcome goes back as a call; its credit lets one more task come.
        await ws.send(json.dumps({"type": "call", "ref": 2, "credit": 1, "tool": "agora.task.update_batch", "args": {"updates": complete(pushed[:1])}}))
        more = await until_frame(ws, "tasks")
        assert len(more["claims"]) == 1
        # Credit is the runtime's count of free room, never more than the declared capacity however much is sent.
        assign(admin, capability, 3)
        await ws.send(json.dumps({"type": "credit", "tasks": 50}))
        rest: list[dict[str, Any]] = []
        while len(rest) < 2:
            rest += (await until_frame(ws, "tasks"))["claims"]
        assert len(rest) == 2, rest
        await no_frame(ws, "tasks", 0.3)
    assert task_of(admin, pushed[0]["task"]["task_id"])["status"] == "completed"


async def test_a_task_assigned_later_is_pushed_at_once(hub: HubProcess, admin: httpx.Client) -> None:
    capability = unique("cap")
    worker = ok(call(admin, "agora.agents.register", agent_name=unique("worker"), capabilities=[capability]))
    async with connect(hub, worker["agent_token"], types="none") as ws:
        await ws.send(json.dumps({"type": "take", "capacity": 4, "task_types": ["job"]}))
        await until_frame(ws, "taking")
        started = time.perf_counter()
        (task_id,) = assign(admin, capability)
        pushed = await until_frame(ws, "tasks")
        assert [c["task"]["task_id"] for c in pushed["claims"]] == [task_id]
        assert time.perf_counter() - started < 2.0
        # A type it does not take is not pushed.
        ok(call(admin, "agora.task.assign", task_type="other", required_capabilities=[capability]))
        await no_frame(ws, "tasks", 0.5)


async def test_pushed_but_unanswered_work_goes_back_when_its_lease_runs_out(hub: HubProcess, admin: httpx.Client) -> None:
    capability = unique("cap")
    worker = ok(call(admin, "agora.agents.register", agent_name=unique("worker"), capabilities=[capability]))
    (task_id,) = assign(admin, capability)
    async with connect(hub, worker["agent_token"], types="none") as ws:
        await ws.send(json.dumps({"type": "take", "capacity": 1, "lease_seconds": 1}))
        first = (await until_frame(ws, "tasks"))["claims"][0]
        assert first["task"]["task_id"] == task_id
        # The runtime never answers (and gives no credit): the lease runs out and the task is queued again, so
        # another connection of the agent gets it, with a newer fencing token.
    async with connect(hub, worker["agent_token"], types="none") as ws:
        await ws.send(json.dumps({"type": "take", "capacity": 1, "lease_seconds": 30}))
        again = (await until_frame(ws, "tasks", timeout=20))["claims"][0]
        assert again["task"]["task_id"] == task_id
        assert again["lease"]["fencing_token"] > first["lease"]["fencing_token"]
        # The old lease's late answer is refused: the task is not completed on its behalf.
        late = await call_frame(ws, 1, "agora.task.update_batch", updates=complete([first]))
        assert late["result"]["failed"] == 1 and late["result"]["results"][0]["error"]["code"] == "conflict", late
        done = await call_frame(ws, 2, "agora.task.update_batch", updates=complete([again]))
        assert done["result"]["updated"] == 1
    assert task_of(admin, task_id)["attempts"] == 2


async def test_a_keyed_call_sent_again_on_a_new_connection_gets_the_first_answer(hub: HubProcess, admin: httpx.Client) -> None:
    capability = unique("cap")
    worker = ok(call(admin, "agora.agents.register", agent_name=unique("keyed"), capabilities=[capability]))
    first_ids = assign(admin, capability, 2)
    claim = {"type": "call", "tool": "agora.task.claim_batch", "key": "k-1", "args": {"max_tasks": 2, "lease_seconds": 30}}
    async with connect(hub, worker["agent_token"], types="none") as ws:
        claimed = (await call_frame(ws, 1, "agora.task.claim_batch", max_tasks=2, lease_seconds=30))["result"]["claims"]
        assert sorted(c["task"]["task_id"] for c in claimed) == sorted(first_ids)
        # The outcomes and the next tasks in one keyed call, whose answer the connection loses: closed at once.
        others = assign(admin, capability, 2)
        update = {"type": "call", "ref": 2, "key": "k-2", "tool": "agora.task.update_batch",
                  "args": {"updates": complete(claimed), "claim_next": {"max_tasks": 2, "lease_seconds": 30}}}  # fmt: skip
        await ws.send(json.dumps(update))
    deadline = time.monotonic() + 10
    while task_of(admin, others[0])["status"] != "in_progress" or task_of(admin, others[1])["status"] != "in_progress":
        assert time.monotonic() < deadline, "the lost call did not run"
        await asyncio.sleep(0.05)
    async with connect(hub, worker["agent_token"], types="none") as ws:
        # Sent again (as a runtime does after a reconnect): the same answer, the same leases; nothing ran twice.
        await ws.send(json.dumps({**update, "ref": 3}))
        again = await until_frame(ws, "result")
        assert again["ref"] == 3 and [r["error"] for r in again["result"]["results"]] == [None, None], again
        taken = {c["task"]["task_id"]: c["lease"]["fencing_token"] for c in again["result"]["claims"]}
        assert taken == {t: 1 for t in others}  # their first leases, the ones the lost answer carried
        assert [(task_of(admin, t)["attempts"], task_of(admin, t)["claimed_by"]) for t in others] == [(1, worker["agent_id"])] * 2
        # The same key with another call is a mistake, said as such; a key is the caller's own.
        await ws.send(json.dumps({**claim, "ref": 5, "key": "k-2"}))
        refused = await until_frame(ws, "error")
        assert (refused["ref"], refused["code"], refused["status"]) == (5, "invalid_argument", 400), refused
        await ws.send(json.dumps({**claim, "ref": 6, "key": ""}))
        assert (await until_frame(ws, "error"))["code"] == "invalid_argument"
    stranger = ok(call(admin, "agora.agents.register", agent_name=unique("stranger"), capabilities=[capability]))
    async with connect(hub, stranger["agent_token"], types="none") as ws:
        await ws.send(json.dumps({**update, "ref": 7}))
        theirs = await until_frame(ws, "result")
        assert theirs["result"]["claims"] == [] and all(r["error"] is not None for r in theirs["result"]["results"]), theirs


async def test_only_an_agent_takes_tasks_and_a_bad_take_is_refused(hub: HubProcess, admin: httpx.Client) -> None:
    async with connect(hub, hub.admin_key, types="none") as ws:
        await ws.send(json.dumps({"type": "take", "ref": 1, "capacity": 1}))
        refused = await until_frame(ws, "error")
        assert (refused["ref"], refused["code"]) == (1, "permission_denied")
    worker = register(admin)
    async with connect(hub, worker["agent_token"], types="none") as ws:
        await ws.send(json.dumps({"type": "take", "ref": 2, "capacity": 0}))
        assert (await until_frame(ws, "error"))["details"]["field"] == "capacity"
        await ws.send(json.dumps({"type": "credit", "ref": 3, "tasks": 1}))
        assert (await until_frame(ws, "error"))["ref"] == 3  # credit before take
        await ws.send(json.dumps({"type": "take", "ref": 4, "capacity": 1, "surprise": True}))
        assert (await until_frame(ws, "error"))["details"]["field"] == "surprise"
        await ws.send(json.dumps({"type": "ping", "ref": 5}))
        assert (await until_frame(ws, "pong"))["ref"] == 5  # the connection lives on


async def test_a_closed_socket_gives_its_parked_claim_back(hub: HubProcess, admin: httpx.Client) -> None:
    """A connection that goes away while its claim waits for work takes no task with it."""
    capability = unique("cap")
    worker = ok(call(admin, "agora.agents.register", agent_name=unique("worker"), capabilities=[capability]))
    async with connect(hub, worker["agent_token"], types="none") as ws:
        await ws.send(json.dumps({"type": "take", "capacity": 1}))
        await until_frame(ws, "taking")
    await asyncio.sleep(0.2)
    (task_id,) = assign(admin, capability)
    await asyncio.sleep(0.5)
    assert task_of(admin, task_id)["status"] == "pending"


async def test_the_stream_of_a_work_socket_carries_no_events(hub: HubProcess, admin: httpx.Client) -> None:
    worker = register(admin)
    async with connect(hub, worker["agent_token"], types="none") as ws:
        register(admin)  # an agent_registered event, and a message: neither comes down this socket
        ok(call(admin, "agora.messaging.send", to_agent=worker["agent_name"], content="x"))
        with pytest.raises(TimeoutError):
            await frame(ws, 0.5)


def test_types_none_is_refused_over_sse_mixed_with_other_types(hub: HubProcess, admin: httpx.Client) -> None:
    expect_error(admin.get("/events", params={"types": "none,agent_*"}, timeout=5), 400, "invalid_argument")


async def test_messages_are_pushed_no_faster_than_the_client_gives_credit(hub: HubProcess, admin: httpx.Client) -> None:
    worker = register(admin)
    async with connect(hub, worker["agent_token"], types="message_received", messages="2") as ws:
        ok(call(admin, "agora.messaging.send_batch", messages=[{"to_agent": worker["agent_name"], "content": n} for n in range(5)]))
        got = await taken_messages(ws, 2)
        assert [m["message"]["content"] for m in got] == [0, 1]
        with pytest.raises(TimeoutError):
            await taken_messages(ws, 1, 0.5)  # no room given: the other three wait in the inbox
        await ws.send(json.dumps({"type": "credit", "messages": 1}))
        assert [m["message"]["content"] for m in await taken_messages(ws, 1)] == [2]
        await ws.send(json.dumps({"type": "credit", "messages": 9}))  # never more than the window at once
        assert [m["message"]["content"] for m in await taken_messages(ws, 2)] == [3, 4]
        await ws.send(json.dumps({"type": "credit", "messages": -1, "ref": 7}))
        assert (await until_frame(ws, "error"))["ref"] == 7
    with pytest.raises(InvalidStatus) as refused:
        async with connect(hub, worker["agent_token"], messages="0"):
            pytest.fail("a window of 0 messages was accepted")
    assert refused.value.response.status_code == 400


async def taken_messages(ws: websockets.ClientConnection, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The next ``count`` pushed messages (batch frames opened)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        f = await frame(ws, max(0.01, deadline - time.monotonic()))
        events = f["events"] if f["type"] == "batch" else [f]
        got += [e for e in events if "message" in e]
    return got
