"""The hub's activity per ten seconds (``activity``): written by each replica once a bucket is over, summed on read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from ..schema import LATENCY_COLUMNS, activity

_SUMMED = ("messages", "tasks_created", "tasks_done", "tasks_failed", "calls", "rejected", "failed", *LATENCY_COLUMNS)


def insert_buckets(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(activity), rows)


def read(conn: Connection, tenant_id: str | None, since: datetime) -> list[dict[str, Any]]:
    """Each bucket from ``since``, summed over replicas and (for None) tenants."""
    sums = [func.sum(activity.c[name]).label(name) for name in _SUMMED]
    stmt = select(activity.c.bucket_start, *sums).where(activity.c.bucket_start >= since)
    if tenant_id is not None:
        stmt = stmt.where(activity.c.tenant_id == tenant_id)
    return [dict(row) for row in conn.execute(stmt.group_by(activity.c.bucket_start)).mappings()]


def purge(conn: Connection, before: datetime) -> int:
    return conn.execute(delete(activity).where(activity.c.bucket_start < before)).rowcount
