"""Retention per kind on both engines: what is old enough goes, a batch at a time, and nothing still needed goes with it
(a task an unfinished task depends on, a workflow's task, an A2A task's current turn, a workflow with unfinished work,
usage of a month whose invoice is open); ``agora store retention`` shows it and, with --apply, removes it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, func, insert, select

from agora.config import Settings
from agora.core import retention
from agora.store import Store, open_store, partitions
from agora.store.ops import tasks as task_ops
from agora.store.schema import (
    a2a_tasks,
    conversation_participants,
    conversations,
    events,
    market_usage,
    schedule_ticks,
    task_dependencies,
    task_history,
    tasks,
    workflow_step_tasks,
    workflow_steps,
    workflows,
)

from .conftest import fresh_postgres_url
from .test_store import store  # noqa: F401 - the fixture: both engines
from .test_tasks import ROOT

NOW = datetime(2026, 3, 10, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=40)


def _task(task_id: str, status: str, finished: datetime | None, workflow_id: str | None = None) -> dict[str, Any]:
    return {
        "task_id": task_id, "tenant_id": "default", "task_type": "job", "status": status, "assignee": None,
        "required_capabilities": [], "preferred_agent_id": None, "claimed_by": None, "payload": {}, "result": None,
        "progress": 0, "notes": None, "priority": 2, "deadline": None, "max_attempts": 3, "attempts": 1, "depends_on": [],
        "run_if_dependency_fails": False, "has_dependents": False, "workflow_id": workflow_id, "idempotency_key": None,
        "lease_token": None, "fencing_token": 0, "lease_expires_at": None, "last_error": None, "created_by": "test",
        "created_at": OLD, "updated_at": finished or OLD, "available_at": OLD, "started_at": OLD, "finished_at": finished,
    }  # fmt: skip


def _workflow(conn: Connection, workflow_id: str, status: str, finished: datetime | None, task_status: str) -> None:
    conn.execute(insert(workflows).values(
        workflow_id=workflow_id, tenant_id="default", workflow_name="wf", status=status, failure_policy="fail_fast", input={},
        metadata={}, assigned_agents=[], created_by="test", created_at=OLD, updated_at=OLD, finished_at=finished))  # fmt: skip
    conn.execute(insert(workflow_steps).values(
        workflow_id=workflow_id, name="only", position=0, kind="task", spec={}, depends_on=[], state="completed",
        agent_id=None, task_ids=[f"{workflow_id}-t"], item_results=[]))  # fmt: skip
    task_finished = None if task_status in task_ops.UNFINISHED else finished
    task_ops.create(conn, _task(f"{workflow_id}-t", task_status, task_finished, workflow_id), "test")
    conn.execute(insert(workflow_step_tasks).values(task_id=f"{workflow_id}-t", workflow_id=workflow_id, step="only", item=None))


def _usage(conn: Connection, month: str, ended: datetime) -> None:
    conn.execute(insert(market_usage).values(
        instance_id="inst", tenant_id="default", listing_id="lst", state="running", started_at=ended - timedelta(hours=1),
        ended_at=ended, micros=1, requests=0, month=month))  # fmt: skip


def seed(conn: Connection) -> None:
    for n in range(25):  # old finished tasks that may go: more than one batch of the smallest size
        task_ops.create(conn, _task(f"gone-{n}", "completed", OLD), "test")
    task_ops.create(conn, _task("recent", "completed", NOW - timedelta(days=1)), "test")
    task_ops.create(conn, _task("upstream", "completed", OLD), "test")  # an unfinished task depends on it
    task_ops.create(conn, _task("downstream", "pending", None), "test")
    conn.execute(insert(task_dependencies).values(task_id="downstream", depends_on_id="upstream"))
    task_ops.create(conn, _task("turn", "completed", OLD), "test")  # an A2A task's current turn
    conn.execute(insert(a2a_tasks).values(
        task_id="a2a-1", tenant_id="default", agent_id="a", caller="c", context_id="ctx", state="input-required",
        status_message=None, history=[], artifacts=[], metadata={}, message_only=False, turn_task_id="turn", created_at=OLD,
        updated_at=NOW))  # fmt: skip
    _workflow(conn, "wf-old", "completed", OLD, "completed")
    _workflow(conn, "wf-recent", "completed", NOW - timedelta(days=1), "completed")
    _workflow(conn, "wf-busy", "cancelled", OLD, "in_progress")  # a task of it still runs
    _usage(conn, "2026-01", datetime(2026, 1, 20, tzinfo=timezone.utc))
    _usage(conn, "2026-03", datetime(2026, 3, 1, tzinfo=timezone.utc))  # this month: its invoice is open
    for name, at in (("talk-old", OLD), ("talk-recent", NOW - timedelta(days=20))):  # conversations (30 days: the longer)
        conn.execute(conversations.insert().values(tenant_id="default", conversation_id=name, summary="", turns=1, started_at=at, last_activity_at=at))
        conn.execute(conversation_participants.insert().values(tenant_id="default", conversation_id=name, agent_id="agent_x"))
    for name, at in (("sched-old", OLD), ("sched-recent", NOW - timedelta(days=1))):  # a schedule's history (30 days)
        conn.execute(schedule_ticks.insert().values(
            schedule_id=name, tick_at=at, tenant_id="default", outcome="fired", manual=False, fired_at=at, recorded_at=at,
        ))  # fmt: skip


def left(conn: Connection) -> dict[str, Any]:
    return {
        "tasks": sorted(conn.execute(select(tasks.c.task_id)).scalars()),
        "history_of_gone": conn.execute(select(func.count()).where(task_history.c.task_id.like("gone-%"))).scalar_one(),
        "workflows": sorted(conn.execute(select(workflows.c.workflow_id)).scalars()),
        "steps": sorted(conn.execute(select(workflow_steps.c.workflow_id)).scalars()),
        "usage": sorted(conn.execute(select(market_usage.c.month)).scalars()),
        "links": conn.execute(select(func.count()).select_from(task_dependencies)).scalar_one(),
        "ticks": sorted(conn.execute(select(schedule_ticks.c.schedule_id)).scalars()),
        "conversations": sorted(conn.execute(select(conversations.c.conversation_id)).scalars()),
        "participants": sorted(conn.execute(select(conversation_participants.c.conversation_id)).scalars()),
    }


SETTINGS = Settings(task_retention_seconds=30 * 86_400, workflow_retention_seconds=30 * 86_400, usage_retention_seconds=86_400)


async def test_old_records_go_in_batches_and_what_is_still_needed_stays(store: Store, monkeypatch) -> None:  # noqa: F811
    await store.write(seed)
    kept = retention.policies(SETTINGS)
    assert await retention.preview(store, kept, NOW) == {
        "messages": 0, "events": 0, "a2a_tasks": 0, "tasks": 25, "workflows": 1, "usage": 1, "schedule_ticks": 1, "conversations": 1,
    }  # fmt: skip
    monkeypatch.setattr(retention, "FIRST_BATCH", 10)
    batches: list[tuple[str, int]] = []
    removed = await retention.purge(store, kept, NOW, lambda kind, rows: batches.append((kind, rows)))
    assert removed == {"messages": 0, "events": 0, "a2a_tasks": 0, "tasks": 25, "workflows": 1, "usage": 1, "schedule_ticks": 1, "conversations": 1}
    assert len([b for b in batches if b[0] == "tasks"]) >= 2  # 25 tasks do not go in one first batch of 10
    assert await store.read(left) == {
        "tasks": ["downstream", "recent", "turn", "upstream", "wf-busy-t", "wf-recent-t"],
        "history_of_gone": 0,
        "workflows": ["wf-busy", "wf-recent"],
        "steps": ["wf-busy", "wf-recent"],
        "usage": ["2026-03"],
        "links": 1,
        "ticks": ["sched-recent"],
        "conversations": ["talk-recent"],
        "participants": ["talk-recent"],
    }
    assert await retention.preview(store, kept, NOW) == dict.fromkeys(removed, 0)


async def test_with_the_defaults_tasks_workflows_and_usage_are_kept_forever(store: Store) -> None:  # noqa: F811
    await store.write(seed)
    kept = retention.policies(Settings())
    assert (kept["tasks"], kept["workflows"], kept["usage"]) == (None, None, None)
    assert kept["events"] == kept["a2a_tasks"] == kept["messages"] == timedelta(days=7)
    assert kept["schedule_ticks"] == timedelta(days=30)
    assert await retention.purge(store, kept, NOW) == {"messages": 0, "events": 0, "a2a_tasks": 0, "schedule_ticks": 1}
    assert len((await store.read(left))["tasks"]) == 25 + 7


def test_the_cli_shows_what_would_go_and_removes_it_with_apply(tmp_path) -> None:
    async def prepare() -> None:
        s = open_store(None, tmp_path)
        await s.start()
        await s.write(seed)
        await s.close()

    asyncio.run(prepare())
    flags = ["--data-dir", str(tmp_path), "--task-retention", str(30 * 86_400), "--workflow-retention", "0", "--json"]

    def run(*extra: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "agora", "store", "retention", *flags, *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    # The seeded tasks finished in January 2026 (more than 30 days before today), the workflow policy keeps forever.
    shown = run()
    assert shown["policies"]["tasks"] == 30 * 86_400 and shown["policies"]["workflows"] is None
    assert shown["would_remove"]["tasks"] == 25 + 1 and "workflows" not in shown["would_remove"]  # and 'recent', March
    applied = run("--apply")
    assert applied["removed"]["tasks"] == 26
    assert run()["would_remove"]["tasks"] == 0
    refused = subprocess.run([sys.executable, "-m", "agora", "store", "retention", "--data-dir", str(tmp_path / "none")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode != 0 and "agora db upgrade" in refused.stderr and "Traceback" not in refused.stderr


def _messages(conn: Connection) -> None:
    """300 direct messages forty days old, the first 150 acked then."""
    from sqlalchemy import update

    from agora.store.ops import messages as message_ops
    from agora.store.schema import inbox

    rows = [{
        "message_id": f"msg_{i:016x}", "kind": "direct", "sender_id": "agent_s", "recipient_id": "agent_r", "topic": None,
        "message_type": "info", "performative": None, "intent": None, "priority": 2, "content": {"i": i}, "correlation": None,
        "conversation_id": None, "expected": None, "context": {}, "idempotency_key": None, "created_at": OLD, "expires_at": None,
        "reply_due_at": None, "tenant_id": "default",
    } for i in range(300)]  # fmt: skip
    message_ops.send(conn, "default", "agent_s", rows, OLD)
    first = sorted(conn.execute(select(inbox.c.seq)).scalars())[:150]
    conn.execute(update(inbox).where(inbox.c.seq.in_(first)).values(acked_at=OLD))


def _message_counts(conn: Connection) -> tuple[int, int]:
    from agora.store.schema import inbox, messages

    return (conn.execute(select(func.count()).select_from(messages)).scalar_one(), conn.execute(select(func.count()).select_from(inbox)).scalar_one())


async def test_acked_messages_go_in_batches_and_unacked_ones_stay(store: Store, monkeypatch) -> None:  # noqa: F811
    await store.write(_messages)
    kept = retention.policies(Settings())
    assert (await retention.preview(store, kept, NOW))["messages"] == 150  # the acked deliveries (their messages next)
    monkeypatch.setattr(retention, "FIRST_BATCH", 40)
    none = retention.Pace(0.0, 0.0)
    monkeypatch.setattr(retention, "PACES", {"sqlite": none, "postgresql": none})  # every later batch the smallest
    batches: list[int] = []
    removed = await retention.purge(store, kept, NOW, lambda kind, rows: batches.append(rows) if kind == "messages" else None)
    assert removed["messages"] == 300 and len(batches) > 5, batches  # 150 deliveries, then their 150 messages
    assert await store.read(_message_counts) == (150, 150)


async def test_two_replicas_purging_at_once_share_the_work(store: Store) -> None:  # noqa: F811
    """Every replica runs the retention job: run side by side they remove each row once between them, and neither
    fails (on PostgreSQL each batch skips the rows the other's holds)."""
    await store.write(_messages)
    await store.write(seed)
    kept = retention.policies(SETTINGS)
    first, second = await asyncio.gather(retention.purge(store, kept, NOW), retention.purge(store, kept, NOW))
    assert {kind: first[kind] + second[kind] for kind in first} == {
        "messages": 300, "events": 0, "a2a_tasks": 0, "tasks": 25, "workflows": 1, "usage": 1, "schedule_ticks": 1, "conversations": 1,
    }  # fmt: skip
    assert await store.read(_message_counts) == (150, 150)


# --- PostgreSQL: events go a day's partition at a time (store/partitions.py) -----------------------------------------


def _day_start(at: datetime) -> datetime:
    return partitions.start_of(at.astimezone(timezone.utc).date())


def _add_events(conn: Connection, dated: dict[str, list[datetime]]) -> None:
    conn.execute(insert(events), [
        {"tenant_id": "default", "type": kind, "visible_to": None, "data": {}, "created_at": at}
        for kind, ats in dated.items() for at in ats
    ])  # fmt: skip


def _events_where(conn: Connection) -> tuple[list[str], dict[str, list[str]]]:
    """The events table's partitions, and which types of event each holds."""
    held: dict[str, list[str]] = {}
    for partition, kind in conn.exec_driver_sql("SELECT tableoid::regclass::text, type FROM events ORDER BY seq"):
        held.setdefault(partition, []).append(kind)
    return [p.name for p in partitions.partitions(conn, "events")], held


async def test_on_postgres_events_of_a_past_day_go_with_its_partition(postgres_url, tmp_path) -> None:
    """The migration's first partition (every event up to the end of its day) and the next day's go whole, their
    rows counted as removed; the part of a day the cutoff falls in goes a row at a time; a row the default partition
    held moves into its day's partition when that is made."""
    store = open_store(fresh_postgres_url(postgres_url), tmp_path)
    await store.start()
    try:
        today = _day_start(datetime.now(timezone.utc))
        names, _ = await store.read(_events_where)
        assert names == [partitions.partition_name("events", today.date() + n * partitions.DAY) for n in range(partitions.AHEAD + 1)] + ["events_default"]
        await store.write(_add_events, {
            "old": [OLD, today + timedelta(hours=1)] * 60,  # the first partition: before today, and today
            "next-day": [today + timedelta(days=1, hours=5)] * 40,
            "early": [today + timedelta(days=2, minutes=30)] * 7,  # the day the cutoff falls in, before it
            "late": [today + timedelta(days=2, hours=12)] * 5,  # the same day, after the cutoff
            "far": [today + timedelta(days=10)] * 3,  # no partition yet: the default
        })  # fmt: skip
        _, held = await store.read(_events_where)
        assert held["events_default"] == ["far"] * 3
        await store.write(lambda conn: conn.exec_driver_sql("ANALYZE events"))  # a dropped partition's rows: as analysed
        now = today + timedelta(days=9, hours=1)  # cutoff: two days and an hour after today began
        kept = {**dict.fromkeys(retention.policies(Settings()), None), "events": timedelta(days=7)}
        assert await retention.preview(store, kept, now) == {"events": 120 + 40 + 7}
        batches: list[int] = []
        assert await retention.purge(store, kept, now, lambda kind, rows: batches.append(rows)) == {"events": 167}
        assert batches[:2] == [120, 40]  # a partition a batch, then the rows
        names, held = await store.read(_events_where)
        assert names[0] == partitions.partition_name("events", today.date() + 2 * partitions.DAY)
        assert partitions.partition_name("events", today.date()) not in names
        assert held == {names[0]: ["late"] * 5, partitions.partition_name("events", today.date() + 10 * partitions.DAY): ["far"] * 3}
    finally:
        await store.close()


async def _hold_events(url: str, held: asyncio.Event, release: asyncio.Event) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.fetchval("SELECT count(*) FROM events")  # holds the table's lock to the end of the transaction
            held.set()
            await release.wait()
    finally:
        await conn.close()


async def test_on_postgres_a_partition_is_not_dropped_while_a_reader_holds_the_table(postgres_url, tmp_path) -> None:
    """Dropping a partition locks the table: behind a long read it would queue every append. It waits at most the
    lock timeout, leaves the day to the next run (removing none of its rows one by one meanwhile), and goes then."""
    url = fresh_postgres_url(postgres_url)
    store = open_store(url, tmp_path)
    await store.start()
    try:
        today = _day_start(datetime.now(timezone.utc))
        await store.write(_add_events, {"old": [today + timedelta(hours=1)] * 10})
        kept = {**dict.fromkeys(retention.policies(Settings()), None), "events": timedelta(days=7)}
        now = today + timedelta(days=8, hours=1)
        held, release = asyncio.Event(), asyncio.Event()
        reader = asyncio.create_task(_hold_events(url, held, release))
        await held.wait()
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(retention.purge(store, kept, now), 10) == {"events": 0}
        assert asyncio.get_running_loop().time() - started < 5
        assert (await store.read(_events_where))[1] == {partitions.partition_name("events", today.date()): ["old"] * 10}
        release.set()
        await reader
        assert await retention.purge(store, kept, now) == {"events": 10}
    finally:
        await store.close()
