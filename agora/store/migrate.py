"""Alembic, driven programmatically on a connection the store hands over (one history, both dialects).

Migrations are expand-then-contract (docs/operating/deploy.md, "Upgrades"): a migration only adds what the new code needs, so the
previous release keeps working on the upgraded schema while replicas roll over. A database at a revision this code's
history does not hold was therefore migrated by a newer release: the hub serves it as it is and never touches it.
"""

from __future__ import annotations

import enum
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.pool import StaticPool

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASE = "base"  # Alembic's name for the empty database, before the first migration

log = logging.getLogger("agora.store")


class SchemaState(enum.StrEnum):
    EMPTY = "empty"  # nothing migrated yet
    BEHIND = "behind"  # migrations of this version are pending
    CURRENT = "current"  # at this version's head
    AHEAD = "ahead"  # at a revision this version does not know: a newer release migrated it

    @property
    def serves(self) -> bool:
        """Whether this version's code may run on the schema (an expand-only newer schema included)."""
        return self in (SchemaState.CURRENT, SchemaState.AHEAD)


@dataclass(frozen=True)
class Migration:
    revision: str
    summary: str


@dataclass(frozen=True)
class SchemaStatus:
    revision: str | None
    head: str
    state: SchemaState
    pending: tuple[Migration, ...]  # oldest first

    def as_dict(self) -> dict[str, object]:
        return {
            "revision": self.revision,
            "head": self.head,
            "state": self.state.value,
            "pending": [{"revision": m.revision, "summary": m.summary} for m in self.pending],
        }


def alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the migration history is empty"
    return head


@lru_cache(maxsize=1)
def history() -> tuple[Migration, ...]:
    """Every migration of this version, oldest first."""
    scripts = reversed(list(_scripts().walk_revisions(BASE, "heads")))
    return tuple(Migration(s.revision, (s.doc or "").strip().splitlines()[0] if s.doc else "") for s in scripts)


def status_of(revision: str | None) -> SchemaStatus:
    """Where a database at ``revision`` stands against this version's migrations."""
    migrations = history()
    known = [m.revision for m in migrations]
    if revision is None:
        state, pending = SchemaState.EMPTY, migrations
    elif revision not in known:
        state, pending = SchemaState.AHEAD, ()
    else:
        pending = migrations[known.index(revision) + 1 :]
        state = SchemaState.BEHIND if pending else SchemaState.CURRENT
    return SchemaStatus(revision, head_revision(), state, tuple(pending))


def upgrade(conn: Connection) -> None:
    """Bring the schema to head inside the caller's transaction; a schema that is ahead is left as it is."""
    before = status_of(MigrationContext.configure(conn).get_current_revision())
    if before.state is SchemaState.AHEAD:
        log.warning(
            "the database schema is newer than this version (a newer release migrated it); serving it as it is",
            extra={"revision": before.revision, "head": before.head},
        )
    elif before.pending:
        command.upgrade(alembic_config(conn), "head")


def upgrade_sql(dialect: str, start: str | None, sqlite_schema: Sequence[str] | None = None) -> str:
    """The SQL that brings a database at revision ``start`` (None: an empty one) to head; nothing is changed.

    PostgreSQL: Alembic's offline mode writes it without a database. SQLite cannot be written offline (a batch
    migration reflects the table it rebuilds), so the upgrade is rehearsed on an in-memory database and its statements
    are recorded: a database built from ``sqlite_schema`` (the real database's CREATE statements), or else migrated
    to ``start`` first."""
    if dialect == "sqlite":
        return _rehearse_sqlite(sqlite_schema, start)
    buffer = io.StringIO()
    cfg = alembic_config()
    cfg.attributes.update(dialect=dialect, output_buffer=buffer)
    command.upgrade(cfg, f"{start}:head" if start else "head", sql=True)
    return buffer.getvalue()


def sqlite_schema(conn: Connection) -> list[str]:
    """The CREATE statements of a SQLite database: tables first, then what refers to them."""
    rows = conn.execute(
        text("SELECT type, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
    )
    order = {"table": 0, "index": 1, "view": 2, "trigger": 3}
    return [sql for _type, sql in sorted(rows, key=lambda row: order.get(row[0], 4))]


def _rehearse_sqlite(schema: Sequence[str] | None, start: str | None) -> str:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    statements: list[str] = ["BEGIN;"]

    def record(_conn: object, _cursor: object, statement: str, parameters: Sequence[object], *_: object) -> None:
        if not statement.lstrip().upper().startswith(_SQLITE_READS):  # Alembic reflecting a table it rebuilds
            statements.append(_inline(statement.strip(), parameters) + ";")

    try:
        with engine.connect() as conn:
            if schema is None and start is not None:
                with conn.begin():
                    command.upgrade(alembic_config(conn), start)
            elif schema is not None:
                for ddl in schema:
                    conn.exec_driver_sql(ddl)
                if start is not None:
                    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": start})
            conn.commit()
            event.listen(conn, "before_cursor_execute", record)
            with conn.begin():
                command.upgrade(alembic_config(conn), "head")
    finally:
        engine.dispose()
    return "\n\n".join([*statements, "COMMIT;"]) + "\n"


_SQLITE_READS = ("PRAGMA", "SELECT")


def _inline(statement: str, parameters: Sequence[object]) -> str:
    """A qmark statement with its parameters written in as SQLite literals."""
    parts = statement.split("?")
    if len(parts) != len(parameters) + 1:
        return statement
    literals = ["NULL" if p is None else str(p) if isinstance(p, (int, float)) else "'" + str(p).replace("'", "''") + "'" for p in parameters]
    return "".join(part + literal for part, literal in zip(parts, [*literals, ""]))


def current_revision(conn: Connection) -> str | None:
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # the table does not exist before the first migration
        return None
