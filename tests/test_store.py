"""The Store contract, run against both engines in-process: commits, isolation of failures, draining."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import Connection, func, insert, select

from agora.store import Store, open_store
from agora.store.migrate import head_revision
from agora.store.schema import tenants
from agora_sdk.errors import Conflict, NotFound, Unavailable

from .conftest import fresh_postgres_url

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    s = open_store(url, tmp_path)
    await s.start()
    yield s
    await s.close()


def add_tenant(conn: Connection, tenant_id: str) -> str:
    conn.execute(insert(tenants).values(tenant_id=tenant_id, name=tenant_id, created_at=NOW))
    return tenant_id


def fail_after_insert(conn: Connection, tenant_id: str) -> None:
    add_tenant(conn, tenant_id)
    raise NotFound("deliberate failure after a write")


def count(conn: Connection, prefix: str) -> int:
    return conn.execute(select(func.count()).select_from(tenants).where(tenants.c.tenant_id.like(f"{prefix}%"))).scalar_one()


async def test_migrated_to_head(store: Store):
    assert await store.migration_revision() == head_revision()


async def test_concurrent_writes_all_commit_and_are_readable(store: Store):
    ids = await asyncio.gather(*(store.write(add_tenant, f"c-{i:04d}") for i in range(500)))
    assert len(set(ids)) == 500
    assert await store.read(count, "c-") == 500


async def test_a_failing_operation_leaves_its_batch_mates_committed(store: Store):
    results = await asyncio.gather(
        *(
            store.write(fail_after_insert if i % 3 == 0 else add_tenant, f"f-{i:03d}")
            for i in range(60)
        ),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 20 and all(isinstance(f, NotFound) for f in failures)
    assert await store.read(count, "f-") == 40  # the failed ones' inserts were rolled back, nothing else


async def test_constraint_violation_is_a_conflict_not_a_crash(store: Store):
    await store.write(add_tenant, "dup-1")
    with pytest.raises(Conflict):
        await store.write(add_tenant, "dup-1")
    assert await store.read(count, "dup-") == 1


async def test_close_drains_accepted_writes_then_refuses(tmp_path):
    s = open_store(None, tmp_path)
    await s.start()
    pending = [asyncio.ensure_future(s.write(add_tenant, f"d-{i:04d}")) for i in range(300)]
    await asyncio.sleep(0)
    await s.close()
    done = await asyncio.gather(*pending, return_exceptions=True)
    committed = [d for d in done if isinstance(d, str)]
    assert len(committed) + sum(isinstance(d, Unavailable) for d in done) == 300
    reopened = open_store(None, tmp_path)
    await reopened.start()
    try:
        assert await reopened.read(count, "d-") == len(committed) > 0
    finally:
        await reopened.close()
    with pytest.raises(Unavailable):
        await s.write(add_tenant, "after-close")


def _message(conn: Connection, message_id: str) -> int:
    from agora.store.schema import messages

    row = {
        "message_id": message_id, "tenant_id": "default", "kind": "broadcast", "sender_id": "system",
        "message_type": "info", "priority": 2, "content": "x", "context": {}, "created_at": NOW,
    }
    return conn.execute(insert(messages).returning(messages.c.seq), row).scalar_one()


def _delete_message(conn: Connection, seq: int) -> None:
    from agora.store.schema import messages

    conn.execute(messages.delete().where(messages.c.seq == seq))


async def test_message_sequence_numbers_are_never_reused(store: Store):
    """Read positions are seqs: a seq handed out again after the newest message is purged would be skipped."""
    first = await store.write(_message, "msg_00000000000000a1")
    await store.write(_delete_message, first)
    second = await store.write(_message, "msg_00000000000000a2")
    assert second > first


EXPRESSION_INDEXES = {"ix_inbox_ready", "ix_tasks_claimable"}  # (priority DESC): Alembic cannot compare expression indexes


def _schema_drift(conn: Connection) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from agora.store.schema import metadata

    def comparable(obj, name, type_, _reflected, _compare_to) -> bool:
        return not (type_ == "index" and name in EXPRESSION_INDEXES)

    return compare_metadata(MigrationContext.configure(conn, opts={"include_object": comparable}), metadata)


async def test_migrations_build_exactly_the_declared_schema(store: Store):
    """A column added to schema.py without a migration (or the reverse) fails here, on both engines."""
    assert await store.read(_schema_drift) == []
