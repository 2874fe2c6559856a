"""A2A tasks of agents' A2A fronts and their ordered stream events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from agora_sdk.errors import NotFound

from ..base import point_read
from ..prepared import Prepared
from ..schema import a2a_events, a2a_push_configs, a2a_tasks
from .dialect import unlocked

TURN = "a2a.message"  # the Agora task type of one turn of an A2A task (services/a2a.py)

_INSERT_EVENT = Prepared(insert(a2a_events))
_EVENTS_AFTER = (
    select(a2a_events.c.seq, a2a_events.c.body, a2a_events.c.final)
    .where(a2a_events.c.task_id == bindparam("task_id"), a2a_events.c.seq > bindparam("after"))
    .order_by(a2a_events.c.seq)
    .limit(bindparam("limit"))
)


# Built once: each call only binds its values (these run several times in every A2A round trip).
_INSERT_TASK = Prepared(insert(a2a_tasks))
_GET_STATEMENT = select(a2a_tasks).where(a2a_tasks.c.task_id == bindparam("task_id"))
_GET = Prepared(_GET_STATEMENT)
# A task read to be moved comes with whether it has webhooks (``has_push``), which its wake-up tells the deliverers:
# a statement of its own per wake-up was three of an A2A round trip's.
_HAS_PUSH = exists().where(a2a_push_configs.c.task_id == a2a_tasks.c.task_id).label("has_push")
_GET_LOCKED = Prepared(select(a2a_tasks, _HAS_PUSH).where(a2a_tasks.c.task_id == bindparam("task_id")).with_for_update(of=a2a_tasks))
_LAST_SEQ = select(func.coalesce(func.max(a2a_events.c.seq), 0)).where(a2a_events.c.task_id == bindparam("task_id"))
# One statement, so one snapshot even under PostgreSQL's READ COMMITTED (two statements may see different commits).
_GET_WITH_LAST_SEQ = Prepared(select(a2a_tasks, _LAST_SEQ.scalar_subquery().label("last_seq")).where(a2a_tasks.c.task_id == bindparam("task_id")))
_FOR_TURN = Prepared(select(a2a_tasks, _HAS_PUSH).where(a2a_tasks.c.turn_task_id == bindparam("turn_task_id")).with_for_update(of=a2a_tasks))
# The SET clause comes from the parameters' keys; the key names its own parameter so it never clashes with them.
_SAVE = Prepared(update(a2a_tasks).where(a2a_tasks.c.task_id == bindparam("b_task_id")))


def insert_task(conn: Connection, row: dict[str, Any]) -> None:
    _INSERT_TASK.execute(conn, row)


@point_read
def get(conn: Connection, task_id: str, lock: bool = False, last_seq: bool = False) -> dict[str, Any]:
    """The task; with ``last_seq``, also the seq of its newest event (``last_seq``), as of the same instant; with
    ``lock``, also whether it has webhooks (``has_push``)."""
    row = (_GET_WITH_LAST_SEQ if last_seq else _GET_LOCKED if lock else _GET).first(conn, {"task_id": task_id})
    if row is None:
        raise NotFound(f"no A2A task '{task_id}'", details={"task_id": task_id})
    return row


def for_turn(conn: Connection, turn_task_id: str) -> dict[str, Any] | None:
    """The A2A task whose current turn is the Agora task ``turn_task_id`` (locked: a transition follows), with
    whether it has webhooks (``has_push``)."""
    return _FOR_TURN.first(conn, {"turn_task_id": turn_task_id})


def save(conn: Connection, task: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    _SAVE.execute(conn, {"b_task_id": task["task_id"], **changes})
    return {**task, **changes}


def append_event(conn: Connection, task_id: str, body: dict[str, Any], final: bool, now: datetime) -> int:
    return int(_INSERT_EVENT.insert(conn, {"task_id": task_id, "body": body, "final": final, "created_at": now}))


def events_after(conn: Connection, task_id: str, after: int, limit: int = 200) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(_EVENTS_AFTER, {"task_id": task_id, "after": after, "limit": limit}).mappings()]


@point_read
def last_seq(conn: Connection, task_id: str) -> int:
    return int(conn.execute(_LAST_SEQ, {"task_id": task_id}).scalar_one())


def list_tasks(
    conn: Connection,
    agent_id: str,
    caller: str | None,
    *,
    context_id: str | None,
    state: str | None,
    updated_after: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """A caller's tasks with one agent (every caller's for None), newest first; ``after`` is the last row's key."""
    t = a2a_tasks.c
    scope = [t.agent_id == agent_id, ~t.message_only]
    if caller is not None:
        scope.append(t.caller == caller)
    if context_id:
        scope.append(t.context_id == context_id)
    if state:
        scope.append(t.state == state)
    if updated_after is not None:
        scope.append(t.updated_at > updated_after)
    total = conn.execute(select(func.count()).select_from(a2a_tasks).where(*scope)).scalar_one()
    stmt = select(a2a_tasks).where(*scope)
    if after is not None:
        stamp, task_id = after
        stmt = stmt.where(or_(t.updated_at < stamp, and_(t.updated_at == stamp, t.task_id < task_id)))
    rows = conn.execute(stmt.order_by(t.updated_at.desc(), t.task_id.desc()).limit(limit)).mappings().all()
    return [dict(r) for r in rows], total


FINISHED = ("completed", "failed", "canceled", "rejected")


def _purgeable(before: datetime) -> Select[Any]:
    """The states as SQL literals, as the partial index ``ix_a2a_tasks_finished`` states them, so it is used."""
    t = a2a_tasks.c
    return select(t.task_id).where(t.state.in_([literal_column(f"'{s}'") for s in FINISHED]), t.updated_at < before)


def purge(conn: Connection, before: datetime, limit: int) -> int:
    """Finished A2A tasks last changed before ``before`` go, with their events and push configs."""
    doomed = unlocked(conn, _purgeable(before), limit)
    if doomed:
        conn.execute(delete(a2a_events).where(a2a_events.c.task_id.in_(doomed)))
        conn.execute(delete(a2a_push_configs).where(a2a_push_configs.c.task_id.in_(doomed)))
        conn.execute(delete(a2a_tasks).where(a2a_tasks.c.task_id.in_(doomed)))
    return len(doomed)


def purgeable(conn: Connection, before: datetime) -> int:
    return int(conn.execute(select(func.count()).select_from(_purgeable(before).subquery())).scalar_one())
