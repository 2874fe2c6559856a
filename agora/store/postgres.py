"""PostgreSQL store: an asyncpg pool; concurrency gives group commit for free."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only, greenlet_spawn

from agora.observability import metrics
from agora_sdk.errors import Unavailable

from . import migrate, partitions, tenancy
from .base import ENGINE_JSON_OPTIONS, Op, Store, T, run_op

log = logging.getLogger("agora.store")

# Serialization failures and deadlocks are retried: the operation is re-run from the start.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
# The server is away (shutting down, starting up, restarting, failing over) or cut the connection: 08xxx, 57P0x.
_AWAY_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
# What asyncpg raises unwrapped when it cannot open, or loses, a connection (a refused port, a closed socket, a server
# that is starting or shutting down).
class _SwitchFailed(Exception):
    """Setting a connection's role and tenant failed on asyncpg itself (the server went away, or cut the connection
    mid-statement): the connection is discarded and the operation re-run, as for any lost connection."""


_AWAY_ERRORS = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, _SwitchFailed
)
RETRY_AFTER_SECONDS = 1.0
_QUERY_CANCELED = "57014"  # statement_timeout ran out (or an operator cancelled the statement)
_MAX_ATTEMPTS = 5
_MIGRATION_LOCK = 0x61676F7261  # "agora": replicas starting together migrate one at a time
# The most items of one write_together call. PostgreSQL runs a pipelined call's statements one after another on one
# backend: with no cap, 32 concurrent sends went as one call of 32 while the second core idled (1,250/s); capped at
# 4, 8 and 16: 1,314, 1,540 and 1,550/s, against ~1,000/s one statement each (single sends, 32 connections).
TOGETHER_AT_MOST = 8
APP_ROLE = "agora_app"  # the role a tenant's calls work as: it owns nothing, so the policies of migration 0032 bind it
_TENANT = "agora.tenant"  # the tenant a pooled connection was last set to serve (in its record's info)


def asyncpg_url(url: str) -> str:
    """SQLAlchemy's URL for a PostgreSQL one: the asyncpg driver named, and several hosts as libpq writes them
    (``postgresql://user@primary:5432,standby:5432/db?target_session_attrs=read-write``: a primary and the standbys
    that may take over from it) as SQLAlchemy's ``host=`` parameters (each with its port: it has no default)."""
    scheme, rest = url.split("://", 1)
    if "+" not in scheme:
        scheme = "postgresql+asyncpg"
    parts = urlsplit(f"{scheme}://{rest}")
    user, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return f"{scheme}://{rest}"
    if "[" in hosts:  # SQLAlchemy splits each host= at its colons
        raise ValueError(f"{hosts}: an IPv6 address cannot be one of several hosts in a database URL; give the servers names")
    each = [f"host={quote(h if ':' in h else h + ':5432', safe=':')}" for h in hosts.split(",")]
    query = "&".join([*each, *([parts.query] if parts.query else [])])
    return urlunsplit((scheme, f"{user}{at}", parts.path, query, parts.fragment))


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(
        self, url: str, *, pg_pool_size: int = 10, pg_statement_timeout: float = 30.0, pg_row_security: bool = True,
        pg_pool_timeout: float = 5.0, pg_max_waiting: int = 1000,
    ):  # fmt: skip
        self.url_for_display = url.split("@")[-1] if "@" in url else url
        self.statement_timeout = pg_statement_timeout
        self.row_security = pg_row_security  # until start finds whether the hub may work as APP_ROLE
        # No pre-ping (a round trip per checkout): a connection found dead is discarded and the operation re-run.
        # No overflow: an overflow connection is closed as soon as it is checked in, so under a load above the pool's
        # size the hub spent a fifth of its CPU opening and closing connections (TLS probe, codecs, statements
        # prepared again). An operation waits for one of the pool's connections instead.
        # The statement timeout bounds what one statement may hold (locks, a connection of the pool) when something
        # goes wrong: a lock held by a stuck client, a plan gone bad. A transaction left idle as long is ended by the
        # server too, releasing its locks (its hub is wedged, or lost it). 0: no limit.
        limit = str(round(pg_statement_timeout * 1000))
        settings = {"statement_timeout": limit, "idle_in_transaction_session_timeout": limit}
        # A slow database keeps every connection busy longer: operations then wait for one at most pg_pool_timeout,
        # and no more than pg_max_waiting of them wait at once (the rest are refused at once), so the hub answers
        # 503 with Retry-After instead of piling up calls, and what it does not touch (/health) stays fast.
        self._engine: AsyncEngine = create_async_engine(
            asyncpg_url(url), pool_size=pg_pool_size, max_overflow=0, pool_timeout=pg_pool_timeout,
            connect_args={"server_settings": settings}, **ENGINE_JSON_OPTIONS,
        )  # fmt: skip
        self._pool_timeout = pg_pool_timeout
        self._max_waiting = pg_max_waiting
        self._admitted_at_most = pg_pool_size + pg_max_waiting
        self._in_flight = 0  # operations holding or waiting for a connection
        self._gathering: dict[tuple[Any, ...], _Gathered] = {}  # write_together's batches still taking items
        self._flushes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(text("SET LOCAL statement_timeout = 0"))  # a migration takes what it takes
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            await conn.run_sync(migrate.upgrade)
            await conn.run_sync(partitions.ensure, datetime.now(timezone.utc))  # a hub stopped for days: today's too
            may_work_as_app = (await conn.execute(text(_MAY_WORK_AS_APP), {"role": APP_ROLE})).scalar()
        if self.row_security and not may_work_as_app:
            self.row_security = False
            log.error(
                "row-level security is not in force: the database user may not work as the role %s; as a superuser, run "
                "CREATE ROLE %s NOLOGIN; GRANT %s TO <this user>; then `agora db upgrade` again (migration 0032 grants it the tables)",
                APP_ROLE, APP_ROLE, APP_ROLE,
            )
        log.info("store ready", extra={"store": self.url_for_display, "row_security": self.row_security})

    async def close(self) -> None:
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self._engine.dispose()

    async def read(self, op: Op[T], *args: Any) -> T:
        return await self._run(False, op, args)

    async def write(self, op: Op[T], *args: Any) -> T:
        return await self._timed_write(self._run(True, op, args))

    async def write_statement(self, op: Op[T], *args: Any) -> T:
        return await self._timed_write(self._run(False, op, args))  # on the AUTOCOMMIT connections: the statement commits as it ends

    async def write_together(self, op: Op[list[T]], head: tuple[Any, ...], item: Any) -> T:
        """The items that reach one ``op`` and ``head`` go in one call (``TOGETHER_AT_MOST`` at most), until that
        call has its connection: under load, while every connection of the pool is busy, a batch grows; alone, an
        item goes at once."""
        key = (op, tenancy.current(), *head)  # (a batch runs as one tenant)
        gathered = self._gathering.get(key)
        if gathered is None:
            gathered = self._gathering[key] = _Gathered()
            flush = asyncio.create_task(self._write_gathered(op, head, key, gathered))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        gathered.items.append(item)
        gathered.answers.append(answer)
        if len(gathered.items) >= TOGETHER_AT_MOST and self._gathering.get(key) is gathered:
            del self._gathering[key]  # full: the next item starts another batch, on another connection
        return await self._timed_write(answer)

    async def _write_gathered(self, op: Op[list[Any]], head: tuple[Any, ...], key: tuple[Any, ...], gathered: _Gathered) -> None:
        def seal() -> None:
            """Later items start the next batch."""
            if self._gathering.get(key) is gathered:
                del self._gathering[key]

        def sealed(conn: Any, *args: Any) -> list[Any]:
            """``op`` on the items gathered when the connection came."""
            seal()
            return op(conn, *args, gathered.items)

        try:
            # (each caller's write is counted and timed in write_together: the batch is not one more)
            _answer_each(gathered.answers, await self._run(False, sealed, head))
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            seal()  # (it never ran if no connection came)
            if len(gathered.items) == 1 or isinstance(exc, Unavailable):  # (the database's trouble, not an item's)
                for answer in gathered.answers:
                    _fail(answer, exc)
                return
            # One item's failure undid them all (nothing of the batch was kept): each again alone, for its own answer.
            alone = await asyncio.gather(*(self._run(False, op, (*head, [item])) for item in gathered.items), return_exceptions=True)
            for answer, outcome in zip(gathered.answers, alone):
                if isinstance(outcome, BaseException):
                    _fail(answer, outcome)
                else:
                    _answer_each([answer], outcome)
        finally:
            seal()
            for answer in gathered.answers:  # (cancelled: the hub is stopping; no caller waits forever)
                answer.cancel()

    async def _run(self, transactional: bool, op: Op[T], args: tuple[Any, ...]) -> T:
        """Run the operation; re-run it after a serialization failure, a deadlock or a dropped connection.

        Re-running is safe: a failed transaction committed nothing.
        """
        if self._in_flight >= self._admitted_at_most:
            metrics.STORE_BUSY_REFUSALS.labels("queue_full").inc()
            raise _busy(f"{self._max_waiting} operations already wait for one")
        self._in_flight += 1
        try:
            return await self._attempts(transactional, op, args)
        finally:
            self._in_flight -= 1

    async def _attempts(self, transactional: bool, op: Op[T], args: tuple[Any, ...]) -> T:
        engine = self._engine.sync_engine
        tenant = tenancy.current() if self.row_security else None
        attempt = 0
        while True:
            try:
                return await greenlet_spawn(_in_connection, engine, tenant, transactional, op, args)
            except PoolTimeout as exc:
                metrics.STORE_BUSY_REFUSALS.labels("pool_timeout").inc()
                raise _busy(f"none came free within {self._pool_timeout:g} s") from exc
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate == _QUERY_CANCELED:
                    raise Unavailable(
                        f"the database did not finish this operation within the statement timeout ({self.statement_timeout:g} s); "
                        "nothing of it was kept; try again shortly",
                        details={"reason": "statement_timeout"},
                    ) from exc
                attempt += 1
                away = exc.connection_invalidated or isinstance(exc.orig, _AWAY_ERRORS) or _is_away(sqlstate)
                if not (away or sqlstate in _RETRYABLE_SQLSTATES):
                    raise
                if attempt >= _MAX_ATTEMPTS:
                    if away:
                        raise _database_away(exc) from exc
                    raise
                await asyncio.sleep(0.005 * 2**attempt)
            except _AWAY_ERRORS as exc:
                attempt += 1
                if attempt >= _MAX_ATTEMPTS:
                    raise _database_away(exc) from exc
                await asyncio.sleep(0.005 * 2**attempt)

    async def migration_revision(self) -> str | None:
        return await self.read(migrate.current_revision)


