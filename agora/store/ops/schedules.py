"""Schedules and their ticks (``core/schedules``): the rows, the due ones by index, and a tick's history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, delete, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from agora.core.ids import is_id
from agora_sdk.errors import Conflict, NotFound

from ..schema import schedule_ticks, schedules, tasks, workflows
from .dialect import upsert_insert

Ended = dict[str, frozenset[str]]  # by run kind (task, workflow): the statuses in which a run has ended

s, t = schedules.c, schedule_ticks.c


def no_schedule(ref: str) -> NotFound:
    """The one answer for a schedule that is not there *or not the caller's*."""
    return NotFound(f"no schedule '{ref}'", details={"schedule": ref})


def insert_schedule(conn: Connection, row: dict[str, Any]) -> None:
    try:
        with conn.begin_nested():
            conn.execute(insert(schedules).values(**row))
    except IntegrityError:
        raise Conflict(f"a schedule named '{row['name']}' exists already", details={"field": "name", "name": row["name"]}) from None


def schedule(conn: Connection, tenant_scope: str | None, ref: str, *, lock: bool = False) -> dict[str, Any]:
    """A schedule by id, else by name (of the tenant, if scoped; an administrator's name lookup across tenants takes
    the oldest); ``lock``: held until the transaction ends."""
    for match in ([s.schedule_id == ref] if is_id(ref, "sched") else []) + [s.name == ref]:
        stmt = select(schedules).where(match)
        if tenant_scope is not None:
            stmt = stmt.where(s.tenant_id == tenant_scope)
        if lock:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt.order_by(s.created_at).limit(1)).mappings().first()
        if row is not None:
            return dict(row)
    raise no_schedule(ref)


def page(conn: Connection, tenant_scope: str | None, status: str | None, after: tuple[str, str] | None, limit: int) -> list[dict[str, Any]]:
    """Schedules by name (then id), after the position ``after``."""
    stmt = select(schedules)
    if tenant_scope is not None:
        stmt = stmt.where(s.tenant_id == tenant_scope)
    if status is not None:
        stmt = stmt.where(s.status == status)
    if after is not None:
        stmt = stmt.where(or_(s.name > after[0], (s.name == after[0]) & (s.schedule_id > after[1])))
    return [dict(r) for r in conn.execute(stmt.order_by(s.name, s.schedule_id).limit(limit)).mappings()]


def change(conn: Connection, schedule_id: str, **values: Any) -> None:
    conn.execute(update(schedules).where(s.schedule_id == schedule_id).values(**values))


def remove(conn: Connection, schedule_id: str) -> None:
    conn.execute(delete(schedule_ticks).where(t.schedule_id == schedule_id))
    conn.execute(delete(schedules).where(s.schedule_id == schedule_id))


