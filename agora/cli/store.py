"""``agora store copy`` and ``agora store checksum``, and what the store commands share: a Rich progress bar, errors as
one line, and summaries as tables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from agora.maintenance.defaults import DEFAULT_BATCH

from agora.config import Settings

from .output import EXIT_UNAVAILABLE, console, emit_json, err_console, fail, friendly_errors, table
from .serve import (
    A2aRetention,
    DatabaseUrl,
    DataDir,
    EventRetention,
    MessageRetention,
    ScheduleRetention,
    TaskRetention,
    UsageRetention,
    WorkflowRetention,
)

# The store commands import agora.maintenance when they run: every other command of the CLI starts without it.
if TYPE_CHECKING:
    from agora.maintenance.checksums import StoreSummary
    from agora.maintenance.progress import Progress as ProgressSink

app = typer.Typer(
    help="Whole-store operations: copy a store to another engine, checksum one, apply the retention policies.", no_args_is_help=True
)

BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, max=100_000, envvar="AGORA_STORE_BATCH_SIZE", help="Rows read and written at a time.")
]
Force = Annotated[bool, typer.Option("--force", help="Replace what the target holds (by default a target with data is refused).")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


class RichProgress:
    """``agora.maintenance.progress.Progress`` as one Rich bar: each phase (a table, pages, bytes) restarts it."""

    def __init__(self, bar: Progress):
        self._bar = bar
        self._task: TaskID | None = None

    def phase(self, label: str, total: int | None) -> None:
        if self._task is None:
            self._task = self._bar.add_task(label, total=total)
        else:
            self._bar.reset(self._task, total=total, description=label)

    def advance(self, done: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, done)


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[ProgressSink]:
    from agora.maintenance.progress import SILENT

    if not enabled or not err_console.is_terminal:  # a bar needs a terminal to redraw in
        yield SILENT
        return
    columns = (TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        yield RichProgress(bar)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Hub-style errors as one line (``friendly_errors``), and a database that cannot be reached or used as one too."""
    import sqlite3

    from asyncpg import InterfaceError, PostgresError
    from sqlalchemy.exc import DBAPIError

    with friendly_errors():
        try:
            yield
        except (DBAPIError, sqlite3.Error, PostgresError, InterfaceError, OSError) as exc:
            reason = getattr(exc, "orig", None) or exc
            err_console.print(f"[red]store unavailable:[/red] {escape(f'{type(reason).__name__}: {reason}')}", highlight=False)
            raise typer.Exit(EXIT_UNAVAILABLE) from None


def show_summary(summary: StoreSummary, title: str) -> None:
    rows = [[name, f"{t.rows:,}", t.digest[:16] + "…"] for name, t in summary.tables.items()]
    table(title, ["table", "rows", "digest"], rows)
    sequences = ", ".join(f"{name} {value:,}" for name, value in summary.sequences.items())
    console.print(f"schema revision {summary.revision}; sequences: {sequences}", highlight=False)


def summary_json(summary: StoreSummary, **extra: Any) -> dict[str, Any]:
    return {**extra, **summary.to_json()}


@app.command("copy")
def copy(
    from_: Annotated[
        str, typer.Option("--from", envvar="AGORA_COPY_FROM", help="The store to copy: sqlite:///path/agora.db or postgresql://…")
    ],
    to: Annotated[str, typer.Option("--to", envvar="AGORA_COPY_TO", help="The store to fill: sqlite:///path/agora.db or postgresql://…")],
    force: Force = False,
    batch_size: BatchSize = DEFAULT_BATCH,
    json: JsonOutput = False,
) -> None:
    """Copy every table of a store into another (SQLite ⇄ PostgreSQL), then verify row counts and checksums.

    The source is read in one snapshot (stop its hub first, or it is copied as it was when the copy began); the target
    is filled in one transaction committed only once it reads back equal, so a failed copy leaves it as it was. A hub
    started on the target goes on where the source's stopped: inboxes, leases, workflows, sequences."""
    from agora.maintenance.copy import copy_store
    from agora.maintenance.endpoints import StoreLocation

    with store_errors():
        source, target = StoreLocation.parse(from_), StoreLocation.parse(to)
        with progress_bar(not json) as progress:
            report = asyncio.run(copy_store(source, target, force=force, batch=batch_size, progress=progress))
    rate = report.rows / report.seconds if report.seconds else 0.0
    if json:
        emit_json(summary_json(report.summary, source=source.display, target=target.display, seconds=round(report.seconds, 3), rows_per_second=round(rate)))
        return
    console.print(
        f"copied {report.rows:,} rows in {report.seconds:.1f} s ({rate:,.0f} rows/s) from {source.display} to "
        f"{target.display}; verified: counts and checksums of {len(report.summary.tables)} tables are equal",
        highlight=False,
    )


