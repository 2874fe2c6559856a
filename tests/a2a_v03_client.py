"""An A2A 0.3 client: the official ``a2a-sdk`` 0.3.x, run in a virtualenv of its own (``tests/test_a2a_versions.py``).

``python a2a_v03_client.py URL BINDING CARD`` finds the agent at URL by its 0.3 card (CARD ``legacy``: at
``/.well-known/agent.json``; ``negotiated``: at ``/.well-known/agent-card.json`` asking with ``A2A-Version: 0.3``),
sends it the TCK agent's messages over BINDING (``JSONRPC``, ``HTTP+JSON`` or ``GRPC``), reads the task back, and
prints what came back as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import grpc
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, Task, TaskQueryParams, TextPart


def texts(message: Message | None) -> list[str]:
    return [p.root.text for p in (message.parts if message else []) if isinstance(p.root, TextPart)]


async def main(url: str, binding: str, card: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        config = ClientConfig(httpx_client=http, supported_transports=[binding], streaming=False, grpc_channel_factory=grpc.aio.insecure_channel)
        if card == "legacy":
            client = await ClientFactory.connect(url, client_config=config, relative_card_path="/.well-known/agent.json")
        else:
            client = await ClientFactory.connect(url, client_config=config, resolver_http_kwargs={"headers": {"A2A-Version": "0.3"}})
        seen: dict[str, Any] = {"card": (await client.get_card()).protocol_version}
        for prefix in ("tck-complete-task", "tck-message-response"):
            message = Message(role=Role.user, parts=[Part(root=TextPart(text="hi"))], message_id=f"{prefix}-{uuid.uuid4().hex}")
            async for event in client.send_message(message):
                if isinstance(event, Message):
                    seen[prefix] = {"message": texts(event)}
                else:
                    task: Task = event[0]
                    again = await client.get_task(TaskQueryParams(id=task.id))
                    seen[prefix] = {"state": task.status.state.value, "text": texts(task.status.message), "read_back": again.status.state.value}
        await client.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
