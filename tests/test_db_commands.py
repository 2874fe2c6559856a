"""``agora db status``, ``agora db upgrade [--sql]`` and ``agora serve --no-migrate`` on real SQLite files and real
PostgreSQL databases: the printed SQL is applied and must build the very schema ``agora db upgrade`` builds."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agora.store.migrate import head_revision

from .conftest import fresh_postgres_url, pg_fetch
from .hubproc import HubProcess, free_port

HEAD = head_revision()


def agora(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return subprocess.run([sys.executable, "-m", "agora", *args], capture_output=True, text=True, timeout=timeout, env=env)


def one_line_error(out: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and words in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def sqlite_objects(path: Path) -> set[tuple[str, str, str]]:
    """Every table, index and column of a SQLite file (the migrations' DDL text may differ in spacing, not in effect)."""
    with sqlite3.connect(path) as conn:
        names = conn.execute("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        columns = {
            ("column", f"{table}.{row[1]}", f"{row[2]} notnull={row[3]} default={row[4]}")
            for _type, table, _ in names if _type == "table"
            for row in conn.execute(f'PRAGMA table_info("{table}")')
        }
        indexes = {
            ("index", name, sql or "")
            for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        }
    return {(t, n, tbl) for t, n, tbl in names} | columns | indexes


def revision_of(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a database hung, or a firewall that drops)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


# --- SQLite -----------------------------------------------------------------------------------------------------


def test_status_upgrade_status_on_sqlite(tmp_path):
    data = tmp_path / "data"
    empty = agora("db", "status", "--data-dir", str(data))
    assert empty.returncode == 1, empty.stderr
    assert "state     empty: " in empty.stdout and f"head      {HEAD}" in empty.stdout and "0001  foundation" in empty.stdout
    assert not (data / "agora.db").exists(), "status must not create the database"

    applied = agora("db", "upgrade", "--data-dir", str(data))
    assert applied.returncode == 0, applied.stderr
    assert f"database is at revision {HEAD} (applied 0001, " in applied.stdout

    current = agora("db", "status", "--data-dir", str(data), "--json")
    assert current.returncode == 0, current.stderr
    assert json.loads(current.stdout) == {
        "database": f"sqlite:///{data / 'agora.db'}", "revision": HEAD, "head": HEAD, "state": "current", "pending": []
    }
    again = agora("db", "upgrade", "--data-dir", str(data))
    assert again.returncode == 0 and f"revision {HEAD}: nothing to apply (current)" in again.stdout

    nothing = agora("db", "upgrade", "--sql", "--data-dir", str(data))
    assert nothing.returncode == 0 and nothing.stdout == "" and "nothing to apply" in nothing.stderr


def test_sql_of_sqlite_upgrade_builds_the_schema_upgrade_builds(tmp_path):
    upgraded = tmp_path / "upgraded"
    assert agora("db", "upgrade", "--data-dir", str(upgraded)).returncode == 0

    script = agora("db", "upgrade", "--sql", "--data-dir", str(tmp_path / "none-yet"))
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("BEGIN;") and script.stdout.rstrip().endswith("COMMIT;")
    assert not (tmp_path / "none-yet" / "agora.db").exists(), "--sql must not create the database"
    replayed = tmp_path / "replayed.db"
    with sqlite3.connect(replayed, isolation_level=None) as conn:
        conn.executescript(script.stdout)
    assert sqlite_objects(replayed) == sqlite_objects(upgraded / "agora.db")
    assert revision_of(replayed) == HEAD


def test_sql_from_a_revision_of_a_real_sqlite_database(tmp_path):
    """A database at an older revision: the SQL printed for it (read from the file) upgrades a copy of it to head."""
    from alembic import command
    from sqlalchemy import create_engine

    from agora.store import migrate

    old = tmp_path / "old" / "agora.db"
    old.parent.mkdir()
    engine = create_engine(f"sqlite:///{old}")
    with engine.connect() as conn, conn.begin():
        command.upgrade(migrate.alembic_config(conn), "0014")  # before 0015 rebuilds the tasks table (a batch migration)
    engine.dispose()
    status = agora("db", "status", "--data-dir", str(old.parent))
    assert status.returncode == 1 and "state     behind: " in status.stdout and "  0015  " in status.stdout

    script = agora("db", "upgrade", "--sql", "--data-dir", str(old.parent))
    assert script.returncode == 0, script.stderr
    assert "CREATE TABLE _alembic_tmp_tasks" in script.stdout and "CREATE TABLE tenants" not in script.stdout
    assert revision_of(old) == "0014", "--sql changed the database"
    offline = agora("db", "upgrade", "--sql", "--from", "0014")  # the same, with no database at all
    assert offline.returncode == 0
    assert sorted(offline.stdout.split(";\n")) == sorted(script.stdout.split(";\n"))  # a rebuild may order indexes apart

    with sqlite3.connect(old, isolation_level=None) as conn:
        conn.executescript(script.stdout)
    fresh = tmp_path / "fresh"
    assert agora("db", "upgrade", "--data-dir", str(fresh)).returncode == 0
    assert sqlite_objects(old) == sqlite_objects(fresh / "agora.db")


def test_bad_input_and_unreachable_databases_are_one_line_errors(tmp_path, silent_port):
    one_line_error(agora("db", "status", "--database-url", "mysql://root@127.0.0.1/x"), 2, "unsupported database URL scheme")
    one_line_error(agora("db", "upgrade", "--database-url", "postgresql://u@127.0.0.1:notaport/x"), 2, "bad --database-url")
    one_line_error(agora("db", "upgrade", "--from", "base"), 2, "--from goes with --sql")
    one_line_error(agora("db", "upgrade", "--sql", "--from", "0999"), 2, "no revision '0999'")
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/agora"
    one_line_error(agora("db", "status", "--database-url", closed), 3, "cannot reach the database at 127.0.0.1:")
    one_line_error(agora("db", "upgrade", "--database-url", closed), 3, "cannot reach the database")
    started = time.monotonic()
    hung = f"postgresql://postgres@127.0.0.1:{silent_port}/agora"
    one_line_error(agora("db", "status", "--database-url", hung, "--connect-timeout", "0.5"), 3, "did not answer within 0.5 s")
    assert time.monotonic() - started < 10
    not_a_database = tmp_path / "junk" / "agora.db"
    not_a_database.parent.mkdir()
    not_a_database.write_bytes(b"this is no SQLite file" * 100)
    one_line_error(agora("db", "status", "--data-dir", str(not_a_database.parent)), 3, "file is not a database")


def test_serve_no_migrate_refuses_a_schema_behind_and_serves_after_upgrade(tmp_path):
    data = tmp_path / "hub"
    out = agora("serve", "--no-migrate", "--no-local-node", "--data-dir", str(data), "--port", str(free_port()), timeout=30)
    one_line_error(out, 1, "run `agora db upgrade` first")
    assert not (data / "agora.db").exists()

    assert agora("db", "upgrade", "--data-dir", str(data)).returncode == 0
    hub = HubProcess(data, extra_args=["--no-migrate"]).start()
    try:
        import httpx

        assert httpx.get(hub.url + "/ready").json()["schema"] == "current"
    finally:
        hub.stop()


def test_status_wait_returns_once_a_migration_lands(tmp_path):
    """What an init container does while the migration Job runs: wait, then let the hub start."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    waiter = subprocess.Popen(
        [sys.executable, "-m", "agora", "db", "status", "--wait", "30", "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    time.sleep(1.5)
    assert waiter.poll() is None, "returned before the schema was migrated"
    assert agora("db", "upgrade", "--data-dir", str(data)).returncode == 0
    stdout, stderr = waiter.communicate(timeout=20)
    assert waiter.returncode == 0, stderr
    assert "state     current" in stdout


def test_status_wait_gives_up_with_pending_migrations(tmp_path):
    started = time.monotonic()
    out = agora("db", "status", "--wait", "1.5", "--data-dir", str(tmp_path))
    assert out.returncode == 1 and "state     empty" in out.stdout
    assert 1.4 < time.monotonic() - started < 15


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


def pg_schema(url: str) -> dict[str, object]:
    """Tables, columns (type, nullability, default) and indexes of a PostgreSQL database, as the catalog has them."""
    columns = pg_fetch(url, "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
                            "WHERE table_schema = 'public' ORDER BY 1, 2")  # fmt: skip
    indexes = pg_fetch(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
    return {"columns": columns, "indexes": indexes}


def pg_execute(url: str, script: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(script)  # the simple query protocol: a whole script, as psql -f sends it
        finally:
            await conn.close()

    asyncio.run(run())


def test_postgres_status_sql_and_upgrade(postgres_url):
    upgraded = fresh_postgres_url(postgres_url)
    behind = agora("db", "status", "--database-url", upgraded)
    assert behind.returncode == 1 and "state     empty" in behind.stdout

    script = agora("db", "upgrade", "--sql", "--database-url", upgraded)
    assert script.returncode == 0, script.stderr
    assert "CREATE TABLE tenants" in script.stdout and f"'{HEAD}'" in script.stdout
    assert agora("db", "status", "--database-url", upgraded).returncode == 1, "--sql changed the database"

    applied = agora("db", "upgrade", "--database-url", upgraded)
    assert applied.returncode == 0 and f"database is at revision {HEAD}" in applied.stdout
    status = agora("db", "status", "--json", "--database-url", upgraded)
    assert status.returncode == 0 and json.loads(status.stdout)["state"] == "current"

    replayed = fresh_postgres_url(postgres_url)
    pg_execute(replayed, script.stdout)  # what a DBA does with the printed SQL
    assert pg_schema(replayed) == pg_schema(upgraded)
    assert agora("db", "status", "--database-url", replayed).returncode == 0


def test_a_database_migrated_by_a_newer_release_is_left_alone(postgres_url):
    url = fresh_postgres_url(postgres_url)
    assert agora("db", "upgrade", "--database-url", url).returncode == 0
    pg_execute(url, "UPDATE alembic_version SET version_num = '0999_next_release'")

    status = agora("db", "status", "--database-url", url)
    assert status.returncode == 0 and "state     ahead: revision 0999_next_release" in status.stdout
    upgrade = agora("db", "upgrade", "--database-url", url)
    assert upgrade.returncode == 0 and "nothing to apply" in upgrade.stdout
    sql = agora("db", "upgrade", "--sql", "--database-url", url)
    assert sql.returncode == 0 and sql.stdout == ""
    assert "0999_next_release" in agora("db", "status", "--database-url", url).stdout
