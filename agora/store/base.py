"""The Store interface.

A store operation is a plain synchronous function ``op(conn, *args)`` written once with SQLAlchemy
Core. ``Store.read`` and ``Store.write`` run it on the engine's own terms: SQLite runs writes on a
single writer thread that commits them in groups, PostgreSQL runs them through an asyncpg pool
(``AsyncConnection.run_sync``). Either way the awaiting caller resumes only after the commit.
"""

from __future__ import annotations

import abc
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from agora.observability import metrics
from agora_sdk.errors import Conflict

log = logging.getLogger("agora.store")

T = TypeVar("T")
Op = Callable[..., T]
O = TypeVar("O", bound=Callable[..., Any])


def point_read(op: O) -> O:
    """Marks a read that looks rows up by a unique key, or probes an index for a first row (a handful of rows
    through an index, microseconds of work).

    SQLite runs such a read at once on the calling thread instead of handing it to a reader thread: the two thread
    hand-offs cost several times the lookup itself (an A2A round trip makes three of them)."""
    op.point_read = True  # type: ignore[attr-defined]
    return op


class Store(abc.ABC):
    """Runs store operations; the database is the source of truth for everything the hub holds."""

    dialect: str
    url_for_display: str
    writes_in_flight = 0  # asked for and not yet committed (``agora_store_writes_in_flight``)

    @abc.abstractmethod
    async def start(self) -> None:
        """Open connections and apply migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish every accepted write, then release connections."""

    @abc.abstractmethod
    async def read(self, op: Op[T], *args: Any) -> T:
        """Run ``op(conn, *args)`` on a read connection (a consistent snapshot). An ``op`` marked ``point_read``
        must read only through an index (a unique key, or a probe for a first row): SQLite may run it on the
        caller's thread (the event loop)."""

    @abc.abstractmethod
    async def write(self, op: Op[T], *args: Any) -> T:
        """Run ``op(conn, *args)`` in a transaction; return once it is committed.

        ``op`` may run more than once (group commit retries it alone after a batch mate failed; PostgreSQL retries
        serialization failures), so it must not change its arguments or anything outside the transaction.
        """

    async def write_statement(self, op: Op[T], *args: Any) -> T:
        """``write``, for an ``op`` that runs a single statement on PostgreSQL (on SQLite it may run several): a
        statement is atomic on its own, so PostgreSQL runs it without BEGIN and COMMIT (one round trip where
        ``write`` takes three). As durable as ``write`` once it returns."""
        return await self.write(op, *args)

    async def write_together(self, op: Op[list[T]], head: tuple[Any, ...], item: Any) -> T:
        """``write_statement(op, *head, [item])``'s one answer, for an ``op`` that takes a list of items and answers
        each in its place. PostgreSQL runs the items other callers bring to the same ``op`` and ``head`` meanwhile in
        the same call (``PostgresStore``): one round trip and one commit for them all. SQLite's writer already
        commits concurrent writes together."""
        return (await self.write_statement(op, *head, [item]))[0]

    async def _timed_write(self, committed: Awaitable[T]) -> T:
        """Await a write's commit, counted in flight meanwhile and timed (``agora_store_write_seconds``)."""
        self.writes_in_flight += 1
        began = time.perf_counter()
        try:
            return await committed
        finally:
            self.writes_in_flight -= 1
            metrics.STORE_WRITE_SECONDS.observe(time.perf_counter() - began)

    @abc.abstractmethod
    async def migration_revision(self) -> str | None:
        """The schema revision the database is at."""


def integrity_to_conflict(exc: IntegrityError) -> Conflict:
    """A constraint an operation did not anticipate is a conflict for the caller, never a 500.

    The database's own message (table and column names) goes to the log, not to the caller.
    """
    log.warning("constraint violation", extra={"reason": str(exc.orig)[:300]})
    return Conflict("the write conflicts with existing data")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value: Any) -> Any:
    # SQLite's NUMERIC affinity hands a bare JSON number back already converted.
    return orjson.loads(value) if isinstance(value, (str, bytes, bytearray, memoryview)) else value


# JSON columns go through orjson (the stdlib json module costs more than the INSERT on the hot path).
ENGINE_JSON_OPTIONS: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}


def begin_sqlite(conn: Connection) -> None:
    """The "begin" listener of an engine whose sqlite3 connections are in autocommit mode (isolation_level None):
    SQLAlchemy's transactions emit BEGIN themselves. It goes straight to sqlite3; through ``exec_driver_sql`` its
    execution machinery cost more than the statement (~5% of a point read on the hot path)."""
    conn.connection.driver_connection.execute("BEGIN")  # type: ignore[union-attr]


def open_store(database_url: str | None, data_dir: Path, **options: Any) -> Store:
    """Pick the engine from the URL: no URL means embedded SQLite in ``data_dir``."""
    if not database_url or database_url.startswith("sqlite"):
        from .sqlite import SQLiteStore

        path = data_dir / "agora.db" if not database_url else Path(database_url.split(":///", 1)[1])
        return SQLiteStore(path, **{k: v for k, v in options.items() if k.startswith("sqlite_")})
    if database_url.startswith(("postgresql", "postgres")):
        from .postgres import PostgresStore

        return PostgresStore(database_url, **{k: v for k, v in options.items() if k.startswith("pg_")})
    from agora_sdk.errors import InvalidArgument

    raise InvalidArgument(f"unsupported database URL scheme: {database_url.split(':', 1)[0]!r}")


Flush = Callable[[Connection, list[dict[str, Any]]], None]
_DEFERRED = "agora.deferred"  # the rows an operation deferred, by the function that writes them (conn.info)


def defer(conn: Connection, flush: Flush, row: dict[str, Any], *, locks: bool = False) -> None:
    """Write ``row`` at the end of the operation, with the other rows deferred to ``flush``: ``flush(conn, rows)``
    then writes them in one statement, in the order they came. For what an operation appends and never reads back
    (hub events, task history): one statement instead of one per call. A flush that ``locks`` (PostgreSQL: a stream's
    lock, held to the commit) runs after the others, so the lock is held from its statement to the commit only."""
    pending: dict[Flush, tuple[bool, list[dict[str, Any]]]] = conn.info.setdefault(_DEFERRED, {})
    pending.setdefault(flush, (locks, []))[1].append(row)


def run_op(conn: Connection, op: Op[T], args: tuple[Any, ...], *, flush: bool = True) -> T:
    """``op(conn, *args)``, then the rows it deferred (``flush`` False: they stay for ``flush_deferred``, so the
    operations of one transaction append theirs in one statement per table)."""
    try:
        result = op(conn, *args)
        if flush:
            flush_deferred(conn)
        return result
    except BaseException as exc:
        if not conn.invalidated:  # (an invalidated connection's info went with it)
            conn.info.pop(_DEFERRED, None)  # an operation that failed wrote nothing: its rows go with it
        if isinstance(exc, IntegrityError):
            raise integrity_to_conflict(exc) from exc
        raise


def flush_deferred(conn: Connection) -> None:
    """Write the rows deferred so far, one statement per table, in the order they came (locking flushes last)."""
    pending = conn.info.pop(_DEFERRED, {})
    for write, (_, rows) in sorted(pending.items(), key=lambda item: item[1][0]):
        write(conn, rows)
