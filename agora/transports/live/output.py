"""A task's output as it is made: ``GET /tasks/{task_id}/output/stream`` (Server-Sent Events) and
``/tasks/{task_id}/output/ws`` (WebSocket), two views of one follower.

Over SSE each chunk is one event (``id`` its number, ``event: chunk``, ``data`` the chunk as ``agora.task.watch`` gives
it), and an ``end`` event with the task's status closes the stream once the task has finished and every chunk was
sent; resume with ``Last-Event-ID`` (browsers send it on reconnect) or ``?after=N``. Over a WebSocket each batch is one
text frame, ``{"type": "output", "chunks": [...], "next_after": n}``, and ``{"type": "end", "status": …}`` comes last
before the hub closes it (1000); resume with ``?after=N``. Either way: the chunks after the cursor, none missed, none
twice.

The follower only calls ``agora.task.watch`` (without waiting), so rights, tenancy and rate limits are the catalog's.
It stays armed on the task's wake-up keys for the whole stream: woken by one emit of this replica, it takes the
chunks the wake-up carries when they follow on from its last (``task_output.handed``), and reads otherwise (at most
``FOLLOWING`` chunks, or every ``RECHECK`` seconds, for a wake-up lost between replicas). A revocation of its key, or
the hub stopping, ends it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from agora.core.auth import Principal
from agora.core.authn import credentials_key
from agora.core.context import Hub
from agora.core.services import task_output
from agora.core.services.task_output import FOLLOWING, RECHECK, output_key
from agora.limits import scope_source
from agora_sdk.errors import AgoraError, InvalidArgument
from agora_sdk.wire.tasks import TaskOutput

from ..rest.errors import error_response
from ..rest.guard import authenticate
from .sse import HEADERS, KEEPALIVE, disconnected

NORMAL, GOING_AWAY, POLICY_VIOLATION = 1000, 1001, 1008  # WebSocket close codes


async def endpoint(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        principal = await authenticate(request)
        after = _after(request.headers.get("last-event-id") or request.query_params.get("after"))
        first = await _watch(hub, principal, request.path_params["task_id"], after)  # refused here, before it opens
    except AgoraError as exc:
        return error_response(exc)
    return _OutputStream(hub, principal, first)


async def websocket_endpoint(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    try:
        principal = await hub.auth.authenticate(websocket.headers.get("authorization"), scope_source(websocket.scope))
        first = await _watch(hub, principal, websocket.path_params["task_id"], _after(websocket.query_params.get("after")))
    except AgoraError as exc:
        await websocket.send_denial_response(error_response(exc))
        return
    await websocket.accept()
    closing = (GOING_AWAY, "the hub is stopping: reconnect with ?after=<next_after>")
    try:
        async for answer in follow(hub, principal, first):
            if answer is None:
                continue  # (the protocol's own pings keep an idle socket open)
            if answer.chunks:
                frame = {"type": "output", "chunks": [c.model_dump(mode="json") for c in answer.chunks], "next_after": answer.next_after}
                await _send_text(websocket, orjson.dumps(frame).decode(), hub.settings.stream_send_timeout)
            if answer.ended:
                await _send_text(websocket, orjson.dumps({"type": "end", "status": answer.status.value}).decode(), hub.settings.stream_send_timeout)
                closing = (NORMAL, "the task has ended")
                break
        else:
            closing = (POLICY_VIOLATION, "the key was revoked") if not hub.wakeups.draining else closing
        await websocket.close(*closing)
    except (WebSocketDisconnect, TimeoutError, OSError, AgoraError):  # a gone or slow client, a busy hub: it resumes
        return


async def _send_text(websocket: WebSocket, text: str, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        await websocket.send_text(text)


def _after(raw: str | None) -> int:
    raw = raw or "0"
    if not raw.isdigit() or int(raw) > 2**31 - 1:
        raise InvalidArgument("the cursor (Last-Event-ID or after) is a chunk number", details={"field": "after"})
    return int(raw)


async def _watch(hub: Hub, principal: Principal, task_id: str, after: int) -> TaskOutput:
    args: dict[str, Any] = {"task_id": task_id, "after": after, "limit": FOLLOWING}
    _tool, answer, _ctx = await hub.catalog.call(hub, principal, "agora.task.watch", args, f"out-{uuid.uuid4().hex[:12]}")
    assert isinstance(answer, TaskOutput)
    return answer


async def follow(hub: Hub, principal: Principal, first: TaskOutput) -> AsyncIterator[TaskOutput | None]:
    """``first``, then each answer as the task's output grows (None when ``RECHECK`` passed with no wake-up), until
    one that has ``ended``; it returns early when the hub is stopping or the key is revoked."""
    answer = first
    output = output_key(answer.task_id)
    revoked = credentials_key(principal.key_hash) if principal.key_hash else ""
    with hub.wakeups.armed([output, f"task:{answer.task_id}", *([revoked] if revoked else [])]) as woken:
        yield answer
        while not answer.ended:
            if not await woken.wait(RECHECK) and not woken.fired:
                yield None
            if hub.wakeups.draining or revoked in woken.fired:
                return
            # Woken by one emit here alone (no change of the task's): its chunks, if they follow on, as they are.
            rows = woken.carried.get(output) if woken.fired == {output} else None
            woken.clear()  # before the read: a wake-up from here on is for what it may not see
            answer = task_output.handed(answer.task_id, rows, answer.next_after) or await _watch(hub, principal, answer.task_id, answer.next_after)
            yield answer


class _OutputStream(Response):
    def __init__(self, hub: Hub, principal: Principal, first: TaskOutput):  # noqa: super().__init__ would render a body
        self.background = None
        self.hub, self.principal, self.first = hub, principal, first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        push = asyncio.create_task(self._push(send))
        gone = asyncio.create_task(disconnected(receive))
        _done, pending = await asyncio.wait({push, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _push(self, send: Send) -> None:
        await self._write(send, b"retry: 1000\n\n")
        with_timeout = self.hub.settings.stream_send_timeout
        quiet_since = time.monotonic()
        try:
            async for answer in follow(self.hub, self.principal, self.first):
                body = b""
                if answer is not None:
                    body = b"".join(b"id: %d\nevent: chunk\ndata: %s\n\n" % (c.seq, c.model_dump_json().encode()) for c in answer.chunks)
                    if answer.ended:
                        body += b"event: end\ndata: %s\n\n" % answer.model_dump_json(include={"task_id", "status"}).encode()
                if not body and time.monotonic() - quiet_since >= KEEPALIVE:
                    body = b": keepalive\n\n"
                if body:
                    await self._write(send, body, with_timeout)
                    quiet_since = time.monotonic()
        except (TimeoutError, OSError, AgoraError):  # a slow or gone client, a busy hub: it resumes from its last id
            return

    @staticmethod
    async def _write(send: Send, data: bytes, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await send({"type": "http.response.body", "body": data, "more_body": True})
