"""A task's output chunks (``agora.task.emit``, ``agora.task.watch``): appended in order by the lease holder, read
after a cursor."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, insert, literal_column, select, true, union_all, update

from agora_sdk.errors import NotFound

from ..base import point_read
from ..prepared import Prepared
from ..schema import task_output, tasks
from . import a2a as a2a_ops
from . import tasks as task_ops
from .dialect import upsert_insert

o = task_output.c
_INSERT = Prepared(insert(task_output))


_COUNT = Prepared(update(tasks).where(tasks.c.task_id == bindparam("b_task_id")).values(output_seq=bindparam("b_output_seq")))
AT_ONCE = 16  # chunks an emit stores in one statement on PostgreSQL (``append_at_once``), at most


@lru_cache(maxsize=2)
def _after_statement(scoped: bool) -> Prepared:
    """The task's id and status beside each of its chunks after ``seq`` (one row, its chunk columns null, when there
    are none): one statement."""
    stmt = (
        select(tasks.c.task_id, tasks.c.status, o.seq, o.kind, o.text, o.data, o.created_at)
        .select_from(tasks.outerjoin(task_output, and_(o.task_id == tasks.c.task_id, o.seq > bindparam("seq"))))
        .where(tasks.c.task_id == bindparam("task_id"))
        .order_by(o.seq)
        .limit(bindparam("limit"))
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
    last = task["output_seq"]
    kept = chunks[: max(0, bound - last)]
    rows = [{"task_id": task_id, "seq": last + i, "tenant_id": tenant_id, **row, "created_at": now} for i, row in enumerate(_chunk_values(kept), start=1)]
    if rows:
        _INSERT.execute_many(conn, rows)
        _COUNT.execute(conn, {"b_task_id": task_id, "b_output_seq": last + len(rows)})
    over = chunks[len(kept) :]
    if over:
        size = sum(len(c["text"].encode()) if "text" in c else len(orjson.dumps(c["data"])) for c in over)
        _count_overflow(conn, task_id, tenant_id, bound + 1, len(over), size, now)
    return rows, len(over), task


def append_at_once(
    conn: Connection, task_id: str, tenant_id: str, agent_id: str, token: str, chunks: list[dict[str, Any]], bound: int, now: datetime
) -> tuple[list[dict[str, Any]], int, dict[str, Any]] | None:
    """``append`` on PostgreSQL as one statement, run without BEGIN and COMMIT, for the common emit: at most
    ``AT_ONCE`` chunks within the bound, by the agent holding the lease of a task that is no A2A turn (whose chunks
    are an artifact too: ``services.a2a.emitted``). The task's counter moves in an UPDATE, which waits for the row
    and then sees its latest version, so concurrent emits number their chunks without gaps or repeats. None when
    nothing was stored (a refusal, an A2A turn, the bound reached): the caller runs ``append``, which says why."""
    given = _chunk_values(chunks)
    found = _at_once(len(chunks)).first(conn, {
        "task_id": task_id, "tenant_id": tenant_id, "agent_id": agent_id, "token": token, "n": len(chunks), "bound": bound, "now": now,
        **{f"{key}_{i}": value for i, row in enumerate(given) for key, value in row.items()},
    })  # fmt: skip
    if found is None:
        return None
    first = found["output_seq"] - len(chunks) + 1
    rows = [{"task_id": task_id, "seq": first + i, "tenant_id": tenant_id, **row, "created_at": now} for i, row in enumerate(given)]
    return rows, 0, {"task_id": task_id, "task_type": found["task_type"], "conversation_id": found["conversation_id"]}


def _chunk_values(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"kind": "text" if "text" in c else "data", "text": c.get("text"), "data": c.get("data")} for c in chunks]


@lru_cache(maxsize=AT_ONCE)
def _at_once(count: int) -> Prepared:
    t = tasks.c
    moved = (
        update(tasks)
        .where(
            t.task_id == bindparam("task_id"), t.tenant_id == bindparam("tenant_id"), task_ops.status_is("in_progress"),
            t.lease_token == bindparam("token"), t.claimed_by == bindparam("agent_id"), t.task_type != a2a_ops.TURN,
            t.output_seq + bindparam("n") <= bindparam("bound"),
        )
        .values(output_seq=t.output_seq + bindparam("n"))
        .returning(t.task_id, t.output_seq, t.task_type, t.conversation_id)
        .cte("moved")
    )  # fmt: skip
    given = union_all(*(
        select(
            literal_column(str(i)).label("i"), bindparam(f"kind_{i}", type_=o.kind.type).label("kind"),
            bindparam(f"text_{i}", type_=o.text.type).label("text"), bindparam(f"data_{i}", type_=o.data.type).label("data"),
        )
        for i in range(count)
    )).subquery("given")  # fmt: skip
    seq = moved.c.output_seq - bindparam("n") + 1 + given.c.i
    stored = insert(task_output).from_select(
        ["task_id", "seq", "tenant_id", "kind", "text", "data", "created_at"],
        select(moved.c.task_id, seq, bindparam("tenant_id"), given.c.kind, given.c.text, given.c.data, bindparam("now", type_=o.created_at.type))
        .select_from(moved.join(given, true())),
    ).cte("stored")
    return Prepared(select(moved.c.output_seq, moved.c.task_type, moved.c.conversation_id).add_cte(stored))


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
