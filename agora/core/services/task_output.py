"""agora.task.emit and agora.task.watch: a task's output while it runs, stored in order and read after a cursor.

A chunk is committed before its emit is answered, so nothing the hub acknowledged is lost to a crash; the wake-up
(``output:<task>``, from the notifier only: no hub event row per chunk) brings watchers parked on this or another
replica, and a watcher that missed one reads again within ``RECHECK`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core import progress
from agora.core.context import CallContext, Hub
from agora.core.events import announce
from agora.core.services import a2a
from agora.core.services.acting import acting_agent
from agora.store.ops import task_output as output_ops
from agora_sdk.wire.tasks import FINISHED, Chunk, EmitOutput, Emitted, TaskOutput, WatchOutput

RECHECK = 1.0  # seconds a parked watcher waits at most before it reads again (a wake-up lost between replicas)
FOLLOWING = output_ops.FEW  # the chunks a stream following a task asks for at a time: read at once (``after_few``)
RELAY_BATCH = 500  # chunks read at once when relaying a task's output to a waiting call
EVENT = "output_emitted"


def output_key(task_id: str) -> str:
    """The wake-up key of a task's watchers."""
    return f"output:{task_id}"


async def emit(ctx: CallContext, req: EmitOutput) -> Emitted:
    p = ctx.principal
    if p.agent_id is not None and req.agent in (None, p.agent_id):  # the holder itself, as a runtime emits: nothing to read first
        agent = {"tenant_id": p.tenant_id, "agent_id": p.agent_id}
    else:
        agent = await acting_agent(ctx, req.agent, "emits output")
    chunks = [c.model_dump(mode="json", exclude_unset=True) for c in req.chunks]
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[list[dict[str, Any]], int, dict[str, Any], list[Event]]:
        rows, over, task = output_ops.append(conn, req.task_id, agent["tenant_id"], agent["agent_id"], req.lease_token, chunks, bound, now)
        kept = chunks[: len(chunks) - over]
        return rows, over, task, a2a.emitted(conn, task, kept, now) if task["task_type"] == a2a.TURN else []

    bound = ctx.hub.settings.task_output_chunks
    at_once = ctx.store.dialect == "postgresql" and req.lease_token is not None and len(chunks) <= output_ops.AT_ONCE
    done = await ctx.store.write_statement(
        output_ops.append_at_once, req.task_id, agent["tenant_id"], agent["agent_id"], req.lease_token, chunks, bound, now
    ) if at_once else None  # fmt: skip
    rows, over, task, streamed = (*done, []) if done is not None else await ctx.store.write(op)
    conversation = task["conversation_id"]
    data = {"task_id": req.task_id, **({"conversation_id": conversation} if conversation else {})}
    await ctx.notifier.publish(Event(EVENT, agent["tenant_id"], data, local=rows))  # a stream here takes them as they are
    await announce(ctx.hub, streamed)
    first, last = (rows[0]["seq"], rows[-1]["seq"]) if rows else (None, None)
    return Emitted(task_id=req.task_id, first_seq=first, last_seq=last, overflowed=over)


def handed(task_id: str, rows: list[dict[str, Any]] | None, after: int) -> TaskOutput | None:
    """The chunks an emit on this replica stored (its wake-up's ``local``) as the next answer of a stream that has
    every chunk up to ``after``, if they follow on from it (else None: the stream reads)."""
    if not rows or rows[0]["seq"] != after + 1:
        return None
    return _answer({"task_id": task_id, "status": "in_progress"}, rows, after, len(rows) + 1)


def _answer(task: dict[str, Any], chunks: list[dict[str, Any]], after: int, limit: int) -> TaskOutput:
    ended = task["status"] in FINISHED and len(chunks) < limit
    shown = [Chunk(seq=c["seq"], kind=c["kind"], text=c["text"], data=c["data"], at=c["created_at"]) for c in chunks]
    return TaskOutput(task_id=task["task_id"], status=task["status"], chunks=shown, next_after=chunks[-1]["seq"] if chunks else after, ended=ended)


async def watch(ctx: CallContext, req: WatchOutput) -> TaskOutput:
    """What the task emitted after ``after``; with nothing new and the task not ended, wait up to ``wait`` seconds.
    With ``last``: its last chunks, at once."""
    scope = ctx.principal.tenant_scope()
    if req.last is not None:
        task, chunks = await ctx.store.read(output_ops.tail, req.task_id, scope, req.last)
        return _answer(task, chunks, 0, len(chunks) + 1)
    deadline = time.monotonic() + req.wait
    while True:
        with ctx.hub.wakeups.armed([output_key(req.task_id), f"task:{req.task_id}"]) as woken:
            read = output_ops.after_few if req.limit <= output_ops.FEW else output_ops.after
            task, chunks = await ctx.store.read(read, req.task_id, scope, req.after, req.limit)
            answer = _answer(task, chunks, req.after, req.limit)
            left = ctx.hub.wakeups.remaining(deadline)
            if chunks or answer.ended or left <= 0:
                return answer
            await woken.wait(min(left, RECHECK))


@contextlib.asynccontextmanager
async def relayed(hub: Hub, task_id: str) -> AsyncIterator[None]:
    """While a call waits on ``task_id`` (``agora.marketplace.execute``), each text chunk the task emits goes to the
    call's progress reporter, if its door set one (MCP: a notifications/progress with the chunk as its message), in
    order; those emitted between the last wake-up and the end, once the wait is over."""
    report = progress.reporter.get()
    if report is None:
        yield
        return
    given = 0

    async def pass_on() -> None:
        """Report every chunk stored after the last one reported."""
        nonlocal given
        while True:
            _task, chunks = await hub.store.read(output_ops.after, task_id, None, given, RELAY_BATCH)
            for chunk in chunks:
                given = chunk["seq"]
                if chunk["kind"] == "text" and chunk["text"]:
                    await report(float(chunk["seq"]), None, chunk["text"])
            if len(chunks) < RELAY_BATCH:
                return

    async def follow() -> None:
        while True:
            with hub.wakeups.armed([output_key(task_id)]) as woken:
                await pass_on()
                await woken.wait(RECHECK)

    follower = asyncio.create_task(follow(), name=f"relay-{task_id}")
    try:
        yield
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await pass_on()
