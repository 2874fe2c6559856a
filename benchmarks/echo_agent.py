"""The benchmark's echo agent: an SDK runtime that replies to every message with its content.

BENCH_AGENT_NAME names it; BENCH_CHANNEL=0 makes it take its messages over HTTP instead of its WebSocket."""

from __future__ import annotations

import os

from agora_sdk import Agent

agent = Agent(os.environ.get("BENCH_AGENT_NAME", "echo"), concurrency=8, channel=os.environ.get("BENCH_CHANNEL", "1") == "1")


@agent.on_message()
async def echo(message):
    await message.reply(message.content)


if __name__ == "__main__":
    agent.run()
