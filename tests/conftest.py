"""Fixtures: real hubs on 127.0.0.1, on SQLite and (where a server is reachable) PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .hubproc import HubProcess

PG_ADMIN_URL = os.environ.get("AGORA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_SERVICES = os.environ.get("AGORA_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("AGORA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# What `python -m pytest -m "not slow"` leaves out (the contributors' quick selection; CI runs everything): a browser,
# containers, other projects' suites run with npx or node, hubs stopped, restarted and run as replicas for faults,
# crashes, shutdowns and lockouts, whole stores migrated, backed up, copied, upgraded and imported, hosting nodes and
# sandboxed builds, remote and upstream agents and MCP servers, the embedding model, the fuzzer, the command line run
# as a process per command, and the fast paths held to the SDK's answers by a second hub.
SLOW = (
    "console/", "faults/", "security/test_fuzz.py", "security/test_listing_isolation.py", "test_container_image.py",
    "test_deploy_manifests.py", "test_mcp_conformance.py", "test_mcp_inspector.py", "test_typescript_sdk.py",
    "test_crash.py", "test_schedules_durability.py", "test_hosting_processes.py", "test_backup.py", "test_store_copy.py",
    "test_schema_upgrades.py", "test_marketplace.py", "test_gateway.py", "test_search_ranking.py", "test_console_",
    "security/test_abuse.py", "test_db_commands.py", "test_lifecycle.py", "test_first_run.py", "test_a2a_bridge.py",
    "test_v4_import.py", "test_search.py", "test_docs_walkthrough.py", "test_cli.py", "test_cli_schedules.py",
    "test_mcp_fast_path.py", "test_a2a_fast_path.py",
)  # fmt: skip
# The same kinds in files that are otherwise quick, by what the test's name says it does: a hub restarted, killed or
# stopped mid-statement, replicas, the garbage-input sweep.
SLOW_NAMES = re.compile(r"restart|replica|kill|sigterm|hub_is_back|rides_out|locked|held_past|garbage")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests, and those a test runs again on PostgreSQL (its ``postgres`` parameter): the quick selection
    leaves both out."""
    for item in items:
        if item.path.relative_to(TESTS).as_posix().startswith(SLOW) or SLOW_NAMES.search(item.name):
            item.add_marker(pytest.mark.slow)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgres" in callspec.id.split("-"):
            item.add_marker(pytest.mark.postgres)


def _pg(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # A thread of its own: callers may be inside a running event loop (async fixtures).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def pg_fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query on the PostgreSQL database at ``url``, read on a connection of its own."""
    import asyncpg

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url, timeout=3)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _pg_unavailable() -> str | None:
    try:
        _pg("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


def _redis_unavailable() -> str | None:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1) as client:
            client.ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no Redis here"
        return f"Redis not reachable at {REDIS_URL}: {exc}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    reason = _redis_unavailable()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(f"AGORA_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    reason = _pg_unavailable()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(f"AGORA_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    name = f"agora_test_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    for each in [name, *_FRESH_DATABASES]:
        _pg(f'DROP DATABASE IF EXISTS "{each}" WITH (FORCE)')


_FRESH_DATABASES: list[str] = []  # made by fresh_postgres_url, dropped with the session's database


def fresh_postgres_url(postgres_url: str) -> str:
    """Another empty database next to the session's one (for tests that need a pristine store)."""
    name = f"agora_test_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{name}"')
    _FRESH_DATABASES.append(name)
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def sqlite_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub-sqlite")).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="session")
def postgres_hub(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub-pg"), database_url=postgres_url).start()
    yield hub
    hub.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest) -> HubProcess:
    """The same test against a hub on each engine."""
    return request.getfixturevalue(f"{request.param}_hub")


@pytest.fixture
def admin(hub: HubProcess) -> Iterator[httpx.Client]:
    with hub.client() as c:
        yield c


def call(client: httpx.Client, tool: str, **args: Any) -> httpx.Response:
    return client.post("/" + tool.replace(".", "/"), json=args)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return response.json()


def expect_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with the one error shape and ``code``; returns the error object."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:500]}"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error
    return error


def until(condition: Callable[[], Any], message: str, timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), failing with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)


def metric(hub: HubProcess, sample: str) -> float:
    """One sample of the hub's /metrics (0 while it has none)."""
    with hub.client() as admin:
        rows = admin.get("/metrics").text.splitlines()
    return sum(float(row.rpartition(" ")[2]) for row in rows if row.startswith(sample + " "))


def rare_word() -> str:
    """A word no other document holds, that the search engines keep whole: letters only (one token), and no final
    "s" (their stemmers take it off as a plural's, so a correction would offer the stem)."""
    return "zq" + "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(7)) + secrets.choice("bcdfghjklmnpqrtvwxz")


def unique(prefix: str = "agent") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_tenant(client: httpx.Client, hub: HubProcess, scopes: list[str] | None = None) -> httpx.Client:
    """A customer key of a brand-new tenant, as a client."""
    args: dict[str, Any] = {"kind": "customer", "tenant": unique("tenant")}
    if scopes is not None:
        args["scopes"] = scopes
    created = ok(call(client, "agora.admin.keys.create", **args))
    return hub.client(created["key"])


@pytest.fixture
def two_replicas(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two hub processes on one fresh PostgreSQL database, waking each other through Redis."""
    url = fresh_postgres_url(postgres_url)
    env = {"AGORA_REDIS_URL": redis_url, "AGORA_REDIS_CHANNEL": f"agora:test:{uuid.uuid4().hex[:10]}"}  # its own: other pairs may run at once
    one = HubProcess(tmp_path / "one", database_url=url, env=env).start()
    try:
        two = HubProcess(tmp_path / "two", database_url=url, env=env).start()
    except BaseException:
        one.stop()
        raise
    yield one, two
    one.stop()
    two.stop()
