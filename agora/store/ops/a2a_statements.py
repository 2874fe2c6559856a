"""An A2A turn's ending as one statement on PostgreSQL: the agent's final answer (``agora.a2a.update`` with a state
that ends the turn) moves the A2A task, appends its status event, completes the turn under its lease, and records the
turn's history and hub event. Through ``services.a2a``'s transaction that is nine round trips (BEGIN, both rows
locked, five writes, COMMIT); here it is a read and this statement, run without BEGIN and COMMIT.

The read gives the A2A task as it was; the statement changes it only if it still is so (its state and ``updated_at``,
locked first), and the turn only if the caller still holds its lease: otherwise nothing changes, and the caller runs
the transaction, which says why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, literal_column, select, update

from ..prepared import Prepared
from ..schema import a2a_events, a2a_push_configs, a2a_tasks, tasks
from .task_statements import recorded
from .tasks import status_is

_NOW = bindparam("now", type_=tasks.c.updated_at.type)

_HAS_PUSH = exists().where(a2a_push_configs.c.task_id == a2a_tasks.c.task_id).label("has_push")
_TURN_TASK = Prepared(
    select(a2a_tasks, _HAS_PUSH)
    .join(tasks, tasks.c.task_id == a2a_tasks.c.turn_task_id)
    .where(tasks.c.task_id == bindparam("turn_task_id"), tasks.c.tenant_id == bindparam("tenant_id"), tasks.c.claimed_by == bindparam("agent_id"))
)


def turn_task(conn: Connection, turn_task_id: str, tenant_id: str, agent_id: str) -> dict[str, Any] | None:
    """The A2A task whose turn ``turn_task_id`` the agent holds (with ``has_push``), unlocked; None if none."""
    return _TURN_TASK.first(conn, {"turn_task_id": turn_task_id, "tenant_id": tenant_id, "agent_id": agent_id})


def _end_statement() -> Prepared:
    seen = (
        select(a2a_tasks.c.task_id)
        .where(
            a2a_tasks.c.task_id == bindparam("a2a_task_id"), a2a_tasks.c.state == bindparam("seen_state"),
            a2a_tasks.c.updated_at == bindparam("seen_at", type_=a2a_tasks.c.updated_at.type),
        )  # fmt: skip
        .with_for_update()
        .cte("seen")
    )
    turn = (
        update(tasks)
        .where(
            tasks.c.task_id == bindparam("turn_task_id"), tasks.c.tenant_id == bindparam("tenant_id"), status_is("in_progress"),
            tasks.c.lease_token == bindparam("token"), tasks.c.claimed_by == bindparam("agent_id"), exists(select(seen.c.task_id)),
        )  # fmt: skip
        .values(
            status="completed", notes=bindparam("notes", type_=tasks.c.notes.type), progress=100, updated_at=_NOW, finished_at=_NOW,
            lease_token=None, lease_expires_at=None,
        )  # fmt: skip
        .returning(*tasks.c, literal_column("1").label("n"))
        .cte("turn")
    )
    moved = (
        update(a2a_tasks)
        .where(a2a_tasks.c.task_id == bindparam("a2a_task_id"), exists(select(turn.c.task_id)))
        .values(
            state=bindparam("state", type_=a2a_tasks.c.state.type), status_message=bindparam("message", type_=a2a_tasks.c.status_message.type),
            history=bindparam("history", type_=a2a_tasks.c.history.type), updated_at=_NOW,
        )  # fmt: skip
        .returning(a2a_tasks.c.task_id)
        .cte("moved")
    )
    event = (
        insert(a2a_events)
        .from_select(
            ["task_id", "body", "final", "created_at"],
            select(moved.c.task_id, bindparam("body", type_=a2a_events.c.body.type), literal_column("true"), _NOW),
        )
        .returning(a2a_events.c.seq)
        .cte("a2a_event")
    )
    last_seq = select(event.c.seq).scalar_subquery().label("a2a_last_seq")
    history_and_events = recorded(turn, bindparam("agent_id"), "in_progress", "completed", turn.c.notes, "task_completed")
    return Prepared(select(turn, last_seq).add_cte(seen, moved, event, *history_and_events))


_END = _end_statement()


def end_turn(
    conn: Connection, task: dict[str, Any], tenant_id: str, agent_id: str, token: str, changes: dict[str, Any], body: dict[str, Any],
    notes: str, now: datetime,
) -> dict[str, Any] | None:
    """End the turn of the A2A ``task`` (as the agent read it): the task takes ``changes`` (``state``,
    ``status_message``, ``history``) and the status event ``body``; the turn is completed with ``notes``. The turn as
    completed (with the event's seq, ``a2a_last_seq``), or None if nothing changed."""
    params = {
        "a2a_task_id": task["task_id"], "seen_state": task["state"], "seen_at": task["updated_at"], "turn_task_id": task["turn_task_id"],
        "tenant_id": tenant_id, "agent_id": agent_id, "token": token, "notes": notes, "now": now, "state": changes["state"],
        "message": changes["status_message"], "history": changes["history"], "body": body,
    }  # fmt: skip
    return _END.first(conn, params)
