"""An A2A turn's ending as one statement on PostgreSQL (a few plain ones on SQLite): the agent's final answer
(``agora.a2a.update`` with a state that ends the turn) moves the A2A task, appends its status event, completes the
turn under its lease, and records the turn's history and hub event. Through ``services.a2a``'s transaction that is
nine round trips (BEGIN, both rows locked, five writes, COMMIT); here it is one statement, run without BEGIN and
COMMIT.

The A2A task is locked first, and only if it has not ended its stream yet; the turn is completed only if the caller
holds its lease. Otherwise nothing changes, and the caller runs the transaction, which says why. The agent's message
gets the task's ids, and the status event its body, in SQL (``services.a2a`` builds the same in Python).

On SQLite the same changes are a read and a few writes in the writer's transaction (``_end_turn_each``): the turn
completed as any completion under its lease (``tasks.complete_leased``), and the A2A task moved without reading and
rewriting its history.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, String, bindparam, exists, func, insert, literal, literal_column, select, true, update
from sqlalchemy.dialects.postgresql import JSONB

from ..prepared import Prepared
from ..schema import a2a_events, a2a_push_configs, a2a_tasks, tasks
from . import a2a as a2a_ops
from . import events as event_ops
from . import tasks as task_ops
from .dialect import one_of_words
from .task_statements import constant, recorded
from .tasks import EVENT_FIELDS, status_is

_NOW = bindparam("now", type_=tasks.c.updated_at.type)
_TURN_FIELDS = (*(f for f in EVENT_FIELDS if f in tasks.c), "tenant_id")  # what the turn's hub event tells of it


@lru_cache(maxsize=4)
def _end_statement(ends: tuple[str, ...], with_message: bool) -> Prepared:
    """The statement for A2A states ``ends`` (those that end a stream), with a status message or without."""
    seen = (
        select(a2a_tasks.c.task_id, a2a_tasks.c.context_id)
        .where(a2a_tasks.c.turn_task_id == bindparam("turn_task_id"), ~one_of_words(a2a_tasks.c.state, ends))
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
    status = func.jsonb_build_object(constant("state"), bindparam("wire_state", type_=String), constant("timestamp"), bindparam("timestamp", type_=String))
    changes: dict[str, Any] = {"state": bindparam("state", type_=a2a_tasks.c.state.type), "updated_at": _NOW}
    if with_message:  # the agent's message, with the task's ids: its status message, and the last of its history
        ids = func.jsonb_build_object(constant("taskId"), seen.c.task_id, constant("contextId"), seen.c.context_id)
        said = bindparam("message", type_=JSONB).op("||", return_type=JSONB)(ids)
        changes |= {"status_message": said, "history": a2a_tasks.c.history.op("||", return_type=JSONB)(func.jsonb_build_array(said))}
    else:
        changes["status_message"] = None
    moved = (
        update(a2a_tasks)
        .where(a2a_tasks.c.task_id == seen.c.task_id, exists(select(turn.c.task_id)))
        .values(**changes)
        .returning(*a2a_tasks.c, exists().where(a2a_push_configs.c.task_id == a2a_tasks.c.task_id).label("has_push"))
        .cte("moved")
    )
    if with_message:
        status = status.op("||", return_type=JSONB)(func.jsonb_build_object(constant("message"), moved.c.status_message))
    body = func.jsonb_build_object(constant("statusUpdate"), func.jsonb_build_object(
        constant("taskId"), moved.c.task_id, constant("contextId"), moved.c.context_id, constant("status"), status,
    ))  # fmt: skip
    event = (
        insert(a2a_events)
        .from_select(["task_id", "body", "final", "created_at"], select(moved.c.task_id, body, true(), _NOW))
        .returning(a2a_events.c.seq)
        .cte("a2a_event")
    )
    history_and_events = recorded(turn, bindparam("agent_id"), "in_progress", "completed", turn.c.notes, "task_completed")
    returned = select(
        moved, select(event.c.seq).scalar_subquery().label("last_seq"), *(turn.c[f].label(f"turn_{f}") for f in _TURN_FIELDS)
    ).select_from(moved.join(turn, true()))
    return Prepared(returned.add_cte(seen, event, *history_and_events))


def end_turn(
    conn: Connection, turn_task_id: str, tenant_id: str, agent_id: str, token: str, ends: tuple[str, ...], state: str, wire_state: str,
    message: dict[str, Any] | None, notes: str, now: datetime, timestamp: str,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """End the turn ``turn_task_id`` that ``agent_id`` holds by ``token``: its A2A task, unless in one of the states
    ``ends``, takes ``state`` (``wire_state`` in its event, stamped ``timestamp``) and the agent's ``message`` (its
    ids still to add); the turn is completed with ``notes``. The A2A task as moved (with ``has_push`` and
    ``last_seq``) and the turn's event fields, or None if nothing changed."""
    params = {
        "turn_task_id": turn_task_id, "tenant_id": tenant_id, "agent_id": agent_id, "token": token, "notes": notes, "now": now,
        "state": state, "wire_state": wire_state, "timestamp": timestamp, "message": message,
    }  # fmt: skip
    if conn.dialect.name != "postgresql":
        return _end_turn_each(conn, params, ends)
    row = _end_statement(ends, message is not None).first(conn, params)
    if row is None:
        return None
    turn = {f: row.pop(f"turn_{f}") for f in _TURN_FIELDS}
    return row, turn


