"""``Channel``: one held WebSocket per agent runtime, carrying everything the runtime and the hub say to each other.

In: pushed messages (the live stream, resumed after a reconnect where it stopped) and pushed tasks (after ``take``,
never more than the credit given). Out: tool calls, answered on the socket once their writes are durable. Frames
ready in the same turn of the event loop go in one WebSocket frame (``batch``), so a handler's credit and outcome
travel together, and many outcomes ready at once cost one frame. A call that was sent but not answered when the
connection broke is sent again on the next connection when ``resend`` says that is harmless (a fenced outcome, a
lease renewal, an ack), with a key that lets the hub answer it with the first run's answer; otherwise its caller hears
``Unavailable``, as over HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic_core
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage, InvalidStatus

from .client import AsyncAgoraClient, RetryPolicy
from .errors import AgoraError, Unavailable, error_from_body
from .events import StreamEvent, stream_url

log = logging.getLogger("agora_sdk.channel")

STREAM_CONTROL = frozenset({"ready", "pong", "acked", "taking"})
MAX_FRAME_BYTES = 16 * 1024 * 1024  # the hub's frames: a batch of up to 100 messages or tasks
HUB_FRAME_BYTES = 256 * 1024  # what a hub takes in one frame unless its ``ready`` frame says otherwise


class ChannelRefused(Exception):
    """The hub (or a proxy before it) will not hold this WebSocket: work goes over HTTP instead."""


class TooLarge(Exception):
    """A call larger than the hub takes in one WebSocket frame: it goes over HTTP instead."""


@dataclass
class _Call:
    frame: bytes
    answer: asyncio.Future[Any]
    resend: bool
    sent_on: int = 0  # the connection it went out on (0: not yet)


@dataclass
class Channel:
    """``on_event`` gets every pushed message or hub event, ``on_tasks`` every pushed batch of claims (plain JSON:
    ``{"task": …, "lease": …}``), ``on_down`` when a connection breaks. ``take()`` says what to
    declare on a new connection (None: take no tasks) and is asked again each time, so the credit given is the room
    the runtime has then. ``messages``: at most that many messages pushed before ``credit(messages=…)`` gives room."""

    client: AsyncAgoraClient
    types: list[str] | None
    visibility_timeout: float | None
    on_event: Callable[[StreamEvent], None]
    on_tasks: Callable[[list[dict[str, Any]]], None]
    take: Callable[[], dict[str, Any] | None]
    on_down: Callable[[], None] = lambda: None
    messages: int | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)
    _ws: ClientConnection | None = None
    connections: int = 0  # opened so far
    _resume: str | None = None
    _calls: dict[int, _Call] = field(default_factory=dict)
    _refs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _keys: str = field(default_factory=lambda: secrets.token_hex(8))  # with a ref, a call's key, unique to this runtime
    _outbox: list[bytes] = field(default_factory=list)
    _stopping: bool = False
    _max_frame: int = HUB_FRAME_BYTES
    _flush: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, refused_after: int = 3) -> None:
        """Hold the connection forever, reconnecting with backoff. Raises ``ChannelRefused`` after ``refused_after``
        handshakes in a row that failed although the hub answers HTTP (a proxy that drops WebSockets, a hub without
        ``/ws``), and the hub's error for a key it refuses."""
        backoff, attempt, refused = RetryPolicy(retries=0, base=0.25, cap=5.0), 0, 0
        why = ""
        while True:
            try:
                async with ws_connect(self._target(), additional_headers=self.client._headers(), max_size=MAX_FRAME_BYTES) as ws:
                    attempt = refused = 0
                    await self._hold(ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                refusal = _refusal(exc)
                if refusal is not None and status < 500:
                    raise refusal from exc  # the hub's own answer: a revoked key, a bad filter
                if status < 500:
                    refused, why = refused + 1, f"the WebSocket handshake was answered with {status}"
            except (InvalidMessage, ConnectionClosed, OSError, TimeoutError):
                log.debug("the connection to the hub broke; reconnecting")  # no answer to judge by: try again
            except InvalidHandshake as exc:  # an answer, but not a WebSocket's
                refused, why = refused + 1, f"the WebSocket handshake failed: {exc}"
            if refused >= refused_after:
                raise ChannelRefused(why)
            await asyncio.sleep(backoff.delay(min(attempt, 5)))
            attempt += 1

    def _target(self) -> str:
        return stream_url(self.client.config.url, self.types or ["none"], self._resume, self.visibility_timeout, self.messages)

    async def _hold(self, ws: ClientConnection) -> None:
        ready = orjson.loads(await ws.recv())  # the hub's first frame: where the stream stands, how large a frame may be
        self._resume = self._resume or ready.get("id")
        self._max_frame = int(ready.get("max_frame_bytes") or HUB_FRAME_BYTES)
        self.connections += 1
        self._ws = ws
        writer = asyncio.create_task(self._write(ws))
        try:
            take = self.take()
            if take is not None:
                self._send({"type": "take", **take})
            for call in self._calls.values():  # unanswered calls of the last connection, and calls made meanwhile
                call.sent_on = self.connections
                self._outbox.append(call.frame)
            self._flush.set()
            self.up.set()
            async for raw in ws:
                try:
                    self._received(raw)
                except Exception:  # noqa: BLE001 - one frame this runtime cannot take must not end the channel
                    log.exception("a frame from the hub could not be taken: %.200r", raw)
        finally:
            self.up.clear()
            self._ws = None
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self._outbox.clear()
            self._drop_unsafe()
            self.on_down()

    def _drop_unsafe(self) -> None:
        """Calls sent on the connection that broke and not safe to send twice (all of them once the runtime stops:
        there may be no next connection): their callers hear it."""
        for ref, call in list(self._calls.items()):
            if (call.sent_on and not call.resend) or self._stopping:
                del self._calls[ref]
                if not call.answer.done():
                    call.answer.set_exception(Unavailable("the connection to the hub broke before the call was answered"))

    async def _write(self, ws: ClientConnection) -> None:
        while True:
            await self._flush.wait()
            await asyncio.sleep(0)  # frames queued in this turn of the loop go together
            self._flush.clear()
            frames, self._outbox = self._outbox, []
            for group in _groups(frames, self._max_frame - len(b'{"type":"batch","frames":[]}')):
                body = group[0] if len(group) == 1 else b'{"type":"batch","frames":[%s]}' % b",".join(group)
                await ws.send(body.decode())

    def _send(self, frame: dict[str, Any]) -> None:
        self._outbox.append(orjson.dumps(frame))
        self._flush.set()

    async def call(self, tool: str, args: dict[str, Any], *, resend: bool) -> Any:
        """Call a tool over the socket; its result as plain JSON. Raises the hub's ``AgoraError``, or ``Unavailable``
        when no connection is open or it broke before the answer (unless ``resend``: then it waits for the next)."""
        if self._ws is None:
            raise Unavailable("no connection to the hub's WebSocket")
        ref = next(self._refs)
        call_frame: dict[str, Any] = {"type": "call", "ref": ref, "tool": tool, "args": args}
        if resend:  # the hub answers the resend with the first run's answer (the tasks a claim_next took, say)
            call_frame["key"] = f"{self._keys}-{ref}"
        frame = pydantic_core.to_json(call_frame)
        if len(frame) > self._max_frame:
            raise TooLarge(f"{len(frame)} bytes")
        call = _Call(frame, asyncio.get_running_loop().create_future(), resend)
        call.sent_on = self.connections
        self._calls[ref] = call
        self._outbox.append(frame)
        self._flush.set()
        try:
            return await call.answer
        finally:
            self._calls.pop(ref, None)

    def stop_taking(self) -> None:
        """No more tasks on this or any later connection (what was pushed meanwhile still arrives); calls left
        unanswered when the connection breaks from now on are not kept for the next one."""
        self.take = lambda: None
        self._stopping = True
        if self._ws is None:
            self._drop_unsafe()
        if self._ws is not None:
            self._send({"type": "take", "capacity": 1, "credit": 0})

    def credit(self, tasks: int = 0, messages: int = 0) -> None:
        """Room for more pushed tasks or messages (a no-op while disconnected: a new connection starts afresh)."""
        if self._ws is not None and (tasks > 0 or messages > 0):
            self._send({"type": "credit", "tasks": tasks, "messages": messages})

    def _received(self, raw: str | bytes) -> None:
        frame = orjson.loads(raw)
        kind = frame.get("type")
        if kind == "batch":
            for event in frame["events"]:
                self._one(event)
        else:
            self._one(frame)

    def _one(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in ("result", "error") and frame.get("ref") in self._calls:
            call = self._calls[frame["ref"]]
            if call.answer.done():
                return
            if kind == "result":
                call.answer.set_result(frame["result"])
            else:
                call.answer.set_exception(error_from_body(int(frame.get("status") or 500), {"error": frame}))
        elif kind == "tasks":
            self.on_tasks(frame["claims"])
        elif kind == "error":
            log.warning("hub: %s (%s)", frame.get("message"), frame.get("code"))
        elif kind not in STREAM_CONTROL:
            event = StreamEvent.model_validate(frame)
            self.on_event(event)
            self._resume = event.id  # handed over: a reconnect starts after it


def _groups(frames: list[bytes], most: int) -> list[list[bytes]]:
    """Frames in order, grouped so that each group's batch frame stays within ``most`` bytes."""
    groups: list[list[bytes]] = []
    size = most + 1
    for frame in frames:
        if size + len(frame) + 1 > most:
            groups.append([])
            size = 0
        groups[-1].append(frame)
        size += len(frame) + 1
    return groups


def _refusal(exc: InvalidStatus) -> AgoraError | None:
    """The hub's error, when the handshake was refused by the hub (its JSON error body), not by a proxy."""
    try:
        body = orjson.loads(exc.response.body or b"{}")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    return error_from_body(exc.response.status_code, body)
