"""tasks: assign → claim → complete with 8 workers over HTTP, duplicates completed, and claim wake-up latency; then
SDK agent runtimes whose handlers take one task at a time, with tasks pushed over their WebSocket and over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agora.core.ids import new_id
from agora.store import open_store
from agora.core.services.agents import stored_fields
from agora.store.ops import agents as agent_ops
from agora.store.ops import tasks as task_ops
from agora_sdk.wire.agents import RegisterAgent

from ..bench import Bench, call_hub
from ..http import Connection, build_request
from ..report import ValueRecord, at_least, at_most
from ..servers import ROOT, HubSpec, Server, hub_server
from ..stores import StoreProvider

NAME = "tasks"
WORKERS = 8
BATCH = 50  # tasks per claim_batch and update_batch in the batched runs
TARGET_PER_SECOND = 2_000
TARGET_WAKE_P50_MS = 5.0


def _task_row(tenant_id: str, now: datetime) -> dict[str, Any]:
    return {
        "task_id": new_id("task"), "tenant_id": tenant_id, "task_type": "bench", "status": "pending", "assignee": None,
        "required_capabilities": ["work"], "preferred_agent_id": None, "claimed_by": None, "payload": {"n": 1},
        "result": None, "progress": 0, "notes": None, "priority": 2, "deadline": None, "max_attempts": 3, "attempts": 0,
        "depends_on": [], "run_if_dependency_fails": False, "has_dependents": False, "workflow_id": None, "idempotency_key": None,
        "lease_token": None, "fencing_token": 0, "lease_expires_at": None, "last_error": None, "created_by": "bench",
        "created_at": now, "updated_at": now, "available_at": now, "started_at": None, "finished_at": None,
    }  # fmt: skip


async def raw_cycle(spec: HubSpec, count: int, batch: int, workers: int = WORKERS) -> float:
    """The ceiling: the hub's own claim and complete operations on a fresh store (``spec``), called directly (no
    HTTP), ``batch`` tasks per claim and per completion transaction. The store is made by the caller: making a
    PostgreSQL database runs its own event loop."""
    store = open_store(spec.database_url, spec.data_dir)
    await store.start()
    try:
        now = datetime.now(UTC)

        def queue(conn: Any) -> None:
            for _ in range(count):
                task_ops.create(conn, _task_row("default", now), "bench")

        await store.write(queue)
        lease = timedelta(seconds=30)

        def register(conn: Any) -> list[dict[str, Any]]:
            fields = [stored_fields(RegisterAgent(agent_name=f"w{i}", capabilities=["work"])) for i in range(workers)]
            return [agent_ops.upsert(conn, "default", f, now, None)[0] for f in fields]

        agents = await store.write(register)

        def complete(conn: Any, agent: dict[str, Any], claimed: list[dict[str, Any]]) -> None:
            for task in claimed:
                changes = {"status": "completed", "lease_token": task["lease_token"]}
                task_ops.update_task(conn, task["task_id"], "default", agent["agent_id"], agent["agent_id"], changes, datetime.now(UTC))

        async def worker(i: int) -> int:
            agent = agents[i]
            done = 0
            while claimed := await store.write(task_ops.claim, agent, [], lease, datetime.now(UTC), batch):
                await store.write(complete, agent, claimed)
                done += len(claimed)
            return done

        started = time.perf_counter()
        done = sum(await asyncio.gather(*(worker(i) for i in range(workers))))
        return done / (time.perf_counter() - started)
    finally:
        await store.close()


async def _assign(port: int, key: str, count: int, batch: int = 1, connections: int = 8) -> float:
    """Queue ``count`` capability tasks from ``connections`` connections, ``batch`` per call (``assign`` for 1,
    ``assign_batch`` above); returns assigns/s."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    task = {"task_type": "bench", "required_capabilities": ["work"], "payload": {"n": 1}}
    path, body = ("/agora/task/assign", task) if batch == 1 else ("/agora/task/assign_batch", {"tasks": [task] * batch})
    request = build_request("POST", path, port, headers, json.dumps(body).encode())
    left = [count]

    async def producer(connection: Connection) -> None:
        while left[0] > 0:
            left[0] -= batch
            status, answer = await connection.send(request)
            if status != 200:
                raise RuntimeError(f"assign answered {status}: {answer[:200]!r}")

    async with contextlib.AsyncExitStack() as stack:
        pool = [await stack.enter_async_context(Connection(port)) for _ in range(connections)]
        started = time.perf_counter()
        await asyncio.gather(*(producer(c) for c in pool))
        return count / (time.perf_counter() - started)


