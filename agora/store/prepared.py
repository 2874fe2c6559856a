"""The hot path's statements on SQLite's own cursor: compiled once, bound and decoded by SQLAlchemy's type processors.

A Core ``conn.execute`` costs ~55 µs here (cache key, execution context, result metadata) where SQLite itself takes
~13 µs for a point lookup, and the hub's writes are a few such statements each: that overhead was half of the
writer thread's time. A ``Prepared`` statement is compiled once per shape by SQLAlchemy, then executed on the
DBAPI connection inside the same transaction, with the dialect's own bind and result processors (JSON, UTC
timestamps, booleans) and its exception wrapping, so callers see what ``conn.execute`` would give them.

Only shapes SQLAlchemy could compile to one fixed string are run this way (no expanding IN lists, no Python-side
column defaults to compute); anything else, and every engine but SQLite, goes through ``conn.execute`` as usual.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None
_REQUIRED = object()


@dataclass(frozen=True)
class _Shape:
    """One compiled form: the SQL text, each positional parameter (name, default, processor), the result columns."""

    sql: str
    params: tuple[tuple[str, Any, Processor], ...]
    columns: tuple[tuple[str, Processor], ...]


class Prepared:
    """A Core statement to run many times; for DML the parameters' keys choose the columns, as with ``execute``."""

    def __init__(self, stmt: Executable):
        self.stmt = stmt
        self._dml = isinstance(stmt, UpdateBase)
        self._shapes: dict[tuple[str, ...] | None, _Shape | None] = {}

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        shape = self._shape(conn, params)
        if shape is None:
            return [dict(r) for r in conn.execute(self.stmt, params).mappings()]
        cursor = self._run(conn, shape, params)
        return [_decode(shape, row) for row in cursor.fetchall()]

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        shape = self._shape(conn, params)
        if shape is None:
            row = conn.execute(self.stmt, params).mappings().first()
            return dict(row) if row is not None else None
        cursor = self._run(conn, shape, params)
        row = cursor.fetchone()
        cursor.close()
        return _decode(shape, row) if row is not None else None

    def scalar(self, conn: Connection, params: dict[str, Any]) -> Any:
        shape = self._shape(conn, params)
        if shape is None:
            return conn.execute(self.stmt, params).scalar()
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
        return int(self._run(conn, shape, params).rowcount)

    def execute_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Run an INSERT, UPDATE or DELETE once per row (the rows all have the same keys)."""
        shape = self._shape(conn, rows[0])
        if shape is None:
            conn.execute(self.stmt, rows[0] if len(rows) == 1 else rows)  # one row: a plain execute costs less
            return
        self._run(conn, shape, rows, many=True)

    def insert(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Run an INSERT of one row; its generated primary key."""
        shape = self._shape(conn, params)
        if shape is None:
            return conn.execute(self.stmt, params).inserted_primary_key[0]
        return self._run(conn, shape, params).lastrowid

    def _shape(self, conn: Connection, params: dict[str, Any]) -> _Shape | None:
        if conn.dialect.name != "sqlite":
            return None
        key = tuple(params) if self._dml else None
        try:
            return self._shapes[key]
        except KeyError:
            shape = self._shapes[key] = _compile(self.stmt, conn, list(params) if self._dml else None)
            return shape

    @staticmethod
    def _run(conn: Connection, shape: _Shape, params: Any, many: bool = False) -> sqlite3.Cursor:
        if not conn.in_transaction():
            conn.begin()  # as conn.execute would: a read op's statements share one snapshot
        values = [_bind(shape, row) for row in params] if many else _bind(shape, params)
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        try:
            return dbapi.executemany(shape.sql, values) if many else dbapi.execute(shape.sql, values)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(shape.sql, values, exc, sqlite3.Error) from exc


def _bind(shape: _Shape, params: dict[str, Any]) -> list[Any]:
    values = []
    for name, default, process in shape.params:
        value = params.get(name, default)
        if value is _REQUIRED:
            raise KeyError(f"no value for the statement's parameter '{name}'")
        values.append(process(value) if process is not None else value)
    return values


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
    columns = tuple(
        (entry[0], entry[3].dialect_impl(dialect).result_processor(dialect, None)) for entry in compiled._result_columns
    )
    return _Shape(compiled.string, tuple(params), columns)


def _decode(shape: _Shape, row: tuple[Any, ...]) -> dict[str, Any]:
    return {key: process(value) if process is not None else value for (key, process), value in zip(shape.columns, row)}
