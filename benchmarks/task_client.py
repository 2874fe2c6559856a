"""Task workers and a producer for the task benchmarks, run as their own process with the lightweight HTTP client.

python -m benchmarks.task_client workers PORT TOKENS_FILE EXPECTED SECONDS BATCH OUT
    One worker per token: claim (long-poll), then complete with the lease, until EXPECTED completions or SECONDS;
    BATCH 1 calls claim and update per task, more calls claim_batch and update_batch for up to BATCH tasks.
    OUT gets the ids of the tasks each completion acknowledged, the seconds from start to the last one and the wall
    clock time of the last one.
python -m benchmarks.task_client wake PORT WORKER_TOKEN ASSIGNER_KEY SAMPLES OUT
    A worker waits in claim(wait=…); the assigner queues one task at a time: OUT gets assign-sent → claim-returned ms.
Each prints "ready" once connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from .http import Connection, build_request


def _call(port: int, key: str, path: str, payload: dict[str, Any]) -> bytes:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return build_request("POST", path, port, headers, json.dumps(payload).encode())


async def _json(connection: Connection, request: bytes) -> dict[str, Any]:
    status, body = await connection.send(request)
    if status != 200:
        raise RuntimeError(f"hub answered {status}: {body[:300]!r}")
    result: dict[str, Any] = json.loads(body)
    return result


async def workers(port: int, tokens: list[str], expected: int, seconds: float, batch: int) -> dict[str, Any]:
    done: list[str] = []
    conflicts = [0]
    deadline = time.perf_counter() + seconds
    last = [0.0]
    last_wall = [0.0]

    def completed(task_id: str) -> None:
        done.append(task_id)
        last[0] = time.perf_counter()
        last_wall[0] = time.time()

    async def one_at_a_time(token: str, connection: Connection) -> None:
        claim = _call(port, token, "/agora/task/claim", {"wait": 1})
        while time.perf_counter() < deadline and len(done) < expected:
            claimed = await _json(connection, claim)
            task, lease = claimed["task"], claimed["lease"]
            if task is None:
                continue
            update = {"task_id": task["task_id"], "lease_token": lease["token"], "status": "completed", "result": {"ok": True}}
            status, _ = await connection.send(_call(port, token, "/agora/task/update", update))
            if status == 200:
                completed(task["task_id"])
            else:
                conflicts[0] += 1

    async def batched(token: str, connection: Connection) -> None:
        claim = _call(port, token, "/agora/task/claim_batch", {"wait": 1, "max_tasks": batch})
        while time.perf_counter() < deadline and len(done) < expected:
            claims = (await _json(connection, claim))["claims"]
            if not claims:
                continue
            updates = [
                {"task_id": c["task"]["task_id"], "lease_token": c["lease"]["token"], "status": "completed", "result": {"ok": True}}
                for c in claims
            ]
            answer = await _json(connection, _call(port, token, "/agora/task/update_batch", {"updates": updates}))
            for result in answer["results"]:
                if result["error"] is None:
                    completed(result["task_id"])
                else:
                    conflicts[0] += 1

    work = one_at_a_time if batch == 1 else batched
    async with contextlib.AsyncExitStack() as stack:
        connections = [await stack.enter_async_context(Connection(port)) for _ in tokens]
        print("ready", flush=True)
        started = time.perf_counter()
        await asyncio.gather(*(work(t, c) for t, c in zip(tokens, connections)))
    span = max(last[0] - started, 1e-9)
    return {"completed": done, "refused_completions": conflicts[0], "span_seconds": span, "last_completed_at": last_wall[0]}


async def wake(port: int, worker: str, assigner: str, samples: int) -> dict[str, Any]:
    latencies: list[float] = []
    async with Connection(port) as claimer, Connection(port) as producer:
        print("ready", flush=True)
        claim = _call(port, worker, "/agora/task/claim", {"wait": 10})
        for n in range(samples):
            waiting = asyncio.create_task(_json(claimer, claim))
            await asyncio.sleep(0.02)  # the claim is parked before the task is queued
            sent = time.perf_counter()
            await _json(producer, _call(port, assigner, "/agora/task/assign", {"task_type": "wake", "assignee": "waker", "payload": {"n": n}}))
            claimed = await waiting
            latencies.append((time.perf_counter() - sent) * 1000)
            task, lease = claimed["task"], claimed["lease"]
            update = {"task_id": task["task_id"], "lease_token": lease["token"], "status": "completed"}
            await _json(claimer, _call(port, worker, "/agora/task/update", update))
    return {"wake_ms": latencies}


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "workers":
        port, tokens_file, expected, seconds, batch, out = args
        tokens = Path(tokens_file).read_text().split()
        result = uvloop.run(workers(int(port), tokens, int(expected), float(seconds), int(batch)))
    else:
        port, worker, assigner, samples, out = args
        result = uvloop.run(wake(int(port), worker, assigner, int(samples)))
    result["cpu_seconds"] = time.process_time()
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
