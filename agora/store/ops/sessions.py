"""Web console sessions (``console_sessions``): only hashes of the cookie and of the key are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ..base import point_read
from ..schema import console_sessions


def insert_session(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(console_sessions), row)


@point_read
def lookup(conn: Connection, session_hash: str, now: datetime) -> dict[str, Any] | None:
    """The session with this hash, unless it has expired."""
    stmt = select(console_sessions).where(console_sessions.c.session_hash == session_hash, console_sessions.c.expires_at > now)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def end(conn: Connection, session_hash: str) -> bool:
    return conn.execute(delete(console_sessions).where(console_sessions.c.session_hash == session_hash)).rowcount > 0


def purge_expired(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now)).rowcount
