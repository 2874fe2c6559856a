"""An SDK agent runtime for the channel tests, as a process of its own (to be killed with -9).

python -m tests.channel_runtime URL KEY NAME OUT [--capability C] [--lease S] [--concurrency N] [--hold S]

Takes every task type; each task's id is appended to OUT (one line, flushed) when its handler starts; ``--hold`` makes
the handler sit on it that many seconds.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agora_sdk import Agent


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("url", "key", "name", "out"):
        parser.add_argument(name)
    parser.add_argument("--capability", action="append", default=[])
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args()
    agent = Agent(args.name, url=args.url, api_key=args.key, capabilities=args.capability, lease_seconds=args.lease, concurrency=args.concurrency)
    out = open(args.out, "a", buffering=1)

    @agent.on_task()
    async def work(task: Any) -> dict[str, Any]:
        out.write(task.task_id + "\n")
        await asyncio.sleep(args.hold)
        return {"n": task.payload.get("n")}

    agent.run()


if __name__ == "__main__":
    main()
