"""SDK agent runtimes for the task benchmark, in a process of their own: handlers that return at once, one task each.

python -m benchmarks.runtime_agents URL ADMIN_KEY RUNTIMES CAPACITY EXPECTED SECONDS CHANNEL OUT
    RUNTIMES ``Agent``s of ``CAPACITY`` (concurrency) each, with the capability ``work``, take ``bench`` tasks until
    EXPECTED were handled or SECONDS passed; CHANNEL 1 takes them over the WebSocket channel, 0 over HTTP. Prints
    "ready" once every runtime is registered and connected, then starts on a line from stdin. OUT gets the tasks
    handled (and how many more than once), the seconds from the first to the last hand-off and this process's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from agora_sdk import Agent


async def main(url: str, admin: str, runtimes: int, capacity: int, expected: int, seconds: float, channel: bool) -> dict[str, Any]:
    handled: list[str] = []
    distinct: set[str] = set()  # (kept as it grows: counting the list's distinct ids per task cost O(n) each)
    all_handled = asyncio.Event()
    first = [0.0]

    agents = [Agent(f"runtime-{capacity}-{i}", capabilities=["work"], url=url, api_key=admin, concurrency=capacity, channel=channel) for i in range(runtimes)]
    for agent in agents:

        @agent.on_task("bench")
        async def handle(task: Any) -> dict[str, bool]:
            if not handled:
                first[0] = time.perf_counter()
            handled.append(task.task_id)
            distinct.add(task.task_id)
            if len(distinct) >= expected:
                all_handled.set()
            return {"ok": True}

    for agent in agents:
        await agent.start()
    if channel:
        await asyncio.gather(*(agent.channel.up.wait() for agent in agents if agent.channel is not None))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time()
    with contextlib.suppress(TimeoutError):  # the run's time is up: the figures say how many were handled
        await asyncio.wait_for(all_handled.wait(), seconds)
    last = time.perf_counter()
    cpu = time.process_time() - cpu
    await asyncio.gather(*(agent.stop() for agent in agents))
    return {
        "handled": len(distinct), "handled_twice": len(handled) - len(distinct),
        "span_seconds": max(last - first[0], 1e-9), "cpu_seconds": cpu,
    }  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    url, admin, runtimes, capacity, expected, seconds, channel, out = sys.argv[1:]
    result = uvloop.run(main(url, admin, int(runtimes), int(capacity), int(expected), float(seconds), channel == "1"))
    Path(out).write_text(json.dumps(result))
