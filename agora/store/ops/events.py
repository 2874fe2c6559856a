"""Hub events: appended in the transaction of the change they describe, read by live streams after a position."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, ColumnElement, Connection, Select, bindparam, delete, func, insert, or_, select, true
from sqlalchemy.sql.dml import Insert

from ..base import defer
from ..prepared import Prepared
from ..schema import events
from .dialect import serialize_appends, stream_lock, unlocked

# One stream: an admin follows every tenant's events by one position, so every append takes the same lock.
STREAM = "events"
COLUMNS = ("tenant_id", "type", "visible_to", "data", "created_at")
_INSERT = Prepared(insert(events))


def locked_insert(rows: Callable[[CTE], Select[Any]], after: CTE | None = None) -> Insert:
    """PostgreSQL's INSERT of events that takes the stream's lock (``serialize_appends``) itself: the events of
    ``rows(lock)`` (a SELECT of the event columns from the lock's CTE) get their seqs only after it. The lock is held
    to the commit; taken by a statement of its own it cost a round trip to the hub and back while held, and every
    task transition of the hub queued on it.

    ``after``: another CTE of the statement, which must have run to its end, with rows, before the lock is taken. (A
    lock taken while the statement still locks rows could deadlock with a transaction that holds one of them and
    waits for the events lock.)"""
    locking = select(func.pg_advisory_xact_lock(stream_lock(STREAM)).label("locked"))
    if after is not None:
        counted = select(func.count().label("rows")).select_from(after).subquery()
        locking = locking.select_from(counted).where(counted.c.rows > 0)
    return insert(events).from_select(list(COLUMNS), rows(locking.cte(f"{STREAM}_lock")))


_APPEND_LOCKED = Prepared(
    locked_insert(lambda lock: select(*(bindparam(c, type_=events.c[c].type) for c in COLUMNS)).select_from(lock))
)


def append(
    conn: Connection, tenant_id: str | None, type_: str, data: dict[str, Any], now: datetime, visible_to: str | None = None
) -> None:
    append_many(conn, [{"tenant_id": tenant_id, "type": type_, "visible_to": visible_to, "data": data, "created_at": now}])


def append_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several events (``tenant_id``, ``type``, ``visible_to``, ``data``, ``created_at``), in order, written at the
    end of the operation with every other event it appends (``defer``)."""
    for row in rows:
        defer(conn, _write, row, locks=True)


def _write(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One statement on SQLite, one round trip on PostgreSQL (each row's INSERT takes the lock again, which costs
    nothing once held)."""
    if conn.dialect.name == "postgresql":
        _APPEND_LOCKED.execute_many(conn, rows)
        return
    serialize_appends(conn, STREAM)
    _INSERT.execute_many(conn, rows)


def append_for(source: CTE, values: dict[str, ColumnElement[Any]], order_by: ColumnElement[Any]) -> CTE:
    """PostgreSQL: a CTE that appends one event per row of ``source`` (another CTE of the same statement), in
    ``order_by`` order; ``values`` gives each event column as an expression over ``source``'s columns. The lock is
    taken once ``source`` has run, if it has rows. For one-statement operations, which the store runs without a
    transaction: the lock then is held from here to the statement's own commit, with no round trip in between."""

    def rows(lock: CTE) -> Select[Any]:
        return select(*(values[c].label(c) for c in COLUMNS)).select_from(source.join(lock, true())).order_by(order_by)

    return locked_insert(rows, after=source).cte(f"{source.name}_events")


def latest(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(events.c.seq), 0))).scalar_one())


def after(
    conn: Connection, position: int, *, tenant_scope: str | None, viewer_agent: str | None, limit: int
) -> list[dict[str, Any]]:
    """Events after ``position`` that the viewer may see, oldest first.

    ``tenant_scope`` None is an admin (every tenant, and hub-wide events); ``viewer_agent`` set is an agent, which
    sees its tenant's public events and those addressed to it.
    """
    stmt = select(events).where(events.c.seq > position)
    if tenant_scope is not None:
        stmt = stmt.where(events.c.tenant_id == tenant_scope)
    if viewer_agent is not None:
        stmt = stmt.where(or_(events.c.visible_to.is_(None), events.c.visible_to == viewer_agent))
    return [dict(r) for r in conn.execute(stmt.order_by(events.c.seq).limit(limit)).mappings()]


def purge(conn: Connection, before: datetime, limit: int) -> int:
    """``limit`` of the events older than ``before`` go."""
    seqs = unlocked(conn, select(events.c.seq).where(events.c.created_at < before), limit)  # by ix_events_created
    return conn.execute(delete(events).where(events.c.seq.in_(seqs))).rowcount if seqs else 0


def purgeable(conn: Connection, before: datetime) -> int:
    return int(conn.execute(select(func.count()).where(events.c.created_at < before)).scalar_one())
