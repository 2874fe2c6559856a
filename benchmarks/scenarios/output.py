"""output: a task's output at 500 chunks/s — from emit to a watcher of its SSE stream (p50, p99), and the hub CPU a chunk costs beside a plain send's.

Two arms, each ``SECONDS`` long, paced at ``RATE`` calls a second by two threads: plain sends (``agora.messaging.send``,
one message a call, to an agent nobody reads for), then one chunk a call (``agora.task.emit`` on a claimed task: the
worst case, the SDK batches what comes while a call is in flight) with a watcher on
``/tasks/{id}/output/stream`` noting when each chunk arrives (each chunk carries the time it was emitted). Hub CPU per
call in each arm; the goal is a chunk at most 1.2× a send's CPU, and p50 from emit to watcher at most 50 ms.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any

import httpx

from ..bench import Bench, call_hub
from ..report import ValueRecord, at_most
from ..servers import Server, hub_server
from ..stores import StoreProvider

NAME = "output"
RATE = 500
SECONDS = 10.0
THREADS = 2
TARGET_COST, TARGET_P50 = 1.2, 0.05


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    with hub_server(spec, "--no-local-node") as hub:
        admin = spec.admin_key
        sink = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "bench-sink"})
        worker = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "bench-writer", "capabilities": ["write"]})
        bench.step(f"{NAME}: plain sends, {RATE}/s for {SECONDS:g} s")
        send_cost, sends = _paced(hub, admin, lambda n: ("/agora/messaging/send", {"to_agent": sink["agent_id"], "content": {"n": n}}))
        call_hub(hub, admin, "/agora/task/assign", {"task_type": "write", "assignee": worker["agent_id"]})
        claim = call_hub(hub, worker["agent_token"], "/agora/task/claim", {"lease_seconds": 600})
        task_id, lease = claim["task"]["task_id"], claim["lease"]["token"]
        arrivals: list[float] = []
        watcher = threading.Thread(target=_watch, args=(hub, admin, task_id, arrivals), daemon=True)
        watcher.start()
        time.sleep(0.5)
        bench.step(f"{NAME}: one chunk a call, {RATE}/s for {SECONDS:g} s, watched over SSE")

        def chunk(n: int) -> tuple[str, dict[str, Any]]:
            return "/agora/task/emit", {"task_id": task_id, "lease_token": lease, "chunks": [{"text": f"{time.time():.6f}"}]}

        emit_cost, chunks = _paced(hub, worker["agent_token"], chunk)
        call_hub(hub, worker["agent_token"], "/agora/task/update", {"task_id": task_id, "lease_token": lease, "status": "completed"})
        watcher.join(30)
    kind = store.kind.value
    lags = sorted(arrivals)
    p50, p99 = (statistics.quantiles(lags, n=100)[i] for i in (49, 98)) if len(lags) >= 100 else (float("nan"),) * 2
    ratio = emit_cost / send_cost
    bench.add(ValueRecord(NAME, kind, "a chunk from emit to an SSE watcher: p50", round(p50 * 1000, 1), "ms", at_most(p50, TARGET_P50, "≤ 50 ms"),
                          notes=f"{len(lags):,} of {chunks:,} chunks watched ({chunks / SECONDS:,.0f}/s)"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, "a chunk from emit to an SSE watcher: p99", round(p99 * 1000, 1), "ms", notes=f"max {max(lags, default=0) * 1000:,.0f} ms"))
    bench.add(ValueRecord(
        NAME, kind, "hub CPU per chunk (one a call) over a plain send's", round(ratio, 2), "×", at_most(ratio, TARGET_COST, "≤ 1.2×"),
        notes=f"{emit_cost * 1e6:,.0f} µs a chunk ({chunks:,}), {send_cost * 1e6:,.0f} µs a send ({sends:,}), same run",
    ))  # fmt: skip


def _paced(hub: Server, key: str, body: Any) -> tuple[float, int]:
    """``RATE`` calls a second for ``SECONDS`` (``body(n)`` → path and JSON): hub CPU seconds per call, and calls made."""
    done = [0] * THREADS
    before = hub.cpu_seconds()

    def pace(slot: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            step, start = THREADS / RATE, time.monotonic()
            n = slot
            while (due := start + (n // THREADS) * step) < start + SECONDS:
                time.sleep(max(0.0, due - time.monotonic()))
                path, payload = body(n)
                client.post(path, json=payload).raise_for_status()
                done[slot] += 1
                n += THREADS

    threads = [threading.Thread(target=pace, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = sum(done)
    return (hub.cpu_seconds() - before) / calls, calls


def _watch(hub: Server, key: str, task_id: str, lags: list[float]) -> None:
    """Follow the task's output stream to its end, noting each chunk's time from its emit."""
    headers = {"Authorization": f"Bearer {key}"}
    url = f"http://127.0.0.1:{hub.port}/tasks/{task_id}/output/stream"
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=60)) as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "chunk":
                lags.append(time.time() - float(json.loads(line[6:])["text"]))
            elif line.startswith("data: ") and event == "end":
                return
