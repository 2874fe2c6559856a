"""Move a whole store: read a source table by table in batches, write a target, verify, and only then commit.

A *source* (a store's snapshot, or a logical backup file) pumps every table of the schema, in foreign-key order, into
a *sink* (a target store, or a logical backup file) and returns the summary of what it read: row counts, digests and
the sequences' high-water marks (``checksums.StoreSummary``).

A target is filled in one transaction: it must hold nothing (unless ``force``), is migrated to this Agora's schema,
emptied, loaded without its secondary indexes (each is built once, at the end), its sequences set to go on where the
source's stopped, and read back: the commit happens only if the read-back summary equals the source's. A copy that
fails or is interrupted leaves the target as it was.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError

from agora.store import migrate
from agora.store.migrate import SchemaState
from agora_sdk.errors import AgoraError, FailedPrecondition

from .checksums import StoreSummary, TableDigest, TableSum
from .defaults import DEFAULT_BATCH
from .endpoints import TABLES, Endpoint, Row, StoreLocation, kept_sequences, open_endpoint, run, serial_tables
from .progress import SILENT, Progress

# Rows the first migration writes itself: a store that holds only these holds no data.
SEEDED_ROWS = {"tenants": "tenant_id <> 'default'"}


class VerificationFailed(AgoraError):
    code = "verification_failed"


class Sink(Protocol):
    """Where a source's rows go: a target store or a backup file."""

    def begin_table(self, table: Table, total: int) -> None: ...

    def rows(self, table: Table, rows: list[Row]) -> None: ...

    def end_table(self, table: Table, result: TableSum) -> None: ...


class Source(Protocol):
    revision: str

    def pump(self, sink: Sink | None, progress: Progress) -> StoreSummary:
        """Every table's rows into ``sink`` (None: only read them); the summary of what was read."""
        ...


def require_current(endpoint: Endpoint) -> str:
    """The store's schema revision, which must be this Agora's (copies are made between equal schemas)."""
    status = migrate.status_of(endpoint.revision())
    where = endpoint.location.display
    if status.state is SchemaState.EMPTY:
        raise FailedPrecondition(f"{where} holds no Agora store (no schema revision)")
    if status.state is not SchemaState.CURRENT:
        upgrade = "`agora db upgrade` upgrades it" if status.state is SchemaState.BEHIND else "a newer Agora made it"
        raise FailedPrecondition(
            f"{where} is at schema revision {status.revision} and this Agora at {status.head} ({upgrade}): "
            "the two must be at the same version",
            details=status.as_dict(),
        )
    missing = sorted({t.name for t in TABLES} - endpoint.tables_present())
    if missing:
        raise FailedPrecondition(f"{where} lacks tables of its schema revision: {', '.join(missing)}")
    return status.head


class StoreSource:
    """A store's snapshot (``open_endpoint(…, snapshot=True)``), read table by table."""

    def __init__(self, endpoint: Endpoint, batch: int = DEFAULT_BATCH):
        self.endpoint = endpoint
        self.batch = batch
        self.revision = require_current(endpoint)

    def pump(self, sink: Sink | None, progress: Progress) -> StoreSummary:
        summary = StoreSummary(self.revision)
        for table in TABLES:
            total = self.endpoint.count(table)
            progress.phase(table.name, total)
            digest = TableDigest(table)
            if sink is not None:
                sink.begin_table(table, total)
            for rows in self.endpoint.read(table, self.batch):
                digest.add(rows)
                if sink is not None:
                    sink.rows(table, rows)
                progress.advance(len(rows))
            summary.tables[table.name] = digest.result()
            if sink is not None:
                sink.end_table(table, summary.tables[table.name])
        summary.sequences = {t.name: self.endpoint.high_water(t) for t in kept_sequences()}
        return summary


