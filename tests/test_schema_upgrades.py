"""Rolling upgrades: migrations are expand-then-contract, and a hub keeps serving on a schema a newer release migrated.

What this proves, and what it does not:
- Every migration, run one at a time on real SQLite and PostgreSQL databases and compared by reflection before and
  after, only *expands* the schema: no table or column dropped, no type changed, no column made NOT NULL, no new
  NOT NULL column without a server default, no new unique constraint on an existing table. So code written for the
  previous revision still finds every table and column it reads, and its INSERTs still satisfy the constraints.
  A migration that must contract declares ``contract = "<why it is safe>"`` (a release after the code stopped using
  what it drops) and is exempt. It does not prove that the previous release's *behaviour* stays correct with the new
  release writing beside it (e.g. a new column the old code never fills); that stays a review question.
- A running hub whose schema is moved ahead by a newer release's expand migration stays ready and keeps serving, and a
  hub of this version (re)started on such a database serves it as it is, with or without --no-migrate.
"""

from __future__ import annotations

import asyncio
import json
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from agora.store import migrate

from .conftest import call, fresh_postgres_url, ok
from .hubproc import HubProcess

Schema = dict[str, dict[str, Any]]


def reflect(conn: Connection) -> Schema:
    """Per table: its columns (type, nullable, server default) and its unique column sets."""
    inspector = inspect(conn)
    schema: Schema = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        columns = {c["name"]: (str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)}
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        uniques |= {tuple(i["column_names"]) for i in inspector.get_indexes(table) if i["unique"]}
        schema[table] = {"columns": columns, "uniques": uniques}
    return schema


def contractions(before: Schema, after: Schema) -> list[str]:
    """What ``after`` takes away from code written for ``before``."""
    found = [f"table {t} dropped" for t in before if t not in after]
    for table, old in before.items():
        new = after.get(table)
        if new is None:
            continue
        for column, (kind, nullable, _default) in old["columns"].items():
            if column not in new["columns"]:
                found.append(f"{table}.{column} dropped")
                continue
            new_kind, new_nullable, _ = new["columns"][column]
            if new_kind != kind:
                found.append(f"{table}.{column} type {kind} -> {new_kind}")
            if nullable and not new_nullable:
                found.append(f"{table}.{column} made NOT NULL")
        for column, (_kind, nullable, default) in new["columns"].items():
            if column not in old["columns"] and not nullable and default is None:
                found.append(f"{table}.{column} added NOT NULL without a server default")
        found += [f"{table}: new unique {cols}" for cols in new["uniques"] - old["uniques"]]
    return found


def declared_contract(revision: str) -> str | None:
    script = migrate._scripts().get_revision(revision)
    spec = importlib.util.spec_from_file_location(f"migration_{revision}", script.path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "contract", None)


def walk(conn: Connection) -> dict[str, list[str]]:
    """Apply the history one migration at a time; the contractions of each that declares none."""
    violations: dict[str, list[str]] = {}
    before = reflect(conn)
    for migration in migrate.history():
        command.upgrade(migrate.alembic_config(conn), migration.revision)
        after = reflect(conn)
        found = contractions(before, after)
        if found and not declared_contract(migration.revision):
            violations[migration.revision] = found
        before = after
    return violations


def test_the_checker_sees_each_kind_of_contraction():
    before = {"t": {"columns": {"a": ("VARCHAR(8)", True, None), "b": ("INTEGER", False, None)}, "uniques": set()},
              "gone": {"columns": {}, "uniques": set()}}
    after = {"t": {"columns": {"a": ("TEXT", False, None), "c": ("INTEGER", False, None), "d": ("INTEGER", False, "0")},
                   "uniques": {("a",)}}}
    assert sorted(contractions(before, after)) == sorted([
        "table gone dropped", "t.b dropped", "t.a type VARCHAR(8) -> TEXT", "t.a made NOT NULL",
        "t.c added NOT NULL without a server default", "t: new unique ('a',)",
    ])
    assert contractions(after, after) == []


def test_every_migration_only_expands_the_schema_on_sqlite():
    engine = create_engine("sqlite://")
    with engine.connect() as conn, conn.begin():
        assert walk(conn) == {}
    engine.dispose()


def on_fresh_postgres(postgres_url: str, fn: Callable[[Connection], Any]) -> Any:
    """``fn(conn)`` in one transaction on a new PostgreSQL database."""
    url = fresh_postgres_url(postgres_url).replace("postgresql://", "postgresql+asyncpg://", 1)

    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_every_migration_only_expands_the_schema_on_postgres(postgres_url):
    assert on_fresh_postgres(postgres_url, walk) == {}