def due(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Active schedules whose next tick (with its jitter) has come, soonest first, each locked for this transaction.
    On PostgreSQL rows another replica holds are passed over (``SKIP LOCKED``): replicas share the work, and the tick
    row decides anyway."""
    stmt = select(schedules).where(s.next_fire_at <= now).order_by(s.next_fire_at).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _ready(ended: Ended) -> ColumnElement[bool]:
    """A schedule's queued tick may go: the run before it has ended (``ended``: the statuses that end a task and a
    workflow), or is gone."""
    running_task = select(tasks.c.task_id).where(tasks.c.task_id == s.last_run_id, tasks.c.status.not_in(ended["task"])).exists()
    running_workflow = (
        select(workflows.c.workflow_id).where(workflows.c.workflow_id == s.last_run_id, workflows.c.status.not_in(ended["workflow"])).exists()
    )
    return s.queued_tick_at.is_not(None) & ~and_(s.last_run_kind == "task", running_task) & ~and_(s.last_run_kind == "workflow", running_workflow)


def queued(conn: Connection, limit: int, ended: Ended) -> list[dict[str, Any]]:
    """Schedules with a tick that waited for the run before it to end (overlap 'queue') and may go now, locked as
    ``due`` locks. (Those whose run goes on are not read: however many, they cannot hold up one that may go.)"""
    stmt = select(schedules).where(_ready(ended), s.status == "active").order_by(s.queued_tick_at).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def any_queued(conn: Connection, ended: Ended) -> bool:
    return conn.execute(select(s.schedule_id).where(_ready(ended), s.status == "active").limit(1)).first() is not None


def soonest(conn: Connection) -> datetime | None:
    """When the next schedule is due (null: none is active)."""
    return conn.execute(select(func.min(s.next_fire_at))).scalar()


def of_owner(conn: Connection, key_hashes: list[str]) -> list[dict[str, Any]]:
    """The active or paused schedules made with these keys."""
    stmt = select(schedules).where(s.owner_key_hash.in_(key_hashes), s.status.in_(("active", "paused")))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def record_tick(conn: Connection, row: dict[str, Any]) -> bool:
    """Insert a tick; False when it is there already (another replica, or an earlier attempt, recorded it)."""
    stmt = upsert_insert(conn, schedule_ticks).values(**row).on_conflict_do_nothing(index_elements=["schedule_id", "tick_at"])
    return conn.execute(stmt).rowcount == 1


def settle_tick(conn: Connection, schedule_id: str, tick_at: datetime, **values: Any) -> None:
    conn.execute(update(schedule_ticks).where(t.schedule_id == schedule_id, t.tick_at == tick_at).values(**values))


_RUN_STATUS = case(
    (t.run_kind == "task", select(tasks.c.status).where(tasks.c.task_id == t.run_id).scalar_subquery()),
    (t.run_kind == "workflow", select(workflows.c.status).where(workflows.c.workflow_id == t.run_id).scalar_subquery()),
    (t.run_kind == "message", literal("sent")),
    else_=None,
).label("run_status")


def ticks(conn: Connection, schedule_id: str, before: datetime | None, limit: int) -> list[dict[str, Any]]:
    """A schedule's ticks, newest first, with the status of what each started."""
    stmt = select(schedule_ticks, _RUN_STATUS).where(t.schedule_id == schedule_id)
    if before is not None:
        stmt = stmt.where(t.tick_at < before)
    return [dict(r) for r in conn.execute(stmt.order_by(t.tick_at.desc()).limit(limit)).mappings()]


def last_ticks(conn: Connection, schedule_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each schedule's latest tick."""
    if not schedule_ids:
        return {}
    latest = select(t.schedule_id, func.max(t.tick_at).label("tick_at")).where(t.schedule_id.in_(schedule_ids)).group_by(t.schedule_id).subquery()
    stmt = select(schedule_ticks, _RUN_STATUS).join(latest, (t.schedule_id == latest.c.schedule_id) & (t.tick_at == latest.c.tick_at))
    return {r["schedule_id"]: dict(r) for r in conn.execute(stmt).mappings()}


def run_status(conn: Connection, kind: str | None, run_id: str | None) -> str | None:
    """The status now of what a tick started (a task's or workflow's; None for a message or one purged)."""
    if kind == "task":
        return conn.execute(select(tasks.c.status).where(tasks.c.task_id == run_id)).scalar()
    if kind == "workflow":
        return conn.execute(select(workflows.c.status).where(workflows.c.workflow_id == run_id)).scalar()
    return None


def purge_ticks(conn: Connection, recorded_before: datetime, limit: int) -> int:
    """The oldest ``limit`` ticks recorded before the cutoff (retention)."""
    old = select(t.schedule_id, t.tick_at).where(t.recorded_at < recorded_before).order_by(t.recorded_at).limit(limit).subquery()
    doomed = tuple_(t.schedule_id, t.tick_at).in_(select(old.c.schedule_id, old.c.tick_at))
    return conn.execute(delete(schedule_ticks).where(doomed)).rowcount
