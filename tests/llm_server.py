"""A small OpenAI-compatible language model for the chat tests: ``--port P``.

``POST /v1/chat/completions`` speaks the chat-completions protocol (tools, tool calls, SSE streaming with
``stream: true``, a whole JSON completion otherwise) and answers from a script the test sets, one reply per request:

* ``{"content": "text"}`` — an answer, streamed a word at a time;
* ``{"tool_calls": [{"name": "agora_marketplace_search", "arguments": {...}}]}`` — tool calls (arguments streamed in
  two pieces, as real servers cut them);
* ``{"status": 503}`` — an HTTP error; ``{"sleep": 5}`` — no answer for that long; ``{"garbage": true}`` — a stream
  that is not the protocol.

``POST /script`` with ``{"replies": [...]}`` sets the script (and forgets the requests seen); ``GET /requests`` gives
the request bodies received since. With the script used up, it answers "(no script left)".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

SCRIPT: list[dict[str, Any]] = []
SEEN: list[dict[str, Any]] = []


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()), "model": "scripted",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _stream(reply: dict[str, Any]) -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": ""})
    if "tool_calls" in reply:
        for i, call in enumerate(reply["tool_calls"]):
            arguments = json.dumps(call.get("arguments", {})) if not isinstance(call.get("arguments"), str) else call["arguments"]
            half = len(arguments) // 2
            yield _chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function", "function": {"name": call["name"], "arguments": arguments[:half]}}]})
            yield _chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments[half:]}}]})
        yield _chunk({}, "tool_calls")
    else:
        for word in reply.get("content", "").split(" "):
            yield _chunk({"content": word + " "})
            await asyncio.sleep(0.02)
        yield _chunk({}, "stop")
    yield b"data: [DONE]\n\n"


def _whole(reply: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
    if "tool_calls" in reply:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
            for i, c in enumerate(reply["tool_calls"])
        ]
    return {"id": "chatcmpl-test", "object": "chat.completion", "model": "scripted", "choices": [{"index": 0, "message": message}]}


async def completions(request: Request) -> Response:
    body = await request.json()
    SEEN.append(body)
    if not isinstance(body.get("messages"), list) or not body.get("model"):
        return JSONResponse({"error": {"message": "model and messages are required"}}, status_code=400)
    reply = SCRIPT.pop(0) if SCRIPT else {"content": "(no script left)"}
    if "sleep" in reply:
        await asyncio.sleep(reply["sleep"])
    if "status" in reply:
        return JSONResponse({"error": {"message": "scripted failure"}}, status_code=reply["status"])
    if reply.get("garbage"):
        return StreamingResponse(iter([b"data: this is not json\n\n"]), media_type="text/event-stream")
    if body.get("stream"):
        return StreamingResponse(_stream(reply), media_type="text/event-stream")
    return JSONResponse(_whole(reply))


async def script(request: Request) -> Response:
    SCRIPT[:] = (await request.json())["replies"]
    SEEN.clear()
    return JSONResponse({"replies": len(SCRIPT)})


async def requests(_request: Request) -> Response:
    return JSONResponse(SEEN)


app = Starlette(routes=[
    Route("/v1/chat/completions", completions, methods=["POST"]),
    Route("/script", script, methods=["POST"]),
    Route("/requests", requests, methods=["GET"]),
])  # fmt: skip

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