def task_client(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.task_client", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "task client did not start"
    return proc


def client_result(proc: subprocess.Popen[str], out: Path) -> dict[str, Any]:
    if proc.wait(300) != 0:
        raise RuntimeError("task client failed")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _throughput(bench: Bench, store: StoreProvider, hub: Server, admin: str, tmp: Path, count: int, batch: int, ceiling: float) -> None:
    tokens_file = tmp / "tokens.txt"
    if not tokens_file.exists():
        tokens = [call_hub(hub, admin, "/agora/agents/register", {"agent_name": f"worker-{i}", "capabilities": ["work"]})["agent_token"] for i in range(WORKERS)]
        tokens_file.write_text("\n".join(tokens))
    calls = "claim + update per task" if batch == 1 else f"claim_batch + update_batch of {batch}"
    bench.step(f"{NAME}: assign {count:,} tasks over HTTP (8 connections)")
    assigned = asyncio.run(_assign(hub.port, admin, count))
    limit = bench.profile.load_seconds * 4
    bench.step(f"{NAME}: {WORKERS} workers claim and complete them ({calls}), for at most {limit:.0f}s")
    out = tmp / "workers.json"
    cpu = hub.cpu_seconds()
    started = time.perf_counter()
    result = client_result(task_client("workers", str(hub.port), str(tokens_file), str(count), str(limit), str(batch), str(out)), out)
    elapsed = time.perf_counter() - started
    completed = result["completed"]
    rate = len(set(completed)) / result["span_seconds"]
    duplicates = len(completed) - len(set(completed))
    cores = (hub.cpu_seconds() - cpu) / elapsed
    kind = store.kind.value
    bench.add(ValueRecord(NAME, kind, "assign over HTTP (8 connections)", assigned, "/s"))
    bench.add(ValueRecord(NAME, kind, f"claim → complete, {WORKERS} workers over HTTP, {calls}", rate, "/s",
                          at_least(rate, TARGET_PER_SECOND, f"≥ {TARGET_PER_SECOND:,}/s"),
                          f"{rate / ceiling:.2f}× the raw cycle; {len(set(completed)):,} of {count:,} done; hub {cores:.2f} cores; "
                          f"{result['refused_completions']} completions refused"))
    bench.add(ValueRecord(NAME, kind, f"tasks completed twice ({calls})", duplicates, "", at_most(duplicates, 0, "0")))


def _pipeline(bench: Bench, store: StoreProvider, hub: Server, admin: str, tmp: Path, count: int, ceiling: float) -> None:
    """Producer and workers at once: ``assign_batch`` from 2 connections while the 8 workers claim and complete."""
    bench.step(f"{NAME}: assign_batch of {BATCH} from 2 connections while {WORKERS} workers claim and complete ({BATCH} per call)")
    out = tmp / "pipeline.json"
    cpu = hub.cpu_seconds()
    started, wall = time.perf_counter(), time.time()
    workers = task_client("workers", str(hub.port), str(tmp / "tokens.txt"), str(count), str(bench.profile.load_seconds * 4), str(BATCH), str(out))
    assigned = asyncio.run(_assign(hub.port, admin, count, BATCH, connections=2))
    result = client_result(workers, out)
    cores = (hub.cpu_seconds() - cpu) / (time.perf_counter() - started)
    completed = result["completed"]
    rate = len(set(completed)) / (result["last_completed_at"] - wall)
    duplicates = len(completed) - len(set(completed))
    kind = store.kind.value
    bench.add(ValueRecord(NAME, kind, f"assign_batch of {BATCH} while the workers run (2 connections)", assigned, "/s"))
    bench.add(ValueRecord(NAME, kind, f"assign → claim → complete at once, first assign to last completion, batches of {BATCH}", rate, "/s",
                          at_least(rate, TARGET_PER_SECOND, f"≥ {TARGET_PER_SECOND:,}/s"),
                          f"{rate / ceiling:.2f}× the raw cycle; {len(set(completed)):,} of {count:,} done; hub {cores:.2f} cores"))
    bench.add(ValueRecord(NAME, kind, "tasks completed twice (at once)", duplicates, "", at_most(duplicates, 0, "0")))


RUNTIME_TARGET = 0.6  # × the raw one-per-call cycle


def _runtimes(bench: Bench, store: StoreProvider, hub: Server, admin: str, tmp: Path, count: int, ceiling: float) -> None:
    """SDK ``Agent``s (one process, as an operator would run them) handling tasks one at a time: 8 runtimes of
    capacity 1 and 1 of capacity 8, each over the WebSocket channel and over HTTP claims."""
    kind = store.kind.value
    for runtimes, capacity in ((WORKERS, 1), (1, WORKERS)):
        for channel in (True, False):
            how = "pushed over the WebSocket" if channel else "claimed over HTTP"
            label = f"SDK runtimes, {runtimes} × capacity {capacity}, tasks {how}"
            bench.step(f"{NAME}: assign {count:,} tasks; {label}")
            asyncio.run(_assign(hub.port, admin, count, BATCH, connections=2))
            out = tmp / "runtimes.json"
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.runtime_agents", f"http://127.0.0.1:{hub.port}", admin, str(runtimes), str(capacity),
                 str(count), str(bench.profile.load_seconds * 4), "1" if channel else "0", str(out)],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert proc.stdin is not None and proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the runtimes did not start")
            cpu = hub.cpu_seconds()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            if proc.wait(300) != 0:
                raise RuntimeError("the runtimes failed")
            result = json.loads(out.read_text())
            rate = result["handled"] / result["span_seconds"]
            agent_us = result["cpu_seconds"] / max(1, result["handled"]) * 1e6
            hub_us = (hub.cpu_seconds() - cpu) / max(1, result["handled"]) * 1e6
            check = at_least(rate / ceiling, RUNTIME_TARGET, f"≥ {RUNTIME_TARGET}× the raw cycle") if channel else None
            bench.add(ValueRecord(NAME, kind, f"{label}, handled", rate, "/s", check,
                                  f"{rate / ceiling:.2f}× the raw one-per-call cycle; {result['handled']:,} of {count:,}; "
                                  f"agent CPU {agent_us:.0f} µs/task, hub {hub_us:.0f} µs/task"))
            bench.add(ValueRecord(NAME, kind, f"{label}, agent CPU per task", agent_us, "µs"))
            bench.add(ValueRecord(NAME, kind, f"{label}, tasks handled twice", result["handled_twice"], "", at_most(result["handled_twice"], 0, "0")))