def _end_turn_each(conn: Connection, params: dict[str, Any], ends: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``end_turn`` on SQLite, inside the writer's transaction: what ``_end_statement`` does, a statement each."""
    seen = _seen_statement(ends).first(conn, params)
    if seen is None:
        return None
    completion = {"lease_token": params["token"], "notes": params["notes"]}
    turn = task_ops.complete_leased(conn, params["turn_task_id"], params["tenant_id"], params["agent_id"], completion, params["now"])
    if turn is None:
        return None  # (nothing was written: the lease is not the caller's)
    said = params["message"]
    status: dict[str, Any] = {"state": params["wire_state"], "timestamp": params["timestamp"]}  # (as _end_statement's)
    moved = {"a2a_task_id": seen["task_id"], "new_state": params["state"], "now": params["now"], "said": None, "said_text": None}
    if said is not None:
        status["message"] = said = {**said, "taskId": seen["task_id"], "contextId": seen["context_id"]}
        moved |= {"said": said, "said_text": orjson.dumps(said).decode()}
    task = (_MOVE_SAID if said is not None else _MOVE).first(conn, moved)
    assert task is not None  # (its row was read above, in this transaction)
    body = {"statusUpdate": {"taskId": task["task_id"], "contextId": task["context_id"], "status": status}}
    task["last_seq"] = a2a_ops.append_event(conn, task["task_id"], body, True, params["now"])
    event_ops.append_many(conn, [task_ops.transition_row(turn, "task_completed", params["now"])])  # (its history: complete_leased)
    return task, {f: turn[f] for f in _TURN_FIELDS}


@lru_cache(maxsize=4)
def _seen_statement(ends: tuple[str, ...]) -> Prepared:
    """The A2A task of the turn, unless it has ended its stream (SQLite: its writer holds the write, no lock)."""
    return Prepared(
        select(a2a_tasks.c.task_id, a2a_tasks.c.context_id)
        .where(a2a_tasks.c.turn_task_id == bindparam("turn_task_id"), ~one_of_words(a2a_tasks.c.state, ends))
    )


def _move_statement(with_message: bool) -> Prepared:
    """The A2A task in its new state; with the agent's message as its status message, appended to its history in
    SQL (``json_insert``: the history is not read and written back)."""
    changes: dict[str, Any] = {"state": bindparam("new_state", type_=a2a_tasks.c.state.type), "updated_at": _NOW}
    if with_message:
        changes |= {
            "status_message": bindparam("said", type_=a2a_tasks.c.status_message.type),
            "history": func.json_insert(a2a_tasks.c.history, literal("$[#]"), func.json(bindparam("said_text", type_=String))),
        }  # fmt: skip
    else:
        changes["status_message"] = None
    has_push = exists().where(a2a_push_configs.c.task_id == a2a_tasks.c.task_id).label("has_push")
    return Prepared(update(a2a_tasks).where(a2a_tasks.c.task_id == bindparam("a2a_task_id")).values(**changes).returning(*a2a_tasks.c, has_push))


_MOVE, _MOVE_SAID = _move_statement(False), _move_statement(True)
