"""A marketplace agent package: a hosting node runs it as a customer's own instance.

The node starts it in its own directory with AGORA_URL, AGORA_API_KEY (the instance agent's key) and AGORA_AGENT_NAME
set, so it joins the hub as the customer's agent. ``agora marketplace publish`` lists it (see listing.json).
"""

import asyncio
import os

from agora_sdk import Agent

agent = Agent(os.environ.get("AGORA_AGENT_NAME", "calculator"), capabilities=["calculation"], heartbeat_interval=5)


@agent.on_task("add")
def add(task):
    return {"sum": sum(task.payload.get("numbers", []))}


@agent.on_task("multiply")
def multiply(task):
    product = 1
    for n in task.payload.get("numbers", []):
        product *= n
    return {"product": product}


@agent.on_task("sleep")
async def sleep(task):
    await asyncio.sleep(float(task.payload.get("seconds", 1)))
    return {"slept": task.payload.get("seconds", 1)}


if __name__ == "__main__":
    agent.run()
