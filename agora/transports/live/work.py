"""The work channel on an agent's WebSocket: tool calls answered on the socket, and tasks pushed down it.

A runtime that holds its ``/ws`` open need not open an HTTP request per claim, outcome or lease renewal:

* ``{"type": "call", "ref": r, "tool": "agora.task.update_batch", "args": {…}}`` runs the tool through
  ``Catalog.call`` as the connection's principal (the same rights, validation, limits and metrics as REST) and is
  answered ``{"type": "result", "ref": r, "result": {…}}``, or an ``error`` frame with the same ``ref`` — only after
  the call's writes are durable, so a runtime may resend an unanswered call after a reconnect (a fenced update that
  already applied is refused as a conflict, never applied twice). A call with a ``"key"`` (unique per call) is run
  once, to its end even if the connection closes: its resend gets the first run's answer (``core/answered``), so the
  tasks an ``update_batch`` took with ``claim_next`` reach the runtime instead of waiting out their leases. Calls of one
  connection run concurrently, at most ``MAX_CALLS`` at once: past that the hub stops reading the socket until one ends.
* ``{"type": "take", "task_types": [...], "capacity": n, "lease_seconds": s}`` makes the hub lease tasks to the
  connection's agent (``agora.task.claim_batch``, so leases, fencing, attempts and dead-lettering are the queue's) and
  push them as ``{"type": "tasks", "claims": [{"task": …, "lease": …}]}`` as they arrive, never more than the credit
  the runtime gave: ``capacity`` at first (or ``credit`` if given), then one more for each ``{"type": "credit",
  "tasks": k}`` (or a ``"credit": k`` on any frame). A slow runtime is therefore never flooded, and takes no work a
  faster one could run. A pushed task is a claimed task: unanswered, its lease runs out and it goes back to the queue.
* A socket opened with ``?messages=m`` is pushed at most ``m`` messages before the client gives room back with
  ``{"type": "credit", "messages": k}`` (one per message handled); the rest wait in the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError

from agora.core.auth import Principal, PrincipalKind
from agora.core.context import Hub
from agora.core.wakeups import claimer_keys
from agora.observability import metrics
from agora_sdk.errors import AgoraError, InvalidArgument, PermissionDenied

log = logging.getLogger("agora.ws")

MAX_CALLS = 64  # calls of one connection running at once
MAX_PUSH = 100  # tasks in one pushed frame (agora.task.claim_batch's limit)
PARK_SECONDS = 20.0  # a channel parked for work looks again this often (a missed wake-up costs no more)

Send = Callable[[bytes], Awaitable[None]]


def error_frame(ref: Any, exc: AgoraError) -> dict[str, Any]:
    return {"type": "error", "ref": ref, "code": exc.code, "status": exc.status, "message": exc.message, "details": exc.details}


def count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"credit: {name}, a whole number, 0 or more", details={"field": name})
    return value


class Take(BaseModel, extra="forbid"):
    """What a runtime declares it takes: task types (none: any), how many tasks at once, and their lease."""

    task_types: list[str] = Field(default_factory=list, max_length=20)
    capacity: int = Field(ge=1, le=1000)
    credit: int | None = Field(None, ge=0, le=1000, description="Tasks it has room for now (default: capacity).")
    lease_seconds: float = Field(30, ge=1, le=3600)


class ToolCalls:
    """``call`` frames of one connection, each run through ``Catalog.call`` and answered on the socket."""

    def __init__(self, hub: Hub, principal: Principal, request_id: str, send: Send):
        self.hub, self.principal, self.request_id, self._send = hub, principal, request_id, send
        self._slots = asyncio.Semaphore(MAX_CALLS)
        self._running: set[asyncio.Task[None]] = set()  # unkeyed calls (keyed ones run to their end: core/answered)
        self._closed = False

    async def start(self, ref: Any, frame: dict[str, Any]) -> None:
        """Start one call (waits while MAX_CALLS run); its answer is sent when it ends."""
        tool, args = frame.get("tool"), frame.get("args", {})
        if not isinstance(tool, str) or not isinstance(args, dict):
            raise InvalidArgument("a call frame has a 'tool' name and 'args', an object", details={"field": "tool"})
        await self._slots.acquire()
        key = frame.get("key")
        task = asyncio.create_task(self._run(ref, tool, args, key))
        if key is None:
            self._running.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _run(self, ref: Any, tool: str, args: dict[str, Any], key: Any) -> None:
        try:
            if key is None:
                body = await self._result(tool, args)
            else:
                caller = f"{self.principal.tenant_id}/{self.principal.label}"
                body, again = await self.hub.answered.answer(caller, key, tool, orjson.dumps(args), lambda: self._result(tool, args))
                if again:
                    metrics.CALLS_REPLAYED.inc()
            frame = b'{"type":"result","ref":%s,"result":%s}' % (orjson.dumps(ref), body)
        except AgoraError as exc:
            frame = orjson.dumps(error_frame(ref, exc))
        except Exception:  # noqa: BLE001 - one failed call must not end the connection
            log.exception("websocket call failed", extra={"request_id": self.request_id, "tool": tool})
            frame = orjson.dumps({"type": "error", "ref": ref, "code": "internal", "status": 500, "message": "internal error; see the hub log"})
        if self._closed:
            return  # the runtime resends after reconnecting, and a keyed call gets this answer then
        with contextlib.suppress(Exception):  # the connection is gone: the runtime resends after reconnecting
            await self._send(frame)

    async def _result(self, tool: str, args: dict[str, Any]) -> bytes:
        _, result, _ = await self.hub.catalog.call(self.hub, self.principal, tool, args, self.request_id)
        return result.model_dump_json(by_alias=True).encode()

    async def close(self) -> None:
        """Cancel the calls under way, but for keyed ones: those run to their end (``core/answered``)."""
        self._closed = True
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


class TaskPush:
    """Tasks claimed for the connection's agent as the runtime's credit allows, pushed down its socket; also a
    ``core/handoff.Taker``: a task made for the agent on this replica may be leased to it as it is made and handed
    here, within the same credit."""

    def __init__(self, hub: Hub, principal: Principal, agent: dict[str, Any] | None, request_id: str, send: Send):
        if principal.kind is not PrincipalKind.agent or agent is None:
            raise PermissionDenied("only an agent takes tasks: connect with the agent's token")
        self.hub, self.principal, self.request_id, self._send = hub, principal, request_id, send
        self.agent_id: str = agent["agent_id"]
        self._keys = claimer_keys(agent["tenant_id"], agent)
        self.take: Take | None = None
        self.credit = 0  # room the runtime gave that no claim in flight and no reservation holds
        self._more = asyncio.Event()  # credit came to a channel that had none
        self._loop: asyncio.Task[None] | None = None
        self._handed: list[Any] = []  # handed claims not yet on their way
        self._handing: set[asyncio.Task[None]] = set()

    @property
    def lease_seconds(self) -> float:
        return self.take.lease_seconds if self.take is not None else 30.0

    def declare(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Start (or change) what the connection takes; answers the ``taking`` frame."""
        try:
            take = Take.model_validate(frame)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InvalidArgument(f"take: {field}: {first['msg']}", details={"field": field}) from None
        self.take = take
        self.credit = 0
        self.grant(take.capacity if take.credit is None else take.credit)
        if self._loop is None:
            self._loop = asyncio.create_task(self._push())
            self.hub.handoffs.add(self)
            metrics.WORK_CHANNELS.inc()
        return {"type": "taking", "capacity": take.capacity, "credit": self.credit}

    def grant(self, tasks: Any) -> None:
        if self.take is None:
            raise InvalidArgument("credit before take: declare what the connection takes first", details={"field": "type"})
        self.credit = min(self.take.capacity, self.credit + count(tasks, "tasks"))
        if self.credit > 0:
            self._more.set()

    # -- core/handoff.Taker ---------------------------------------------------------------------------------------

    def wants(self, task_type: str) -> bool:
        return self.take is not None and (not self.take.task_types or task_type in self.take.task_types)

    def reserve(self) -> bool:
        """Whenever the runtime has room, busy or not: the turn's caller is waiting, and a hand-off spares its round
        trip a claim of its own and the wake-up before it (a busy runtime's push loop would claim the turn alone
        anyway, turns coming one per request)."""
        if self.take is None or self.credit <= 0:
            return False
        self.credit -= 1
        return True

    def unreserve(self) -> None:
        self.credit += 1
        self._more.set()

    def hand(self, claim: Any) -> None:
        """Push it with the others handed in the same turn of the event loop, in one frame."""
        self._handed.append(claim)
        if len(self._handed) == 1:
            task = asyncio.create_task(self._deliver_handed())
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)

    async def _deliver_handed(self) -> None:
        await asyncio.sleep(0)
        claims, self._handed = self._handed, []
        await self._deliver(claims, "handed")

    # -- claiming ---------------------------------------------------------------------------------------------------

    async def _push(self) -> None:
        """Claim as much as the credit allows, without waiting in the claim (its room would be out of reach of a
        hand-off meanwhile); when nothing is eligible, park on the claimer wake-ups or until a task backing off
        becomes eligible; with no credit, until some comes."""
        while not self.hub.wakeups.draining:
            take = self.take
            assert take is not None
            if self.credit <= 0:
                self._more.clear()
                await self._more.wait()
                continue
            with self.hub.wakeups.armed(self._keys) as woken:
                asked = min(self.credit, MAX_PUSH)
                self.credit -= asked
                args = {"task_types": take.task_types, "max_tasks": asked, "lease_seconds": take.lease_seconds}
                try:
                    _, claimed, _ = await self.hub.catalog.call(self.hub, self.principal, "agora.task.claim_batch", args, self.request_id)
                except AgoraError as exc:  # a paused agent, a halt, a rate limit: say so, and try again a little later
                    self.credit += asked
                    with contextlib.suppress(Exception):
                        await self._send(orjson.dumps(error_frame(None, exc)))
                    await asyncio.sleep(1.0)
                    continue
                claims = claimed.claims  # type: ignore[attr-defined]
                self.credit += asked - len(claims)
                if claims:
                    await self._deliver(claims, "claimed")
                    continue
                # Nothing eligible: more credit changes nothing until work comes (a claim now would find none).
                park = PARK_SECONDS
                next_available = claimed.next_available_at  # type: ignore[attr-defined]
                if next_available is not None:
                    park = min(park, max(0.0, (next_available - self.hub.clock.now()).total_seconds()) + 0.005)
                await woken.wait(park)

    async def _deliver(self, claims: list[Any], how: str) -> None:
        body = b",".join(c.model_dump_json().encode() for c in claims)
        try:
            await self._send(b'{"type":"tasks","claims":[%s]}' % body)
        except BaseException:
            metrics.count_pushed("given_back", len(claims))
            await asyncio.shield(self._give_back(claims))
            raise
        metrics.count_pushed(how, len(claims))

    async def _give_back(self, claims: list[Any]) -> None:
        """Tasks the socket could not carry go back to the queue at once, without spending an attempt (rather than
        waiting out their leases)."""
        updates = [{"task_id": c.task.task_id, "lease_token": c.lease.token, "status": "pending"} for c in claims]
        with contextlib.suppress(Exception):
            await self.hub.catalog.call(self.hub, self.principal, "agora.task.update_batch", {"updates": updates}, self.request_id)

    async def close(self) -> None:
        if self._loop is not None:
            metrics.WORK_CHANNELS.dec()
        self.hub.handoffs.remove(self)
        for task in [self._loop, *self._handing]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._loop, *self._handing] if t is not None), return_exceptions=True)

