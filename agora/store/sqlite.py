"""Embedded store: SQLite in WAL mode, one writer thread with group commit, readers on their own threads.

Why one writer: SQLite allows one writer at a time; several writers fighting over the file give
"database is locked". Why group commit: a commit costs a flush, so the writer takes every write
that queued up while it was busy and commits them together. If one operation of a batch fails, the
batch is rolled back and re-run with each operation in its own SAVEPOINT, so that one failure never
takes the others down (operations are pure database functions, safe to re-run). Callers are
answered only after the COMMIT. The WAL is copied back into the database file by a checkpointer
thread of its own, never inside a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.pool import NullPool

from agora.core.disk import is_storage_full
from agora.observability import metrics
from agora_sdk.errors import StorageFull, Unavailable

from . import migrate
from .base import ENGINE_JSON_OPTIONS, Op, Store, T, begin_sqlite, flush_deferred, run_op

log = logging.getLogger("agora.store")

_STOP = object()

CHECKPOINT_PAUSE = 0.2  # seconds between two checkpoints while writes keep coming
WAL_CATCH_UP_PAGES = 1_000  # ~4 MiB of WAL left behind by the checkpointer: the writer finishes the copy
CATCH_UP_WITHIN = 1.0  # seconds the writer may put that off while writes are queued
FULL_LOG_EVERY = 10.0  # seconds between two log lines about a full disk while it stays full


class _Job:
    __slots__ = ("op", "args", "future", "loop", "result", "error")

    def __init__(self, op: Op[Any], args: tuple[Any, ...], future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop):
        self.op, self.args, self.future, self.loop = op, args, future, loop
        self.result: Any = None
        self.error: BaseException | None = None


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # the caller gave up (cancelled); the write stands regardless
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)


class _Checkpointer:
    """Copies the WAL back into the database file on its own thread and connection, shortly after writes.

    Why not SQLite's automatic checkpoint: it runs inside the COMMIT that crosses its threshold, so the writer, and
    every caller waiting on the writer, stalled for the whole copy and fsync (~100 ms every ~1,000 messages sent,
    which was the p99 of send → WebSocket delivery). A PASSIVE checkpoint takes no lock a writer needs: commits go on
    while it copies, and the sqlite3 module releases the GIL meanwhile.

    Under steady writes a passive checkpoint never catches up (commits land while it copies), and the WAL starts over
    only after one that did, so it would grow without end. When the WAL is past ``WAL_CATCH_UP_PAGES`` the writer
    therefore finishes the copy itself between two commits (``catch_up``): only the frames committed since the last
    pass, and no reader is ever waited for (a RESTART checkpoint would hold every writer behind a long read)."""

    def __init__(self, store: SQLiteStore):
        self._store = store
        self._due = threading.Event()
        self._stopping = threading.Event()
        self.catch_up_due_since: float | None = None
        self._thread = threading.Thread(target=self._loop, name="agora-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Called after each commit: there are frames to copy back."""
        self._due.set()

    def stop(self) -> None:
        self._stopping.set()
        self._due.set()
        self._thread.join()

    def catch_up_now(self, writes_waiting: bool) -> bool:
        """Whether the writer should call ``catch_up`` after this commit: due, and nobody queued or put off too long."""
        since = self.catch_up_due_since
        return since is not None and (not writes_waiting or time.monotonic() - since > CATCH_UP_WITHIN)

    def catch_up(self, writer: Any) -> None:
        """On the writer's own DBAPI connection, outside any transaction."""
        self.catch_up_due_since = None
        try:
            writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except Exception:  # noqa: BLE001 - the writer must go on; the checkpointer asks again
            log.exception("WAL catch-up checkpoint failed")

    def _loop(self) -> None:
        dbapi = self._store._engine.raw_connection()  # autocommit (isolation_level None): a checkpoint needs no transaction
        try:
            while not self._stopping.is_set():
                self._due.wait()
                self._due.clear()
                try:
                    _busy, wal_pages, _copied = dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if wal_pages > WAL_CATCH_UP_PAGES and self.catch_up_due_since is None:
                        self.catch_up_due_since = time.monotonic()
                except Exception:  # noqa: BLE001 - the next round tries again; the WAL holds everything meanwhile
                    log.exception("WAL checkpoint failed")
                self._stopping.wait(CHECKPOINT_PAUSE)
        finally:
            dbapi.close()


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        sqlite_synchronous: str = "NORMAL",
        sqlite_readers: int = 4,
        sqlite_max_batch: int = 512,
    ):
        self.path = path
        self.url_for_display = f"sqlite:///{path}"
        self._synchronous = sqlite_synchronous.upper()
        self._max_batch = sqlite_max_batch
        self._engine = create_engine(self.url_for_display, poolclass=NullPool, **ENGINE_JSON_OPTIONS)
        event.listen(self._engine, "connect", self._on_connect)
        event.listen(self._engine, "begin", begin_sqlite)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._full_logged_at = float("-inf")
        self._checkpointer: _Checkpointer | None = None
        self._readers = ThreadPoolExecutor(max_workers=sqlite_readers, thread_name_prefix="agora-sqlite-read")
        self._reader_local = threading.local()
        self._reader_conns: list[Connection] = []
        self._closed = False

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (needed for SAVEPOINT).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={self._synchronous}",
            "busy_timeout=10000",
            "foreign_keys=ON",
            "temp_store=MEMORY",
            "cache_size=-16384",  # 16 MiB: index pages of a busy hub stay in memory
            "wal_autocheckpoint=0",  # the checkpointer thread does it (see _Checkpointer)
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def _migrate() -> None:
            with self._engine.connect() as conn, conn.begin():
                migrate.upgrade(conn)

        await asyncio.to_thread(_migrate)
        self._checkpointer = _Checkpointer(self)
        self._writer = threading.Thread(target=self._write_loop, name="agora-sqlite-writer", daemon=True)
        self._writer.start()
        log.info("store ready", extra={"store": self.url_for_display})

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._engine.dispose()

    async def write(self, op: Op[T], *args: Any) -> T:
        if self._closed or self._writer is None:
            raise Unavailable("the store is not accepting writes (the hub is stopping)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(op, args, future, loop))
        return await self._timed_write(future)

    async def read(self, op: Op[T], *args: Any) -> T:
        if self._closed:
            raise Unavailable("the store is closed (the hub is stopping)")
        if getattr(op, "point_read", False):  # a WAL reader never waits for a lock: this cannot stall the loop
            return self._read_sync(op, args)
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read_sync, op, args)

    def _read_sync(self, op: Op[T], args: tuple[Any, ...]) -> T:
        """On this thread's own read connection (a reader thread's, or the event loop's for a point read)."""
        conn: Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = self._reader_local.conn = self._engine.connect()
            self._reader_conns.append(conn)
        try:
            return run_op(conn, op, args)
        finally:
            conn.rollback()  # end the read snapshot so the WAL can be checkpointed

    async def migration_revision(self) -> str | None:
        return await self.read(migrate.current_revision)

    # -- the writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        conn = self._engine.connect()
        checkpointer = self._checkpointer
        assert checkpointer is not None, "started before the writer"
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch: list[_Job] = [first]
                stop_after = False
                while len(batch) < self._max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop_after = True
                        break
                    batch.append(nxt)
                self._commit_batch(conn, batch)
                checkpointer.wake()
                if checkpointer.catch_up_now(writes_waiting=not self._queue.empty()):
                    checkpointer.catch_up(conn.connection.driver_connection)
                if stop_after:
                    return
        finally:
            conn.close()

    def _commit_batch(self, conn: Connection, batch: list[_Job]) -> None:
        metrics.STORE_GROUP_COMMIT.observe(len(batch))
        try:
            if not self._run_optimistically(conn, batch):
                self._run_isolated(conn, batch)
        except BaseException as exc:  # the COMMIT itself failed: nothing in the batch is durable
            full = is_storage_full(exc)
            if not full:
                log.exception("group commit failed")
            for job in batch:
                job.error = exc if full else Unavailable("the write could not be committed", details={"reason": str(exc)[:300]})
        for job in batch:
            if job.error is not None and is_storage_full(job.error):
                job.error = self._storage_full()  # (one each: an exception raised in several callers gathers tracebacks)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that event loop is gone; nobody is waiting
                loop.call_soon_threadsafe(_settle, jobs)

    def _storage_full(self) -> StorageFull:
        """The answer to a write the disk has no room for (SQLite rolled it back: nothing of it was kept); counted,
        and logged at most every ``FULL_LOG_EVERY`` seconds while the disk stays full."""
        free = shutil.disk_usage(self.path.parent).free
        metrics.STORAGE_FULL_REFUSALS.inc()
        now = time.monotonic()
        if now - self._full_logged_at >= FULL_LOG_EVERY:
            self._full_logged_at = now
            log.error("disk full: writes refused until space is freed", extra={"path": str(self.path.parent), "free_bytes": free})
        return StorageFull(
            "the hub's disk is full: this write was refused and nothing of it was kept; reads go on, and writes do "
            "again once space is freed",
            details={"reason": "storage_full", "free_bytes": free},
        )

    @staticmethod
    def _run_optimistically(conn: Connection, batch: list[_Job]) -> bool:
        """Fast path: the whole batch in one transaction, the rows its operations deferred (history, events) written
        together at its end. False (and rolled back) if any operation, or that write, fails."""
        with conn.begin() as tx:
            try:
                for job in batch:
                    job.result = run_op(conn, job.op, job.args, flush=False)
                flush_deferred(conn)
            except BaseException:  # noqa: BLE001 - retried one by one below
                tx.rollback()
                return False
        return True

    @staticmethod
    def _run_isolated(conn: Connection, batch: list[_Job]) -> None:
        """Slow path: each operation in its own SAVEPOINT, so a failure is handed to its caller only."""
        with conn.begin():
            for job in batch:
                job.result, job.error = None, None
                savepoint = conn.begin_nested()
                try:
                    job.result = run_op(conn, job.op, job.args)
                    savepoint.commit()
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                    savepoint.rollback()
                    job.error = exc
