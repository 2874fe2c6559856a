"""Where SQLite and PostgreSQL differ: INSERT … ON CONFLICT, ordered appends to shared streams, time arithmetic,
membership in a bound list, what a planner without statistics must be told."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ColumnElement, Connection, Select, Table, any_, bindparam, func, literal, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite


def upsert_insert(engine: Connection | str, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/do_update`` on a connection's (or named) engine."""
    name = engine if isinstance(engine, str) else engine.dialect.name
    return (postgresql if name == "postgresql" else sqlite).insert(table)


def serialize_appends(conn: Connection, stream: str) -> None:
    """Make rows appended to ``stream`` commit in the order of their sequence numbers.

    Readers follow shared streams (a tenant's broadcasts and events) by "seq greater than my position". PostgreSQL
    hands out sequence values at insert time, so two concurrent transactions may commit 11 before 10, and a reader
    that already moved past 11 would never see 10. A transaction-scoped advisory lock per stream, taken before the
    insert, closes that window. SQLite has one writer, so commit order already is sequence order.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(stream_lock(stream))))


def stream_lock(stream: str) -> ColumnElement[int]:
    """The key of a stream's advisory lock (PostgreSQL)."""
    return func.hashtextextended(literal(f"agora:{stream}"), 0)


def seconds_between(engine: Connection | str, start: Any, end: Any) -> Any:
    """SQL for the seconds from ``start`` to ``end`` (two timestamp columns), as a float, on a connection's (or
    named) engine."""
    if (engine if isinstance(engine, str) else engine.dialect.name) == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86_400.0


def one_of(dialect: str, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column`` equals one of the values of a list bound under ``name``. Unlike ``IN (…)``, whose text changes with
    the count of values, this is one statement for any count, so it is compiled and prepared once: ``= ANY(array)``
    on PostgreSQL, ``IN`` the elements of a JSON array on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    values = func.json_each(bindparam(name, type_=JSON())).table_valued("value")
    return column.in_(select(values.c.value))


def broad(dialect: str, clause: ColumnElement[bool]) -> ColumnElement[Any]:
    """``clause``, an equality on a column that leads an index (a tenant, an agent), beside a ``one_of`` on a unique
    column: on SQLite marked as true of most rows, so that the list drives the statement. SQLite keeps no statistics
    and takes any indexed equality for a narrow one: it walked every message of the tenant (every delivery of the
    agent) to find the few listed, a reply's cost growing with the messages kept. PostgreSQL's planner has its
    statistics."""
    return func.likely(clause) if dialect == "sqlite" else clause


def one_of_words(column: ColumnElement[Any], words: tuple[str, ...]) -> ColumnElement[bool]:
    """``column`` is one of these fixed words, written into the statement as SQL literals rather than bound: the
    statement stays one fixed text (it can be prepared), and a planner sees the values (a partial index whose
    predicate names them can be used). Only for the program's own constants, never for input."""
    literals = [literal_column(f"'{w}'") for w in words]
    return column == literals[0] if len(literals) == 1 else column.in_(literals)


def unlocked(conn: Connection, candidates: Select[Any], limit: int) -> list[Any]:
    """The first column of the first ``limit`` candidates; on PostgreSQL locked for this transaction, skipping rows
    another transaction holds: every replica runs the same purges and expiries, and they share the work instead of
    waiting on each other (or deadlocking)."""
    query = candidates.limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).scalars())