class TargetSink:
    """Writes into a target store being filled (``prepare_target`` first, ``finish_target`` after)."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint

    def begin_table(self, table: Table, total: int) -> None:
        return None

    def rows(self, table: Table, rows: list[Row]) -> None:
        try:
            self.endpoint.write(table, rows)
        except (DBAPIError, sqlite3.Error, asyncpg.PostgresError) as exc:  # e.g. JSON that JSONB cannot hold
            reason = str(getattr(exc, "orig", None) or exc).replace("\n", " ")
            raise FailedPrecondition(
                f"{self.endpoint.location.display} refused rows of {table.name}: {reason}; nothing was written",
                details={"table": str(table.name)},
            ) from None

    def end_table(self, table: Table, result: TableSum) -> None:
        return None


def data_rows(endpoint: Endpoint) -> dict[str, int]:
    """Rows per table of a store that would be lost by filling it (none in a new database, or a migrated one)."""
    present = endpoint.tables_present()
    counts = {}
    for table in TABLES:
        if table.name not in present:
            continue
        where = SEEDED_ROWS.get(table.name)
        if where is None:
            n = endpoint.count(table)
        else:
            n = int(endpoint.conn.execute(text(f"SELECT count(*) FROM {table.name} WHERE {where}")).scalar_one())
        if n:
            counts[table.name] = n
    return counts


def prepare_target(endpoint: Endpoint, force: bool) -> list[str]:
    """Migrate the target to this Agora's schema and empty it; refuse one that holds data unless ``force``. Its
    secondary indexes are dropped for the load: the statements that make them again are returned."""
    held = data_rows(endpoint)
    if held and not force:
        biggest = ", ".join(f"{name} ({n:,})" for name, n in sorted(held.items(), key=lambda kv: -kv[1])[:5])
        raise FailedPrecondition(
            f"{endpoint.location.display} already holds data ({sum(held.values()):,} rows: {biggest}); "
            "pass --force to replace it",
            details={"rows": held},
        )
    status = migrate.status_of(endpoint.revision())
    if status.state is SchemaState.AHEAD:
        raise FailedPrecondition(
            f"{endpoint.location.display} is at schema revision {status.revision}, which a newer Agora made: "
            "fill it with that version", details=status.as_dict(),
        )  # fmt: skip
    endpoint.upgrade()
    endpoint.clear(TABLES)
    return endpoint.drop_indexes(TABLES)


def finish_target(
    endpoint: Endpoint, expected: StoreSummary, indexes: list[str], progress: Progress, batch: int = DEFAULT_BATCH
) -> StoreSummary:
    """Make the indexes again, set the sequences, read the target back, and commit if it holds exactly what the source
    did."""
    progress.phase("indexes", len(indexes))
    for statement in indexes:
        endpoint.conn.exec_driver_sql(statement)
        progress.advance(1)
    for table in serial_tables():
        # The kept sequences go on where the source's stopped; the others from the largest key, as SQLite's do.
        value = expected.sequences.get(table.name)
        endpoint.set_high_water(table, endpoint.max_key(table) if value is None else value)
    progress.phase("verifying", None)
    actual = StoreSource(endpoint, batch).pump(None, progress)
    differences = expected.differences(actual)
    if differences:
        raise VerificationFailed(
            f"{endpoint.location.display} does not hold what was copied; nothing was committed: {'; '.join(differences[:5])}",
            details={"differences": differences},
        )
    endpoint.conn.commit()
    return actual


@dataclass(frozen=True)
class CopyReport:
    summary: StoreSummary
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.summary.tables.values())


def fill(target: Endpoint, source: Source, force: bool, progress: Progress, batch: int = DEFAULT_BATCH) -> StoreSummary:
    """Replace the target's contents with the source's, verified, in one transaction (see the module's docstring)."""
    indexes = prepare_target(target, force)
    expected = source.pump(TargetSink(target), progress)
    return finish_target(target, expected, indexes, progress, batch)


async def copy_store(
    source: StoreLocation, target: StoreLocation, *, force: bool = False, batch: int = DEFAULT_BATCH, progress: Progress = SILENT
) -> CopyReport:
    """``agora store copy``: the source's snapshot into the target, verified by row counts and checksums."""
    if source == target:
        raise FailedPrecondition("the source and the target are the same store")
    started = time.perf_counter()
    async with open_endpoint(source, snapshot=True) as src, open_endpoint(target, replace=True) as dst:
        summary = await run(lambda: fill(dst, StoreSource(src, batch), force, progress, batch))
    return CopyReport(summary, time.perf_counter() - started)


async def checksum_store(location: StoreLocation, *, batch: int = DEFAULT_BATCH, progress: Progress = SILENT) -> StoreSummary:
    """``agora store checksum``: what a store holds, engine-independently (compare two stores' summaries)."""
    async with open_endpoint(location, snapshot=True) as endpoint:
        return await run(lambda: StoreSource(endpoint, batch).pump(None, progress))
