"""A task's output chunks (``agora.task.emit``, ``agora.task.watch``): appended in order by the lease holder, read
after a cursor."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, func, insert, select, true, update

from agora_sdk.errors import NotFound

from ..base import point_read
from ..prepared import Prepared
from ..schema import task_output, tasks
from . import tasks as task_ops
from .dialect import upsert_insert

o = task_output.c
_INSERT = Prepared(insert(task_output))


# The task's last chunk within the bound. Read once its row is locked, by a statement of its own: on PostgreSQL a
# statement sees the commits made before it began, so one that waited for the lock would count without the chunks of
# the emit it waited for.
_LAST = Prepared(select(func.coalesce(func.max(o.seq), 0).label("last")).where(o.task_id == bindparam("task_id"), o.seq <= bindparam("bound")))


@lru_cache(maxsize=2)
def _after_statement(scoped: bool) -> Prepared:
    """The task's id and status beside each of its chunks after ``seq`` (one row, its chunk columns null, when there
    are none): one statement."""
    chunks = select(task_output).where(o.task_id == bindparam("task_id"), o.seq > bindparam("seq")).order_by(o.seq).limit(bindparam("limit")).subquery()
    stmt = (
        select(tasks.c.task_id, tasks.c.status, chunks.c.seq, chunks.c.kind, chunks.c.text, chunks.c.data, chunks.c.created_at)
        .select_from(tasks.outerjoin(chunks, true()))
        .where(tasks.c.task_id == bindparam("task_id"))
        .order_by(chunks.c.seq)
    )
    if scoped:
        stmt = stmt.where(tasks.c.tenant_id == bindparam("tenant_id"))
    return Prepared(stmt)


def append(
    conn: Connection, task_id: str, tenant_id: str, agent_id: str, token: str, chunks: list[dict[str, Any]], bound: int, now: datetime
) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    """Store ``chunks`` (each ``{"text": …}`` or ``{"data": …}``) after the task's last, if ``token`` is its lease
    (409 otherwise, nothing stored). The task's row is locked meanwhile, so its chunks are numbered without gaps.
    Past ``bound`` chunks they are counted, with their size, in the one overflow row (seq ``bound + 1``).
    Returns (the chunks' rows as stored, chunks not kept, the task)."""
    task = task_ops.leased(conn, task_id, tenant_id, agent_id, token)
    last = _LAST.first(conn, {"task_id": task_id, "bound": bound})["last"]  # type: ignore[index]
    kept = chunks[: max(0, bound - last)]
    rows = [
        {"task_id": task_id, "seq": last + i, "tenant_id": tenant_id, "kind": "text" if "text" in c else "data",
         "text": c.get("text"), "data": c.get("data"), "created_at": now}
        for i, c in enumerate(kept, start=1)
    ]  # fmt: skip
    if rows:
        _INSERT.execute_many(conn, rows)
    over = chunks[len(kept) :]
    if over:
        size = sum(len(c["text"].encode()) if "text" in c else len(orjson.dumps(c["data"])) for c in over)
        _count_overflow(conn, task_id, tenant_id, bound + 1, len(over), size, now)
    return rows, len(over), task


def _count_overflow(conn: Connection, task_id: str, tenant_id: str, seq: int, chunks: int, size: int, now: datetime) -> None:
    row = conn.execute(select(o.data).where(o.task_id == task_id, o.seq == seq)).scalar()
    if row is None:
        data = {"chunks": chunks, "bytes": size}
        stmt = upsert_insert(conn, task_output).values(task_id=task_id, seq=seq, tenant_id=tenant_id, kind="overflow", text=None, data=data, created_at=now)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["task_id", "seq"]))
    else:
        data = {"chunks": row["chunks"] + chunks, "bytes": row["bytes"] + size}
        conn.execute(update(task_output).where(o.task_id == task_id, o.seq == seq).values(data=data, created_at=now))


def tail(conn: Connection, task_id: str, tenant_scope: str | None, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The task (404 if it is not there, or not the tenant's) and its last ``count`` chunks, in order."""
    task = task_ops.get(conn, task_id, tenant_scope)
    stmt = select(task_output).where(o.task_id == task_id).order_by(o.seq.desc()).limit(count)
    return task, [dict(r) for r in reversed(conn.execute(stmt).mappings().all())]


def after(conn: Connection, task_id: str, tenant_scope: str | None, seq: int, limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The task (its id and status; 404 if it is not there, or not the tenant's) and its chunks after ``seq``, in order."""
    rows = _after_statement(tenant_scope is not None).rows(conn, {"task_id": task_id, "tenant_id": tenant_scope, "seq": seq, "limit": limit})
    if not rows:
        raise NotFound(f"no task '{task_id}'", details={"task_id": task_id})
    task = {"task_id": rows[0]["task_id"], "status": rows[0]["status"]}
    return task, [{k: r[k] for k in _CHUNK} for r in rows if r["seq"] is not None]


_CHUNK = ("seq", "kind", "text", "data", "created_at")
FEW = 64  # chunks ``after_few`` reads at most: a live stream's read as it follows the output


@point_read
def after_few(conn: Connection, task_id: str, tenant_scope: str | None, seq: int, limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``after`` for at most ``FEW`` chunks: a handful of rows through the primary key, read at once (``point_read``),
    as a stream following a task reads what its last wake-up brought."""
    return after(conn, task_id, tenant_scope, seq, min(limit, FEW))