@app.command("checksum")
def checksum(
    store: Annotated[
        str | None,
        typer.Argument(help="sqlite:///…, postgresql://…, or a backup file; default: the store of --data-dir / --database-url."),
    ] = None,
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    batch_size: BatchSize = DEFAULT_BATCH,
    json: JsonOutput = False,
) -> None:
    """Row counts and engine-independent digests of every table: equal summaries, equal stores (whatever the engines)."""
    with store_errors():
        with progress_bar(not json) as progress:
            summary, where = asyncio.run(_checksum(store, data_dir, database_url, batch_size, progress))
    if json:
        emit_json(summary_json(summary, store=where))
    else:
        show_summary(summary, where)


async def _checksum(store: str | None, data_dir: Path, database_url: str | None, batch: int, progress: ProgressSink) -> tuple[StoreSummary, str]:
    from agora.maintenance.backup import backup_format
    from agora.maintenance.copy import checksum_store
    from agora.maintenance.endpoints import StoreLocation
    from agora.maintenance.logical import LogicalSource

    if store is not None and "://" not in store:  # a backup file
        path = Path(store)
        if backup_format(path) == "logical":
            return LogicalSource(path, batch).pump(None, progress), str(path)
        location = StoreLocation.sqlite(path)
    else:
        location = StoreLocation.parse(store) if store else StoreLocation.of(database_url, data_dir)
    return await checksum_store(location, batch=batch, progress=progress), location.display


def _kept_for(seconds: float | None) -> str:
    if seconds is None:
        return "forever"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


@app.command("retention")
def retention(
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    message_retention: MessageRetention = Settings.message_retention_seconds,
    event_retention: EventRetention = Settings.event_retention_seconds,
    a2a_retention: A2aRetention = Settings.a2a_retention_seconds,
    task_retention: TaskRetention = Settings.task_retention_seconds,
    workflow_retention: WorkflowRetention = Settings.workflow_retention_seconds,
    usage_retention: UsageRetention = Settings.usage_retention_seconds,
    schedule_retention: ScheduleRetention = Settings.schedule_retention_seconds,
    apply: Annotated[
        bool, typer.Option("--apply", help="Remove it now, a small batch at a time, as a running hub's retention job does every minute.")
    ] = False,
    json: JsonOutput = False,
) -> None:
    """Show what the retention policies would remove now, per kind of record; --apply removes it.

    The policies are `agora serve`'s (the same flags and AGORA_* variables), so with the hub's environment this shows
    what its next retention run takes. The database must be at this version's schema (`agora db upgrade`)."""
    from agora.core import retention as retention_service
    from agora.core.clock import Clock
    from agora.store import open_store
    from agora.store.ops.retention import KINDS

    from .db import CONNECT_TIMEOUT, read_status

    settings = Settings(
        message_retention_seconds=message_retention, event_retention_seconds=event_retention, a2a_retention_seconds=a2a_retention,
        task_retention_seconds=task_retention, workflow_retention_seconds=workflow_retention, usage_retention_seconds=usage_retention,
        schedule_retention_seconds=schedule_retention,
    )  # fmt: skip
    kept = retention_service.policies(settings)
    schema = read_status(database_url, data_dir, CONNECT_TIMEOUT)[1]
    if not schema.state.serves:
        raise fail(f"the database schema is at revision {schema.revision or 'base'}, not this version's {schema.head}: run `agora db upgrade` first")

    async def run(progress: ProgressSink) -> tuple[dict[str, int], dict[str, int]]:
        store = open_store(database_url, data_dir, pg_statement_timeout=0)  # a count over millions of rows takes what it takes
        await store.start()
        try:
            now = Clock().now()
            found = await retention_service.preview(store, kept, now)
            if not apply:
                return found, {}
            current = [""]

            def advanced(kind: str, rows: int) -> None:
                if kind != current[0]:
                    current[0] = kind
                    progress.phase(f"purging {kind}", found.get(kind))
                progress.advance(rows)

            removed = await retention_service.purge(store, kept, now, advanced)
            return found, removed
        finally:
            await store.close()

    with store_errors(), progress_bar(apply and not json) as progress:
        found, removed = asyncio.run(run(progress))
    if json:
        policies = {k: (v.total_seconds() if v is not None else None) for k, v in kept.items()}
        emit_json({"policies": policies, "would_remove": found, **({"removed": removed} if apply else {})})
        return
    rows = []
    for name, keep in kept.items():
        seconds = keep.total_seconds() if keep is not None else None
        rows.append([name, _kept_for(seconds), KINDS[name].what, f"{found[name]:,}" if name in found else "—",
                     *([f"{removed.get(name, 0):,}"] if apply else [])])  # fmt: skip
    table("retention", ["kind", "kept for", "what goes", "older than that", *(["removed"] if apply else [])], rows)
