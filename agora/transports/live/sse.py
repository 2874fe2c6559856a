"""Server-Sent Events ``/events``: the same frames as the WebSocket, one SSE event each (``id``, ``event``, ``data``).

Resume with the standard ``Last-Event-ID`` header (browsers send it on reconnect) or ``?resume=``. Acks go through
the REST tool ``agora.messaging.ack``. A comment line every ``KEEPALIVE`` seconds keeps proxies from closing an idle
stream; a client that leaves events unread for ``stream_send_timeout`` is disconnected and resumes later.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agora.core.streams import Stream
from agora_sdk.errors import AgoraError, Unavailable

from ..rest.errors import error_response
from ..rest.guard import authenticate
from .options import open_stream

log = logging.getLogger("agora.sse")

KEEPALIVE = 15.0
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events through as they come
]


async def endpoint(request: Request) -> Response:
    hub = request.app.state.hub
    try:
        principal = await authenticate(request)
        stream = open_stream(hub, principal, request.query_params, request.headers.get("last-event-id"))
        await stream.open()
    except AgoraError as exc:
        return error_response(exc)
    return _EventStream(stream, hub.settings.stream_send_timeout)


class _EventStream(Response):
    """A response that pushes frames until the client goes or stops reading."""

    def __init__(self, stream: Stream, send_timeout: float):  # noqa: super().__init__ would render a body
        self.background = None
        self.stream = stream
        self.send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        push = asyncio.create_task(self._push(send))
        gone = asyncio.create_task(disconnected(receive))
        started = time.perf_counter()
        done, pending = await asyncio.wait({push, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        reason = "client gone" if gone in done else push.result()
        log.info(
            "stream closed",
            extra={
                "request_id": scope["state"].get("request_id"),
                "principal": self.stream.principal.label,
                "transport": "sse",
                "reason": reason,
                "stream_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )

    async def _push(self, send: Send) -> str:
        await self._write(send, f"retry: 1000\nid: {self.stream.position.token()}\nevent: ready\ndata: {{}}\n\n".encode())
        try:
            async for frames in self.stream.frames(keepalive=KEEPALIVE):
                if frames is None:
                    await self._write(send, b": keepalive\n\n")
                else:  # the events of one read in one write
                    await self._write(send, b"".join(
                        b"id: %s\nevent: %s\ndata: %s\n\n" % (f.id.encode(), f.type.encode(), f.json()) for f in frames
                    ))
        except TimeoutError:
            return "slow consumer"
        except OSError:
            return "client gone"
        except Unavailable:  # the store is overloaded: the client reconnects (retry: 1000) from its last id
            return "hub busy"
        return self.stream.end_reason

    async def _write(self, send: Send, data: bytes) -> None:
        async with asyncio.timeout(self.send_timeout):
            await send({"type": "http.response.body", "body": data, "more_body": True})


async def disconnected(receive: Receive) -> None:
    """Returns once the client has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass
