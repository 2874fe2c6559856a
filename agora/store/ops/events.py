"""Hub events: appended in the transaction of the change they describe, read by live streams after a position."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select

from ..prepared import Prepared
from ..schema import events
from .dialect import serialize_appends, unlocked

_INSERT = Prepared(insert(events))


def append(
    conn: Connection, tenant_id: str | None, type_: str, data: dict[str, Any], now: datetime, visible_to: str | None = None
) -> None:
    serialize_appends(conn, "events")  # one stream: an admin follows every tenant's events by one position
    _INSERT.execute(conn, {"tenant_id": tenant_id, "type": type_, "visible_to": visible_to, "data": data, "created_at": now})


def append_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several events (``tenant_id``, ``type``, ``visible_to``, ``data``, ``created_at``) in one statement, in order."""
    serialize_appends(conn, "events")
    _INSERT.execute_many(conn, rows)


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
