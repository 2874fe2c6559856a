"""Tool calls the hub runs in the background, stored as tasks of type ``tool.call`` (``core/services/tool_runs.py``).

Such a task is in progress from the start and never claimable (only a pending task is); its lease is the running
replica's, renewed while the call runs. A replica that stops without finishing lets the lease run out, and the
expiry job buries the task (one attempt of one) with "lease expired": its caller learns the call was lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from agora_sdk.errors import Conflict

from .tasks import _INSERT_TASK, _get, _move, created, tasks

TASK_TYPE = "tool.call"


def start(conn: Connection, row: dict[str, Any], actor: str) -> dict[str, Any]:
    """Store the running call's task; the transition that announces it."""
    _INSERT_TASK.execute(conn, row)
    created(conn, row, actor, "in_progress", f"runs {row['payload']['name']}")
    return {**row, "from_status": None, "event": "task_claimed"}


def renew(conn: Connection, task_id: str, token: str, until: datetime, now: datetime) -> bool:
    """Push the lease on; False once the task is no longer this run's (cancelled, or buried)."""
    renewed = conn.execute(
        update(tasks)
        .where(tasks.c.task_id == task_id, tasks.c.status == "in_progress", tasks.c.lease_token == token)
        .values(lease_expires_at=until, updated_at=now)
    )
    return renewed.rowcount == 1


def ask(conn: Connection, task_id: str, token: str, requests: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The running call waits for its caller's answers to ``requests`` (kept in the task's result until it ends)."""
    task = _running(conn, task_id, token)
    waiting = {"input": {"requests": requests, "responses": {}}}
    conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(result=waiting, notes="waiting for input", updated_at=now))
    return {**task, "result": waiting, "updated_at": now, "from_status": task["status"]}


def answer(conn: Connection, task_id: str, tenant_scope: str | None, responses: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Add the caller's answers to the questions the call still waits on; an answer to anything else (a key never
    asked, one answered already, a task that asks nothing) changes nothing. The transition, if one was made."""
    task = _get(conn, task_id, tenant_scope, lock=True)
    waiting = (task["result"] or {}).get("input") if task["status"] == "in_progress" else None
    pending = {k: v for k, v in responses.items() if waiting and k in waiting["requests"] and k not in waiting["responses"]}
    if not waiting or not pending:
        return []
    merged = {"input": {"requests": waiting["requests"], "responses": {**waiting["responses"], **pending}}}
    conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(result=merged, updated_at=now))
    return [{**task, "result": merged, "updated_at": now, "from_status": task["status"]}]


def _running(conn: Connection, task_id: str, token: str) -> dict[str, Any]:
    task = _get(conn, task_id, None, lock=True)
    if task["status"] != "in_progress" or task["lease_token"] != token:
        raise Conflict(f"task '{task_id}' is already {task['status']}", details={"status": task["status"]})
    return task


def finish(conn: Connection, task_id: str, token: str, status: str, result: dict[str, Any] | None, error: str | None, now: datetime) -> dict[str, Any]:
    """Record the call's outcome, if the task is still this run's (Conflict otherwise: cancelled or buried meanwhile)."""
    task = _running(conn, task_id, token)
    extra = {"last_error": error} if error else {"progress": 100}
    return _move(conn, task, status, "system", now, error, result=result, **extra)
