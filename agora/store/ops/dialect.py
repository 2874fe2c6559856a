"""The one place where SQLite and PostgreSQL SQL differ: INSERT … ON CONFLICT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_insert(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/do_update`` on the connection's engine."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
