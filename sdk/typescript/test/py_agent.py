"""A Python agent (``agora_sdk.Agent``) for the cross-language test, run by ``crosslang.test.ts`` beside a TypeScript one.

AGORA_URL=… AGORA_API_KEY=… python py_agent.py

``py-agent`` squares ``py.square`` tasks and answers messages with ``{"python_got": content}``. Once running it
talks to ``ts-agent`` the other way: sends it a message and assigns it a ``ts.square`` task, and prints the reply and
the result as one JSON line when both are in. It runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agora_sdk import Agent, IncomingMessage, TaskRun

agent = Agent("py-agent", capabilities=["python"])
replies: asyncio.Queue[Any] = asyncio.Queue()


@agent.on_task("py.square")
async def square(task: TaskRun) -> dict[str, Any]:
    return {"square": task.payload["n"] ** 2, "by": "python"}


@agent.on_message()
async def answer(msg: IncomingMessage) -> None:
    if (msg.correlation or {}).get("reply_to"):  # an answer to what this agent sent
        await replies.put(msg.content)
    else:
        await msg.reply({"python_got": msg.content})


async def talk_to_typescript() -> None:
    await agent.ready.wait()
    await agent.client.messaging.send("ts-agent", "hi from python")
    task = await agent.client.task.assign("ts.square", {"n": 7}, assignee="ts-agent")
    reply = await asyncio.wait_for(replies.get(), 30)
    while (done := await agent.client.task.get(task.task_id)).status != "completed":
        await asyncio.sleep(0.05)
    print(json.dumps({"reply": reply, "task": done.result}), flush=True)


async def main() -> None:
    talking = asyncio.create_task(talk_to_typescript())
    await agent.serve()
    talking.cancel()


if __name__ == "__main__":
    asyncio.run(main())
