"""A tool call answered as Server-Sent Events, for a tool that emits events while it runs (``streams_events``)
and a request that asks for them (``Accept: text/event-stream``).

The call runs as it would for JSON (``Catalog.call``: rights, validation, limits), with ``core/call_events.listener``
set: each event becomes an SSE event at once, and the last is ``answer`` (the result, as the JSON answer would be)
or ``error`` (the error body). A call refused before it emitted anything (bad input, a conversation that is not
there) is answered with its plain JSON error and status instead, as without the header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from agora.catalog import Tool
from agora.core import call_events
from agora.core.auth import Principal
from agora.core.context import Hub
from agora_sdk.errors import AgoraError, Internal

log = logging.getLogger("agora.rest")
Event = tuple[str, dict[str, Any]]


def asked_for(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def answer(hub: Hub, principal: Principal, tool: Tool, args: Any, request_id: str) -> Response:
    events: asyncio.Queue[Event] = asyncio.Queue()
    token = call_events.listener.set(lambda event, data: events.put_nowait((event, data)))
    try:  # the call's task copies the context now: its events come here
        call = asyncio.ensure_future(hub.catalog.call(hub, principal, tool.name, args, request_id))
    finally:
        call_events.listener.reset(token)
    call.add_done_callback(lambda done: done.cancelled() or done.exception())  # a client that left is no error
    first = asyncio.ensure_future(events.get())
    await asyncio.wait({call, first}, return_when=asyncio.FIRST_COMPLETED)
    if not first.done():
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        call.result()  # refused before any event: the plain error answer (raised for the door to shape)
        pending: list[Event] = []
    else:
        pending = [first.result()]
    return StreamingResponse(_frames(pending, events, call), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


async def _frames(pending: list[Event], events: asyncio.Queue[Event], call: asyncio.Future[Any]) -> AsyncIterator[bytes]:
    for event, data in pending:
        yield frame(event, data)
    while True:
        following = asyncio.ensure_future(events.get())
        await asyncio.wait({following, call}, return_when=asyncio.FIRST_COMPLETED)
        if following.done():
            yield frame(*following.result())
            continue
        following.cancel()
        while not events.empty():
            yield frame(*events.get_nowait())
        break
    error = call.exception()
    if error is None:
        _, result, _ = call.result()
        yield b"event: answer\ndata: " + result.model_dump_json(by_alias=True).encode() + b"\n\n"
    elif isinstance(error, AgoraError):
        yield frame("error", error.to_body())
    else:
        log.error("tool failed while streaming", exc_info=error)
        yield frame("error", Internal("the call failed unexpectedly; the request id finds it in the logs").to_body())