def _busy(why: str) -> Unavailable:
    """503 with Retry-After: every connection of the pool is busy (a slow database, or more work than it takes)."""
    return Unavailable(
        f"every database connection of this hub is busy ({why}); nothing was done: try again shortly",
        details={"reason": "database_busy", "retry_after_seconds": RETRY_AFTER_SECONDS},
    )


def _is_away(sqlstate: str | None) -> bool:
    return sqlstate is not None and (sqlstate.startswith("08") or sqlstate in _AWAY_SQLSTATES)


def _database_away(exc: BaseException) -> Unavailable:
    """503 with Retry-After: the database cannot be reached now. A write cut off at its commit may have been kept:
    the answer says to repeat it with the same idempotency key, which returns the first outcome if it was."""
    return Unavailable(
        "the database cannot be reached right now; try again shortly (a write may or may not have been kept: "
        f"repeat it with the same idempotency key) [{type(exc).__name__}]",
        details={"reason": "database_unavailable", "retry_after_seconds": RETRY_AFTER_SECONDS},
    )


class _Gathered:
    """A batch of ``write_together``: its items and the futures their callers wait on, in the same order."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.answers: list[asyncio.Future[Any]] = []


def _answer_each(answers: list[asyncio.Future[Any]], results: list[Any]) -> None:
    for answer, result in zip(answers, results, strict=True):
        if not answer.done():  # (its caller may have been cancelled meanwhile)
            answer.set_result(result)


def _fail(answer: asyncio.Future[Any], exc: BaseException) -> None:
    if not answer.done():
        answer.set_exception(exc)


_MAY_WORK_AS_APP = (
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :role) THEN pg_has_role(current_user, :role, 'MEMBER') "
    "ELSE false END"
)


def _act_as(conn: Connection, tenant: str | None) -> None:
    """Row-level security for what follows on ``conn``: a tenant's rows only, as ``APP_ROLE`` with ``app.tenant_id``
    set; or the hub's own work (``tenancy.HUB_WIDE``), as the user the hub logs in as, whom the policies do not bind.
    Set for the session, on asyncpg itself before the operation's first statement (so before the adapter begins its
    transaction: a rollback cannot take it back), and remembered with the pooled connection, so it costs a round trip
    only when a connection serves another tenant than last time. (A new connection is the hub's own; one whose switch
    was cut short is no one's until it is set again.)"""
    info = conn.connection.info
    if tenant is not None and info.get(_TENANT, tenancy.HUB_WIDE) != tenant:
        hub_wide = tenant == tenancy.HUB_WIDE
        driver: Any = conn.connection.driver_connection
        info[_TENANT] = None  # unknown until the server answers: a call cancelled meanwhile leaves it to be set again
        try:
            await_only(driver.fetchval(_SET_TENANT, "none" if hub_wide else APP_ROLE, "" if hub_wide else tenant))
        except Exception as exc:  # noqa: BLE001 - this statement cannot fail on a sound connection (a dropped one
            # answers "another operation is in progress" as often as "connection is closed"): the connection goes, not
            # through the adapter, so nothing else would tell the pool it is dead
            conn.invalidate(exc)
            raise _SwitchFailed(f"{type(exc).__name__}: {exc}") from exc
        info[_TENANT] = tenant


_SET_TENANT = "SELECT set_config('role', $1, false), set_config('app.tenant_id', $2, false)"


def _in_connection(engine: Engine, tenant: str | None, transactional: bool, op: Op[T], args: tuple[Any, ...]) -> T:
    """The operation on a pooled connection, in a transaction if ``transactional``, all inside the one greenlet
    ``_run`` spawns: checkout, BEGIN, the statements, COMMIT and checkin each waited on asyncpg from here.
    (``AsyncEngine.begin`` + ``run_sync`` spawn one for each step, ~150 µs of CPU an operation.)

    Otherwise (reads, one-statement writes) each statement commits as it ends, with no BEGIN and no COMMIT: under
    READ COMMITTED a transaction gives a read's statements no common snapshot anyway, and its BEGIN and ROLLBACK (or
    COMMIT) were two of a one-statement operation's three round trips. The adapter is told so for this operation
    alone; SQLAlchemy's ``AUTOCOMMIT`` execution option did the same through its pool events, setting and resetting
    the connection's isolation level on every checkout (~35 µs of CPU an operation).

    ``tenant``: whose rows the operation may touch (``tenancy``; None: row-level security is off)."""
    if transactional:
        with engine.begin() as conn:
            _act_as(conn, tenant)
            return run_op(conn, op, args)
    with engine.connect() as conn:
        adapter: Any = conn.connection.dbapi_connection
        adapter.autocommit = True
        try:
            _act_as(conn, tenant)
            return run_op(conn, op, args)
        finally:
            adapter.autocommit = False
