"""An A2A 0.3 client: the official ``a2a-sdk`` 0.3.x, run in a virtualenv of its own (``tests/test_a2a_versions.py``).

``python a2a_v03_client.py URL BINDING`` finds the agent at URL as a stock 0.3 client does, with every default of
the SDK (its card at ``URL/.well-known/agent-card.json``, no ``A2A-Version`` anywhere: 0.3 has no such header), and
over BINDING (``JSONRPC``, ``HTTP+JSON`` or ``GRPC``) sends the TCK agent's messages: one completing a task (read back
with ``get_task``), one answered by a message, one whose task streams an artifact, one that waits for input (then
cancelled). Prints what came back as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import grpc
import httpx
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, Task, TaskIdParams, TaskQueryParams, TextPart


def texts(parts: list[Part]) -> list[str]:
    return [p.root.text for p in parts if isinstance(p.root, TextPart)]


async def last_event(client: Client, prefix: str) -> Task | Message:
    """Send the TCK agent a message of ``prefix``; the reply, or the task as the last event left it."""
    message = Message(role=Role.user, parts=[Part(root=TextPart(text="hi"))], message_id=f"{prefix}-{uuid.uuid4().hex}")
    last: Task | Message | None = None
    async for event in client.send_message(message):
        last = event if isinstance(event, Message) else event[0]
    assert last is not None, f"{prefix}: no event"
    return last


async def main(url: str, binding: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        config = ClientConfig(httpx_client=http, supported_transports=[binding], streaming=True, grpc_channel_factory=grpc.aio.insecure_channel)
        client = await ClientFactory.connect(url, client_config=config)
        seen: dict[str, Any] = {"card": (await client.get_card()).protocol_version}
        done = await last_event(client, "tck-complete-task")
        assert isinstance(done, Task)
        again = await client.get_task(TaskQueryParams(id=done.id))
        seen["completed"] = {"state": done.status.state.value, "text": texts(done.status.message.parts if done.status.message else []), "read_back": again.status.state.value}
        reply = await last_event(client, "tck-message-response")
        seen["replied"] = texts(reply.parts) if isinstance(reply, Message) else None
        streamed = await last_event(client, "tck-stream-001")
        assert isinstance(streamed, Task)
        seen["streamed"] = {"state": streamed.status.state.value, "artifacts": [texts(a.parts) for a in streamed.artifacts or []]}
        waiting = await last_event(client, "tck-input-required")
        assert isinstance(waiting, Task)
        cancelled = await client.cancel_task(TaskIdParams(id=waiting.id))
        seen["cancelled"] = {"waited": waiting.status.state.value, "state": cancelled.status.state.value}
        await client.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:3]))))
