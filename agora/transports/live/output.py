"""``GET /tasks/{task_id}/output/stream``: a task's output as Server-Sent Events while it runs.

Each chunk is one event (``id`` its number, ``event: chunk``, ``data`` the chunk as ``agora.task.watch`` gives it); an
``end`` event with the task's status closes the stream once the task has finished and every chunk was sent. Resume
with ``Last-Event-ID`` (browsers send it on reconnect) or ``?after=N``: the chunks after it, none missed, none twice.
The door only calls ``agora.task.watch`` (without waiting), so rights, tenancy and rate limits are the catalog's. It
stays armed on the task's wake-up keys for the whole stream and reads when woken (or every ``RECHECK`` seconds, for a
wake-up lost between replicas): one read a batch of chunks, none between them to find nothing. A comment line keeps
an idle stream open every ``KEEPALIVE`` seconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.authn import credentials_key
from agora.core.services import task_output
from agora.core.services.task_output import FOLLOWING, RECHECK, output_key
from agora_sdk.errors import AgoraError, InvalidArgument
from agora_sdk.wire.tasks import TaskOutput

from ..rest.errors import error_response
from ..rest.guard import authenticate
from .sse import HEADERS, KEEPALIVE, disconnected


async def endpoint(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        principal = await authenticate(request)
        after = _after(request)
        first = await _watch(hub, principal, request.path_params["task_id"], after, 0)  # refused here, before it opens
    except AgoraError as exc:
        return error_response(exc)
    return _OutputStream(hub, principal, first)


def _after(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not raw.isdigit() or int(raw) > 2**31 - 1:
        raise InvalidArgument("the cursor (Last-Event-ID or after) is a chunk number", details={"field": "after"})
    return int(raw)


async def _watch(hub: Hub, principal: Principal, task_id: str, after: int, wait: float) -> TaskOutput:
    args: dict[str, Any] = {"task_id": task_id, "after": after, "wait": wait, "limit": FOLLOWING}
    _tool, answer, _ctx = await hub.catalog.call(hub, principal, "agora.task.watch", args, f"sse-{uuid.uuid4().hex[:12]}")
    assert isinstance(answer, TaskOutput)
    return answer


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
        answer = self.first
        await self._write(send, b"retry: 1000\n\n")
        with_timeout = self.hub.settings.stream_send_timeout
        quiet_since = time.monotonic()
        try:
            output = output_key(answer.task_id)
            revoked = credentials_key(self.principal.key_hash) if self.principal.key_hash else ""
            with self.hub.wakeups.armed([output, f"task:{answer.task_id}", *([revoked] if revoked else [])]) as woken:
                while True:
                    body = b"".join(b"id: %d\nevent: chunk\ndata: %s\n\n" % (c.seq, c.model_dump_json().encode()) for c in answer.chunks)
                    if answer.ended:
                        body += b"event: end\ndata: %s\n\n" % answer.model_dump_json(include={"task_id", "status"}).encode()
                    if not body and time.monotonic() - quiet_since >= KEEPALIVE:
                        body = b": keepalive\n\n"
                    if body:
                        await self._write(send, body, with_timeout)
                        quiet_since = time.monotonic()
                    if answer.ended:
                        return
                    await woken.wait(RECHECK)
                    if self.hub.wakeups.draining or revoked in woken.fired:  # the client resumes elsewhere, or is refused
                        return
                    # Woken by one emit here alone (no change of the task's): its chunks, if they follow on, as they are.
                    rows = woken.carried.get(output) if woken.fired == {output} else None
                    woken.clear()  # before the read: a wake-up from here on is for what it may not see
                    answer = task_output.handed(answer.task_id, rows, answer.next_after) or await _watch(
                        self.hub, self.principal, answer.task_id, answer.next_after, 0
                    )  # fmt: skip
        except (TimeoutError, OSError, AgoraError):  # a slow or gone client, a busy hub: it resumes from its last id
            return

    @staticmethod
    async def _write(send: Send, data: bytes, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await send({"type": "http.response.body", "body": data, "more_body": True})
