"""Three agents in a pipeline over tasks: extract → transform → load.

Each stage is an agent that takes its task type and hands the next stage a task with its output, so every step
gets the task queue's guarantees (leases, retries, dead letters). Run it beside `agora serve`:

    python examples/pipeline.py "alpha,beta,gamma"
"""

import asyncio
import sys

from agora_sdk import Agent, AsyncAgoraClient

extractor = Agent("Extractor", capabilities=["extract"])
transformer = Agent("Transformer", capabilities=["transform"])
loader = Agent("Loader", capabilities=["load"])
loaded: asyncio.Queue = asyncio.Queue()


@extractor.on_task("extract")
async def extract(task):
    rows = [{"id": i, "name": name.strip()} for i, name in enumerate(task.payload["source"].split(","))]
    await extractor.client.task.assign("transform", {"rows": rows, "job": task.task_id}, required_capabilities=["transform"])
    return {"extracted": len(rows)}


@transformer.on_task("transform")
async def transform(task):
    rows = [{**row, "name": row["name"].upper()} for row in task.payload["rows"]]
    await transformer.client.task.assign("load", {"rows": rows, "job": task.payload["job"]}, required_capabilities=["load"])
    return {"transformed": len(rows)}


@loader.on_task("load")
async def load(task):
    await loaded.put(task.payload)
    return {"loaded": len(task.payload["rows"])}


async def main(source: str) -> None:
    stages = [extractor, transformer, loader]
    await asyncio.gather(*(stage.start() for stage in stages))
    async with AsyncAgoraClient() as client:
        job = await client.task.assign("extract", {"source": source}, required_capabilities=["extract"])
        print(f"job {job.task_id} queued")
        result = await asyncio.wait_for(loaded.get(), timeout=30)
        print("loaded:", ", ".join(row["name"] for row in result["rows"]))
    await asyncio.gather(*(stage.stop() for stage in stages))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "alpha,beta,gamma"))
