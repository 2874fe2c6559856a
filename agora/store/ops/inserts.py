"""New rows for several tables, with their hub events, in one PostgreSQL statement (on SQLite, one INSERT a table).

An operation that only adds rows (it reads nothing and changes no row that exists) need not be a transaction of one
INSERT per table: each is a round trip from the hub's event loop to the database and back, plus BEGIN and COMMIT.
Here each table's rows are a data-modifying CTE of one statement (a conversation's rows merged into those there), the events last (taking the events lock in their
own INSERT, as ``events.append_for`` does), which the store runs without BEGIN and COMMIT
(``Store.write_statement``): all of it is kept, or none.

One shape (which tables, how many rows, which columns) is compiled once and kept; a statement's values are bound.
On SQLite the operation runs in the writer's transaction like any other: each table's rows go in one prepared INSERT,
the events with the rest of the transaction's (``events.append_many``), and nothing is read first.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import CTE, Connection, Table, bindparam, insert, literal_column, select, true, union_all

from ..prepared import Prepared
from ..schema import metadata
from . import conversations as conversation_ops
from . import events as event_ops

Rows = list[dict[str, Any]]
_Shape = tuple[tuple[str, int, tuple[str, ...]], ...]  # (table, rows, columns) of each table, in order


def insert_all(conn: Connection, tables: list[tuple[Table, Rows]], events: Rows, returning: Table) -> list[Any]:
    """Insert ``tables``' rows (each table's rows with the same columns) and the hub ``events`` (in order, after
    them); the primary keys given to ``returning``'s rows, in their order (a sequence's values)."""
    if conn.dialect.name != "postgresql":
        return _insert_each(conn, tables, events, returning)
    shape = tuple((table.name, len(rows), tuple(rows[0])) for table, rows in tables if rows)
    params = {
        _name(table.name, i, column): value
        for table, rows in tables
        for i, row in enumerate(rows)
        for column, value in row.items()
    }  # fmt: skip
    params |= {_name("events", i, column): value for i, row in enumerate(events) for column, value in row.items()}
    return [row["key"] for row in _statement(shape, len(events), returning.name).rows(conn, params)]


def _insert_each(conn: Connection, tables: list[tuple[Table, Rows]], events: Rows, returning: Table) -> list[Any]:
    """``insert_all`` elsewhere than on PostgreSQL: one INSERT a table (``returning``'s one a row, for its keys)."""
    keys: list[Any] = []
    for table, rows in tables:
        if not rows:
            continue
        inserter = _inserter(table.name)
        if table is not returning:
            inserter.execute_many(conn, rows)
            continue
        key = table.primary_key.columns[0].name
        for row in rows:
            rowid = inserter.insert(conn, row)
            keys.append(row[key] if key in row else rowid)
    event_ops.append_many(conn, events)
    return keys


@lru_cache(maxsize=None)
def _inserter(table: str) -> Prepared:
    return Prepared(_insert("sqlite", metadata.tables[table]))


def _insert(dialect: str, table: Table) -> Any:
    """An INSERT of ``table``'s rows; for a conversation's (``conversations.MERGED``), one merging them into those there."""
    return conversation_ops.merging(dialect, table) if table in conversation_ops.MERGED else insert(table)


def _name(table: str, row: int, column: str) -> str:
    return f"{table}_{row}_{column}"


@lru_cache(maxsize=64)  # a task's requirements are one row each: an assign's shape varies with their count
def _statement(shape: _Shape, events: int, returning: str) -> Prepared:
    ctes: dict[str, CTE] = {}
    for name, count, columns in shape:
        table = metadata.tables[name]
        values = [{c: bindparam(_name(name, i, c), type_=table.c[c].type) for c in columns} for i in range(count)]
        ctes[name] = _insert("postgresql", table).values(values).returning(*table.primary_key.columns).cte(f"{name}_rows")
    first = ctes[shape[0][0]]
    key = ctes[returning].c[0].label("key")
    statement = select(key).order_by(key).add_cte(*ctes.values())
    if events:
        statement = statement.add_cte(_events(events, after=first))
    return Prepared(statement)


def _events(count: int, after: CTE) -> CTE:
    """The events' INSERT, taking the events lock once ``after`` has run (``events.append_for``), in the given order."""
    columns = event_ops.COLUMNS
    table = metadata.tables["events"]

    def rows(lock: CTE) -> Any:
        given = union_all(*(
            select(*(bindparam(_name("events", i, c), type_=table.c[c].type).label(c) for c in columns), literal_column(str(i)).label("n"))
            for i in range(count)
        )).subquery("given")  # fmt: skip
        return select(*(given.c[c] for c in columns)).select_from(given.join(lock, true())).order_by(given.c.n)

    return event_ops.locked_insert(rows, after=after).cte("events_rows")
