"""agora.task.emit and agora.task.watch: a task's output while it runs, stored in order and read after a cursor.

A chunk is committed before its emit is answered, so nothing the hub acknowledged is lost to a crash; the wake-up
(``output:<task>``, from the notifier only: no hub event row per chunk) brings watchers parked on this or another
replica, and a watcher that missed one reads again within ``RECHECK`` seconds.
"""

from __future__ import annotations

import time
from typing import Any

from agora.bus import Event
from agora.core.context import CallContext
from agora.core.services.acting import acting_agent
from agora.store.ops import task_output as output_ops
from agora_sdk.wire.tasks import FINISHED, Chunk, EmitOutput, Emitted, TaskOutput, WatchOutput

RECHECK = 1.0  # seconds a parked watcher waits at most before it reads again (a wake-up lost between replicas)
EVENT = "output_emitted"


def output_key(task_id: str) -> str:
    """The wake-up key of a task's watchers."""
    return f"output:{task_id}"


async def emit(ctx: CallContext, req: EmitOutput) -> Emitted:
    agent = await acting_agent(ctx, req.agent, "emits output")
    chunks = [c.model_dump(mode="json", exclude_unset=True) for c in req.chunks]
    (first, last), over = await ctx.store.write(
        output_ops.append, req.task_id, agent["tenant_id"], agent["agent_id"], req.lease_token, chunks,
        ctx.hub.settings.task_output_chunks, ctx.clock.now(),
    )  # fmt: skip
    await ctx.notifier.publish(Event(EVENT, agent["tenant_id"], {"task_id": req.task_id}))
    return Emitted(task_id=req.task_id, first_seq=first, last_seq=last, overflowed=over)


def _answer(task: dict[str, Any], chunks: list[dict[str, Any]], after: int, limit: int) -> TaskOutput:
    ended = task["status"] in FINISHED and len(chunks) < limit
    shown = [Chunk(seq=c["seq"], kind=c["kind"], text=c["text"], data=c["data"], at=c["created_at"]) for c in chunks]
    return TaskOutput(task_id=task["task_id"], status=task["status"], chunks=shown, next_after=chunks[-1]["seq"] if chunks else after, ended=ended)


async def watch(ctx: CallContext, req: WatchOutput) -> TaskOutput:
    """What the task emitted after ``after``; with nothing new and the task not ended, wait up to ``wait`` seconds."""
    deadline = time.monotonic() + req.wait
    scope = ctx.principal.tenant_scope()
    while True:
        with ctx.hub.wakeups.armed([output_key(req.task_id), f"task:{req.task_id}"]) as woken:
            task, chunks = await ctx.store.read(output_ops.after, req.task_id, scope, req.after, req.limit)
            answer = _answer(task, chunks, req.after, req.limit)
            left = ctx.hub.wakeups.remaining(deadline)
            if chunks or answer.ended or left <= 0:
                return answer
            await woken.wait(min(left, RECHECK))
