"""Retention policies (how long each kind of record is kept, from the settings) and the purge that applies them.

The purge goes a batch at a time: rows of one kind per transaction, as many as the last batch's pace says take the
engine's ``Pace`` (on SQLite ~1 ms of its one writer, then three times that left to everyone else's writes). Millions
of old rows so go without a transaction that holds the writer for seconds while sends wait, and a send that comes
during a purge waits for one short batch at most. ``agora serve`` runs it every minute (``core/housekeeping``);
``agora store retention`` shows what it would remove and can run it on its own. On PostgreSQL, events older than a
whole day past the cutoff go with their day's partition (``store/partitions``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from agora.config import Settings
from agora.store import Store, partitions
from agora.store.ops import retention as retention_ops


@dataclass(frozen=True)
class Pace:
    batch_seconds: float  # what one batch may take
    pause_share: float  # after each batch, others have the store for this many times the batch's time


# SQLite has one writer: a send queued behind a batch waits for all of it, so batches are short and leave the writer
# to others three quarters of the time. PostgreSQL's sends commit beside a batch, which only costs them I/O.
PACES = {"sqlite": Pace(0.001, 3.0), "postgresql": Pace(0.02, 1.0)}
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 200, 20, 5000

Policies = dict[str, timedelta | None]  # per kind (store/ops/retention.KINDS): kept this long; None: forever


def policies(settings: Settings) -> Policies:
    def kept(seconds: float | None) -> timedelta | None:
        return timedelta(seconds=seconds) if seconds else None

    messages = settings.message_retention_seconds
    return {
        "messages": kept(messages),
        "events": kept(messages if settings.event_retention_seconds is None else settings.event_retention_seconds),
        "a2a_tasks": kept(messages if settings.a2a_retention_seconds is None else settings.a2a_retention_seconds),
        "tasks": kept(settings.task_retention_seconds),
        "workflows": kept(settings.workflow_retention_seconds),
        "usage": kept(settings.usage_retention_seconds),
        "schedule_ticks": kept(settings.schedule_retention_seconds),
        # A conversation idle past both its messages' and its tasks' retention: what is left of it goes too.
        "conversations": None if not messages or not settings.task_retention_seconds else kept(max(messages, settings.task_retention_seconds)),
    }


async def preview(store: Store, kept: Policies, now: datetime) -> dict[str, int]:
    """How many rows of each kind with a policy would go now."""
    return {name: await store.read(retention_ops.KINDS[name].count, now - keep, now) for name, keep in kept.items() if keep is not None}


async def purge(store: Store, kept: Policies, now: datetime, on_batch: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Remove what each policy no longer keeps, a batch per transaction; the rows removed per kind."""
    removed: dict[str, int] = {}
    pace = PACES.get(store.dialect, PACES["postgresql"])
    await store.write(partitions.ensure, now)  # the coming days' partitions (PostgreSQL), before their rows come
    for name, keep in kept.items():
        if keep is None:
            continue
        kind, before, total, limit, cursor = retention_ops.KINDS[name], now - keep, 0, FIRST_BATCH, None
        while True:
            (batch, cursor), took = await store.write(_timed, kind.batch, before, now, limit, cursor)
            total += batch
            if on_batch is not None:
                on_batch(name, batch)
            if cursor is None:
                break
            # As many rows as take the pace's batch time at this batch's rate; after one that took none (a kind moving
            # on to its next part, which may cost more per row), the first size again.
            limit = max(MIN_BATCH, min(MAX_BATCH, int(batch * pace.batch_seconds / max(took, 1e-4)))) if batch else FIRST_BATCH
            await asyncio.sleep(took * pace.pause_share)  # writes queued meanwhile, and those coming, go first
        removed[name] = total
    return removed


def _timed(conn: Connection, batch: retention_ops.Batch, *args: Any) -> tuple[tuple[int, Any], float]:
    """A batch and the seconds it held the writer (not counting its wait in the queue)."""
    started = time.perf_counter()
    return batch(conn, *args), time.perf_counter() - started
