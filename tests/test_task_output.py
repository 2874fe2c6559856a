"""Streamed task output (issue 63): a running task's chunks stored in order by its lease holder alone, read after a
cursor (agora.task.watch, long-polling), streamed over SSE with resume by Last-Event-ID (none missed, none twice,
through a proxy that cuts the stream), bounded per task with the overflow counted, an SDK handler's ``emit`` and
``client.task.stream``, and every acknowledged chunk still there after the hub is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from agora_sdk import Agent
from agora_sdk.client import AsyncAgoraClient

from .conftest import call, expect_error, fresh_postgres_url, new_tenant, ok, unique
from .hubproc import HubProcess
from .tcp_proxy import proxy

BOUND = 50


@pytest.fixture(scope="module")
def small_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("out-sqlite"), env={"AGORA_TASK_OUTPUT_CHUNKS": str(BOUND)}).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def small_postgres(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("out-pg"), database_url=fresh_postgres_url(postgres_url), env={"AGORA_TASK_OUTPUT_CHUNKS": str(BOUND)}).start()
    yield hub
    hub.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def small(request: pytest.FixtureRequest) -> HubProcess:
    return request.getfixturevalue(f"small_{request.param}")


def _claimed(hub: HubProcess, admin: httpx.Client) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A worker agent, a task claimed by it, and its lease token."""
    worker = ok(call(admin, "agora.agents.register", agent_name=unique("writer"), capabilities=["write"]))
    task = ok(call(admin, "agora.task.assign", task_type="write", assignee=worker["agent_id"]))
    with hub.client(worker["agent_token"]) as as_worker:
        claim = ok(call(as_worker, "agora.task.claim"))
    assert claim["task"]["task_id"] == task["task_id"]
    return worker, claim["task"], claim["lease"]["token"]


def _sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if line:
            key, _, value = line.partition(": ")
            if key and not key.startswith(":"):
                event[key] = value
            continue
        if "event" in event:
            yield {**event, "data": json.loads(event["data"])}
        event = {}


