"""An open connection to a store, for whole-table work: read a table in batches, write batches, count, clear, and
read or set the high-water mark of its sequence.

Rows travel in their *native* form, the same on both engines: JSON columns as the JSON text stored (so SQL NULL and
the JSON ``null`` stay apart), timestamps as aware UTC datetimes, dates, booleans, integers, floats, strings, bytes.
Each engine is driven at its driver for speed (SQLite: one ``executemany`` per batch; PostgreSQL: binary ``COPY``),
with SQLAlchemy's own type processors for the conversions, while the SQLAlchemy connection (the same transaction) runs
the migrations. PostgreSQL is reached through asyncpg: the work runs in a greenlet (``run``) where SQLAlchemy's sync
API drives the async driver, as ``PostgresStore`` does.
"""

from __future__ import annotations

import abc
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Column, Connection, Table, create_engine, event, inspect, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_only, greenlet_spawn

from agora.store import migrate
from agora.store.base import ENGINE_JSON_OPTIONS, begin_sqlite
from agora.store.postgres import asyncpg_url
from agora.store.schema import metadata
from agora_sdk.errors import FailedPrecondition, InvalidArgument

from .checksums import column_kind

T = TypeVar("T")
Row = tuple[Any, ...]

TABLES: list[Table] = list(metadata.sorted_tables)  # parents before children


def serial_tables() -> list[Table]:
    """Tables keyed by a number the database hands out (a sequence on PostgreSQL, the rowid on SQLite)."""
    return [t for t in TABLES if t.autoincrement_column is not None]


def kept_sequences() -> list[Table]:
    """Serial tables whose numbers are never handed out twice on either engine (SQLite AUTOINCREMENT): their
    high-water mark is part of the store's state (a read position is a message seq, an event position an event seq).
    SQLite reuses the others' numbers after the newest row is deleted, by design."""
    return [t for t in serial_tables() if t.dialect_options["sqlite"].get("autoincrement")]


@dataclass(frozen=True)
class StoreLocation:
    """Where a store is: ``sqlite:///path/to/agora.db`` or ``postgresql://user@host:port/db``."""

    url: str

    @classmethod
    def parse(cls, value: str) -> StoreLocation:
        if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
            return cls(value)
        if value.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            return cls(value)
        raise InvalidArgument(
            f"not a store URL: {value!r} (give sqlite:///path/to/agora.db or postgresql://user@host:port/database)"
        )

    @classmethod
    def of(cls, database_url: str | None, data_dir: Path) -> StoreLocation:
        """As ``agora serve`` picks its store: the URL, else SQLite in the data directory."""
        return cls.parse(database_url) if database_url else cls.sqlite(data_dir / "agora.db")

    @classmethod
    def sqlite(cls, path: Path) -> StoreLocation:
        return cls(f"sqlite:///{path}")

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    @property
    def path(self) -> Path:
        """The database file (SQLite only)."""
        return Path(self.url.split(":///", 1)[1])

    @property
    def display(self) -> str:
        """The URL without its password."""
        if self.dialect == "sqlite" or "@" not in self.url:
            return self.url
        scheme, rest = self.url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


class Endpoint(abc.ABC):
    """One connection to a store, inside one transaction (a read-only snapshot, or a write transaction that the
    caller commits). Every method runs inside ``run``."""

    dialect: str

    def __init__(self, location: StoreLocation, conn: Connection):
        self.location = location
        self.conn = conn  # SQLAlchemy's sync API over the same connection and transaction (migrations, SQL)
        self._quote = conn.dialect.identifier_preparer.quote

    # -- what the store is ------------------------------------------------------------------

    def tables_present(self) -> set[str]:
        return set(inspect(self.conn).get_table_names())

    def revision(self) -> str | None:
        """The schema revision; None for a database Agora has not been installed in."""
        if "alembic_version" not in self.tables_present():
            return None
        return self.conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def upgrade(self) -> None:
        """Bring the schema to this Agora's head (in this transaction)."""
        migrate.upgrade(self.conn)

    def count(self, table: Table) -> int:
        return int(self.conn.execute(text(f"SELECT count(*) FROM {self._quote(table.name)}")).scalar_one())

    def max_key(self, table: Table) -> int:
        column = table.autoincrement_column
        assert column is not None, f"{table.name} has no serial column"
        return int(self.conn.execute(text(f"SELECT coalesce(max({self._quote(column.name)}), 0) FROM {self._quote(table.name)}")).scalar_one())

    def _select(self, table: Table) -> str:
        return f"SELECT {', '.join(self._read_column(c) for c in table.columns)} FROM {self._quote(table.name)}"

    def _read_column(self, column: Column[Any]) -> str:
        return self._quote(column.name)

    # -- what each engine does its own way -------------------------------------------------

    @abc.abstractmethod
    def read(self, table: Table, batch: int) -> Iterator[list[Row]]:
        """Every row of the table, in native form, ``batch`` at a time (in no particular order)."""

    @abc.abstractmethod
    def write(self, table: Table, rows: list[Row]) -> None:
        """Insert native rows (their columns in the table's order)."""

    @abc.abstractmethod
    def clear(self, tables: list[Table]) -> None:
        """Delete every row of these tables (children first)."""

    @abc.abstractmethod
    def drop_indexes(self, tables: list[Table]) -> list[str]:
        """Drop the secondary indexes of these tables (not those of a primary key or unique constraint); the statements
        that make them again. A bulk load builds each index once at the end, not a row at a time."""

    @abc.abstractmethod
    def high_water(self, table: Table) -> int:
        """The highest number the table's sequence has handed out (0: none)."""

    @abc.abstractmethod
    def set_high_water(self, table: Table, value: int) -> None:
        """Make the next number the sequence hands out ``value + 1``."""


