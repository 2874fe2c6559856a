"""The benchmark's A2A agent: a public front that completes every task with "Hello from TCK" (the SDK runtime)."""

from __future__ import annotations

import os

from agora_sdk import Agent

agent = Agent(os.environ.get("BENCH_AGENT_NAME", "a2a-bench"), a2a="public", concurrency=int(os.environ.get("BENCH_AGENT_CONCURRENCY", "8")))


@agent.on_a2a()
async def hello(turn):
    return "Hello from TCK"


if __name__ == "__main__":
    agent.run()