# --- a newer release's schema under this version's hubs ------------------------------------------------------------

NEXT_RELEASE = "0999_next_release"


def next_release_expand(execute: Callable[[str], None]) -> None:
    """What a newer release's migration may do under the rule: a table and a nullable column more."""
    execute("CREATE TABLE next_release_things (thing_id VARCHAR(32) PRIMARY KEY, note TEXT)")
    execute("ALTER TABLE agents ADD COLUMN next_release_note TEXT")
    execute(f"UPDATE alembic_version SET version_num = '{NEXT_RELEASE}'")


def sqlite_executor(path: str) -> Callable[[str], None]:
    def execute(sql: str) -> None:
        engine = create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(text(sql))
        engine.dispose()

    return execute


def postgres_executor(url: str) -> Callable[[str], None]:
    import asyncpg

    def execute(sql: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    return execute


def serves(hub: HubProcess, name: str) -> None:
    ready = httpx.get(hub.url + "/ready")
    assert ready.status_code == 200 and ready.json()["schema"] == "ahead", ready.text
    with hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=name))
        assert ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["agent_name"] == name
        ok(call(admin, "agora.messaging.send", to_agent=agent["agent_id"], content="still here"))


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_hubs_of_this_version_serve_a_schema_a_newer_release_expanded(tmp_path, engine, request):
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if engine == "postgres" else None
    hub = HubProcess(tmp_path / "hub", database_url=url).start()
    try:
        execute = postgres_executor(url) if url else sqlite_executor(str(tmp_path / "hub" / "agora.db"))
        next_release_expand(execute)  # the newer release's migration job ran while this replica kept serving
        serves(hub, "before-restart")
    finally:
        hub.stop()
    for args in ([], ["--no-migrate"]):  # this version's replica restarting mid-rollout, as either kind of hub
        again = HubProcess(tmp_path / "hub", database_url=url, extra_args=args).start()
        try:
            serves(again, f"after-restart{'-'.join(args)}")
        finally:
            again.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    where = ["--database-url", url] if url else ["--data-dir", str(tmp_path / "hub")]
    out = subprocess.run([sys.executable, "-m", "agora", "db", "upgrade", *where], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and f"database is at revision {NEXT_RELEASE}: nothing to apply" in out.stdout, out


def _split_scopes(conn: Connection) -> dict[str, list[str]]:
    """Keys and an OAuth token stored before 0029, as they read after it."""
    command.upgrade(migrate.alembic_config(conn), "0028")
    conn.execute(text("INSERT INTO tenants (tenant_id, name, created_at) VALUES ('t', 't', CURRENT_TIMESTAMP)"))
    stored = {
        "reader": ["agents:read", "messaging:read", "marketplace:read"],
        "writer": ["marketplace:write", "messaging:send"],
        "narrow": ["agents:read"],
    }
    for name, scopes in stored.items():
        conn.execute(
            text("INSERT INTO api_keys (key_id, key_hash, prefix, kind, name, tenant_id, scopes, created_at, created_by) "
                 "VALUES (:id, :id, 'p', 'customer', :id, 't', :scopes, CURRENT_TIMESTAMP, 'test')"),
            {"id": name, "scopes": json.dumps(scopes)},
        )  # fmt: skip
    conn.execute(
        text("INSERT INTO oauth_tokens (token_hash, kind, pair_id, client_id, key_hash, scopes, expires_at) "
             "VALUES ('tok', 'access', 'p', 'c', 'reader', :scopes, CURRENT_TIMESTAMP)"),
        {"scopes": json.dumps(["messaging:read"])},
    )  # fmt: skip
    command.upgrade(migrate.alembic_config(conn), "0029")
    rows = conn.execute(text("SELECT key_id, scopes FROM api_keys UNION ALL SELECT token_hash, scopes FROM oauth_tokens"))
    return {key: sorted(scopes if isinstance(scopes, list) else json.loads(scopes)) for key, scopes in rows}


SPLIT = {
    "reader": ["agents:read", "billing:read", "marketplace:read", "messaging:read", "messaging:receive"],
    "writer": ["billing:write", "instances:control", "instances:write", "marketplace:write", "messaging:send"],
    "narrow": ["agents:read"],
    "tok": ["messaging:read", "messaging:receive"],
}


def test_keys_stored_before_the_roles_split_keep_what_they_could_do(postgres_url):
    """0029 splits scopes that roles tell apart; every stored key and token gets the new ones its old ones implied."""
    engine = create_engine("sqlite://")
    with engine.connect() as conn, conn.begin():
        assert _split_scopes(conn) == SPLIT
    engine.dispose()
    assert on_fresh_postgres(postgres_url, _split_scopes) == SPLIT
