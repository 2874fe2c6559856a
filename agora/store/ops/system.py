"""Hub-wide switches kept in ``system_state`` (shared by every replica, kept across restarts)."""

from __future__ import annotations

from datetime import datetime
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, text

from ..base import point_read
from ..schema import system_state
from .dialect import upsert_insert


@point_read
def get(conn: Connection, key: str) -> Any:
    return conn.execute(select(system_state.c.value).where(system_state.c.key == key)).scalar()


def put(conn: Connection, key: str, value: Any, now: datetime) -> None:
    stmt = upsert_insert(conn, system_state).values(key=key, value=value, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": now}))


def database_time(conn: Connection, ticks: Callable[[], float]) -> tuple[float, datetime, float]:
    """The database server's clock (PostgreSQL: clock_timestamp(), not the transaction's start as now() would be),
    with ``ticks()`` just before and just after the statement: its round trip alone, not the wait for a connection."""
    sent = ticks()
    wall = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return sent, wall, ticks()


def ping(conn: Connection) -> int:
    return conn.execute(text("SELECT 1")).scalar_one()
