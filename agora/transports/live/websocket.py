"""WebSocket ``/ws``: frames pushed as JSON text; the client acks messages, pings, calls tools and takes tasks over
the same socket.

Client frames: ``{"type": "ack", "message_ids": [...], "up_to": cursor, "ref": any}`` → ``{"type": "acked", …}``;
``{"type": "ping", "ref": any}`` → ``{"type": "pong"}``; ``call``, ``take`` and ``credit`` (the work channel, see
``work.py``); ``{"type": "batch", "frames": [frame, …]}`` carries several at once. With ``?messages=m`` at most
``m`` messages are pushed before ``{"type": "credit", "messages": k}`` frames give room back. A frame that cannot be understood
gets an ``error`` frame (with its ``ref``) and the connection stays open (a frame over ``--ws-max-frame-bytes``
closes it with 1009). With ``?batch=1`` the frames the hub has at hand go out together in one
``{"type": "batch", "id": <id after the last>, "events": [frame, …]}`` (a broadcast storm then costs a WebSocket
frame per batch, not per message). A client that leaves frames unread for ``stream_send_timeout`` is disconnected (close code
1013): nothing is lost, it reconnects with ``?resume=<id of the last frame it processed>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from agora.core.ids import new_id
from agora.core.streams import Stream
from agora.limits import scope_source
from agora.transports.rest.errors import error_response
from agora_sdk.errors import AgoraError, InvalidArgument, Unavailable

from .options import flag, open_stream
from .work import TaskPush, ToolCalls, count, error_frame

log = logging.getLogger("agora.ws")

SLOW_CONSUMER = 1013  # "try again later"
SERVICE_RESTART = 1012  # the hub is stopping: reconnect (to another replica, or once it is back)
POLICY_VIOLATION = 1008  # the key was revoked (or its agent terminated): reconnecting will not help
MAX_BATCH = 1000  # frames in one client batch frame
CLOSING = {
    "slow consumer": (SLOW_CONSUMER, "slow consumer: reconnect with ?resume=<last frame id>"),
    "hub stopping": (SERVICE_RESTART, "the hub is stopping: reconnect with ?resume=<last frame id>"),
    "credentials revoked": (POLICY_VIOLATION, "the key was revoked"),
    "hub busy": (SLOW_CONSUMER, "the hub could not read the store in time: reconnect with ?resume=<last frame id>"),
}


async def endpoint(websocket: WebSocket) -> None:
    hub = websocket.app.state.hub
    request_id = new_id("req")
    try:
        principal = await hub.auth.authenticate(websocket.headers.get("authorization"), scope_source(websocket.scope))
        stream = open_stream(hub, principal, websocket.query_params, None, frozenset({"batch", "messages"}))
        batch = flag(websocket.query_params, "batch")
        if "messages" in websocket.query_params:
            window = websocket.query_params["messages"]
            if not window.isdigit() or not 1 <= int(window) <= 1000:
                raise InvalidArgument("messages: how many messages at once, 1 to 1000", details={"field": "messages"})
            stream.hold_messages(int(window), int(window))
        await stream.open()
    except AgoraError as exc:
        await websocket.send_denial_response(error_response(exc))
        return
    await websocket.accept()
    connection = _Connection(websocket, stream, hub.settings.stream_send_timeout, request_id, batch)
    started = time.perf_counter()
    log.info("stream opened", extra={"request_id": request_id, "principal": principal.label, "transport": "ws"})
    reason = await connection.run()
    log.info(
        "stream closed",
        extra={
            "request_id": request_id,
            "principal": principal.label,
            "transport": "ws",
            "reason": reason,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        },
    )


class _Connection:
    def __init__(self, websocket: WebSocket, stream: Stream, send_timeout: float, request_id: str, batch: bool):
        self.ws = websocket
        self.stream = stream
        self.send_timeout = send_timeout
        self.request_id = request_id
        self.batch = batch
        self._lock = asyncio.Lock()  # pushed frames and replies share one socket
        self.calls = ToolCalls(stream.hub, stream.principal, request_id, self._send)
        self.tasks: TaskPush | None = None
        self.max_frame_bytes = stream.hub.settings.ws_max_frame_bytes  # the largest frame it takes: said in the ready frame

    async def run(self) -> str:
        hello = {"type": "ready", "id": self.stream.position.token(), "principal": self.stream.principal.label}
        await self._send(hello | {"max_frame_bytes": self.max_frame_bytes})
        push = asyncio.create_task(self._push())
        read = asyncio.create_task(self._read())
        done, pending = await asyncio.wait({push, read}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.calls.close()
        if self.tasks is not None:
            await self.tasks.close()
        reason = next(iter(done)).result()
        if reason in CLOSING:
            code, why = CLOSING[reason]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code, why), 1.0)
        return reason

    async def _send(self, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with self._lock, asyncio.timeout(self.send_timeout):  # (wait_for would wrap the send in a task of its own)
            await self.ws.send_text(data.decode())

    async def _push(self) -> str:
        try:
            async for frames in self.stream.frames():
                if frames is None:
                    continue
                if self.batch:
                    await self._send(b'{"type":"batch","id":"%s","events":[%s]}' % (frames[-1].id.encode(), b",".join(f.json() for f in frames)))
                else:
                    for frame in frames:
                        await self._send(frame.json())
        except TimeoutError:
            return "slow consumer"
        except (WebSocketDisconnect, RuntimeError, OSError):
            return "client gone"
        except Unavailable:  # the store is overloaded (its pool stayed busy, a statement ran out of time)
            return "hub busy"
        return self.stream.end_reason

    async def _read(self) -> str:
        while True:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return "client gone"
            if message["type"] == "websocket.disconnect":
                return "client closed"
            replies = await self._answer(message.get("text") or message.get("bytes") or b"")
            try:
                for reply in replies:
                    await self._send(reply)
            except TimeoutError:
                return "slow consumer"
            except (WebSocketDisconnect, RuntimeError, OSError):
                return "client gone"

    async def _answer(self, raw: str | bytes) -> list[dict[str, Any]]:
        """The answers to one WebSocket frame (a ``batch`` frame's frames answered in order; a call answers later)."""
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return [error_frame(None, InvalidArgument(f"frame is not JSON: {exc}"))]
        if isinstance(frame, dict) and frame.get("type") == "batch":
            frames = frame.get("frames")
            if not isinstance(frames, list) or len(frames) > MAX_BATCH:
                return [error_frame(frame.get("ref"), InvalidArgument(f"a batch frame has 'frames', a list of at most {MAX_BATCH}", details={"field": "frames"}))]
        else:
            frames = [frame]
        replies = []
        for one in frames:
            reply = await self._answer_one(one)
            if reply is not None:
                replies.append(reply)
        return replies

    async def _answer_one(self, frame: Any) -> dict[str, Any] | None:
        ref = None
        try:
            if not isinstance(frame, dict):
                raise InvalidArgument("a frame is a JSON object with a 'type'")
            ref = frame.pop("ref", None)
            kind = frame.pop("type", None)
            credit = frame.pop("credit", None)
            if credit is not None and kind != "take":
                self._work().grant(credit)
            if kind == "call":
                await self.calls.start(ref, frame)
                return None
            if kind == "credit":
                if frame.get("tasks"):
                    self._work().grant(frame["tasks"])
                self.stream.give_messages(count(frame.get("messages", 0), "messages"))
                return None
            if kind == "take":
                return {"ref": ref, **self._work().declare({**frame, **({"credit": credit} if credit is not None else {})})}
            if kind == "ping":
                return {"type": "pong", "ref": ref}
            if kind == "ack":
                hub = self.stream.hub
                _, result, _ = await hub.catalog.call(hub, self.stream.principal, "agora.messaging.ack", frame, self.request_id)
                return {"type": "acked", "ref": ref, **result.model_dump(mode="json")}
            raise InvalidArgument(
                f"unknown frame type {kind!r}: send 'call', 'take', 'credit', 'ack', 'ping' or 'batch'", details={"field": "type"}
            )
        except AgoraError as exc:
            return error_frame(ref, exc)
        except Exception:  # noqa: BLE001 - one bad frame must not end the connection
            log.exception("websocket frame failed", extra={"request_id": self.request_id})
            return {"type": "error", "ref": ref, "code": "internal", "status": 500, "message": "internal error; see the hub log"}

    def _work(self) -> TaskPush:
        if self.tasks is None:
            self.tasks = TaskPush(self.stream.hub, self.stream.principal, self.stream.agent, self.request_id, self._send)
        return self.tasks