def test_chunks_come_in_order_from_the_lease_holder_alone_and_the_bound_counts_the_rest(small: HubProcess) -> None:
    with small.client() as admin:
        worker, task, lease = _claimed(small, admin)
        other = ok(call(admin, "agora.agents.register", agent_name=unique("other")))
        with small.client(worker["agent_token"]) as as_worker, small.client(other["agent_token"]) as as_other, new_tenant(admin, small) as stranger:
            first = ok(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": "Hel"}, {"text": "lo"}]))
            assert (first["first_seq"], first["last_seq"], first["overflowed"]) == (1, 2, 0)
            ok(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"data": {"step": 1}}, {"data": None}]))
            expect_error(call(as_other, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": "x"}]), 409, "conflict")
            expect_error(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token="lease_" + "0" * 32, chunks=[{"text": "x"}]), 409, "conflict")
            expect_error(call(stranger, "agora.task.watch", task_id=task["task_id"]), 404, "not_found")
            for bad in ([], [{}], [{"text": "a", "data": 1}]):
                expect_error(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=bad), 422, "invalid_argument")
            seen = ok(call(admin, "agora.task.watch", task_id=task["task_id"]))
            assert [(c["seq"], c["kind"], c["text"], c["data"]) for c in seen["chunks"]] == [
                (1, "text", "Hel", None), (2, "text", "lo", None), (3, "data", None, {"step": 1}), (4, "data", None, None),
            ]  # fmt: skip
            assert (seen["status"], seen["ended"], seen["next_after"]) == ("in_progress", False, 4)
            started = time.monotonic()
            assert ok(call(admin, "agora.task.watch", task_id=task["task_id"], after=4, wait=0.5))["chunks"] == []  # waited, nothing new
            assert time.monotonic() - started >= 0.45
            over = ok(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": "ab"}] * (BOUND - 4 + 3)))
            assert (over["last_seq"], over["overflowed"]) == (BOUND, 3)
            ok(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": "xyz"}]))
            ok(call(as_worker, "agora.task.update", task_id=task["task_id"], lease_token=lease, status="completed"))
            expect_error(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": "late"}]), 409, "conflict")
        rest = ok(call(admin, "agora.task.watch", task_id=task["task_id"], after=BOUND - 1, wait=5))
        assert [c["seq"] for c in rest["chunks"]] == [BOUND, BOUND + 1] and rest["ended"] and rest["status"] == "completed"
        assert rest["chunks"][-1]["kind"] == "overflow" and rest["chunks"][-1]["data"] == {"chunks": 4, "bytes": 3 * 2 + 3}


def test_the_sse_stream_resumes_after_a_cut_with_none_missed_or_doubled(sqlite_hub: HubProcess) -> None:
    hub = sqlite_hub
    with hub.client() as admin:
        worker, task, lease = _claimed(hub, admin)
        with hub.client(worker["agent_token"]) as as_worker:
            for n in range(1, 11):
                ok(call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": f"c{n}"}]))
        headers = {"Authorization": admin.headers["Authorization"]}
        url = f"/tasks/{task['task_id']}/output/stream"
        with httpx.stream("GET", hub.url + url, headers=headers, timeout=10) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            got = []
            for event in _sse(response):
                got.append(event)
                if len(got) == 4:
                    break
        assert [(e["event"], e["id"], e["data"]["text"]) for e in got] == [("chunk", str(n), f"c{n}") for n in range(1, 5)]
        for cursor in ({"Last-Event-ID": "4"}, {}):
            params = {} if cursor else {"after": "4"}
            with httpx.stream("GET", hub.url + url, headers={**headers, **cursor}, params=params, timeout=10) as response:
                again = [e for _, e in zip(range(6), _sse(response))]
            assert [e["id"] for e in again] == [str(n) for n in range(5, 11)]
        for bad, status in (({"Last-Event-ID": "x"}, 400), ({}, 404)):
            target = url if bad else url.replace(task["task_id"], "task_" + "0" * 24)
            assert httpx.get(hub.url + target, headers={**headers, **bad}, timeout=10).status_code == status
        assert httpx.get(hub.url + url, timeout=10).status_code == 401

        # Through a proxy that cuts every connection: the SDK's stream reconnects from its last chunk until the end.
        with proxy(hub.port) as network:
            async def watch() -> list[int]:
                async with AsyncAgoraClient(network.url, admin.headers["Authorization"].removeprefix("Bearer ")) as client:
                    return [c.seq async for c in client.task.stream(task["task_id"])]

            def emit_and_cut() -> None:
                with hub.client(worker["agent_token"]) as w:
                    for n in range(11, 211):
                        ok(call(w, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": f"c{n}"}]))
                        if n % 50 == 0:
                            network.cut(0.0)
                    ok(call(w, "agora.task.update", task_id=task["task_id"], lease_token=lease, status="completed"))

            emitter = threading.Thread(target=emit_and_cut)
            emitter.start()
            seqs = asyncio.run(asyncio.wait_for(watch(), 60))
            emitter.join(30)
            assert network.cuts >= 3
        assert seqs == list(range(1, 211))  # in order, none missed, none twice, and the stream ended with the task


async def test_a_websocket_watcher_gets_batches_resumes_by_cursor_and_is_closed_at_the_end(hub: HubProcess) -> None:
    with hub.client() as admin:
        worker, task, lease = _claimed(hub, admin)
        stranger = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("stranger")))["key"]
    url = f"ws://127.0.0.1:{hub.port}/tasks/{task['task_id']}/output/ws"
    headers = {"Authorization": f"Bearer {hub.admin_key}"}

    def emit(*texts: str) -> None:
        with hub.client(worker["agent_token"]) as w:
            for text in texts:
                ok(call(w, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": text}]))

    emit("a", "b")
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "output" and [c["text"] for c in first["chunks"]] == ["a", "b"] and first["next_after"] == 2
        await asyncio.to_thread(emit, "c")
        live = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert [(c["seq"], c["text"]) for c in live["chunks"]] == [(3, "c")]
    await asyncio.to_thread(emit, "d", "e")
    async with websockets.connect(url + "?after=3", additional_headers=headers, open_timeout=10) as ws:
        texts: list[str] = []
        while len(texts) < 2:
            texts += [c["text"] for c in json.loads(await asyncio.wait_for(ws.recv(), 10))["chunks"]]
        assert texts == ["d", "e"]  # after the cursor: none missed, none twice
        with hub.client(worker["agent_token"]) as w:
            ok(call(w, "agora.task.update", task_id=task["task_id"], lease_token=lease, status="completed"))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "end", "status": "completed"}
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1000
    for key, status in ((stranger, 404), ("agora_sk_" + "x" * 43, 401)):  # a refusal is the handshake's answer
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10)
        assert refused.value.response.status_code == status


async def test_an_sdk_handler_emits_as_it_goes_and_a_watcher_sees_it_live(hub: HubProcess) -> None:
    small = hub
    generate_type = unique("generate")
    agent = Agent(unique("llm"), url=small.url, api_key=small.admin_key, capabilities=[generate_type])
    release = asyncio.Event()

    @agent.on_task(generate_type)
    async def generate(task: Any) -> dict[str, Any]:
        for n in range(300):
            await task.emit(f"token{n} ")
            if n == 99:
                await task.output.flush()
                await release.wait()  # the watcher has seen the first hundred while the task still runs
        await task.emit(data={"done": True})
        return {"tokens": 300}

    await agent.start()
    try:
        async with AsyncAgoraClient(small.url, small.admin_key) as client:
            task = await client.task.assign(generate_type, required_capabilities=[generate_type])
            seen: list[Any] = []
            async for chunk in client.task.stream(task.task_id):
                seen.append(chunk)
                if len(seen) == 100:
                    assert (await client.task.get(task.task_id)).status == "in_progress"  # live, not at the end
                    release.set()
            assert [c.text for c in seen[:-1]] == [f"token{n} " for n in range(300)] and seen[-1].data == {"done": True}
            assert [c.seq for c in seen] == list(range(1, 302))
            assert (await client.task.get(task.task_id)).status == "completed"
    finally:
        await agent.stop()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_every_acknowledged_chunk_survives_a_kill(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    """The hub is killed with SIGKILL while a worker emits: every chunk it acknowledged is there after the restart,
    numbered without gaps (those of the emit in flight are all there, or none)."""
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if engine == "postgres" else None
    hub = HubProcess(tmp_path / "hub", database_url=url).start()
    try:
        with hub.client() as admin:
            worker, task, lease = _claimed(hub, admin)
        acknowledged = [0]

        def emit_until_killed() -> None:
            with hub.client(worker["agent_token"]) as as_worker:
                for n in range(10_000):
                    try:
                        done = call(as_worker, "agora.task.emit", task_id=task["task_id"], lease_token=lease, chunks=[{"text": f"{n}-{i}"} for i in range(5)])
                    except httpx.HTTPError:
                        return
                    if done.status_code != 200:
                        return
                    acknowledged[0] = done.json()["last_seq"]

        emitter = threading.Thread(target=emit_until_killed)
        emitter.start()
        deadline = time.monotonic() + 30
        while acknowledged[0] < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        hub.stop(signal.SIGKILL)
        emitter.join(30)
        hub.start()
        with hub.client() as admin:
            chunks, after = [], 0
            while batch := ok(call(admin, "agora.task.watch", task_id=task["task_id"], after=after, limit=1000))["chunks"]:
                chunks += batch
                after = batch[-1]["seq"]
        assert acknowledged[0] >= 200 and len(chunks) >= acknowledged[0] and len(chunks) % 5 == 0
        assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
        assert [c["text"] for c in chunks] == [f"{n}-{i}" for n in range(len(chunks) // 5) for i in range(5)]
    finally:
        hub.stop()
