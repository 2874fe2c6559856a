"""The one place where SQLite and PostgreSQL SQL differ: INSERT … ON CONFLICT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_insert(engine: Connection | str, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/do_update`` on a connection's (or named) engine."""
    name = engine if isinstance(engine, str) else engine.dialect.name
    return (postgresql if name == "postgresql" else sqlite).insert(table)
