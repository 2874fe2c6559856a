"""``agora db``: where the schema stands, the SQL an upgrade would run, and the upgrade itself.

For operators who migrate as a step of their own (a Kubernetes Job, a release script) and start the hub with
``agora serve --no-migrate``. Each command touches the database once and answers with an exit code scripts can use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from agora.store import Store, migrate, open_store
from agora.store.migrate import SchemaStatus
from agora_sdk.errors import InvalidArgument, Unavailable

from .output import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_UNAVAILABLE, emit_json, err_console, fail
from .serve import DatabaseUrl, DataDir

EXIT_CODES = (
    "Exit codes: 0 done, or the schema serves this version (at its head, or ahead: migrated by a newer release); "
    "1 migrations are pending; 2 bad input; 3 the database is unreachable."
)

CONNECT_TIMEOUT = 10.0  # seconds the database has to answer (also `agora serve --no-migrate`'s check)
ConnectTimeout = Annotated[
    float,
    typer.Option(envvar="AGORA_DB_CONNECT_TIMEOUT", min=0.1, help="Seconds to wait for the database to answer."),
]

db_app = typer.Typer(
    help="The database schema: where it stands, the SQL an upgrade would run, and the upgrade.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
)


@contextlib.contextmanager
def _database_errors(store: Store | None, timeout: float) -> Iterator[None]:
    """A bad URL or an unreachable database becomes one line and an exit code, never a traceback."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    where = f" at {store.url_for_display}" if store is not None else ""
    try:
        yield
    except (InvalidArgument, ArgumentError, ValueError) as exc:
        raise fail(f"bad --database-url: {getattr(exc, 'message', exc)}", EXIT_BAD_INPUT) from None
    except TimeoutError:
        raise fail(f"the database{where} did not answer within {timeout:g} s", EXIT_UNAVAILABLE) from None
    except (OSError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise fail(f"cannot reach the database{where}: {reason}", EXIT_UNAVAILABLE) from None
    except Unavailable as exc:  # the store's own word for a database it could not reach after its retries
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        reason = str(getattr(cause, "orig", None) or cause).splitlines()[0]
        raise fail(f"cannot reach the database{where}: {reason}", EXIT_UNAVAILABLE) from None
    except Exception as exc:  # noqa: BLE001 - asyncpg's own errors (wrong password, no such database) share no base
        if type(exc).__module__.startswith("asyncpg"):
            raise fail(f"cannot reach the database{where}: {exc}", EXIT_UNAVAILABLE) from None
        raise


def _open(database_url: str | None, data_dir: Path) -> Store:
    with _database_errors(None, 0):
        return open_store(database_url or None, data_dir, pg_statement_timeout=0)  # an operator's command: no limit


def _missing_sqlite_file(store: Store) -> bool:
    path: Path | None = getattr(store, "path", None)  # SQLiteStore's file; opening a missing one would create it
    return path is not None and not path.exists()


async def _read(store: Store, timeout: float) -> tuple[SchemaStatus, list[str]]:
    """The schema's status, and (SQLite) its CREATE statements, which an upgrade's SQL is rehearsed on."""
    try:
        if _missing_sqlite_file(store):
            return migrate.status_of(None), []
        revision = await asyncio.wait_for(store.migration_revision(), timeout)
        ddl = await store.read(migrate.sqlite_schema) if store.dialect == "sqlite" else []
        return migrate.status_of(revision), ddl
    finally:
        await store.close()


def read_status(database_url: str | None, data_dir: Path, timeout: float) -> tuple[str, SchemaStatus]:
    """Where the database is (for display) and where its schema stands."""
    store = _open(database_url, data_dir)
    with _database_errors(store, timeout):
        return store.url_for_display, asyncio.run(_read(store, timeout))[0]


def require_serving_schema(database_url: str | None, data_dir: Path, timeout: float) -> None:
    """``agora serve --no-migrate``: stop with a clear message unless the schema already serves this version."""
    status = read_status(database_url, data_dir, timeout)[1]
    if not status.state.serves:
        raise fail(
            f"the database schema is at revision {status.revision or migrate.BASE} and this version needs "
            f"{status.head} ({len(status.pending)} migration(s) pending): run `agora db upgrade` first, or start "
            "without --no-migrate",
            EXIT_ERROR,
        )


def _describe(status: SchemaStatus) -> str:
    if status.state is migrate.SchemaState.AHEAD:
        return f"ahead: revision {status.revision} is not in this version's history (a newer release migrated it)"
    if status.state is migrate.SchemaState.CURRENT:
        return "current"
    return f"{status.state.value}: {len(status.pending)} migration(s) pending"


def _print_status(store_display: str, status: SchemaStatus) -> None:
    typer.echo(f"database  {store_display}")
    typer.echo(f"revision  {status.revision or migrate.BASE}")
    typer.echo(f"head      {status.head}")
    typer.echo(f"state     {_describe(status)}")
    for m in status.pending:
        typer.echo(f"  {m.revision}  {m.summary}")


@db_app.command("status")
def status(
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    connect_timeout: ConnectTimeout = CONNECT_TIMEOUT,
    wait: Annotated[
        float,
        typer.Option(
            envvar="AGORA_DB_WAIT",
            min=0,
            help="Wait up to this many seconds for the schema to serve this version (e.g. before a hub starts with "
            "--no-migrate while a migration job runs); 0: answer at once.",
        ),
    ] = 0.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the schema's revision against this version's head, and the migrations pending."""
    deadline = time.monotonic() + wait
    with err_console.status("waiting for the schema to reach this version…") if wait else contextlib.nullcontext():
        while True:
            try:
                display, current = read_status(database_url, data_dir, connect_timeout)
            except typer.Exit as stop:
                if stop.exit_code != EXIT_UNAVAILABLE or time.monotonic() >= deadline:
                    raise
            else:
                if current.state.serves or time.monotonic() >= deadline:
                    break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    if json_out:
        emit_json({"database": display, **current.as_dict()})
    else:
        _print_status(display, current)
    if not current.state.serves:
        raise typer.Exit(EXIT_ERROR)


@db_app.command("upgrade")
def upgrade(
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    connect_timeout: ConnectTimeout = CONNECT_TIMEOUT,
    sql: Annotated[
        bool,
        typer.Option(
            "--sql",
            envvar="AGORA_DB_SQL",
            help="Print the SQL the upgrade would run on this database, and change nothing (PostgreSQL: Alembic's "
            "offline mode; SQLite: rehearsed on an in-memory copy of the schema).",
        ),
    ] = False,
    from_revision: Annotated[
        str | None,
        typer.Option(
            "--from",
            envvar="AGORA_DB_FROM",
            help="With --sql: the revision to start from ('base' for an empty database) instead of asking the "
            "database; nothing is opened then.",
        ),
    ] = None,
) -> None:
    """Apply pending migrations, then exit (--sql: print them instead)."""
    store = _open(database_url, data_dir)
    if from_revision is not None and not sql:
        raise fail("--from goes with --sql (an upgrade starts where the database is)", EXIT_BAD_INPUT)
    if sql:
        _print_sql(store, from_revision, connect_timeout)
        return
    with _database_errors(store, connect_timeout):
        before = asyncio.run(_read(store, connect_timeout))[0]
    if not before.pending:
        typer.echo(f"database is at revision {before.revision}: nothing to apply ({_describe(before)})")
        return
    store = _open(database_url, data_dir)
    with err_console.status(f"applying {len(before.pending)} migration(s)…"), _database_errors(store, connect_timeout):
        revision = asyncio.run(_migrate(store))
    applied = ", ".join(m.revision for m in before.pending)
    typer.echo(f"database is at revision {revision} (applied {applied})")


async def _migrate(store: Store) -> str | None:
    await store.start()  # migrates (on PostgreSQL under the lock replicas take, so a starting hub waits its turn)
    try:
        return await store.migration_revision()
    finally:
        await store.close()


def _print_sql(store: Store, from_revision: str | None, timeout: float) -> None:
    if from_revision is not None:
        start = None if from_revision == migrate.BASE else from_revision
        if start is not None and migrate.status_of(start).state is migrate.SchemaState.AHEAD:
            raise fail(f"--from: no revision {from_revision!r} in this version's history", EXIT_BAD_INPUT)
        ddl: list[str] | None = None  # the schema at --from is rebuilt from the migrations themselves
        asyncio.run(store.close())
    else:
        with _database_errors(store, timeout):
            status, ddl = asyncio.run(_read(store, timeout))
        if not status.pending:
            err_console.print(f"nothing to apply: the schema is {_describe(status)}", highlight=False)
            return
        start = status.revision
    typer.echo(migrate.upgrade_sql(store.dialect, start, ddl), nl=False)