def _processors(dialect: Dialect, table: Table, bind: bool) -> list[Callable[[Any], Any] | None]:
    """SQLAlchemy's own conversions of each column, driver value ⇄ Python value; JSON columns travel as text."""
    out: list[Callable[[Any], Any] | None] = []
    for column in table.columns:
        impl = column.type.dialect_impl(dialect)
        if column_kind(column) == "json":
            out.append(None if bind else _json_text)
        else:
            out.append(impl.bind_processor(dialect) if bind else impl.result_processor(dialect, None))
    return out


def _json_text(value: Any) -> str | None:
    """The JSON text of a SQLite JSON column: its NUMERIC affinity stores a bare number as a number."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _convert(rows: list[Row], processors: list[Callable[[Any], Any] | None]) -> list[Row]:
    active = [(i, p) for i, p in enumerate(processors) if p is not None]
    if not active:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i, p in active:
            if values[i] is not None:
                values[i] = p(values[i])
        out.append(tuple(values))
    return out


class SqliteEndpoint(Endpoint):
    dialect = "sqlite"

    def __init__(self, location: StoreLocation, conn: Connection):
        super().__init__(location, conn)
        self.raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]

    def read(self, table: Table, batch: int) -> Iterator[list[Row]]:
        processors = _processors(self.conn.dialect, table, bind=False)
        cursor = self.raw.execute(self._select(table))
        try:
            while rows := cursor.fetchmany(batch):
                yield _convert(rows, processors)
        finally:
            cursor.close()

    def write(self, table: Table, rows: list[Row]) -> None:
        columns = ", ".join(self._quote(c.name) for c in table.columns)
        marks = ", ".join("?" * len(table.columns))
        self.raw.executemany(
            f"INSERT INTO {self._quote(table.name)} ({columns}) VALUES ({marks})",
            _convert(rows, _processors(self.conn.dialect, table, bind=True)),
        )

    def clear(self, tables: list[Table]) -> None:
        for table in reversed(tables):
            self.raw.execute(f"DELETE FROM {self._quote(table.name)}")

    def drop_indexes(self, tables: list[Table]) -> list[str]:
        names = [t.name for t in tables]
        found = self.raw.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({', '.join('?' * len(names))})",
            names,
        ).fetchall()  # an index without sql is a constraint's own
        for name, _sql in found:
            self.raw.execute(f"DROP INDEX {self._quote(name)}")
        return [sql for _name, sql in found]

    def _sqlite_sequence(self, table: Table) -> int | None:
        if not table.dialect_options["sqlite"].get("autoincrement"):
            return None
        row = self.raw.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)).fetchone()
        return int(row[0]) if row else 0

    def high_water(self, table: Table) -> int:
        return max(self._sqlite_sequence(table) or 0, self.max_key(table))

    def set_high_water(self, table: Table, value: int) -> None:
        if self._sqlite_sequence(table) is None:
            return  # SQLite goes on from the largest key: nothing is kept to set
        if self.raw.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (value, table.name)).rowcount == 0:
            self.raw.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table.name, value))


class PostgresEndpoint(Endpoint):
    dialect = "postgresql"

    def __init__(self, location: StoreLocation, conn: Connection, raw: Any):
        super().__init__(location, conn)
        self.raw = raw  # the asyncpg connection

    def _read_column(self, column: Column[Any]) -> str:
        # As text: asyncpg's JSON codec would parse it, and JSON null would come back as SQL NULL.
        return f"{self._quote(column.name)}::text" if column_kind(column) == "json" else self._quote(column.name)

    def read(self, table: Table, batch: int) -> Iterator[list[Row]]:
        cursor = await_only(self.raw.cursor(self._select(table)))  # server-side, inside the snapshot's transaction
        while rows := await_only(cursor.fetch(batch)):
            yield [tuple(r) for r in rows]

    def write(self, table: Table, rows: list[Row]) -> None:
        # Binary COPY; the JSON codec SQLAlchemy installed takes JSON text as it is.
        await_only(self.raw.copy_records_to_table(table.name, records=rows, columns=[c.name for c in table.columns]))

    def clear(self, tables: list[Table]) -> None:
        self.conn.execute(text(f"TRUNCATE {', '.join(self._quote(t.name) for t in tables)}"))

    def drop_indexes(self, tables: list[Table]) -> list[str]:
        found = self.conn.execute(
            text(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid AND t.relnamespace = current_schema()::regnamespace "
                "WHERE t.relname = ANY(:names) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            ),
            {"names": [t.name for t in tables]},
        ).all()
        for name, _definition in found:
            self.conn.exec_driver_sql(f"DROP INDEX {name}")
        # A partitioned table's index reads "ON ONLY events": made so, it would cover none of the partitions.
        return [definition.replace(" ON ONLY ", " ON ", 1) for _name, definition in found]

    def _sequence(self, table: Table) -> str | None:
        column = table.autoincrement_column
        assert column is not None, f"{table.name} has no serial column"
        return self.conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}).scalar()

    def high_water(self, table: Table) -> int:
        sequence = self._sequence(table)
        handed_out = 0
        if sequence is not None:
            last, called = self.conn.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
            handed_out = int(last) if called else int(last) - 1
        return max(handed_out, self.max_key(table))

    def set_high_water(self, table: Table, value: int) -> None:
        sequence = self._sequence(table)
        if sequence is not None:
            self.conn.execute(text("SELECT setval(:s, :v, :called)"), {"s": sequence, "v": max(value, 1), "called": value > 0})


@contextlib.asynccontextmanager
async def open_endpoint(location: StoreLocation, *, snapshot: bool = False, replace: bool = False) -> AsyncIterator[Endpoint]:
    """A connection inside one transaction: a read-only snapshot (``snapshot``: what the store held at one instant,
    however a hub writes meanwhile), or a write transaction rolled back unless the caller commits
    (``endpoint.conn.commit()``) before leaving. ``replace``: the whole store is about to be rewritten, so nobody else
    may be using it (a hub running on it is refused)."""
    if location.dialect == "sqlite":
        async with _sqlite_endpoint(location, snapshot, replace) as endpoint:
            yield endpoint
        return
    engine = create_async_engine(asyncpg_url(location.url), poolclass=NullPool, **ENGINE_JSON_OPTIONS)
    try:
        async with engine.connect() as aconn:
            if snapshot:
                aconn = await aconn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            await aconn.begin()
            raw = (await aconn.get_raw_connection()).driver_connection
            if replace:
                others = await raw.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                if others:
                    raise FailedPrecondition(
                        f"{location.display} is in use ({others} other connection(s): a hub running on it?); stop it first"
                    )
            yield PostgresEndpoint(location, aconn.sync_connection, raw)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _sqlite_endpoint(location: StoreLocation, snapshot: bool, replace: bool) -> AsyncIterator[Endpoint]:
    new = not location.path.exists()
    try:
        async with _sqlite_transaction(location, snapshot, replace) as endpoint:
            yield endpoint
    except BaseException:
        if new:
            _remove_empty(location.path)
        raise
    if new:
        _remove_empty(location.path)


def _remove_empty(path: Path) -> None:
    """A store that did not come into being (a failure, a dry run) leaves no empty file behind."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    if empty:
        for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def _sqlite_transaction(location: StoreLocation, snapshot: bool, replace: bool) -> AsyncIterator[Endpoint]:
    with _sqlite_connection(location, read_only=snapshot) as conn:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if replace:
            # Out of WAL mode for the rewrite: new pages go straight to the file, and only the pages it had go to the
            # rollback journal (a WAL would grow to the size of the store).
            leave_wal(raw, location.path)
        conn.begin()
        if snapshot:  # a deferred BEGIN takes its snapshot at the first read
            conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
        try:
            yield SqliteEndpoint(location, conn)
        finally:
            if conn.in_transaction():
                conn.rollback()
            if replace:
                raw.execute("PRAGMA journal_mode=WAL")  # the hub's mode