def _wake(bench: Bench, store: StoreProvider, hub: Server, admin: str, tmp: Path, samples: int) -> None:
    worker = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "waker"})
    bench.step(f"{NAME}: a worker parked in claim(wait); {samples} tasks assigned one at a time")
    out = tmp / "wake.json"
    result = client_result(task_client("wake", str(hub.port), worker["agent_token"], admin, str(samples), str(out)), out)
    wake = result["wake_ms"]
    p50 = statistics.median(wake)
    p99 = statistics.quantiles(wake, n=100)[98]
    bench.add(ValueRecord(NAME, store.kind.value, "assign → waiting worker has it, p50", p50, "ms",
                          at_most(p50, TARGET_WAKE_P50_MS, f"≤ {TARGET_WAKE_P50_MS:g} ms"), f"p99 {p99:.2f} ms, {samples} samples"))


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    count = 2_000 if bench.profile.load_seconds < 5 else 10_000
    ceilings = {}
    for batch in (1, BATCH):
        bench.step(f"{NAME}: ceiling — the claim and complete store operations, {batch} per call, {WORKERS} concurrent callers, no HTTP")
        ceilings[batch] = asyncio.run(raw_cycle(store.fresh(), count, batch))
        bench.add(ValueRecord(NAME, store.kind.value, f"raw claim + complete on the store, {batch} per call ({WORKERS} callers, ceiling)", ceilings[batch], "/s"))
    spec = store.fresh()
    with tempfile.TemporaryDirectory(prefix="agora-bench-tasks-") as tmp, hub_server(spec) as hub:
        # Wake-up first, on an empty queue: tasks the throughput run left unclaimed would be walked by every claim of
        # the waker, which lacks their capability, and the figure would measure that instead.
        _wake(bench, store, hub, spec.admin_key, Path(tmp), 30 if count == 2_000 else 200)
        for batch in (1, BATCH):
            _throughput(bench, store, hub, spec.admin_key, Path(tmp), count, batch, ceilings[batch])
        _pipeline(bench, store, hub, spec.admin_key, Path(tmp), count, ceilings[BATCH])
        _runtimes(bench, store, hub, spec.admin_key, Path(tmp), count, ceilings[1])
