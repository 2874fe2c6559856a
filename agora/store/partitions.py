"""PostgreSQL's time-partitioned tables: ``events`` is partitioned by the day of ``created_at`` (migration 0028), so
retention drops a past day whole (one catalog change: no row-by-row delete, no dead rows left for vacuum, no index
bloat) once the whole day is older than the policy's cutoff. SQLite has no partitions: its purge deletes rows in
small batches (``core/retention``), as PostgreSQL's does for what is left (the part of a day the cutoff falls in).

Each day's partition is made ahead of time (``ensure``, ``AHEAD`` days ahead: at store start and by every retention
run). A row dated outside every day's partition (a store copied from an old one, a clock far off) lands in the default
partition, from which the row-by-row purge takes it; a partition made later for a day the default holds rows of takes
them over. The first partition, made by the migration from the table as it was, holds every row before its day too.

Creating or dropping a partition locks the whole table for a moment: both wait at most ``LOCK_TIMEOUT`` for it (a
long read of the table would otherwise queue every append behind them) and, when they do not get it, are left to the
next run. Replicas run this at once: a transaction-scoped advisory lock lets one do it while the others skip it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Connection, func, literal, select, text
from sqlalchemy.exc import DBAPIError

DAY = timedelta(days=1)
AHEAD = 3  # days after today that have their partition already
LOCK_TIMEOUT = "200ms"
TABLES = {"events": "created_at"}  # each partitioned table and the time column it is partitioned by
_DEFAULT = "default"
_LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class Partition:
    name: str
    day: date | None  # the day its rows are of (the first partition: and every earlier one); None: the default

    @property
    def ends(self) -> datetime | None:
        """Where its range ends (exclusive); None for the default partition."""
        return None if self.day is None else start_of(self.day + DAY)


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def partition_name(table: str, day: date | None) -> str:
    return f"{table}_{_DEFAULT if day is None else day.strftime('%Y%m%d')}"


def is_partition(name: str) -> bool:
    """Whether a table name is a partition of a partitioned table (reflection sees them as tables of their own)."""
    table, _, suffix = name.rpartition("_")
    return table in TABLES and (suffix == _DEFAULT or (len(suffix) == 8 and suffix.isdigit()))


def bound(at: datetime) -> str:
    """A partition bound: DDL takes literals only (the values are the hub's own dates, never input)."""
    return f"'{at.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')}+00'"


def partitions(conn: Connection, table: str) -> list[Partition]:
    """The table's partitions, oldest day first (the default last)."""
    rows = conn.execute(
        text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"),
        {"t": table},
    ).scalars()
    found = []
    for name in rows:
        suffix = name.rpartition("_")[2]
        found.append(Partition(name, None if suffix == _DEFAULT else datetime.strptime(suffix, "%Y%m%d").date()))
    return sorted(found, key=lambda p: (p.day is None, p.day))


def partitioned(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def ensure(conn: Connection, now: datetime) -> list[str]:
    """Make the partitions of today and the ``AHEAD`` days after it that do not exist yet (rows of their days the
    default partition holds move into them); the names made. Nothing on SQLite, or while another replica does it."""
    if not partitioned(conn) or not _exclusive(conn):
        return []
    made = []
    for table, column in TABLES.items():
        if not _is_partitioned(conn, table):  # a schema before migration 0028
            continue
        have = {p.day for p in partitions(conn, table)}
        first = min((d for d in have if d is not None), default=None)
        for offset in range(AHEAD + 1):
            day = now.astimezone(timezone.utc).date() + offset * DAY
            if day in have or (first is not None and day < first):  # the first partition holds every earlier day
                continue
            if not _attach(conn, table, column, day):
                return made
            made.append(partition_name(table, day))
    return made


def _attach(conn: Connection, table: str, column: str, day: date) -> bool:
    """A day's partition, made beside the table, filled with the default partition's rows of that day and attached
    (which locks the table more lightly than ``CREATE TABLE … PARTITION OF``); False if the lock did not come in time."""
    name, start, end = partition_name(table, day), start_of(day), start_of(day + DAY)
    default = partition_name(table, None)
    in_day = f"{column} >= {bound(start)} AND {column} < {bound(end)}"

    def make() -> None:
        conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table})")
        conn.exec_driver_sql(f"WITH moved AS (DELETE FROM {default} WHERE {in_day} RETURNING *) INSERT INTO {name} SELECT * FROM moved")
        conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({bound(start)}) TO ({bound(end)})")

    return _within_lock_timeout(conn, make)


def droppable(conn: Connection, table: str, before: datetime) -> list[Partition]:
    """The table's day partitions whose every row is older than ``before``, oldest first (PostgreSQL)."""
    return [p for p in partitions(conn, table) if p.ends is not None and p.ends <= before]


class Busy(Exception):
    """Another replica is at partition work, or the table's lock did not come within ``LOCK_TIMEOUT``."""


def drop_oldest(conn: Connection, table: str, before: datetime) -> int | None:
    """Drop the oldest day partition of ``table`` older than ``before`` whole: the rows it held (``_rows_in``); None
    when no partition is that old. Raises ``Busy`` (nothing done) when it has to wait."""
    due = droppable(conn, table, before)
    if not due:
        return None
    if not _exclusive(conn):
        raise Busy(table)
    oldest = due[0]
    rows = _rows_in(conn, oldest.name)
    if not _within_lock_timeout(conn, lambda: conn.exec_driver_sql(f"DROP TABLE {oldest.name}")):
        raise Busy(table)
    return rows


def _rows_in(conn: Connection, name: str) -> int:
    """The rows a partition holds: as the statistics count them once the table was analysed (counting a day of events
    exactly would read all of it), else counted."""
    estimate = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": name}).scalar()
    if estimate is not None and estimate >= 0:
        return round(estimate)
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())


def _is_partitioned(conn: Connection, table: str) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid = to_regclass(:t))"), {"t": table}).scalar())


def _exclusive(conn: Connection) -> bool:
    """This transaction's turn at partition work; False while another replica's transaction has it."""
    key = func.hashtextextended(literal("agora:partitions"), 0)
    return bool(conn.execute(select(func.pg_try_advisory_xact_lock(key))).scalar_one())


def _within_lock_timeout(conn: Connection, ddl: Callable[[], object]) -> bool:
    """Run ``ddl`` in a savepoint, waiting at most ``LOCK_TIMEOUT`` for each lock; False (and nothing done) if a lock
    did not come in time."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    try:
        with conn.begin_nested():
            ddl()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        return False
    finally:
        conn.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
    return True
