"""Retention: per kind of record, what is old enough to go — counted (``agora store retention``) or purged a batch at a
time (the hub's retention job), each batch a short transaction of its own, so writes between batches never wait
behind a purge of millions of rows.

A purge never takes what something still needs: a task an unfinished task depends on, a task of a workflow (it goes
with its workflow), the current turn of an A2A task, a workflow with an unfinished task, or usage of a month whose
invoice period has not closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, exists, func, or_, select
from sqlalchemy.orm import aliased

from ..schema import (
    a2a_tasks,
    market_usage,
    schedule_ticks,
    task_dependencies,
    task_history,
    task_output,
    task_requirements,
    tasks,
    workflow_step_tasks,
    workflow_steps,
    workflows,
)
from .. import partitions
from . import a2a as a2a_ops
from . import conversations as conversation_ops
from . import events as event_ops
from . import messages as message_ops
from . import schedules as schedule_ops
from .dialect import unlocked
from .tasks import UNFINISHED, status_is

FINISHED_TASK = ("completed", "failed", "cancelled", "dead_letter")
FINISHED_WORKFLOW = ("completed", "failed", "cancelled")


def _tasks_that_may_go(before: datetime) -> Select[Any]:
    t = tasks.c
    dependent = aliased(tasks)
    needed_downstream = exists(
        select(1)
        .select_from(task_dependencies.join(dependent, dependent.c.task_id == task_dependencies.c.task_id))
        .where(task_dependencies.c.depends_on_id == t.task_id, status_is(*UNFINISHED, of=dependent))
    )
    a_current_turn = exists(select(1).where(a2a_tasks.c.turn_task_id == t.task_id))
    return select(t.task_id).where(
        t.finished_at < before, status_is(*FINISHED_TASK), t.workflow_id.is_(None), ~needed_downstream, ~a_current_turn
    )


def _workflows_that_may_go(before: datetime) -> Select[Any]:
    w = workflows.c
    unfinished_task = exists(
        select(1)
        .select_from(workflow_step_tasks.join(tasks, tasks.c.task_id == workflow_step_tasks.c.task_id))
        .where(workflow_step_tasks.c.workflow_id == w.workflow_id, status_is(*UNFINISHED))
    )
    return select(w.workflow_id).where(w.finished_at < before, w.status.in_(FINISHED_WORKFLOW), ~unfinished_task)


def _usage_that_may_go(before: datetime, now: datetime) -> Select[Any]:
    """Usage rows ended before ``before`` of months before this one (the current month's invoice is still open)."""
    u = market_usage.c
    return select(u.usage_id).where(u.ended_at < before, u.month < now.strftime("%Y-%m"))


def _drop_tasks(conn: Connection, task_ids: list[str]) -> int:
    """The tasks and everything kept about them (history, requirements, dependency links, workflow step links, output)."""
    if not task_ids:
        return 0
    conn.execute(delete(task_history).where(task_history.c.task_id.in_(task_ids)))
    conn.execute(delete(task_requirements).where(task_requirements.c.task_id.in_(task_ids)))
    links = task_dependencies.c
    conn.execute(delete(task_dependencies).where(or_(links.task_id.in_(task_ids), links.depends_on_id.in_(task_ids))))
    conn.execute(delete(workflow_step_tasks).where(workflow_step_tasks.c.task_id.in_(task_ids)))
    conn.execute(delete(task_output).where(task_output.c.task_id.in_(task_ids)))
    return conn.execute(delete(tasks).where(tasks.c.task_id.in_(task_ids))).rowcount


def purge_tasks(conn: Connection, before: datetime, now: datetime, limit: int) -> int:
    doomed = unlocked(conn, _tasks_that_may_go(before), limit)
    return _drop_tasks(conn, doomed)


def purge_workflows(conn: Connection, before: datetime, now: datetime, limit: int) -> int:
    """Finished workflows with their steps and their tasks (counted: the workflows)."""
    doomed = unlocked(conn, _workflows_that_may_go(before), limit)
    if not doomed:
        return 0
    steps_tasks = select(workflow_step_tasks.c.task_id).where(workflow_step_tasks.c.workflow_id.in_(doomed))
    _drop_tasks(conn, list(conn.execute(steps_tasks).scalars()))
    conn.execute(delete(workflow_steps).where(workflow_steps.c.workflow_id.in_(doomed)))
    return conn.execute(delete(workflows).where(workflows.c.workflow_id.in_(doomed))).rowcount


def purge_usage(conn: Connection, before: datetime, now: datetime, limit: int) -> int:
    doomed = unlocked(conn, _usage_that_may_go(before, now), limit)
    if not doomed:
        return 0
    return conn.execute(delete(market_usage).where(market_usage.c.usage_id.in_(doomed))).rowcount


def purge_events(conn: Connection, before: datetime, now: datetime, limit: int, cursor: Any) -> tuple[int, Any]:
    """On PostgreSQL first the day partitions wholly older than ``before``, one a batch (store/partitions.py), then
    what is left older than it a batch of rows at a time (all of it on SQLite)."""
    if cursor in (None, "partitions") and partitions.partitioned(conn):
        try:
            dropped = partitions.drop_oldest(conn, "events", before)
        except partitions.Busy:
            return 0, None  # the next run tries again, rather than deleting the day's rows one by one meanwhile
        if dropped is not None:
            return dropped, "partitions"
    removed = event_ops.purge(conn, before, limit)
    return removed, ("rows" if removed >= limit else None)


def purge_schedule_ticks(conn: Connection, before: datetime, now: datetime, limit: int) -> int:
    return schedule_ops.purge_ticks(conn, before, limit)


def count_schedule_ticks(conn: Connection, before: datetime, now: datetime) -> int:
    return _count(conn, select(schedule_ticks.c.schedule_id).where(schedule_ticks.c.recorded_at < before))


def purge_conversations(conn: Connection, before: datetime, now: datetime, limit: int) -> int:
    return conversation_ops.purge(conn, before, limit)


def count_conversations(conn: Connection, before: datetime, now: datetime) -> int:
    return conversation_ops.count_idle(conn, before)


def purge_a2a_tasks(conn: Connection, before: datetime, now: datetime, limit: int) -> int:
    return a2a_ops.purge(conn, before, limit)


Batch = Callable[[Connection, datetime, datetime, int, Any], tuple[int, Any]]


def _batches(purge: Callable[[Connection, datetime, datetime, int], int]) -> Batch:
    """A purge that takes the oldest ``limit`` each time, as a batch: done once it took fewer."""

    def batch(conn: Connection, before: datetime, now: datetime, limit: int, cursor: Any) -> tuple[int, Any]:
        removed = purge(conn, before, now, limit)
        return removed, (True if removed >= limit else None)

    return batch


def _count(conn: Connection, query: Select[Any]) -> int:
    return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def count_messages(conn: Connection, before: datetime, now: datetime) -> int:
    return sum(message_ops.purgeable(conn, before, now).values())


def count_events(conn: Connection, before: datetime, now: datetime) -> int:
    return event_ops.purgeable(conn, before)


def count_a2a_tasks(conn: Connection, before: datetime, now: datetime) -> int:
    return a2a_ops.purgeable(conn, before)


def count_tasks(conn: Connection, before: datetime, now: datetime) -> int:
    return _count(conn, _tasks_that_may_go(before))


def count_workflows(conn: Connection, before: datetime, now: datetime) -> int:
    return _count(conn, _workflows_that_may_go(before))


def count_usage(conn: Connection, before: datetime, now: datetime) -> int:
    return _count(conn, _usage_that_may_go(before, now))


@dataclass(frozen=True)
class Kind:
    name: str
    what: str  # how a person names what goes
    count: Callable[[Connection, datetime, datetime], int]
    # One batch: (conn, before, now, limit, cursor) → (rows removed, the next batch's cursor; None: nothing more now).
    # The first batch of a run gets cursor None.
    batch: Batch


KINDS = {
    k.name: k
    for k in (
        Kind("messages", "acked deliveries, expired messages and messages nobody has still to receive", count_messages, message_ops.purge_batch),
        Kind("events", "hub events (on PostgreSQL, a day wholly past goes with its partition)", count_events, purge_events),
        Kind("a2a_tasks", "finished A2A tasks with their events", count_a2a_tasks, _batches(purge_a2a_tasks)),
        Kind("tasks", "finished tasks outside workflows, with their history", count_tasks, _batches(purge_tasks)),
        Kind("workflows", "finished workflow runs, with their steps and tasks", count_workflows, _batches(purge_workflows)),
        Kind("usage", "marketplace usage records of closed months", count_usage, _batches(purge_usage)),
        Kind("schedule_ticks", "ticks of schedules' history", count_schedule_ticks, _batches(purge_schedule_ticks)),
        Kind("conversations", "conversations idle past their messages' and tasks' retention", count_conversations, _batches(purge_conversations)),
    )
}
