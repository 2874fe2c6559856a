"""``agora backup`` and ``agora restore``: a consistent copy of a store while its hub serves, and back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from agora.maintenance.defaults import DEFAULT_BATCH, DEFAULT_PAGES_PER_STEP

from .output import console, emit_json
from .serve import DatabaseUrl, DataDir
from .store import BatchSize, Force, JsonOutput, progress_bar, store_errors, summary_json

app = typer.Typer()

BACKUP_EPILOG = (
    "A PostgreSQL store can also be backed up with PostgreSQL's own tools: "
    "pg_dump --format=custom --file agora.dump postgresql://…/agora, restored with "
    "pg_restore --clean --if-exists --dbname postgresql://…/agora agora.dump (same PostgreSQL major version or newer)."
)


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


@app.command("backup", epilog=BACKUP_EPILOG)
def backup(
    output: Annotated[Path, typer.Argument(help="The backup file to write (it must not exist, unless --force).")],
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            envvar="AGORA_BACKUP_FORMAT",
            help="sqlite: a copy of the SQLite file a hub starts from (a SQLite store's default); "
            "logical: engine-independent rows, restorable into SQLite or PostgreSQL (a PostgreSQL store's only one).",
        ),
    ] = None,
    pages_per_step: Annotated[
        int,
        typer.Option(min=1, envvar="AGORA_BACKUP_PAGES_PER_STEP", help="SQLite pages copied per step of the backup (4 KiB each)."),
    ] = DEFAULT_PAGES_PER_STEP,
    batch_size: BatchSize = DEFAULT_BATCH,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing backup file.")] = False,
    json: JsonOutput = False,
) -> None:
    """Back the store up while its hub keeps serving: one consistent instant of it, written beside OUTPUT and renamed
    into place when complete."""
    from agora.maintenance.backup import backup_store
    from agora.maintenance.endpoints import StoreLocation

    location = StoreLocation.of(database_url, data_dir)
    with store_errors():
        with progress_bar(not json) as progress:
            report = asyncio.run(
                backup_store(location, output, fmt=fmt, force=force, pages_per_step=pages_per_step, batch=batch_size, progress=progress)
            )
    if json:
        extra = {"backup": str(report.path), "format": report.format, "bytes": report.bytes, "seconds": round(report.seconds, 3)}
        emit_json(summary_json(report.summary, **extra) if report.summary else extra)
        return
    rows = f", {sum(t.rows for t in report.summary.tables.values()):,} rows" if report.summary else ""
    console.print(
        f"backed up {location.display} to {report.path} ({report.format}, {_mib(report.bytes)}{rows}) in {report.seconds:.1f} s",
        highlight=False,
    )


@app.command("restore")
def restore(
    backup_file: Annotated[Path, typer.Argument(metavar="BACKUP", help="A file `agora backup` wrote (either format).")],
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    force: Force = False,
    batch_size: BatchSize = DEFAULT_BATCH,
    json: JsonOutput = False,
) -> None:
    """Restore a backup into the store of --data-dir (a SQLite backup becomes its database file) or --database-url
    (filled and verified like `agora store copy`). A store that holds data is refused unless --force, one in use (a
    hub running on it) always: stop the hub first."""
    from agora.maintenance.backup import restore_store
    from agora.maintenance.endpoints import StoreLocation

    target = StoreLocation.of(database_url, data_dir)
    with store_errors():
        with progress_bar(not json) as progress:
            report = asyncio.run(restore_store(backup_file, target, force=force, batch=batch_size, progress=progress))
    if json:
        extra = {"backup": str(backup_file), "target": target.display, "format": report.format, "revision": report.revision, "seconds": round(report.seconds, 3)}
        emit_json(summary_json(report.summary, **extra) if report.summary else extra)
        return
    verified = (
        f"; verified: counts and checksums of {len(report.summary.tables)} tables" if report.summary else f" (schema revision {report.revision})"
    )
    console.print(f"restored {backup_file} into {target.display} in {report.seconds:.1f} s{verified}", highlight=False)
