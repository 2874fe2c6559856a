"""The Store contract, run against both engines in-process: commits, isolation of failures, draining."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, bindparam, func, insert, select, update

from agora.store import Store, open_store
from agora.store.base import defer
from agora.store.migrate import head_revision
from agora.store.ops import a2a as a2a_ops
from agora.store.ops import tasks as task_ops
from agora.store.ops.dialect import upsert_insert
from agora.store.prepared import Prepared
from agora.store.schema import a2a_events, tasks, tenants
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


def add_agent(conn: Connection, tenant_id: str, agent_id: str, name: str) -> None:
    from agora.store.schema import agents

    conn.execute(insert(agents).values(
        agent_id=agent_id, tenant_id=tenant_id, agent_name=name, service_tier="free", status="active",
        description="", capabilities=[], metadata={}, search_text="", registered_at=NOW, updated_at=NOW,
    ))  # fmt: skip


def read_then_add(conn: Connection, tenant_id: str) -> str:
    count(conn, tenant_id)
    return add_tenant(conn, tenant_id)


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


FLUSHED: list[int] = []  # rows per call of _add_deferred


def _add_deferred(conn: Connection, rows: list[dict[str, Any]]) -> None:
    FLUSHED.append(len(rows))
    conn.execute(insert(tenants), rows)


def defer_tenant(conn: Connection, tenant_id: str, fail: bool) -> str:
    defer(conn, _add_deferred, {"tenant_id": tenant_id, "name": tenant_id, "created_at": NOW})
    if fail:
        raise NotFound("deliberate failure after deferring a row")
    return tenant_id


async def test_rows_deferred_by_batch_mates_are_written_together_and_a_failed_operations_go_with_it(store: Store):
    FLUSHED.clear()
    assert len(await asyncio.gather(*(store.write(defer_tenant, f"d-{i:03d}", False) for i in range(60)))) == 60
    assert await store.read(count, "d-") == 60 and sum(FLUSHED) == 60
    # SQLite's writer commits what queued up together: one statement for the rows of a whole batch
    assert len(FLUSHED) < 10 if store.dialect == "sqlite" else len(FLUSHED) == 60, FLUSHED

    results = await asyncio.gather(*(store.write(defer_tenant, f"e-{i:03d}", i % 5 == 0) for i in range(60)), return_exceptions=True)
    assert sum(isinstance(r, NotFound) for r in results) == 12
    assert await store.read(count, "e-") == 48  # the failed ones' rows were never written, their batch mates' were


async def test_writes_are_counted_in_flight_until_committed_or_refused(store: Store):
    """What ``agora_store_writes_in_flight`` reports: writes asked for and not yet answered, failed ones included."""
    started, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def held(conn: Connection, tenant_id: str) -> str:
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)  # (SQLite: on its writer thread)
        return add_tenant(conn, tenant_id)

    assert store.writes_in_flight == 0
    if store.dialect == "postgresql":  # its operations run on the event loop's thread: nothing can be held there
        writing = asyncio.gather(store.write(add_tenant, "f-1"), store.write(fail_after_insert, "f-2"), return_exceptions=True)
        await asyncio.sleep(0)
        assert store.writes_in_flight == 2
    else:
        writing = asyncio.gather(store.write(held, "f-1"), store.write(fail_after_insert, "f-2"), return_exceptions=True)
        await asyncio.wait_for(started.wait(), 10)
        assert store.writes_in_flight == 2  # neither answered while the writer is held
        release.set()
    committed, refused = await writing
    assert committed == "f-1" and isinstance(refused, NotFound)
    assert store.writes_in_flight == 0


async def test_each_write_is_timed_once_even_when_writes_go_together(store: Store):
    """``agora_store_write_seconds`` counts the writes callers asked for: sends that share one PostgreSQL call, or
    are run again alone after a batch mate failed, are still one each."""
    from agora.observability import metrics

    def timed() -> float:
        return next(s.value for s in metrics.STORE_WRITE_SECONDS.collect()[0].samples if s.name.endswith("_count"))

    def upper(_conn: Connection, _tag: str, items: list[str]) -> list[str]:
        if "bad" in items:
            raise Conflict("bad item")
        return [item.upper() for item in items]

    before = timed()
    items = ["a", "b", "bad", "c", "d"]
    outcomes = await asyncio.gather(*(store.write_together(upper, ("tag",), item) for item in items), return_exceptions=True)
    assert isinstance(outcomes[2], Conflict) and outcomes[3:] == ["C", "D"]
    await store.write(add_tenant, "timed-1")
    assert timed() - before == len(items) + 1
    assert store.writes_in_flight == 0


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


async def test_the_wal_is_copied_back_and_started_over_while_writes_keep_coming(tmp_path):
    """SQLite never checkpoints inside a commit (that stalled the writer ~100 ms per ~40 MiB); the checkpointer thread
    keeps the WAL small even under back-to-back commits, which never leave a passive checkpoint time to catch up."""
    s = open_store(None, tmp_path)
    await s.start()
    try:
        for i in range(4000):  # one commit each: ~3 pages per commit, ~50 MB of WAL if it were never started over
            await s.write(read_then_add, f"w-{i:05d}")  # a read first: a checkpoint must never make the write "locked"
        wal = tmp_path / "agora.db-wal"
        # Never started over it would be ~50 MB; started over it stays near 10 MB, more when the checkpointer thread
        # gets little of two cores shared with the rest of a parallel test run (20-22 MB seen).
        assert wal.exists() and wal.stat().st_size < 32_000_000, wal.stat().st_size
        assert await s.read(count, "w-") == 4000
    finally:
        await s.close()


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


def _sent_twice(conn: Connection) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Two sends of direct messages, three then 300 (the newest message deleted in between, as retention may): the
    seqs each send gave its inbox rows, and the seqs the messages were stored under. (300 rows take several of
    SQLite's multi-row INSERT statements.)"""
    from agora.store.ops import messages as message_ops
    from agora.store.schema import inbox, messages

    def rows(n: int, count: int) -> list[dict]:
        return [{
            "message_id": f"msg_{n:013x}{i:03x}", "kind": "direct", "sender_id": "agent_s", "recipient_id": "agent_r",
            "topic": None, "message_type": "info", "performative": None, "intent": None, "priority": 2 + i % 2,
            "content": {"i": i}, "correlation": None, "conversation_id": None, "expected": None, "context": {},
            "idempotency_key": None, "created_at": NOW, "expires_at": None, "reply_due_at": None, "tenant_id": "m",
        } for i in range(count)]  # fmt: skip

    message_ops.send(conn, "m", "agent_s", rows(1, 3), NOW)
    conn.execute(messages.delete().where(messages.c.seq == select(func.max(messages.c.seq)).scalar_subquery()))
    message_ops.send(conn, "m", "agent_s", rows(2, 300), NOW)
    delivered = conn.execute(
        select(messages.c.message_id, inbox.c.seq).join(messages, messages.c.seq == inbox.c.seq).order_by(inbox.c.seq)
    ).all()
    stored = conn.execute(select(messages.c.message_id, messages.c.seq).order_by(messages.c.seq)).all()
    return [tuple(r) for r in delivered], [tuple(r) for r in stored]


