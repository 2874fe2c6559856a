"""A public A2A agent that behaves as the official A2A TCK expects, so the TCK can be run against an Agora hub.

The 1.0 TCK picks a behaviour by the prefix of each message's ``messageId``; the 0.3 TCK's messages get a task that
stays open (input required), which its tests continue, cancel and read back. ``scripts/a2a_tck.py`` runs both
branches against it; by hand, run a hub and this agent, then the TCK:

    agora serve                                   # terminal 1
    python examples/a2a_tck_agent.py              # terminal 2 (AGORA_URL / AGORA_API_KEY, or the local hub)
    python run_tck.py --sut-host http://127.0.0.1:8080/a2a/agents/<agent id printed here> --transport jsonrpc,http_json
"""

from __future__ import annotations

import asyncio
import base64
import os

from agora_sdk import Agent

agent = Agent(
    os.environ.get("TCK_AGENT_NAME", "tck-agent"),
    capabilities=["tck"],
    description="Implements the A2A TCK's messageId-prefix behaviours.",
    a2a={"access": os.environ.get("TCK_AGENT_ACCESS", "public"), "input_modes": ["text"], "output_modes": ["text"]},
)


async def stream(turn, text: str | None = None, parts: list | None = None) -> None:
    await turn.working()
    await turn.artifact(text, parts=parts)


async def chunked(turn) -> None:
    await turn.working()
    await turn.artifact("chunk-1 ", artifact_id="chunked", append=True)
    await turn.artifact("chunk-2", artifact_id="chunked", append=True, last_chunk=True)


async def resubscribable(turn) -> None:
    await turn.working()
    await asyncio.sleep(4)


FILE = {"raw": base64.b64encode(b"tck").decode(), "filename": "output.txt", "mediaType": "text/plain"}
FILE_URL = {"url": "https://example.com/output.txt", "filename": "output.txt", "mediaType": "text/plain"}

# Longest prefixes first: "tck-artifact-file-url" must not be taken for "tck-artifact-file".
BEHAVIOURS = {
    "tck-complete-task": lambda t: t.complete("Hello from TCK"),
    "tck-artifact-text": lambda t: t.artifact("Generated text content"),
    "tck-artifact-file-url": lambda t: t.artifact(parts=[FILE_URL]),
    "tck-artifact-file": lambda t: t.artifact(parts=[FILE]),
    "tck-artifact-data": lambda t: t.artifact(data={"key": "value", "count": 42}),
    "tck-message-response": lambda t: t.reply("Direct message response"),
    "tck-input-required": lambda t: t.input_required("Please provide more input"),
    "tck-reject-task": lambda t: t.reject("rejected"),
    "tck-stream-artifact-text": lambda t: stream(t, "Streamed text content"),
    "tck-stream-artifact-file": lambda t: stream(t, parts=[FILE]),
    "tck-stream-artifact-chunked": chunked,
    "tck-stream-ordering-001": lambda t: stream(t, "Ordered output"),
    "tck-stream-001": lambda t: stream(t, "Stream hello from TCK"),
    "tck-stream-002": lambda t: t.complete(),
    "tck-stream-003": lambda t: stream(t, "Stream task lifecycle"),
    "test-resubscribe-message-id": resubscribable,
}
PREFIXES = sorted(BEHAVIOURS, key=len, reverse=True)


@agent.on_a2a()
async def tck(turn):
    prefix = next((p for p in PREFIXES if turn.message_id.startswith(p)), None)
    if prefix is None and not turn.message_id.startswith("tck-"):
        # The 0.3 TCK's messages ("test-…") continue, cancel and read back the task they start: keep it open.
        return await turn.input_required(f"Noted: {turn.text or 'your message'}. Anything else?")
    if prefix is None:
        return f"Unhandled messageId prefix: {turn.message_id}"
    await BEHAVIOURS[prefix](turn)  # a behaviour that does not end the turn leaves the task to complete here


if __name__ == "__main__":
    agent.run()