def leave_wal(raw: sqlite3.Connection, path: Path) -> None:
    """Switch the database out of WAL mode, which copies the WAL back into the file; refuse a database another
    connection has open (SQLite allows the switch only to the one connection that has the file open), such as a hub's."""
    raw.execute("PRAGMA busy_timeout=1000")  # a connection that does not let go within a second is a hub's
    try:
        mode = raw.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError:
        mode = "locked"
    if mode != "delete":
        raise FailedPrecondition(f"{path} is in use (a hub running on it?); stop it first")


@contextlib.contextmanager
def _sqlite_connection(location: StoreLocation, read_only: bool) -> Iterator[Connection]:
    path = location.path
    if read_only and not path.is_file():
        hint = "" if path.is_absolute() else " (sqlite:///x is relative to the current directory; sqlite:////x is /x)"
        raise InvalidArgument(f"no SQLite database at {path.absolute()}{hint}")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    uri = f"file:{path}?mode={'ro' if read_only else 'rwc'}"
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False),
        poolclass=NullPool,
        **ENGINE_JSON_OPTIONS,
    )

    def on_connect(dbapi: sqlite3.Connection, _record: Any) -> None:
        dbapi.execute("PRAGMA busy_timeout=10000")
        dbapi.execute("PRAGMA foreign_keys=ON")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", begin_sqlite)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


async def run(work: Callable[..., T], *args: Any) -> T:
    """Run ``work`` where endpoints work: in a greenlet that lets SQLAlchemy's sync API drive asyncpg."""
    return await greenlet_spawn(work, *args)

