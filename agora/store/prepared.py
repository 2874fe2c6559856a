"""The hot path's statements on the driver's own connection: compiled once, bound and decoded by SQLAlchemy's type
processors.

A Core ``conn.execute`` costs ~55 µs here (cache key, execution context, result metadata) where SQLite itself takes
~13 µs for a point lookup, and the hub's writes are a few such statements each: that overhead was half of the
writer thread's time. A ``Prepared`` statement is compiled once per shape by SQLAlchemy, then executed on the
DBAPI connection inside the same transaction, with the dialect's own bind and result processors (JSON, UTC
timestamps, booleans) and its exception wrapping, so callers see what ``conn.execute`` would give them.

On PostgreSQL the same holds with more at stake: a statement through SQLAlchemy's asyncpg adapter costs ~300 µs of
CPU more than asyncpg itself (cursor adapter, its own prepared-statement cache, result wrapping). A ``Prepared``
statement goes to the asyncpg connection under ``conn`` (asyncpg prepares it once per connection and keeps it), in
the transaction SQLAlchemy's adapter began or begins for it, so the adapter's commit and rollback still apply.
Errors are translated as the adapter translates them, and a lost connection is invalidated (the store re-runs the
operation on another).

Only shapes SQLAlchemy could compile to one fixed string are run this way (no expanding IN lists, no Python-side
column defaults to compute); anything else goes through ``conn.execute`` as usual.

Several rows of a plain INSERT go in multi-row ``VALUES`` statements rather than ``executemany``: the sqlite3 module
lets go of the GIL around each step, so ``executemany`` hands the GIL back and forth once per row, and each time it
waits for the event loop's thread to give it up (up to the interpreter's switch interval while that thread is busy).
One statement of many rows releases it once for all of SQLite's work, which then runs beside the event loop, and
SQLite inserts its rows ~25% faster too.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, NoReturn

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.util import await_

Processor = Callable[[Any], Any] | None
_REQUIRED = object()
ROWS_PER_STATEMENT = 256  # the largest multi-row INSERT; sizes are powers of two, so few statement texts get cached
# A plain INSERT of one row of markers, optionally skipping conflicting rows: "INSERT INTO t (a, b) VALUES (?, ?)"
_ONE_ROW_INSERT = re.compile(r"(?P<head>INSERT INTO .* VALUES )\((?:\?, )*\?\)(?P<tail>(?: ON CONFLICT \([\w, ]+\) DO NOTHING)?)", re.DOTALL)


@dataclass(frozen=True)
class _Shape:
    """One compiled form: the SQL text, each positional parameter (name, default, processor), the result columns."""

    sql: str
    params: tuple[tuple[str, Any, Processor], ...]
    columns: tuple[tuple[str, Processor], ...]
    bind: Callable[[dict[str, Any]], list[Any]]
    insert_rows: tuple[str, str] | None = None  # a plain INSERT's text around its one row of markers: rows can be added


class Prepared:
    """A Core statement to run many times; for DML the parameters' keys choose the columns, as with ``execute``."""

    def __init__(self, stmt: Executable):
        self.stmt = stmt
        # The parameters' keys choose the columns of a plain INSERT or UPDATE; an INSERT … SELECT names its own (and
        # the keys would reach the SET clause of an UPDATE in one of its CTEs).
        self._dml = isinstance(stmt, UpdateBase) and not (isinstance(stmt, Insert) and stmt.select is not None)
        self._shapes: dict[tuple[str, tuple[str, ...] | None], _Shape | None] = {}

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        shape = self._shape(conn, params)
        if shape is None:
            return [dict(r) for r in conn.execute(self.stmt, params).mappings()]
        if conn.dialect.name == "postgresql":
            return [_decode(shape, row) for row in _pg(conn, "fetch", shape.sql, shape.bind(params))]
        cursor = self._run(conn, shape, params)
        return [_decode(shape, row) for row in cursor.fetchall()]

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        shape = self._shape(conn, params)
        if shape is None:
            row = conn.execute(self.stmt, params).mappings().first()
            return dict(row) if row is not None else None
        if conn.dialect.name == "postgresql":
            row = _pg(conn, "fetchrow", shape.sql, shape.bind(params))
        else:
            cursor = self._run(conn, shape, params)
            row = cursor.fetchone()
            cursor.close()
        return _decode(shape, row) if row is not None else None

    def first_each(self, conn: Connection, params: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """PostgreSQL: the statement run once for each set of ``params``, pipelined (asyncpg's ``fetchmany``: one
        round trip, one transaction: all kept or none); for a statement that gives exactly one row each time, those
        rows in order."""
        shape = self._shape(conn, params[0])
        if shape is None or conn.dialect.name != "postgresql":
            raise TypeError("first_each runs one compiled statement on PostgreSQL")
        rows = _pg(conn, "fetchmany", shape.sql, [shape.bind(p) for p in params])
        if len(rows) != len(params):
            raise RuntimeError(f"first_each: {len(rows)} rows for {len(params)} runs; the statement must give one each")
        return [_decode(shape, row) for row in rows]

    def scalar(self, conn: Connection, params: dict[str, Any]) -> Any:
        shape = self._shape(conn, params)
        if shape is None:
            return conn.execute(self.stmt, params).scalar()
        if conn.dialect.name == "postgresql":
            row = _pg(conn, "fetchrow", shape.sql, shape.bind(params))
        else:
            row = self._run(conn, shape, params).fetchone()
        if row is None:
            return None
        process = shape.columns[0][1]
        return process(row[0]) if process else row[0]

    def execute(self, conn: Connection, params: dict[str, Any]) -> int:
        """Run an INSERT, UPDATE or DELETE; the number of rows it touched."""
        shape = self._shape(conn, params)
        if shape is None:
            return int(conn.execute(self.stmt, params).rowcount)
        if conn.dialect.name == "postgresql":
            status = _pg(conn, "execute", shape.sql, shape.bind(params))  # "UPDATE 3", "INSERT 0 1", "DELETE 0"
            return int(status.rsplit(" ", 1)[-1])
        return int(self._run(conn, shape, params).rowcount)

    def execute_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Run an INSERT, UPDATE or DELETE once per row (the rows all have the same keys)."""
        shape = self._shape(conn, rows[0])
        if shape is None:
            conn.execute(self.stmt, rows[0] if len(rows) == 1 else rows)  # one row: a plain execute costs less
            return
        if conn.dialect.name == "postgresql":
            if len(rows) == 1:
                _pg(conn, "execute", shape.sql, shape.bind(rows[0]))
            else:  # asyncpg sends the rows' executions in one pipeline: one round trip for the lot
                _pg(conn, "executemany", shape.sql, [shape.bind(row) for row in rows])
            return
        if shape.insert_rows is None or len(rows) == 1:
            self._run(conn, shape, rows, many=True)
            return
        dbapi = _dbapi(conn)
        most = min(ROWS_PER_STATEMENT, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(1, len(shape.params)))
        start = 0
        while start < len(rows):
            count = min(most, 1 << ((len(rows) - start).bit_length() - 1))
            values = [value for row in rows[start : start + count] for value in shape.bind(row)]
            _execute(dbapi, _insert_rows_sql(*shape.insert_rows, len(shape.params), count), values)
            start += count

    def insert(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Run an INSERT of one row; its generated primary key (SQLite's rowid; PostgreSQL has none to read, and
        SQLAlchemy adds the RETURNING)."""
        shape = self._shape(conn, params) if conn.dialect.name == "sqlite" else None
        if shape is None:
            return conn.execute(self.stmt, params).inserted_primary_key[0]
        return self._run(conn, shape, params).lastrowid

    def _shape(self, conn: Connection, params: dict[str, Any]) -> _Shape | None:
        engine = conn.dialect.name
        if engine not in ("sqlite", "postgresql"):
            return None
        key = (engine, tuple(params) if self._dml else None)
        try:
            return self._shapes[key]
        except KeyError:
            shape = self._shapes[key] = _compile(self.stmt, conn, list(params) if self._dml else None)
            return shape

    @staticmethod
    def _run(conn: Connection, shape: _Shape, params: Any, many: bool = False) -> sqlite3.Cursor:
        dbapi = _dbapi(conn)
        if many:
            return _execute(dbapi, shape.sql, [shape.bind(row) for row in params], many=True)
        return _execute(dbapi, shape.sql, shape.bind(params))


def _dbapi(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn``, in a transaction (as ``conn.execute`` would begin one: a read op's
    statements share one snapshot)."""
    if not conn.in_transaction():
        conn.begin()
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    return dbapi  # type: ignore[no-any-return]


def _pg(conn: Connection, method: str, sql: str, values: list[Any]) -> Any:
    """``method`` (fetch, fetchrow, execute, or executemany or fetchmany with a list of value lists) of the asyncpg
    connection under ``conn``, in the transaction of SQLAlchemy's adapter (begun here if the operation has run
    nothing yet; none on an AUTOCOMMIT connection)."""
    if not conn.in_transaction():
        conn.begin()
    adapter: Any = conn.connection.dbapi_connection
    try:
        if adapter._transaction is None and not adapter.autocommit:
            await_(adapter._start_transaction())
        run = getattr(adapter._connection, method)
        return await_(run(sql, values) if method in ("executemany", "fetchmany") else run(sql, *values))
    except Exception as error:
        _raise_translated(conn, adapter, sql, values, error)
    except BaseException:
        _drop(conn)
        raise


def _drop(conn: Connection) -> None:
    """The operation was cancelled (or the process is exiting) while asyncpg was at work: whether the server began,
    ran or committed anything is unknown, and the adapter may have lost track of an open transaction (a BEGIN cut
    short is never rolled back), which would go back to the pool holding its locks. The connection is invalidated
    (closed, the server rolls back), as SQLAlchemy does when such an exception interrupts one of its executions."""
    conn.invalidate()


def _raise_translated(conn: Connection, adapter: Any, sql: str, values: Any, error: Exception) -> NoReturn:
    """Raise ``error`` as ``conn.execute`` would have: the adapter's DBAPI exception, wrapped in SQLAlchemy's, the
    connection invalidated if it is gone."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        adapter._handle_exception(error)
    except dbapi.Error as translated:
        lost = conn.dialect.is_disconnect(translated, adapter, None)
        if lost:
            conn.invalidate(translated)
        raise DBAPIError.instance(sql, values, translated, dbapi.Error, connection_invalidated=lost) from error


def _execute(dbapi: sqlite3.Connection, sql: str, values: Any, many: bool = False) -> sqlite3.Cursor:
    try:
        return dbapi.executemany(sql, values) if many else dbapi.execute(sql, values)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc


@lru_cache(maxsize=64)
def _insert_rows_sql(head: str, tail: str, width: int, count: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return head + ", ".join([row] * count) + tail


def _binder(params: list[tuple[str, Any, Processor]]) -> Callable[[dict[str, Any]], list[Any]]:
    """The function that turns a row's parameters into the statement's positional values. Only the columns with a
    processor (JSON, timestamps) are visited one by one: binding was a fifth of a batch INSERT's time. When every
    value comes from the row (a DML shape: the row's keys chose the columns), one ``itemgetter`` takes them all at
    once; otherwise one pass takes each value or its default (a function call per parameter cost a single send's
    23 parameters ~20 µs)."""
    names = [name for name, _, _ in params]
    processed = [(i, process) for i, (_, _, process) in enumerate(params) if process is not None]
    if params and all(default is _REQUIRED for _, default, _ in params):
        take = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    else:
        pairs = [(name, default) for name, default, _ in params]

        def take(row: dict[str, Any]) -> list[Any]:
            try:
                return [row[name] if default is _REQUIRED else row.get(name, default) for name, default in pairs]
            except KeyError as missing:
                raise KeyError(f"no value for the statement's parameter '{missing.args[0]}'") from None

    def bind(row: dict[str, Any]) -> list[Any]:
        values = list(take(row))  # (a tuple from itemgetter)
        for i, process in processed:
            values[i] = process(values[i])
        return values

    return bind


def _compile(stmt: Executable, conn: Connection, column_keys: list[str] | None) -> _Shape | None:
    dialect = conn.dialect
    compiled: Any = stmt.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[call-arg]
    binds = compiled.binds
    if (
        compiled.positiontup is None
        or any(b.expanding for b in binds.values())
        or compiled.insert_prefetch
        or compiled.update_prefetch
    ):
        return None  # SQLAlchemy computes something per execution: let it
    params = []
    for name in compiled.positiontup:
        bind = binds[name]
        default = bind.effective_value if not bind.required and bind.callable is None else _REQUIRED
        params.append((name, default, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    result = compiled._result_columns
    coltypes = _pg_column_types(conn, compiled.string) if result and dialect.name == "postgresql" else [None] * len(result)
    columns = tuple(
        (entry[0], entry[3].dialect_impl(dialect).result_processor(dialect, coltype)) for entry, coltype in zip(result, coltypes)
    )
    return _Shape(compiled.string, tuple(params), columns, _binder(params), _insert_rows(stmt, compiled.string))


def _pg_column_types(conn: Connection, sql: str) -> list[int]:
    """The type OIDs of the statement's result columns, as a cursor's description gives them to the result
    processors (a numeric column's depends on it), from the statement prepared on the connection once."""
    adapter: Any = conn.connection.dbapi_connection
    try:
        prepared = await_(adapter._connection.prepare(sql))
    except Exception as error:
        _raise_translated(conn, adapter, sql, [], error)
    except BaseException:
        _drop(conn)
        raise
    return [attribute.type.oid for attribute in prepared.get_attributes()]


def _insert_rows(stmt: Executable, sql: str) -> tuple[str, str] | None:
    """The text before and after the row of markers of a plain INSERT (no RETURNING; ON CONFLICT … DO NOTHING is
    fine: it applies to each row), else None."""
    match = _ONE_ROW_INSERT.fullmatch(sql)
    if not isinstance(stmt, Insert) or match is None:
        return None
    return match["head"], match["tail"]


def _decode(shape: _Shape, row: tuple[Any, ...]) -> dict[str, Any]:
    return {key: process(value) if process is not None else value for (key, process), value in zip(shape.columns, row)}
