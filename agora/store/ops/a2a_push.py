"""A2A push-notification configs: stored per task, claimed by one deliverer at a time, advanced per event posted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)

from ..prepared import Prepared
from ..schema import a2a_events, a2a_push_configs, a2a_tasks

c = a2a_push_configs.c


def _key(task_id: str, config_id: str) -> Any:
    return and_(c.task_id == task_id, c.config_id == config_id)


def put(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    """Store a config, replacing the task's config with the same id."""
    conn.execute(delete(a2a_push_configs).where(_key(row["task_id"], row["config_id"])))
    conn.execute(insert(a2a_push_configs).values(**row))
    return row


def get(conn: Connection, task_id: str, config_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(a2a_push_configs).where(_key(task_id, config_id))).mappings().first()
    return dict(row) if row else None


def of_task(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    stmt = select(a2a_push_configs).where(c.task_id == task_id).order_by(c.created_at, c.config_id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


_ANY_FOR = Prepared(select(c.config_id).where(c.task_id == bindparam("task_id")).limit(1))


def any_for(conn: Connection, task_id: str) -> bool:
    return _ANY_FOR.first(conn, {"task_id": task_id}) is not None


def remove(conn: Connection, task_id: str, config_id: str) -> None:
    conn.execute(delete(a2a_push_configs).where(_key(task_id, config_id)))


def _due(now: datetime) -> Any:
    pending = exists().where(a2a_events.c.task_id == c.task_id, a2a_events.c.seq > c.delivered_seq)
    return and_(c.next_attempt_at <= now, or_(c.claimed_until.is_(None), c.claimed_until < now), pending)


def any_due(conn: Connection, now: datetime) -> bool:
    """Whether a claim would find work (a read: the deliverers' idle ticks cost no write)."""
    return conn.execute(select(c.task_id).where(_due(now)).limit(1)).first() is not None


def claim_due(conn: Connection, now: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
    """Configs with events they have not had, due and unclaimed; claimed until ``until`` for the caller. Each comes
    with its task's ``caller`` (whose egress policy its webhook is reached through)."""
    caller = select(a2a_tasks.c.caller).where(a2a_tasks.c.task_id == c.task_id).scalar_subquery().label("caller")
    stmt = select(a2a_push_configs, caller).where(_due(now)).order_by(c.next_attempt_at).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    claimed = []
    for row in conn.execute(stmt).mappings().all():
        conn.execute(update(a2a_push_configs).where(_key(row["task_id"], row["config_id"])).values(claimed_until=until))
        claimed.append({**row, "claimed_until": until})
    return claimed


def delivered(conn: Connection, task_id: str, config_id: str, seq: int) -> None:
    values = {"delivered_seq": seq, "attempts": 0, "last_error": None}
    conn.execute(update(a2a_push_configs).where(_key(task_id, config_id), c.delivered_seq < seq).values(**values))


def failed(conn: Connection, task_id: str, config_id: str, error: str, retry_at: datetime) -> None:
    values = {"attempts": c.attempts + 1, "last_error": error[:1000], "next_attempt_at": retry_at, "claimed_until": None}
    conn.execute(update(a2a_push_configs).where(_key(task_id, config_id)).values(**values))


def release(conn: Connection, task_id: str, config_id: str) -> None:
    conn.execute(update(a2a_push_configs).where(_key(task_id, config_id)).values(claimed_until=None))
