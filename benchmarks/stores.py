"""Fresh places for a hub to keep its data: a temporary directory, plus a new PostgreSQL database.

Every database this module creates is named ``agora_bench_<random>`` and dropped by ``close``.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from .servers import HubSpec

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class StoreKind(StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"


class StoreProvider:
    def __init__(self, kind: StoreKind, pg_admin_url: str = DEFAULT_PG_URL):
        self.kind = kind
        self.pg_admin_url = pg_admin_url
        self._root = Path(tempfile.mkdtemp(prefix=f"agora-bench-{kind.value}-"))
        self._databases: list[str] = []
        self._count = 0

    def check(self) -> None:
        """Fail early (with the reason) when the store cannot be used."""
        if self.kind is StoreKind.postgres:
            asyncio.run(self._execute("SELECT 1"))

    def fresh(self) -> HubSpec:
        """A data directory nobody used yet (and, for PostgreSQL, a new empty database)."""
        self._count += 1
        data_dir = self._root / f"hub-{self._count}"
        data_dir.mkdir()
        if self.kind is StoreKind.sqlite:
            return HubSpec(data_dir)
        name = f"agora_bench_{secrets.token_hex(4)}"
        asyncio.run(self._execute(f'CREATE DATABASE "{name}"'))
        self._databases.append(name)
        return HubSpec(data_dir, urlsplit(self.pg_admin_url)._replace(path=f"/{name}").geturl())

    def analyze(self, spec: HubSpec) -> None:
        """Gather the planner's statistics of ``spec``'s database now (PostgreSQL). A production server's autovacuum
        does it within a minute of a burst of writes; a test server may run without it, and a plan chosen on no
        statistics is a guess."""
        if spec.database_url:
            asyncio.run(self._execute("ANALYZE", spec.database_url))

    def close(self) -> None:
        for name in self._databases:
            asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._databases.clear()
        shutil.rmtree(self._root, ignore_errors=True)

    async def _execute(self, sql: str, url: str | None = None) -> None:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(url or self.pg_admin_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