async def test_a_batch_of_messages_gets_the_seqs_it_was_stored_under(store: Store):
    """On SQLite a batch's seqs are worked out from the last rowid, not returned row by row: each inbox row must
    still point at its own message, and a deleted newest seq is not handed out again."""
    delivered, stored = await store.write(_sent_twice)
    assert [m for m, _ in stored] == [f"msg_{n:013x}{i:03x}" for n, i in [(1, 0), (1, 1), *((2, i) for i in range(300))]]
    assert delivered == stored  # every message has its delivery row under its own seq
    assert stored[2][1] == stored[1][1] + 2  # the deleted seq was skipped, not reused


def _latest_seqs(conn: Connection) -> dict[str, Any]:
    """A tenant's newest seqs by kind, over messages a minute apart: direct, broadcast, direct, topic, broadcast."""
    from datetime import timedelta

    from agora.store.ops import shared as shared_ops
    from agora.store.schema import messages

    seqs = []
    for i, kind in enumerate(["direct", "broadcast", "direct", "topic", "broadcast"]):
        row = {
            "message_id": f"msg_{i:016x}", "tenant_id": "l", "kind": kind, "sender_id": "s", "message_type": "info",
            "priority": 2, "content": "x", "context": {}, "created_at": NOW + timedelta(minutes=i),
        }  # fmt: skip
        seqs.append(conn.execute(insert(messages).returning(messages.c.seq), row).scalar_one())
    found = {
        "broadcast_before_3": shared_ops.latest_of(conn, "l", "broadcast", before=NOW + timedelta(minutes=3)),
        "topic": shared_ops.latest_of(conn, "l", "topic"),
        "any": shared_ops.latest_seq(conn, "l"),
        "other_tenant": shared_ops.latest_seq(conn, "nobody"),
        "seqs": seqs,
    }
    if conn.dialect.name == "sqlite":
        stmt = shared_ops._LATEST[True].stmt.compile(dialect=conn.dialect)
        values = {"tenant_id": "l", "kind": "broadcast", "before": "2026-01-01 00:03:00.000000"}
        args = tuple(values.get(name, stmt.params[name]) for name in stmt.positiontup)
        found["plan"] = " ".join(r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {stmt.string}", args))
    return found


def _retained_while_lent(conn: Connection) -> tuple[list[int], list[int], int]:
    """Four broadcasts, eight days old; the first two are lent to a stream of agent "a" and the other two nobody
    holds. Retention (seven days) runs: which seqs are still stored, and which the lent ones were; then agent "a"
    is removed and retention runs again: how many messages are left."""
    from datetime import timedelta

    from agora.store.ops import agents as agent_ops
    from agora.store.ops import messages as message_ops
    from agora.store.ops import shared as shared_ops
    from agora.store.schema import messages

    old = NOW - timedelta(days=8)
    for i in range(4):
        conn.execute(insert(messages), {
        "message_id": f"msg_{i:016x}", "tenant_id": "r", "kind": "broadcast", "sender_id": "s", "message_type": "info",
        "priority": 2, "content": "x", "context": {}, "created_at": old,
    })  # fmt: skip
    agent = {"agent_id": "a", "tenant_id": "r", "registered_at": old - timedelta(minutes=1)}
    lent = shared_ops.lend(conn, agent, ("broadcast",), 2, timedelta(seconds=30), NOW)
    message_ops.purge(conn, NOW - timedelta(days=7), NOW)
    kept = sorted(conn.execute(select(messages.c.seq)).scalars())
    agent_ops.remove(conn, "a")  # deregistered: what it was lent no longer holds anything back
    message_ops.purge(conn, NOW - timedelta(days=7), NOW)
    return kept, [r["seq"] for r in lent], conn.execute(select(func.count()).select_from(messages)).scalar_one()


async def test_retention_keeps_messages_lent_to_a_stream_until_the_agent_goes(store: Store):
    kept, lent, left = await store.write(_retained_while_lent)
    assert len(lent) == 2 and kept == lent and left == 0


async def test_the_newest_seq_of_a_kind_is_one_backward_index_walk(store: Store):
    """A new agent's first broadcast pull starts at the newest broadcast before it registered; ``max(seq)`` over the
    tenant's messages walked all of them on the writer (100 ms at 200,000 messages)."""
    found = await store.write(_latest_seqs)
    seqs = found["seqs"]
    assert found["broadcast_before_3"] == seqs[1] and found["topic"] == seqs[3] and found["any"] == seqs[4]
    assert found["other_tenant"] == 0
    if "plan" in found:
        assert "ix_messages_fanout (tenant_id=? AND kind=?)" in found["plan"] and "TEMP B-TREE" not in found["plan"], found


def _a2a_task(conn: Connection, task_id: str) -> None:
    row = {"task_id": task_id, "tenant_id": "t", "agent_id": "a", "caller": "c", "context_id": "ctx", "state": "s0", "status_message": None,
           "history": [], "artifacts": [], "metadata": {}, "message_only": False, "turn_task_id": "turn", "created_at": NOW, "updated_at": NOW}  # fmt: skip
    a2a_ops.insert_task(conn, row)
    a2a_ops.append_event(conn, task_id, {"state": "s0"}, False, NOW)


def _a2a_move(conn: Connection, task_id: str, n: int) -> None:
    task = a2a_ops.get(conn, task_id, lock=True)
    a2a_ops.save(conn, task, {"state": f"s{n}"})
    a2a_ops.append_event(conn, task_id, {"state": f"s{n}"}, False, NOW)


def _a2a_snapshot(conn: Connection, task_id: str) -> tuple[str, str]:
    task = a2a_ops.get(conn, task_id, last_seq=True)
    newest = conn.execute(select(a2a_events.c.body).where(a2a_events.c.seq == task["last_seq"])).scalar_one()
    return task["state"], newest["state"]


async def test_an_a2a_task_and_its_newest_event_are_read_as_of_one_instant(store: Store):
    """A stream shows the task, then the events after its newest. Read in two statements on PostgreSQL (READ
    COMMITTED), a task read just before it completed and a position read just after: that stream waited forever."""
    await store.write(_a2a_task, "a2a_snapshot")
    moves = [store.write(_a2a_move, "a2a_snapshot", n) for n in range(1, 151)]
    seen = await asyncio.gather(*moves, *(store.read(_a2a_snapshot, "a2a_snapshot") for _ in range(150)))
    snapshots = seen[150:]
    assert all(state == newest for state, newest in snapshots), [s for s in snapshots if s[0] != s[1]]


EXPRESSION_INDEXES = {"ix_inbox_ready", "ix_tasks_claimable"}  # (priority DESC): Alembic cannot compare expression indexes


def _schema_drift(conn: Connection) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from agora.store.partitions import is_partition
    from agora.store.schema import FULL_TEXT_COLUMNS, FULL_TEXT_INDEXES, FULL_TEXT_TABLES, metadata

    def comparable(obj, name, type_, _reflected, _compare_to) -> bool:
        if type_ == "table":  # a partition is part of its table (store/partitions.py)
            return not (str(name).startswith(FULL_TEXT_TABLES) or is_partition(str(name)))
        if type_ == "column":
            return (obj.table.name, name) not in FULL_TEXT_COLUMNS
        return not (type_ == "index" and name in EXPRESSION_INDEXES | FULL_TEXT_INDEXES)

    return compare_metadata(MigrationContext.configure(conn, opts={"include_object": comparable}), metadata)


async def test_migrations_build_exactly_the_declared_schema(store: Store):
    """A column added to schema.py without a migration (or the reverse) fails here, on both engines."""
    assert await store.read(_schema_drift) == []


def _partial_indexes(conn: Connection) -> tuple[dict[str, bool], dict[str, bool]]:
    """Whether each index is partial: as schema.py declares it, and as the migrations built it."""
    from agora.store.schema import metadata

    declared = {
        index.name: bool(index.dialect_options[conn.dialect.name]["where"] is not None)
        for table in metadata.tables.values()
        for index in table.indexes
    }
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    else:
        rows = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
    built = {name: " WHERE " in sql.upper() for name, sql in rows if name in declared}
    return declared, built


async def test_migrations_build_each_index_partial_exactly_where_declared(store: Store):
    """Alembic's comparison above ignores an index's WHERE clause, and which indexes are partial is a write cost
    (migration 0017: a NULL entry in every capability task's assignee index cost each assign, claim and completion)."""
    declared, built = await store.read(_partial_indexes)
    assert built == declared
    assert {"ix_tasks_assignee", "ix_tasks_claimed_by", "ix_tasks_preferred", "ix_inbox_acked"} <= {n for n, p in built.items() if p}


def _task(task_id: str, tenant_id: str) -> dict:
    return {
        "task_id": task_id, "tenant_id": tenant_id, "task_type": "t", "status": "pending", "assignee": None,
        "required_capabilities": ["x"], "preferred_agent_id": None, "claimed_by": None, "payload": {"n": [1, "ü"]},
        "result": None, "progress": 0, "notes": None, "priority": 2, "deadline": NOW, "max_attempts": 3, "attempts": 0,
        "retry_backoff_seconds": None, "depends_on": [], "run_if_dependency_fails": True, "has_dependents": False,
        "workflow_id": None, "idempotency_key": None, "lease_token": None, "fencing_token": 0, "lease_expires_at": None,
        "last_error": None, "created_by": "me", "created_at": NOW, "updated_at": NOW, "available_at": NOW,
        "started_at": None, "finished_at": None,
    }  # fmt: skip


def _prepared_vs_core(conn: Connection) -> tuple[list[dict], list[dict], int, int]:
    """The same rows read by a Prepared statement and by conn.execute; rowcounts of an UPDATE through each."""
    row = _task("task_00000000000000aa", "p")
    add_tenant(conn, "p")
    Prepared(insert(tasks)).execute(conn, row)
    by_id = select(tasks).where(tasks.c.task_id == bindparam("task_id"), tasks.c.status == "pending")
    prepared = Prepared(by_id).rows(conn, {"task_id": row["task_id"]})
    core = [dict(r) for r in conn.execute(by_id, {"task_id": row["task_id"]}).mappings()]
    move = Prepared(update(tasks).where(tasks.c.task_id == bindparam("b_task_id")))
    return prepared, core, move.execute(conn, {"b_task_id": row["task_id"], "progress": 5}), move.execute(conn, {"b_task_id": "nope", "progress": 5})


async def test_prepared_statements_read_and_write_as_core_does(store: Store):
    prepared, core, moved, missed = await store.write(_prepared_vs_core)
    assert prepared == core and len(core) == 1
    assert prepared[0]["payload"] == {"n": [1, "ü"]} and prepared[0]["deadline"] == NOW  # JSON, an aware UTC time
    assert prepared[0]["run_if_dependency_fails"] is True
    assert (moved, missed) == (1, 0)
    with pytest.raises(Conflict):  # a duplicate key is wrapped as SQLAlchemy's IntegrityError, then a 409
        await store.write(lambda conn: Prepared(insert(tenants)).execute(conn, {"tenant_id": "p", "name": "p", "created_at": NOW}))


def _plan(conn: Connection, stmt: Any, values: dict[str, str], analyze: bool = True) -> str:
    """How the database runs ``stmt``: on PostgreSQL as a prepared statement planned for any parameter values (what
    it switches to after a few executions); ``values`` are SQL literals for its parameters. ``analyze=False`` plans
    without statistics, as SQLite does until something runs ANALYZE."""
    if analyze:
        conn.exec_driver_sql("ANALYZE tasks")
    compiled = stmt.compile(dialect=conn.dialect)
    args = [values.get(name) or f"'{compiled.params[name]}'" for name in compiled.positiontup or []]
    if conn.dialect.name == "sqlite":
        return "\n".join(r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", tuple(a.strip("'") for a in args)))
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql(f"PREPARE generic_plan AS {compiled.string}")
    try:
        return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE generic_plan({', '.join(args)})"))
    finally:
        conn.exec_driver_sql("DEALLOCATE generic_plan")


def _generic_claim_plan(conn: Connection) -> str:
    """The claim's plan over 3,000 pending tasks."""
    add_tenant(conn, "g")
    conn.execute(insert(tasks), [_task(f"task_{i:016x}", "g") for i in range(3000)])
    values = {"tenant_id": "'g'", "now": "now()", "agent_id": "'a'", "agent_name": "'a'", "limit": "1"}
    return _plan(conn, task_ops._claim_statement(0, False, True).stmt, values)


def _by_id_plans(conn: Connection) -> tuple[str, str]:
    """SQLite's plans (no statistics) of a reply's release of its original and of the lookup of messages acked by id."""
    from agora.store.ops import messages as message_ops

    ids = "'[\"msg_1\"]'"
    release = _plan(conn, message_ops._release("sqlite").stmt, {"b_tenant_id": "'t'", "answered": ids}, analyze=False)
    acked = _plan(conn, message_ops._inbox_seqs_statement("sqlite").stmt, {"agent_id": "'a'", "message_ids": ids}, analyze=False)
    return release, acked


async def test_a_reply_and_an_ack_by_id_look_their_messages_up_by_id(tmp_path):
    """Beside the listed ids, the tenant's (or the agent's) equality looked narrow to SQLite's planner: each reply
    walked every message of its tenant to release its original (28 ms a reply at 100,000 messages, on the one
    writer), and each ack by id every delivery the agent ever had."""
    s = open_store(None, tmp_path)
    await s.start()
    try:
        release, acked = await s.read(_by_id_plans)
    finally:
        await s.close()
    assert "SEARCH messages USING INDEX sqlite_autoindex_messages_1 (message_id=?)" in release and "tenant" not in release, release
    assert "sqlite_autoindex_messages_1 (message_id=?)" in acked and "(agent_id=? AND seq=?)" in acked, acked


async def test_the_least_loaded_read_walks_the_capable_agents_not_the_tenants(tmp_path):
    """Beside the capable agents' list, the tenant's and status's equalities looked narrow to SQLite's planner: an
    assign walked every active agent of its tenant (8 ms for 600 capable agents among 10,000, on the one writer)."""
    s = open_store(None, tmp_path)
    await s.start()
    try:
        plan = await s.read(lambda conn: _plan(conn, task_ops._loads_statement("sqlite").stmt, {"capabilities": "'[\"c\"]'"}, analyze=False))
    finally:
        await s.close()
    assert "SEARCH agents USING INDEX ix_agents_tenant_id (tenant_id=? AND agent_id=?)" in plan and "ix_agents_tenant_status" not in plan, plan


async def test_a_claim_walks_the_claimable_index_under_a_generic_plan(postgres_url):
    """A status bound as a parameter kept PostgreSQL's generic plan off the partial index (WHERE status = 'pending'):
    each claim sorted the whole queue, and 10,000 queued tasks were claimed at 58/s instead of ~450/s."""
    s = open_store(fresh_postgres_url(postgres_url), None)
    await s.start()
    try:
        plan = await s.write(_generic_claim_plan)
    finally:
        await s.close()
    assert "ix_tasks_claimable" in plan and "Sort" not in plan, plan


def _recent_durations_plan(conn: Connection) -> str:
    """The plan of an assign's completion estimate over 3,000 completed tasks of its type."""
    add_tenant(conn, "g")
    done = {"status": "completed", "started_at": NOW, "finished_at": NOW}
    conn.execute(insert(tasks), [{**_task(f"task_{i:016x}", "g"), **done} for i in range(3000)])
    return _plan(conn, task_ops._recent_duration_statement(conn.dialect.name).stmt, {"tenant_id": "'g'", "task_type": "'t'"})


async def test_an_assigns_completion_estimate_reads_only_the_last_durations(store: Store):
    """Without its index the estimate sorted every completed task of the type: assigns went from 880/s on a fresh
    hub to 126/s after 10,000 completions."""
    plan = await store.write(_recent_durations_plan)
    assert "ix_tasks_recent_completions" in plan and "Sort" not in plan and "TEMP B-TREE" not in plan, plan


def _durations_of_recent_completions(conn: Connection) -> Any:
    """30 completions of type t: the 10 oldest took 100 s, the 20 latest 1, 2, … 20 s (mean 10.5 s)."""
    add_tenant(conn, "g")
    rows = []
    for i in range(30):
        took = 100 if i < 10 else i - 9
        finished = NOW + timedelta(minutes=i)
        rows.append({**_task(f"task_{i:016x}", "g"), "status": "completed", "started_at": finished - timedelta(seconds=took, microseconds=250_000), "finished_at": finished - timedelta(microseconds=250_000 * (i % 2))})
    conn.execute(insert(tasks), rows)
    return task_ops.estimated_duration(conn, "g", "t"), task_ops.estimated_duration(conn, "g", "other")


async def test_an_assigns_completion_estimate_is_the_mean_of_the_last_twenty_durations(store: Store):
    estimate, unknown = await store.write(_durations_of_recent_completions)
    assert abs(estimate.total_seconds() - (10.5 + 0.25 - 0.125)) < 0.001, estimate
    assert unknown is None


def test_the_claim_states_every_task_status_literally():
    """A status bound as a parameter costs a generic plan its partial index on PostgreSQL (above), and on SQLite made
    the claim re-prepare on every run: 265 µs instead of 58 for its SELECT over 10,000 queued tasks."""
    from sqlalchemy.dialects import sqlite

    for preferred in (False, True):
        sql = str(task_ops._claim_statement(0, preferred, False).stmt.compile(dialect=sqlite.dialect()))
        assert "status = 'pending'" in sql and "status IN ('pending', 'in_progress')" in sql, sql
        assert not re.search(r"status (=|IN) \(?\?", sql), sql


def _batch_read_plan(conn: Connection) -> tuple[str, list[str]]:
    """The plan of a batch update's read over 3,000 tasks of one tenant, and what it reads for another tenant."""
    add_tenant(conn, "b")
    add_tenant(conn, "b2")
    conn.execute(insert(tasks), [_task(f"task_{i:016x}", "b") for i in range(3000)] + [_task("task_f000000000000000", "b2")])
    ids = ["task_0000000000000007", "task_0000000000000003", "task_f000000000000000", "task_0000000000000007"]
    found = task_ops.lock_many(conn, ids, "b")
    ids_literal = "ARRAY['task_0000000000000003']" if conn.dialect.name == "postgresql" else '\'["task_0000000000000003"]\''
    statement = task_ops._lock_many_statement(conn.dialect.name).stmt
    return _plan(conn, statement, {"task_ids": ids_literal}, analyze=False), list(found)


async def test_a_batch_update_reads_its_tasks_by_id_and_only_in_its_tenant(store: Store):
    """With the tenant in its WHERE clause, SQLite (no statistics) walked the tenant's whole status index instead
    of looking the ids up: 6.5 ms for 50 of 30,000 tasks instead of 0.23 ms, a quarter of the writer's time."""
    plan, found = await store.write(_batch_read_plan)
    assert found == ["task_0000000000000003", "task_0000000000000007"]  # in id order; the other tenant's is left out
    assert ("sqlite_autoindex_tasks_1" in plan or "tasks_pkey" in plan) and "ix_tasks_tenant" not in plan, plan


def _many_tasks(conn: Connection) -> list[dict]:
    add_tenant(conn, "m")
    Prepared(insert(tasks)).execute_many(conn, [_task(f"task_{i:016x}", "m") for i in range(300)])
    return [dict(r) for r in conn.execute(select(tasks).where(tasks.c.tenant_id == "m").order_by(tasks.c.task_id)).mappings()]


def _many_tasks_one_twice(conn: Connection) -> None:
    Prepared(insert(tasks)).execute_many(conn, [_task(f"task_{i:016x}", "m") for i in (1000, 1001, 7)])


def _many_tasks_unless_there(conn: Connection) -> list[str]:
    """INSERT … ON CONFLICT DO NOTHING of 300 rows, 100 of them stored already (and one twice in the batch)."""
    skipping = Prepared(upsert_insert(conn, tasks).on_conflict_do_nothing(index_elements=["task_id"]))
    skipping.execute_many(conn, [_task(f"task_{i:016x}", "m") for i in [*range(200, 500), 450]])
    return list(conn.execute(select(tasks.c.task_id).order_by(tasks.c.task_id)).scalars())


async def test_a_prepared_statement_runs_once_per_row_as_core_does(store: Store):
    """300 rows: on SQLite several multi-row INSERTs (256, 32, 8, 4 rows); every row is stored as given, a duplicate
    key fails the call as Core's would, leaving none of its rows, and ON CONFLICT DO NOTHING skips only the rows
    already there."""
    rows = await store.write(_many_tasks)
    assert [r["task_id"] for r in rows] == [f"task_{i:016x}" for i in range(300)]
    assert all(r["payload"] == {"n": [1, "ü"]} and r["deadline"] == NOW and r["tenant_id"] == "m" for r in rows)
    with pytest.raises(Conflict):
        await store.write(_many_tasks_one_twice)
    count = await store.read(lambda conn: conn.execute(select(func.count()).select_from(tasks)).scalar_one())
    assert count == 300
    assert await store.write(_many_tasks_unless_there) == [f"task_{i:016x}" for i in range(500)]


def test_a_timestamp_binds_and_reads_on_sqlite_as_sqlalchemys_own_steps_would():
    """The one-step bind must write exactly SQLAlchemy's text (SQL compares SQLite timestamps as text), and the
    one-step read must give back what SQLAlchemy's parse plus the UTC step gave."""
    from datetime import timedelta

    from sqlalchemy.dialects import sqlite
    from sqlalchemy.types import TypeDecorator

    from agora.store.types import UtcDateTime

    dialect = sqlite.dialect()
    column = UtcDateTime().dialect_impl(dialect)
    fast, own = column.bind_processor(dialect), TypeDecorator.bind_processor(column, dialect)
    for value in (NOW, NOW.replace(microsecond=5), datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), None):
        assert fast(value) == own(value), value
    with pytest.raises(ValueError, match="naive"):
        fast(datetime(2026, 1, 1))
    read, own_read = column.result_processor(dialect, None), TypeDecorator.result_processor(column, dialect, None)
    for text in ("2026-01-01 12:00:00.000005", "2026-01-01 12:00:00", "2026-01-01 12:00:00.5", fast(NOW), None):
        assert read(text) == own_read(text) and (text is None or read(text).tzinfo is timezone.utc), text


def _point_reads() -> dict[Any, list[tuple[Any, ...]]]:
    """Every store operation marked ``point_read``, with the arguments of each way it looks rows up."""
    import importlib
    import inspect
    import pkgutil

    import agora.store.ops as ops

    marked = {}
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"agora.store.ops.{info.name}")
        marked |= {fn: None for fn in vars(module).values() if inspect.isfunction(fn) and getattr(fn, "point_read", False)}
    from agora.store.ops import a2a as a2a_ops
    from agora.store.ops import agents as agent_ops
    from agora.store.ops import chat as chat_ops
    from agora.store.ops import keys as key_ops
    from agora.store.ops import messages as message_ops
    from agora.store.ops import oauth as oauth_ops
    from agora.store.ops import search as search_ops
    from agora.store.ops import sessions as session_ops
    from agora.store.ops import system as system_ops
    from agora.store.ops import task_output as output_ops
    from agora.store.ops import users as user_ops

    calls = {
        agent_ops.resolve: [(None, "agent_0000000000000000"), ("t", "agent_0000000000000000"), (None, "bob"), ("t", "bob")],
        a2a_ops.get: [("a2a_0000000000000000",)],
        a2a_ops.last_seq: [("a2a_0000000000000000",)],
        task_ops.get: [("task_0000000000000000", None), ("task_0000000000000000", "t")],
        key_ops.lookup: [("0" * 64, NOW)],
        user_ops.by_email: [("bob@example.com",)],
        user_ops.get: [("usr_0000000000000000",)],
        user_ops.link_user: [("0" * 64, NOW)],
        user_ops.sso_member: [("http://127.0.0.1:1", "alice")],
        session_ops.lookup: [("0" * 64, NOW)],
        oauth_ops.client: [("00000000-0000-0000-0000-000000000000",)],
        oauth_ops.pending_grant: [("0" * 64, NOW)],
        oauth_ops.code: [("0" * 64, NOW)],
        oauth_ops.token: [("0" * 64, "access", NOW)],
        system_ops.get: [("halt",)],
        message_ops.any_reply_due: [(NOW,)],
        task_ops.any_expired: [(NOW,)],
        chat_ops.memory: [("conv_000000000000000000000000", "t", NOW), ("conv_000000000000000000000000", None, NOW)],
        search_ops.last_embedded_at: [()],
        output_ops.after_few: [("task_0000000000000000", None, 0, 64), ("task_0000000000000000", "t", 5, 64)],
    }
    assert set(calls) == set(marked), "a point read was marked or unmarked: say here how it is called"
    return calls


