"""A task's output chunks (``agora.task.emit``, ``agora.task.watch``): appended in order by the lease holder, read
after a cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, update

from ..schema import task_output
from . import tasks as task_ops
from .dialect import upsert_insert

o = task_output.c


def append(
    conn: Connection, task_id: str, tenant_id: str, agent_id: str, token: str, chunks: list[dict[str, Any]], bound: int, now: datetime
) -> tuple[int | None, int | None, int]:
    """Store ``chunks`` (each ``{"text": …}`` or ``{"data": …}``) after the task's last, if ``token`` is its lease
    (409 otherwise, nothing stored). The task's row is locked meanwhile, so its chunks are numbered without gaps.
    Past ``bound`` chunks they are counted, with their size, in the one overflow row (seq ``bound + 1``).
    Returns (first seq kept, last seq kept, chunks not kept)."""
    task_ops.leased(conn, task_id, tenant_id, agent_id, token)
    last = conn.execute(select(func.max(o.seq)).where(o.task_id == task_id, o.seq <= bound)).scalar() or 0
    kept = chunks[: max(0, bound - last)]
    rows = [
        {"task_id": task_id, "seq": last + i, "tenant_id": tenant_id, "kind": "text" if "text" in c else "data",
         "text": c.get("text"), "data": c.get("data"), "created_at": now}
        for i, c in enumerate(kept, start=1)
    ]  # fmt: skip
    if rows:
        conn.execute(insert(task_output), rows)
    over = chunks[len(kept) :]
    if over:
        size = sum(len(c["text"].encode()) if "text" in c else len(orjson.dumps(c["data"])) for c in over)
        _count_overflow(conn, task_id, tenant_id, bound + 1, len(over), size, now)
    return (last + 1, last + len(rows)) if rows else (None, None), len(over)  # type: ignore[return-value]


def _count_overflow(conn: Connection, task_id: str, tenant_id: str, seq: int, chunks: int, size: int, now: datetime) -> None:
    row = conn.execute(select(o.data).where(o.task_id == task_id, o.seq == seq)).scalar()
    if row is None:
        data = {"chunks": chunks, "bytes": size}
        stmt = upsert_insert(conn, task_output).values(task_id=task_id, seq=seq, tenant_id=tenant_id, kind="overflow", text=None, data=data, created_at=now)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["task_id", "seq"]))
    else:
        data = {"chunks": row["chunks"] + chunks, "bytes": row["bytes"] + size}
        conn.execute(update(task_output).where(o.task_id == task_id, o.seq == seq).values(data=data, created_at=now))


def after(conn: Connection, task_id: str, tenant_scope: str | None, seq: int, limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The task (404 if it is not there, or not the tenant's) and its chunks after ``seq``, in order."""
    task = task_ops.get(conn, task_id, tenant_scope)
    stmt = select(task_output).where(o.task_id == task_id, o.seq > seq).order_by(o.seq).limit(limit)
    return task, [dict(r) for r in conn.execute(stmt).mappings()]
