"""workflows: many five-step workflows over four worker agents, against the raw task cycle of the same store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from ..bench import Bench, call_hub
from ..http import Connection, build_request
from ..report import ValueRecord, at_most
from ..servers import hub_server
from ..stores import StoreProvider
from .tasks import client_result, raw_cycle, task_client

NAME = "workflows"
AGENTS = 4
STEPS = 5
TARGET_DISPATCH_P50_MS = 10.0
SEQUENTIAL = 30  # workflows run alone, for the hand-off latency (under load it measures the queue, not the engine)


def _definition(n: int) -> dict[str, object]:
    """Five steps in a row, each for any agent with 'work', each reading the one before."""
    steps = [{"name": "s0", "required_capabilities": ["work"], "input": {"n": n}}]
    steps += [{"name": f"s{i}", "required_capabilities": ["work"], "input": {"before": f"${{steps.s{i - 1}.result}}"}} for i in range(1, STEPS)]
    return {"workflow_name": f"bench-{n}", "steps": steps}


async def _create(port: int, key: str, count: int, connections: int = 8) -> list[str]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    made: list[str] = []
    left = list(range(count))

    async def producer(connection: Connection) -> None:
        while left:
            n = left.pop()
            status, body = await connection.send(build_request("POST", "/agora/workflow/create", port, headers, json.dumps(_definition(n)).encode()))
            if status != 200:
                raise RuntimeError(f"create answered {status}: {body[:200]!r}")
            made.append(json.loads(body)["workflow_id"])

    async with contextlib.AsyncExitStack() as stack:
        pool = [await stack.enter_async_context(Connection(port)) for _ in range(connections)]
        await asyncio.gather(*(producer(c) for c in pool))
    return made


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    count = 200 if bench.profile.load_seconds < 5 else 1_000
    bench.step(f"{NAME}: ceiling — the raw claim + complete cycle on the store, {AGENTS} callers, no HTTP")
    raw = asyncio.run(raw_cycle(store.fresh(), count * STEPS, 1, AGENTS))
    kind = store.kind.value
    bench.add(ValueRecord(NAME, kind, f"raw task cycle on the store ({AGENTS} callers, ceiling)", raw, "tasks/s"))
    spec = store.fresh()
    with tempfile.TemporaryDirectory(prefix="agora-bench-wf-") as tmp, hub_server(spec) as hub:
        admin = spec.admin_key
        tokens = [call_hub(hub, admin, "/agora/agents/register", {"agent_name": f"wf-worker-{i}", "capabilities": ["work"]})["agent_token"] for i in range(AGENTS)]
        (Path(tmp) / "tokens.txt").write_text("\n".join(tokens))
        out = Path(tmp) / "workers.json"
        limit = max(120.0, bench.profile.load_seconds * 30)
        bench.step(f"{NAME}: {AGENTS} workers take the steps of {count:,} {STEPS}-step workflows created from 8 connections")
        workers = task_client("workers", str(hub.port), str(Path(tmp) / "tokens.txt"), str(count * STEPS), str(limit), "1", str(out))
        started = time.perf_counter()
        made = asyncio.run(_create(hub.port, admin, count))
        result = client_result(workers, out)
        elapsed = time.perf_counter() - started
        with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {admin}"}, timeout=30) as http:
            statuses = [http.post("/agora/workflow/status", json={"workflow_id": w}).json() for w in made[: min(200, count)]]
            bench.step(f"{NAME}: hand-off latency — {SEQUENTIAL} workflows one after the other, the workers idle between steps")
            workers = task_client("workers", str(hub.port), str(Path(tmp) / "tokens.txt"), str(SEQUENTIAL * STEPS), "120", "1", str(out))
            gaps = [g for g in (_one_at_a_time(http, n) for n in range(SEQUENTIAL)) for g in g if g is not None]
            client_result(workers, out)
    done = sum(1 for s in statuses if s["status"] == "completed")
    p50, p99 = statistics.median(gaps), statistics.quantiles(gaps, n=100)[98]
    tasks_per_second = len(set(result["completed"])) / result["span_seconds"]
    bench.add(ValueRecord(NAME, kind, f"{count:,} workflows of {STEPS} steps, {AGENTS} agents: all done in", elapsed, "s",
                          notes=f"{count / elapsed:,.1f} workflows/s; {tasks_per_second:,.0f} step tasks/s ({tasks_per_second / raw:.2f}× the raw cycle); {done} of {len(statuses)} sampled completed"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, "a step finished → a worker has the next step's task, p50", p50, "ms",
                          at_most(p50, TARGET_DISPATCH_P50_MS, f"≤ {TARGET_DISPATCH_P50_MS:g} ms"), f"p99 {p99:.2f} ms over {len(gaps):,} hand-offs"))  # fmt: skip


def _one_at_a_time(http: httpx.Client, n: int) -> list[float | None]:
    created = http.post("/agora/workflow/create", json=_definition(n)).json()
    deadline = time.monotonic() + 30
    while (status := http.post("/agora/workflow/status", json={"workflow_id": created["workflow_id"]}).json())["status"] == "running":
        if time.monotonic() > deadline:
            raise RuntimeError("a workflow did not finish within 30 s")
        time.sleep(0.02)
    return [_handoff_ms(http, earlier, later) for earlier, later in zip(status["steps"], status["steps"][1:], strict=False)]


def _handoff_ms(http: httpx.Client, earlier: dict[str, object], later: dict[str, object]) -> float | None:
    """From a step finishing (its task completed) to a worker holding the next step's task."""
    if not earlier["finished_at"] or not later["task_ids"]:
        return None
    task = http.post("/agora/task/get", json={"task_id": later["task_ids"][0]}).json()  # type: ignore[index]
    return (_t(task["started_at"]) - _t(str(earlier["finished_at"]))) * 1000 if task.get("started_at") else None


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