def _point_read_plans(conn: Connection) -> list[str]:
    """The plan of every statement each point read runs, traced on SQLite (with its values)."""
    sqls: list[str] = []
    raw = conn.connection.driver_connection
    raw.set_trace_callback(sqls.append)
    for op, calls in _point_reads().items():
        for args in calls:
            with contextlib.suppress(NotFound):  # the tables are empty: only the statements matter
                op(conn, *args)
    raw.set_trace_callback(None)
    selects = [sql for sql in sqls if sql.lstrip().upper().startswith("SELECT")]
    return ["\n".join(r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")) + f"\n  ({sql})" for sql in selects]


async def test_a_point_read_runs_on_the_callers_thread_and_looks_up_by_key_only(tmp_path):
    """SQLite runs a ``point_read`` on the event loop's thread (two hand-offs to a reader thread cost more than the
    lookup: A2A round trips went from ~120/s to ~160/s): so each must be a lookup through an index, never a scan
    that could hold the loop up."""
    import threading

    from agora.store.base import point_read

    s = open_store(None, tmp_path)
    await s.start()
    try:
        assert await s.read(point_read(lambda conn: threading.get_ident())) == threading.get_ident()
        assert await s.read(lambda conn: threading.get_ident()) != threading.get_ident()
        plans = await s.read(_point_read_plans)
    finally:
        await s.close()
    assert len(plans) >= 10
    for plan in plans:
        assert "SEARCH" in plan and not re.search(r"^SCAN (?!CONSTANT)", plan, re.M), plan


_BACKEND = Prepared(select(func.pg_backend_pid().label("pid")))
_LOCK_AND_WAIT = Prepared(select(func.pg_advisory_xact_lock(bindparam("key")), func.pg_sleep(bindparam("seconds"))))


async def test_an_operation_cancelled_mid_statement_leaves_no_connection_holding_its_transaction(postgres_url: str):
    """A caller that goes away mid-operation cancels it while asyncpg runs a Prepared statement: that connection is
    dropped (the server rolls its transaction back), never handed to the next operation with locks still held."""
    from agora.store.postgres import PostgresStore

    store = PostgresStore(fresh_postgres_url(postgres_url), pg_pool_size=1)
    await store.start()
    try:
        first = await store.read(_BACKEND.scalar, {})
        cut = asyncio.ensure_future(store.write(_LOCK_AND_WAIT.rows, {"key": 7, "seconds": 5}))
        await asyncio.sleep(0.5)  # the lock is held and the sleep runs
        cut.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cut
        again = await asyncio.wait_for(store.write(_LOCK_AND_WAIT.rows, {"key": 7, "seconds": 0}), 5)  # the lock is free
        assert again and await store.read(_BACKEND.scalar, {}) != first  # another connection: the cut one is gone
    finally:
        await store.close()


async def test_presence_of_many_agents_is_written_at_once_and_wakes_only_the_offline(store: Store):
    """``touch_many`` (the live streams' presence, core/presence): every agent named gets its heartbeat; an offline
    one is active again and is the one returned; a paused one stays paused; one that is gone is skipped."""
    from agora.core.services.agents import stored_fields
    from agora.store.ops import agents as agent_ops
    from agora_sdk.wire.agents import RegisterAgent

    def setup(conn: Connection) -> list[str]:
        add_tenant(conn, "p")
        made = [agent_ops.upsert(conn, "p", stored_fields(RegisterAgent(agent_name=f"a{i}")), NOW, None)[0]["agent_id"] for i in range(3)]
        agent_ops.set_status(conn, "p", [made[0]], "offline")
        agent_ops.set_status(conn, "p", [made[2]], "paused")
        return made

    made = await store.write(setup)
    later = NOW + timedelta(minutes=1)
    back = await store.write(agent_ops.touch_many, [*made, "agent_gone"], later)
    rows = await store.read(agent_ops.by_ids, made)
    assert [(r["agent_id"], r["status"]) for r in back] == [(made[0], "offline")]
    assert {r["agent_id"]: (r["status"], r["last_heartbeat"]) for r in rows} == {
        made[0]: ("active", later), made[1]: ("active", later), made[2]: ("paused", later)
    }


async def test_silent_agents_are_found_by_a_read_and_only_those_still_silent_go_offline(store: Store):
    """Presence looks at every agent in a read (on SQLite it held the one writer ~40 ms every few seconds at 100,000
    agents); the write then takes only the agents it found, each again only if still silent: one that sent a heartbeat
    in between stays, and one found silent is all the write looks at."""
    from agora.core.services.agents import stored_fields
    from agora.store.ops import agents as agent_ops
    from agora_sdk.wire.agents import RegisterAgent

    def setup(conn: Connection) -> list[str]:
        add_tenant(conn, "q")
        made = [agent_ops.upsert(conn, "q", stored_fields(RegisterAgent(agent_name=f"s{i}")), NOW, None)[0]["agent_id"] for i in range(3)]
        agent_ops.set_status(conn, "q", [made[2]], "paused")  # an admin's status: silence leaves it
        return made

    made = await store.write(setup)
    since = NOW + timedelta(minutes=1)
    found = await store.read(agent_ops.silent, since)
    assert set(made[:2]) <= set(found) and made[2] not in found
    await store.write(agent_ops.touch_many, [made[1]], since + timedelta(seconds=1))  # its heartbeat comes meanwhile
    went = await store.write(agent_ops.mark_silent_offline, [made[0], made[1]], since)
    assert [(r["agent_id"], r["status"]) for r in went] == [(made[0], "active")]
    statuses = {r["agent_id"]: r["status"] for r in await store.read(agent_ops.by_ids, made)}
    assert statuses == {made[0]: "offline", made[1]: "active", made[2]: "paused"}


async def test_presence_takes_any_number_of_silent_agents_in_one_write(store: Store):
    """After a long outage every agent may be silent at once: the ids go as one bound list (a parameter each would
    pass PostgreSQL's limit of 32,767), so the write neither fails nor is retried forever."""
    from agora.store.ops import agents as agent_ops

    assert await store.write(agent_ops.mark_silent_offline, [f"agent_{i:024x}" for i in range(40_000)], NOW) == []


def _direct_draft(n: int, sender: str) -> dict[str, Any]:
    """A direct message's row as the messaging service drafts it (its tenant and recipient come from the send)."""
    return {
        "message_id": f"msg_{n:016x}", "kind": "direct", "sender_id": sender, "topic": None, "message_type": "info",
        "performative": None, "intent": None, "priority": 2, "content": {"n": n}, "correlation": None,
        "conversation_id": None, "expected": None, "context": {}, "idempotency_key": None, "created_at": NOW,
        "expires_at": None, "reply_due_at": None,
    }  # fmt: skip


async def test_a_direct_send_is_handed_out_only_when_no_earlier_delivery_of_the_recipient_is_due(store: Store):
    """A message a live stream takes as it is sent (``handed_until``) must not overtake a delivery the stream would read
    first: one visible, unacked and not expired."""
    from agora.core.services.messaging import _DIRECT_SEND, _RECIPIENT
    from agora.store.ops import messages as message_ops
    from agora.store.schema import inbox, messages

    agent_id, until = "agent_00000000000000aa", NOW + timedelta(seconds=30)

    def setup(conn: Connection) -> None:
        add_agent(conn, add_tenant(conn, "t-hand"), agent_id, "reader")

    def send(n: int, handed_until: datetime | None = until) -> Any:
        def op(conn: Connection) -> dict[str, Any] | None:
            return message_ops.send_direct(
                conn, _RECIPIENT[True, False], _DIRECT_SEND[True, False, False], {"ref": agent_id, "tenant_id": None},
                _direct_draft(n, "system"), NOW, handed_until,
            )
        return store.write_statement(op)

    def delivery(seq: int) -> Any:
        return store.read(lambda conn: conn.execute(select(inbox.c.visible_at, inbox.c.delivery_count).where(inbox.c.seq == seq)).one())

    def change(stmt: Any) -> Any:
        return store.write(lambda conn: conn.execute(stmt))

    await store.write(setup)
    first = await send(1)
    assert first["handed"] and first["recipient_id"] == agent_id
    assert tuple(await delivery(first["seq"])) == (until, 1)
    second = await send(2)  # the first is handed out (hidden), not due: no reason to wait
    assert second["handed"] and second["seq"] > first["seq"]
    assert (await send(3, None))["handed"] is False  # nobody asked to take it: it waits in the inbox, due
    fourth = await send(4)
    assert fourth["handed"] is False  # the third is due: a reader takes it first
    assert tuple(await delivery(fourth["seq"])) == (NOW, 0)
    # The third and fourth acked; the first back in view (its timeout passed) but expired: nothing due any more.
    await change(update(inbox).where(inbox.c.delivery_count == 0).values(acked_at=NOW))
    await change(update(inbox).where(inbox.c.seq == first["seq"]).values(visible_at=NOW - timedelta(seconds=1)))
    assert (await send(5))["handed"] is False  # the first is due again
    await change(update(inbox).where(inbox.c.delivery_count == 0).values(acked_at=NOW))
    await change(update(messages).where(messages.c.seq == first["seq"]).values(expires_at=NOW - timedelta(seconds=1)))
    assert (await send(6))["handed"] is True
    assert await send(7, None) is not None and (await send(8))["handed"] is False


async def test_direct_sends_together_answer_each_in_its_place_and_are_kept_all_or_none(store: Store):
    """``send_direct_all``: on PostgreSQL one pipelined call (one round trip, one commit). A send to nobody is None in
    its place; a batch where one send fails keeps none of them (so each can be run again alone)."""
    from agora.core.services.messaging import _DIRECT_SEND, _RECIPIENT
    from agora.store.ops import messages as message_ops
    from agora.store.schema import messages

    agent_id, nobody = "agent_00000000000000ab", "agent_00000000000000ff"
    head = (_RECIPIENT[True, False], _DIRECT_SEND[True, False, False])
    await store.write(lambda conn: add_agent(conn, add_tenant(conn, "t-all"), agent_id, "taker"))

    def send(n: int, to: str = agent_id) -> Any:
        return ({"ref": to, "tenant_id": None}, _direct_draft(n, "system"), NOW, None)

    def stored() -> Any:
        return store.read(lambda conn: sorted(conn.execute(select(messages.c.message_id)).scalars()))

    sent = await store.write_statement(message_ops.send_direct_all, *head, [send(1), send(2, nobody), send(3)])
    assert [row and row["message_id"] for row in sent] == ["msg_0000000000000001", None, "msg_0000000000000003"]
    assert sent[0]["recipient_id"] == agent_id and sent[2]["seq"] > sent[0]["seq"] and not sent[0]["handed"]
    assert await stored() == ["msg_0000000000000001", "msg_0000000000000003"]
    with pytest.raises(Conflict):  # the third repeats a stored message's id: nothing of the batch stays
        await store.write_statement(message_ops.send_direct_all, *head, [send(4), send(5), send(3)])
    assert await stored() == ["msg_0000000000000001", "msg_0000000000000003"]


async def test_writes_together_share_one_call_and_a_failing_one_fails_alone(store: Store):
    """``write_together``: items brought at once to the same operation go in one call on PostgreSQL (SQLite's writer
    commits them together anyway, one call each); when that call fails, each item is run again alone, so only the
    failing one's caller sees the error."""
    calls: list[list[str]] = []

    def shout(_conn: Connection, _tag: str, items: list[str]) -> list[str]:
        calls.append(list(items))
        if "bad" in items:
            raise Conflict("bad item")
        return [item.upper() for item in items]

    outcomes = await asyncio.gather(*(store.write_together(shout, ("tag",), item) for item in ("a", "b", "bad", "c")), return_exceptions=True)
    assert outcomes[:2] == ["A", "B"] and isinstance(outcomes[2], Conflict) and outcomes[3] == "C"
    if store.dialect == "postgresql":
        assert calls == [["a", "b", "bad", "c"], ["a"], ["b"], ["bad"], ["c"]], calls
    else:  # (the writer's own batch, then its isolated retry, each operation with its one item)
        assert all(len(items) == 1 for items in calls), calls
    assert await store.write_together(shout, ("tag",), "d") == "D"  # a batch of one, after
    calls.clear()
    many = [f"m{i}" for i in range(11)]
    assert await asyncio.gather(*(store.write_together(shout, ("tag",), item) for item in many)) == [m.upper() for m in many]
    if store.dialect == "postgresql":  # full batches go on without the rest: PostgreSQL runs each on a backend
        from agora.store.postgres import TOGETHER_AT_MOST

        assert [len(items) for items in calls] == [TOGETHER_AT_MOST, len(many) - TOGETHER_AT_MOST], calls


async def test_rows_inserted_together_give_their_keys_in_order_and_are_kept_all_or_none(store: Store):
    """``inserts.insert_all`` (how an A2A send writes its task, turn and events on both engines): each table's rows,
    the hub events after them, and the keys of the ``returning`` table's rows in their order (a2a_events' seqs); a
    row that cannot be inserted leaves none of them."""
    from agora.core.services.tasks import new_task_row
    from agora.store.ops import inserts
    from agora.store.schema import a2a_tasks, events

    turn = new_task_row("t-ins", "a2a.message", {"n": 1}, "caller", NOW)
    task = {
        "task_id": "a2a_00000000000000i1", "tenant_id": "t-ins", "agent_id": "agent_00000000000000i1", "caller": "caller",
        "context_id": "ctx_i1", "state": "submitted", "status_message": None, "history": [{"messageId": "m1"}], "artifacts": [],
        "metadata": {}, "message_only": False, "turn_task_id": turn["task_id"], "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    moves = [{"task_id": task["task_id"], "body": {"n": n}, "final": False, "created_at": NOW} for n in range(3)]
    hub_event = {"tenant_id": "t-ins", "type": "task_created", "visible_to": None, "data": {"task_id": turn["task_id"]}, "created_at": NOW}

    def written(conn: Connection) -> tuple[Any, ...]:
        return (
            conn.execute(select(func.count()).select_from(tasks).where(tasks.c.task_id == turn["task_id"])).scalar_one(),
            conn.execute(select(a2a_tasks.c.history).where(a2a_tasks.c.task_id == task["task_id"])).scalar_one_or_none(),
            [(r.seq, r.body) for r in conn.execute(select(a2a_events.c.seq, a2a_events.c.body).where(a2a_events.c.task_id == task["task_id"]).order_by(a2a_events.c.seq))],
            conn.execute(select(func.count()).select_from(events).where(events.c.tenant_id == "t-ins")).scalar_one(),
        )

    await store.write(add_tenant, "t-ins")
    again = [(tasks, [new_task_row("t-ins", "a2a.message", {}, "caller", NOW)]), (a2a_tasks, [task])]  # (task twice: refused below)
    seqs = await store.write_statement(inserts.insert_all, [(tasks, [turn]), (a2a_tasks, [task]), (a2a_events, moves)], [hub_event], a2a_events)
    assert len(seqs) == 3 and seqs == sorted(seqs)
    assert await store.read(written) == (1, [{"messageId": "m1"}], [(seq, {"n": n}) for n, seq in enumerate(seqs)], 1)
    with pytest.raises(Conflict):
        await store.write_statement(inserts.insert_all, again, [hub_event], tasks)
    assert await store.read(written) == (1, [{"messageId": "m1"}], [(seq, {"n": n}) for n, seq in enumerate(seqs)], 1)


async def test_an_a2a_turn_ends_at_once_only_while_the_task_is_open_and_the_lease_the_callers(store: Store):
    """``a2a_statements.end_turn`` (one statement on PostgreSQL, a few on SQLite) changes nothing (no row, no event) when the A2A task has ended its
    stream or the lease is not the caller's; otherwise the task (the message with the task's ids, in its history
    too), its event, the turn, its history and its hub event, all at once. The task and its turn are written by
    ``inserts.insert_all``, as a send writes them."""
    from agora.core.services.tasks import new_task_row
    from agora.store.ops import a2a_statements, inserts
    from agora.store.schema import a2a_tasks, events, task_history

    agent_id, token, ends = "agent_00000000000000ab", "lease_0123", ("completed", "input_required")
    turn = new_task_row("t-turn", "a2a.message", {}, "caller", NOW, assignee=agent_id)
    turn |= task_ops.moved_to("in_progress", NOW, task_ops.lease_values(turn, agent_id, token, NOW + timedelta(seconds=30), NOW))
    task = {
        "task_id": "a2a_0000000000000001", "tenant_id": "t-turn", "agent_id": agent_id, "caller": "caller", "context_id": "ctx_1",
        "state": "working", "status_message": None, "history": [{"messageId": "m1"}], "artifacts": [], "metadata": {},
        "message_only": False, "turn_task_id": turn["task_id"], "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip

    def setup(conn: Connection) -> None:
        add_agent(conn, add_tenant(conn, "t-turn"), agent_id, "turner")

    def counts(conn: Connection) -> tuple[Any, ...]:
        of = turn["task_id"]
        return (
            conn.execute(select(tasks.c.status).where(tasks.c.task_id == of)).scalar_one(),
            conn.execute(select(a2a_tasks.c.state).where(a2a_tasks.c.task_id == task["task_id"])).scalar_one(),
            conn.execute(select(func.count()).select_from(a2a_events).where(a2a_events.c.task_id == task["task_id"])).scalar_one(),
            conn.execute(select(func.count()).select_from(task_history).where(task_history.c.task_id == of)).scalar_one(),
            conn.execute(select(func.count()).select_from(events).where(events.c.type == "task_completed")).scalar_one(),
        )

    def end(lease: str, state: str = "completed", closed: tuple[str, ...] = ends) -> Any:
        said = {"messageId": "m2", "role": "ROLE_AGENT", "parts": [{"text": "done"}]}
        return store.write_statement(
            a2a_statements.end_turn, turn["task_id"], "t-turn", agent_id, lease, closed, state, f"TASK_STATE_{state.upper()}", said,
            "A2A completed", NOW, "2026-01-01T00:00:00Z",
        )  # fmt: skip

    await store.write(setup)
    keys = await store.write_statement(inserts.insert_all, [(tasks, [turn]), (a2a_tasks, [task])], [], tasks)
    assert keys == [turn["task_id"]]
    assert await store.read(counts) == ("in_progress", "working", 0, 0, 0)
    assert await end("lease_other") is None
    assert await end(token, closed=("working",)) is None  # the task has ended its stream (here: "working" does)
    assert await store.read(counts) == ("in_progress", "working", 0, 0, 0)
    moved, turned = await end(token)
    said = {"messageId": "m2", "role": "ROLE_AGENT", "parts": [{"text": "done"}], "taskId": task["task_id"], "contextId": "ctx_1"}
    assert (moved["state"], moved["status_message"], moved["history"], moved["has_push"]) == ("completed", said, [{"messageId": "m1"}, said], False)
    assert (turned["status"], turned["claimed_by"], turned["task_id"]) == ("completed", agent_id, turn["task_id"])
    body = await store.read(lambda conn: conn.execute(select(a2a_events.c.body).where(a2a_events.c.seq == moved["last_seq"])).scalar_one())
    status = {"state": "TASK_STATE_COMPLETED", "timestamp": "2026-01-01T00:00:00Z", "message": said}
    assert body == {"statusUpdate": {"taskId": task["task_id"], "contextId": "ctx_1", "status": status}}
    assert await store.read(counts) == ("completed", "completed", 1, 1, 1)
    assert await end(token) is None  # once only
