"""``agora backup`` and ``agora restore``.

Two kinds of backup, both taken online (the hub keeps serving) and consistent (one instant of the store):

- **sqlite** (a SQLite store's default): SQLite's backup API copies the database file page by page, a few pages per
  step for the progress bar, all inside one read transaction on the source. In WAL mode the hub's writers never wait
  for that reader and the reader never sees their commits, so the copy is the store as it was when the backup began
  (a backup without that transaction restarts whenever the hub commits, and never ends under load). The result is a
  plain SQLite file a hub starts from as it is.
- **logical** (``logical.py``): every table as engine-independent rows, read in one snapshot transaction
  (PostgreSQL: REPEATABLE READ, READ ONLY). The only kind for a PostgreSQL store besides ``pg_dump`` (see docs/operating/backup.md),
  and restorable into either engine.

A backup is written next to its destination and renamed into place when complete, so a file with the backup's name is
always a whole backup. ``restore`` puts a SQLite backup into a data directory as the file itself, and anything else
into a store through the verified fill of ``copy.fill``; it refuses a store that holds data unless forced, and a
store in use whatever it is told.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agora.store import migrate
from agora.store.migrate import SchemaState
from agora_sdk.errors import FailedPrecondition, InvalidArgument

from .checksums import StoreSummary
from .copy import StoreSource, fill
from .defaults import DEFAULT_BATCH, DEFAULT_PAGES_PER_STEP
from .endpoints import StoreLocation, leave_wal, open_endpoint, run
from .logical import GZIP_MAGIC, LogicalSource, LogicalWriter, open_for_writing
from .progress import SILENT, Progress

SQLITE_MAGIC = b"SQLite format 3\x00"
COPY_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class BackupReport:
    path: Path
    format: str
    bytes: int
    seconds: float
    summary: StoreSummary | None = None  # a logical backup's counts and digests


@dataclass(frozen=True)
class RestoreReport:
    target: StoreLocation
    format: str
    seconds: float
    revision: str | None
    summary: StoreSummary | None = None  # what a verified fill read back


@contextlib.contextmanager
def _written_in_place(output: Path, force: bool) -> Iterator[Path]:
    """A temporary path next to ``output``, renamed to it if the body succeeds and removed otherwise."""
    if output.exists() and not force:
        raise FailedPrecondition(f"{output} exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        raise InvalidArgument(f"no directory {output.parent} to write the backup in")
    partial = output.with_name(output.name + ".partial")
    try:
        yield partial
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def sqlite_backup(database: Path, output: Path, pages_per_step: int, progress: Progress) -> None:
    """Copy a live SQLite store (see the module's docstring) into ``output``, a new file."""
    if not database.is_file():
        raise InvalidArgument(f"no SQLite database at {database}")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    target = sqlite3.connect(output, isolation_level=None)
    try:
        source.execute("PRAGMA busy_timeout=10000")
        source.execute("BEGIN")
        pages = source.execute("PRAGMA page_count").fetchone()[0]  # the first read: the snapshot starts here
        progress.phase("pages", pages)
        done = 0

        def step(_status: int, remaining: int, total: int) -> None:
            nonlocal done
            progress.advance(total - remaining - done)
            done = total - remaining

        source.backup(target, pages=pages_per_step, progress=step, sleep=0.01)
        source.execute("COMMIT")
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file; a hub turns WAL back on at start
        verdict = target.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise FailedPrecondition(f"the backup of {database} failed its integrity check: {verdict}")
    finally:
        target.close()
        source.close()


async def backup_store(
    location: StoreLocation,
    output: Path,
    *,
    fmt: str | None = None,
    force: bool = False,
    pages_per_step: int = DEFAULT_PAGES_PER_STEP,
    batch: int = DEFAULT_BATCH,
    progress: Progress = SILENT,
) -> BackupReport:
    """``agora backup``: a consistent copy of the store while its hub serves. ``fmt``: sqlite (the default for a SQLite
    store) or logical (the only one for PostgreSQL)."""
    fmt = fmt or ("sqlite" if location.dialect == "sqlite" else "logical")
    if fmt not in ("sqlite", "logical"):
        raise InvalidArgument(f"unknown backup format {fmt!r} (sqlite or logical)")
    if fmt == "sqlite" and location.dialect != "sqlite":
        raise InvalidArgument("a PostgreSQL store is backed up with --format logical, or with pg_dump (docs/operating/backup.md)")
    started = time.perf_counter()
    summary = None
    with _written_in_place(output, force) as partial:
        if fmt == "sqlite":
            sqlite_backup(location.path, partial, pages_per_step, progress)
        else:
            summary = await _logical_backup(location, partial, batch, progress)
    return BackupReport(output, fmt, output.stat().st_size, time.perf_counter() - started, summary)


async def _logical_backup(location: StoreLocation, output: Path, batch: int, progress: Progress) -> StoreSummary:
    async with open_endpoint(location, snapshot=True) as endpoint:

        def work() -> StoreSummary:
            source = StoreSource(endpoint, batch)
            with open_for_writing(output) as out:
                writer = LogicalWriter(out, source.revision, endpoint.dialect)
                summary = source.pump(writer, progress)
                writer.finish(summary)
            return summary

        return await run(work)


def backup_format(path: Path) -> str:
    """sqlite or logical, from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from None
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(GZIP_MAGIC):
        return "logical"
    raise InvalidArgument(f"{path} is not an Agora backup (neither a SQLite database nor a logical backup)")


async def restore_store(
    backup: Path, target: StoreLocation, *, force: bool = False, batch: int = DEFAULT_BATCH, progress: Progress = SILENT
) -> RestoreReport:
    """``agora restore``: the backup into the target store (see the module's docstring)."""
    fmt = backup_format(backup)
    started = time.perf_counter()
    if fmt == "sqlite" and target.dialect == "sqlite":
        revision = _place_sqlite_file(backup, target.path, force, progress)
        return RestoreReport(target, fmt, time.perf_counter() - started, revision)
    async with open_endpoint(target, replace=True) as endpoint:
        if fmt == "logical":
            summary = await run(lambda: fill(endpoint, LogicalSource(backup, batch), force, progress, batch))
        else:
            async with open_endpoint(StoreLocation.sqlite(backup), snapshot=True) as source:
                summary = await run(lambda: fill(endpoint, StoreSource(source, batch), force, progress, batch))
    return RestoreReport(target, fmt, time.perf_counter() - started, summary.revision, summary)


def _sqlite_revision(database: Path) -> str:
    """The schema revision of a SQLite backup, which this Agora must know (an older one the hub upgrades at start)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise FailedPrecondition(f"{database} fails SQLite's integrity check")
        try:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            revision = None
    finally:
        conn.close()
    status = migrate.status_of(revision[0] if revision else None)
    if status.state is SchemaState.EMPTY:
        raise InvalidArgument(f"{database} holds no Agora store (no schema revision)")
    if status.state is SchemaState.AHEAD:
        raise FailedPrecondition(f"{database} is at schema revision {status.revision}, which a newer Agora made")
    return str(status.revision)


def _place_sqlite_file(backup: Path, database: Path, force: bool, progress: Progress) -> str:
    """The backup file becomes the store's database file: copied beside it, then renamed over it."""
    revision = _sqlite_revision(backup)
    if database.exists() and database.stat().st_size > 0:
        if not force:
            raise FailedPrecondition(f"{database} exists; pass --force to replace it with the backup")
        _require_unused(database)
    database.parent.mkdir(parents=True, exist_ok=True)
    with _written_in_place(database, force=True) as partial, open(backup, "rb") as src, open(partial, "wb") as dst:
        progress.phase("bytes", backup.stat().st_size)
        while chunk := src.read(COPY_CHUNK):
            dst.write(chunk)
            progress.advance(len(chunk))
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)  # the old file's, emptied by leave_wal: they belong to no database now
    return revision


def _require_unused(database: Path) -> None:
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        leave_wal(conn, database)
    finally:
        conn.close()
