"""The task queue: assign, claim under a lease, transitions with history, expiry of leases and deadlines.

Every transition goes through ``_move``, which writes the history row and returns what changed, so the service can
record the matching hub event in the same transaction. Claims on PostgreSQL lock the chosen row with
``FOR UPDATE SKIP LOCKED`` (racing claimers take different tasks); on SQLite the single writer serialises them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from agora.core.ids import random_hex
from agora_sdk.errors import Conflict, InvalidArgument, NotFound
from agora_sdk.wire.messaging import PriorityLevel

from ..base import defer, point_read
from ..prepared import Prepared
from ..schema import (
    agent_capabilities,
    agents,
    task_dependencies,
    task_history,
    task_requirements,
    tasks,
)
from . import agents as agents_ops
from . import conversations as conversation_ops
from .dialect import broad, one_of, one_of_words, seconds_between

UNFINISHED = ("pending", "in_progress")


def status_is(*statuses: str, of: Any = tasks) -> ColumnElement[bool]:
    """The status of task ``of`` (the tasks table, or an alias of it) is one of these, written as SQL literals
    rather than bound parameters. PostgreSQL plans a prepared statement once for any parameter values after a few
    runs, and that generic plan cannot use a partial index (``WHERE status = 'pending'``) whose predicate the query
    does not state literally: the claim then sorted every pending task of the tenant (10,000 queued tasks were
    claimed at 58/s). SQLite re-prepared the claim on every run while its dependency check bound the statuses,
    which made that check 100 µs instead of 8."""
    return one_of_words(of.c.status, statuses)


BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0
DURATION_SAMPLE = 20
UPDATE_START_LEASE = timedelta(minutes=5)  # a task started by update (no token, no heartbeats) gets a longer lease

Transition = dict[str, Any]  # the task row after the move, plus "from_status"
# What a task's hub event tells of it (``services.tasks.record_transitions``; ``task_statements`` on PostgreSQL).
EVENT_FIELDS = (
    "task_id", "task_type", "status", "from_status", "assignee", "required_capabilities", "claimed_by", "progress",
    "priority", "workflow_id", "last_error", "has_dependents",
)  # fmt: skip


def transition_row(t: dict[str, Any], type_: str, now: datetime) -> dict[str, Any]:
    """A task transition's row in the hub's events table (``events.append_many``): its ``EVENT_FIELDS``. A task
    addressed to an agent is always pushed to it; the rest reach agents that subscribed to task_* events.
    (``task_statements.recorded`` writes the same in SQL.)"""
    visible_to = t["assignee"] if t["assignee"] and t["assignee"].startswith("agent_") else None
    return {"tenant_id": t["tenant_id"], "type": type_, "visible_to": visible_to, "data": {k: t.get(k) for k in EVENT_FIELDS}, "created_at": now}


def lease_token() -> str:
    return f"lease_{random_hex(16)}"


@lru_cache(maxsize=4)
def _get_statement(scoped: bool, lock: bool) -> Any:
    stmt = select(tasks).where(tasks.c.task_id == bindparam("task_id"))
    if scoped:
        stmt = stmt.where(tasks.c.tenant_id == bindparam("tenant_id"))
    return Prepared(stmt.with_for_update() if lock else stmt)


def _get(conn: Connection, task_id: str, tenant_scope: str | None, lock: bool = False) -> dict[str, Any]:
    row = _get_statement(tenant_scope is not None, lock).first(conn, {"task_id": task_id, "tenant_id": tenant_scope})
    if row is None:
        raise NotFound(f"no task '{task_id}'", details={"task_id": task_id})
    return dict(row)


@point_read
def get(conn: Connection, task_id: str, tenant_scope: str | None) -> dict[str, Any]:
    return _get(conn, task_id, tenant_scope)


@lru_cache(maxsize=2)
def _lock_many_statement(dialect: str) -> Prepared:
    by_id = select(tasks).where(one_of(dialect, tasks.c.task_id, "task_ids")).order_by(tasks.c.task_id)
    return Prepared(by_id.with_for_update())


def lock_many(conn: Connection, task_ids: list[str], tenant_scope: str | None) -> dict[str, dict[str, Any]]:
    """The tasks of ``task_ids`` that exist (in the tenant), by id, read in one statement and, on PostgreSQL, locked
    for update in id order (so two batches over the same tasks cannot deadlock).

    The tenant is checked on the rows read, not in SQL: with a tenant condition, SQLite (which keeps no statistics)
    walked the tenant's whole status index instead of looking the ids up, 6.5 ms for 50 of 30,000 tasks instead of
    0.23 ms. On PostgreSQL a foreign task named here stays locked until the transaction ends; nothing of it is
    returned."""
    rows = _lock_many_statement(conn.dialect.name).rows(conn, {"task_ids": sorted(set(task_ids))})
    return {r["task_id"]: r for r in rows if tenant_scope is None or r["tenant_id"] == tenant_scope}


# The SET clause comes from the parameters' keys; the guard names its own parameters so they never clash with them.
_MOVE = Prepared(update(tasks).where(tasks.c.task_id == bindparam("b_task_id"), tasks.c.status == bindparam("b_status")))


def _move(conn: Connection, task: dict[str, Any], to_status: str, actor: str, now: datetime, note: str | None = None, **values: Any) -> Transition:
    """Change a task's status (and other columns), guarded by its current status so a race changes nothing twice.
    Its history row is written at the end of the operation, with the others (``defer``)."""
    changes = moved_to(to_status, now, values)
    moved = _MOVE.execute(conn, {"b_task_id": task["task_id"], "b_status": task["status"], **changes})
    if not moved:
        raise Conflict(f"task '{task['task_id']}' changed meanwhile; read it again", details={"task_id": task["task_id"]})
    defer(conn, _write_history, history_row(task["task_id"], actor, task["status"], to_status, now, note))
    moved_row = {**task, **changes, "from_status": task["status"]}
    if to_status in ("failed", "cancelled", "dead_letter"):
        moved_row["dependents_failed"] = _fail_dependents(conn, task["task_id"], now)
    return moved_row


def moved_to(to_status: str, now: datetime, values: dict[str, Any]) -> dict[str, Any]:
    """The columns a move to ``to_status`` sets: ``values``, and for a finished task its end and no lease."""
    changes = {"status": to_status, "updated_at": now, **values}
    if to_status in ("completed", "failed", "cancelled", "dead_letter"):
        changes.setdefault("finished_at", now)
        changes.setdefault("lease_token", None)
        changes.setdefault("lease_expires_at", None)
    return changes


def _fail_dependents(conn: Connection, task_id: str, now: datetime) -> list[Transition]:
    """Pending tasks that depend on a task that will never complete fail too (unless they run anyway)."""
    waiting = conn.execute(
        select(tasks)
        .join(task_dependencies, task_dependencies.c.task_id == tasks.c.task_id)
        .where(task_dependencies.c.depends_on_id == task_id, status_is("pending"), ~tasks.c.run_if_dependency_fails)
    ).mappings().all()
    failed: list[Transition] = []
    for row in waiting:
        note = f"dependency {task_id} did not complete"
        failed.append(_move(conn, dict(row), "failed", "system", now, note, last_error=note))
    return failed


@lru_cache(maxsize=2)
def _recent_duration_statement(dialect: str) -> Prepared:
    """The mean of the last ``DURATION_SAMPLE`` completions of a task type, averaged in SQL: decoding their
    timestamps in Python cost an assign as much as its INSERTs."""
    recent = (
        select(tasks.c.started_at, tasks.c.finished_at)
        .where(tasks.c.tenant_id == bindparam("tenant_id"), tasks.c.task_type == bindparam("task_type"), status_is("completed"))
        .order_by(tasks.c.finished_at.desc())
        .limit(DURATION_SAMPLE)
        .subquery()
    )
    return Prepared(select(func.avg(seconds_between(dialect, recent.c.started_at, recent.c.finished_at))))


def estimated_duration(conn: Connection, tenant_id: str, task_type: str) -> timedelta | None:
    mean = _recent_duration_statement(conn.dialect.name).scalar(conn, {"tenant_id": tenant_id, "task_type": task_type})
    return timedelta(seconds=float(mean)) if mean is not None else None


@lru_cache(maxsize=2)
def _loads_statement(dialect: str) -> Prepared:
    caps = agent_capabilities.c
    capable = (
        select(caps.agent_id)
        .where(caps.tenant_id == bindparam("tenant_id"), one_of(dialect, caps.capability, "capabilities"))
        .group_by(caps.agent_id)
        .having(func.count() == bindparam("needed"))
    )
    load = select(func.count()).where(tasks.c.claimed_by == agents.c.agent_id, status_is("in_progress")).scalar_subquery().label("load")
    # The capable agents drive the statement: SQLite, with no statistics, otherwise walks every active agent of the
    # tenant and tests each against the list (8 ms for 600 capable agents among 10,000, on the writer thread).
    tenant, active = agents.c.tenant_id == bindparam("tenant_id"), agents.c.status == "active"
    return Prepared(
        select(agents.c.agent_id, load)
        .where(broad(dialect, tenant), broad(dialect, active), agents.c.agent_id.in_(capable))
        .order_by(load, func.random())
        .limit(LEAST_LOADED_SAMPLE)
    )


LEAST_LOADED_SAMPLE = 64  # tied agents a task picks among: a random sample of them, not every one decoded


def least_loaded_agents(conn: Connection, tenant_id: str, capabilities: list[str]) -> list[str]:
    """The active agents with every capability that have the fewest tasks in progress (when many are tied, a random
    ``LEAST_LOADED_SAMPLE`` of them)."""
    wanted = sorted(set(capabilities))
    rows = _loads_statement(conn.dialect.name).rows(conn, {"tenant_id": tenant_id, "capabilities": wanted, "needed": len(wanted)})
    return [r["agent_id"] for r in rows if r["load"] == rows[0]["load"]]


_INSERT_TASK = Prepared(insert(tasks))
_INSERT_REQUIREMENT = Prepared(insert(task_requirements))
_INSERT_DEPENDENCY = insert(task_dependencies)
_INSERT_HISTORY = Prepared(insert(task_history))


def _write_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    _INSERT_HISTORY.execute_many(conn, rows)


def created(conn: Connection, row: dict[str, Any], actor: str, status: str = "pending", note: str | None = None) -> None:
    """The first history row of a task just stored (and, for a turn of a conversation, the conversation's)."""
    defer(conn, _write_history, history_row(row["task_id"], actor, None, status, row["created_at"], note))
    if row.get("conversation_id"):
        conversation_ops.touch(conn, *conversation_ops.of_task(row))


@dataclass
class NewTasks:
    """New tasks of a batch without dependencies, written together by ``flush``: one statement per table instead of
    one per task (a fifth of the writer's time in an assign_batch)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)

    def add(self, row: dict[str, Any], actor: str) -> None:
        self.rows.append(row)
        self.actors.append(actor)

    def by_key(self, key: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["idempotency_key"] == key), None)

    def flush(self, conn: Connection) -> list[dict[str, Any]]:
        """Write the tasks added since the last flush; returns them."""
        rows, actors, self.rows, self.actors = self.rows, self.actors, [], []
        for row, actor in zip(rows, actors):
            created(conn, row, actor)
        if rows:
            _INSERT_TASK.execute_many(conn, rows)
            requirements = [{"task_id": r["task_id"], "capability": c} for r in rows for c in r["required_capabilities"]]
            if requirements:
                _INSERT_REQUIREMENT.execute_many(conn, requirements)
        return rows


def create(
    conn: Connection, row: dict[str, Any], actor: str, batch: NewTasks | None = None
) -> tuple[dict[str, Any], bool, list[Transition]]:
    """Store a new task (or return the one with the same idempotency key). Returns (task, created, transitions).
    A task without dependencies is only added to ``batch``, if given; its ``flush`` writes it."""
    if row["idempotency_key"]:
        earlier = conn.execute(
            select(tasks).where(tasks.c.tenant_id == row["tenant_id"], tasks.c.idempotency_key == row["idempotency_key"])
        ).mappings().first() or (batch and batch.by_key(row["idempotency_key"]))
        if earlier:
            return dict(earlier), False, []
    deps = list(dict.fromkeys(row["depends_on"]))
    if batch is not None and not deps:
        batch.add(row, actor)
        return row, True, []
    upstream: dict[str, str] = {}
    if deps:
        upstream = dict(
            conn.execute(
                select(tasks.c.task_id, tasks.c.status).where(tasks.c.tenant_id == row["tenant_id"], tasks.c.task_id.in_(deps))
            ).all()
        )
        missing = [d for d in deps if d not in upstream]
        if missing:
            raise NotFound(f"no task {', '.join(missing[:10])} to depend on", details={"depends_on": missing[:50]})
    _INSERT_TASK.execute(conn, row)
    if row["required_capabilities"]:
        _INSERT_REQUIREMENT.execute_many(conn, [{"task_id": row["task_id"], "capability": c} for c in row["required_capabilities"]])
    if deps:
        conn.execute(_INSERT_DEPENDENCY, [{"task_id": row["task_id"], "depends_on_id": d} for d in deps])
        conn.execute(update(tasks).where(tasks.c.task_id.in_(deps), ~tasks.c.has_dependents).values(has_dependents=True))
    created(conn, row, actor)
    doomed = [d for d, status in upstream.items() if status not in (*UNFINISHED, "completed")]
    if doomed and not row["run_if_dependency_fails"]:
        note = f"dependency {doomed[0]} did not complete"
        return row, True, [_move(conn, row, "failed", "system", row["created_at"], note, last_error=note)]
    return row, True, []


def history_row(task_id: str, actor: str, from_status: str | None, to_status: str, now: datetime, note: str | None) -> dict[str, Any]:
    return {"task_id": task_id, "at": now, "actor": actor, "from_status": from_status, "to_status": to_status, "note": note}


def claimable(types: int, one_task: bool = False, agent_name: ColumnElement[Any] | None = None) -> Select[Any]:
    """The tasks an agent may claim now (parameters ``tenant_id``, ``now``, ``agent_id``, and ``agent_name`` unless
    given as an expression): pending, available, assigned to it or needing only capabilities it has, with every
    dependency done; of the claimer's ``task_type`` (``types`` 1) or ``task_types`` (more than 1), and the one with
    ``task_id`` if ``one_task``. The claimer's capabilities are its ``agent_capabilities`` rows, so every shape but
    "more than one type" is one fixed statement."""
    upstream = tasks.alias("upstream")
    unmet = (
        select(task_dependencies.c.task_id)
        .join(upstream, upstream.c.task_id == task_dependencies.c.depends_on_id)
        .where(task_dependencies.c.task_id == tasks.c.task_id, status_is(*UNFINISHED, of=upstream))
    )
    has_it = exists().where(
        agent_capabilities.c.agent_id == bindparam("agent_id"), agent_capabilities.c.capability == task_requirements.c.capability
    )
    lacking = select(task_requirements.c.task_id).where(task_requirements.c.task_id == tasks.c.task_id, ~has_it)
    stmt = select(tasks).where(
        tasks.c.tenant_id == bindparam("tenant_id"),
        status_is("pending"),
        tasks.c.available_at <= bindparam("now", type_=tasks.c.available_at.type),
        or_(
            # Assigned to it by id or by name. (An IN, not two equalities: SQLite would answer those three branches
            # with an OR-by-union over ix_tasks_assignee, reading every unassigned task, instead of the ordered
            # walk of ix_tasks_claimable that stops at the first eligible one.)
            tasks.c.assignee.in_([bindparam("agent_id"), bindparam("agent_name") if agent_name is None else agent_name]),
            and_(tasks.c.assignee.is_(None), ~exists(lacking)),  # or it has every required capability
        ),
        ~exists(unmet),
    )
    if types == 1:
        stmt = stmt.where(tasks.c.task_type == bindparam("task_type"))
    elif types > 1:
        stmt = stmt.where(tasks.c.task_type.in_(bindparam("task_types", expanding=True)))
    if one_task:
        stmt = stmt.where(tasks.c.task_id == bindparam("task_id"))
    return stmt


CLAIM_ORDER = (tasks.c.priority.desc(), tasks.c.created_at)


@lru_cache(maxsize=32)
def _claim_statement(types: int, preferred_only: bool, skip_locked: bool, one_task: bool = False, by_id: bool = False) -> Prepared:
    """The claim query, built once per shape (``types``: how many task types the claimer names, 0, 1 or more);
    parameters are bound at execution. ``by_id``: the claimer is named by ``tenant_id`` and ``agent_id`` only (its
    name is read by the query, and an agent that is not there claims nothing)."""
    if by_id:
        name = select(agents.c.agent_name).where(agents.c.agent_id == bindparam("agent_id"), agents.c.tenant_id == bindparam("tenant_id"))
        stmt = claimable(types, one_task, agent_name=name.scalar_subquery()).where(name.exists())
    else:
        stmt = claimable(types, one_task)
    if preferred_only:
        stmt = stmt.where(tasks.c.preferred_agent_id == bindparam("agent_id"))
    stmt = stmt.order_by(*CLAIM_ORDER).limit(bindparam("limit"))
    return Prepared(stmt.with_for_update(skip_locked=True) if skip_locked else stmt)


_HAS_PREFERRED = Prepared(select(exists().where(tasks.c.preferred_agent_id == bindparam("agent_id"), status_is("pending"))))


def _eligibility(agent: dict[str, Any], now: datetime, task_types: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    types = list(dict.fromkeys(task_types or []))
    by_type = {"task_type": types[0]} if len(types) == 1 else {"task_types": types} if types else {}
    return {
        "tenant_id": agent["tenant_id"], "now": now, "agent_id": agent["agent_id"], "agent_name": agent["agent_name"],
        **by_type, **extra,
    }  # fmt: skip


def claim(
    conn: Connection,
    agent: dict[str, Any],
    task_types: list[str],
    lease: timedelta,
    now: datetime,
    limit: int = 1,
) -> list[Transition]:
    """Take up to ``limit`` eligible tasks for the agent (its preferred ones first), each under a fresh lease."""
    return _claim(conn, _eligibility(agent, now, task_types), len(set(task_types)), lease, now, limit, by_id=False)


def claim_by_id(
    conn: Connection, tenant_id: str, agent_id: str, task_types: list[str], lease: timedelta, now: datetime, limit: int = 1
) -> list[Transition]:
    """``claim``, for an agent known by its id only (an agent token's): its row is not read first. An agent that is
    not there (deleted since) takes nothing."""
    params = _eligibility({"tenant_id": tenant_id, "agent_id": agent_id, "agent_name": None}, now, task_types)
    return _claim(conn, params, len(set(task_types)), lease, now, limit, by_id=True)


def _claim(conn: Connection, params: dict[str, Any], types: int, lease: timedelta, now: datetime, limit: int, *, by_id: bool) -> list[Transition]:
    postgres = conn.dialect.name == "postgresql"
    # The ordered search among the agent's preferred tasks runs only when an index probe says there are some.
    shapes = [True, False] if _HAS_PREFERRED.scalar(conn, params) else [False]
    taken: list[Transition] = []
    for preferred_only in shapes:
        statement = _claim_statement(types, preferred_only, postgres, by_id=by_id)
        for row in statement.rows(conn, {**params, "limit": limit - len(taken)}):
            taken.append(_take(conn, row, params["agent_id"], lease_token(), now + lease, now))
        if len(taken) == limit:
            break
    return taken


def lease_new(conn: Connection, task: dict[str, Any], agent_id: str, lease: timedelta, now: datetime) -> Transition:
    """Lease a task this transaction just made (pending, assigned to ``agent_id``) to that agent, as a claim would."""
    return _take(conn, task, agent_id, lease_token(), now + lease, now)


def _take(conn: Connection, task: dict[str, Any], agent_id: str, token: str | None, expires: datetime, now: datetime, **values: Any) -> Transition:
    return _move(conn, task, "in_progress", agent_id, now, attempt_note(task), **values, **lease_values(task, agent_id, token, expires, now))


def lease_values(task: dict[str, Any], agent_id: str, token: str | None, expires: datetime, now: datetime) -> dict[str, Any]:
    """The columns a claim of ``task`` by ``agent_id`` sets beside its status (one attempt more, a new fence)."""
    return {
        "claimed_by": agent_id, "attempts": task["attempts"] + 1, "lease_token": token, "fencing_token": task["fencing_token"] + 1,
        "lease_expires_at": expires, "started_at": task["started_at"] or now,
    }  # fmt: skip


def attempt_note(task: dict[str, Any]) -> str:
    """The history note of a claim of ``task``."""
    return f"attempt {task['attempts'] + 1}"


def _start_by_update(conn: Connection, task: dict[str, Any], agent: dict[str, Any], changes: dict[str, Any], now: datetime) -> Transition:
    """Seed 000's workers set a pending task ``in_progress`` instead of claiming it: that takes it as a claim would,
    under a lease bound to the agent itself (no token was handed out), which only that agent can finish."""
    stmt = _claim_statement(0, False, conn.dialect.name == "postgresql", one_task=True)
    if stmt.first(conn, _eligibility(agent, now, task_id=task["task_id"], limit=1)) is None:
        raise Conflict(
            "this task is not yours to start now (assigned to another agent, lacking a capability, waiting for a "
            "dependency or backing off); agora.task.claim takes the next one that is",
            details={"task_id": task["task_id"]},
        )
    return _take(conn, task, agent["agent_id"], None, now + UPDATE_START_LEASE, now, **changes)


def leased(conn: Connection, task_id: str, tenant_scope: str | None, agent_id: str | None, token: str | None) -> dict[str, Any]:
    """The task, provided ``token`` is its current lease (and the caller holds it): otherwise 409, nothing changes."""
    task = _get(conn, task_id, tenant_scope, lock=True)
    if task["status"] != "in_progress":
        raise Conflict(f"task '{task_id}' is {task['status']}, not in progress", details={"status": task["status"]})
    _check_lease(task, agent_id, token)
    return task


def _check_lease(task: dict[str, Any], agent_id: str | None, token: str | None) -> None:
    if task["lease_token"] is None and token is None and agent_id is not None and agent_id == task["claimed_by"]:
        return  # started by an update (see _start_by_update): the agent itself is the lease
    if token is None:
        raise Conflict("this task is claimed: give the lease_token of the claim", details={"field": "lease_token"})
    if token != task["lease_token"] or (agent_id is not None and agent_id != task["claimed_by"]):
        raise Conflict(
            "stale or foreign lease: the task was reclaimed or belongs to another claim",
            details={"task_id": task["task_id"], "fencing_token": task["fencing_token"]},
        )


def heartbeat(
    conn: Connection, task_id: str, tenant_id: str, agent_id: str, token: str, progress: int | None,
    notes: str | None, lease: timedelta, now: datetime,
) -> dict[str, Any]:
    """Renew the lease ``agent_id`` holds on the task by ``token`` (and set its progress and notes): one guarded
    UPDATE, so the store may run it as a statement of its own. When it changes nothing, ``leased`` says why."""
    values: dict[str, Any] = {"lease_expires_at": now + lease, "updated_at": now}
    if progress is not None:
        values["progress"] = progress
    if notes is not None:
        values["notes"] = notes
    row = _BY_HOLDER.first(conn, {"b_task_id": task_id, "b_tenant_id": tenant_id, "b_token": token, "b_agent_id": agent_id, **values})
    if row is None:
        leased(conn, task_id, tenant_id, agent_id, token)  # not there, not in progress, or another's lease
        raise Conflict(f"task '{task_id}' changed meanwhile; read it again", details={"task_id": task_id})
    return row


def backoff(attempts: int, base: float | None = None) -> timedelta:
    """Exponential with jitter: between half and all of base * 2^(attempts-1), capped (a task may set its base)."""
    ceiling = min(BACKOFF_CAP_SECONDS, (base or BACKOFF_BASE_SECONDS) * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _retry_or_bury(conn: Connection, task: dict[str, Any], actor: str, error: str, now: datetime) -> Transition:
    if task["attempts"] >= task["max_attempts"]:
        return _move(conn, task, "dead_letter", actor, now, error, last_error=error)
    return _move(
        conn, task, "pending", actor, now, error,
        last_error=error, claimed_by=None, lease_token=None, lease_expires_at=None, available_at=now + backoff(task["attempts"], task["retry_backoff_seconds"]),
    )


def update_task(
    conn: Connection, task_id: str, tenant_scope: str | None, actor: str, agent_id: str | None, changes: dict[str, Any],
    now: datetime, locked: dict[str, Any] | None = None,
) -> Transition:
    """Apply a worker's update. Finishing a claimed task needs its current lease; finished tasks never change.
    ``locked`` is the task as ``lock_many`` just read it, if the caller did."""
    changes = dict(changes)  # an operation may run twice (group commit retries it alone): never edit the input
    status = changes.pop("status", None)
    token = changes.pop("lease_token", None)
    retry = changes.pop("retry", False)
    task = locked or _get(conn, task_id, tenant_scope, lock=True)
    if task["status"] in ("completed", "failed", "cancelled", "dead_letter"):
        raise Conflict(f"task '{task_id}' is already {task['status']}", details={"status": task["status"]})
    if task["status"] == "in_progress":
        _check_lease(task, agent_id, token)
    elif status == "in_progress" and agent_id is not None:
        return _start_by_update(conn, task, agents_ops.resolve(conn, task["tenant_id"], agent_id), changes, now)
    elif status not in (None, "pending", "cancelled"):
        raise Conflict("claim the task first (agora.task.claim): only a lease holder runs it", details={"status": task["status"]})
    if status is None or status == task["status"]:
        values = {**changes, "updated_at": now}
        conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(**values))
        return {**task, **values, "from_status": task["status"]}
    if status == "failed" and retry:
        task = {**task, **changes}
        return _retry_or_bury(conn, task, actor, changes.get("notes") or "failed", now)
    if status == "pending":  # a lease holder gives the task back without spending an attempt
        return _move(conn, task, "pending", actor, now, changes.get("notes"), **changes, claimed_by=None,
                     lease_token=None, lease_expires_at=None, attempts=max(0, task["attempts"] - 1))
    extra = {"last_error": changes.get("notes") or "failed"} if status == "failed" else {}
    if status == "completed":
        changes.setdefault("progress", 100)
    return _move(conn, task, status, actor, now, changes.get("notes"), **changes, **extra)


COMPLETION_FIELDS = ("result", "notes", "progress")  # what a completion may set beside the status


def plain_completion(changes: dict[str, Any], *, with_units: bool = False) -> bool:
    """An update that only completes a task under its lease (and sets some of ``COMPLETION_FIELDS``), with a result
    that reports no units unless ``with_units`` (a metered instance's completion also records them, in its own
    transaction: core/services/tasks.py)."""
    return (
        changes.get("status") == "completed" and bool(changes.get("lease_token")) and not changes.get("retry")
        and changes.keys() <= {"status", "lease_token", "retry", *COMPLETION_FIELDS} and (with_units or not reports_units(changes))
    )  # fmt: skip


def reports_units(changes: dict[str, Any]) -> bool:
    """A completion whose result has a top-level ``units`` object: a per_unit instance's units for this execution."""
    result = changes.get("result")
    return changes.get("status") == "completed" and isinstance(result, dict) and "units" in result


# A change by the lease holder (a completion, a renewal), guarded as ``leased`` checks a lease. The guard names its own
# parameters (the SET clause comes from the others' keys); the task's id is its primary key, which SQLite looks up
# whatever else the WHERE says.
_BY_HOLDER = Prepared(
    update(tasks)
    .where(
        tasks.c.task_id == bindparam("b_task_id"), tasks.c.tenant_id == bindparam("b_tenant_id"), status_is("in_progress"),
        tasks.c.lease_token == bindparam("b_token"), tasks.c.claimed_by == bindparam("b_agent_id"),
    )  # fmt: skip
    .returning(*tasks.c)
)


def complete_leased(conn: Connection, task_id: str, tenant_id: str, agent_id: str, changes: dict[str, Any], now: datetime) -> Transition | None:
    """A ``plain_completion`` by the agent holding the lease, as ``update_task`` makes it, in one statement instead
    of a read and a write: the task completed, or None when nothing changed (not this agent's leased task, or not
    there): ``update_task`` then says why."""
    values = moved_to("completed", now, {"progress": 100, **{f: changes[f] for f in COMPLETION_FIELDS if f in changes}})
    guard = {"b_task_id": task_id, "b_tenant_id": tenant_id, "b_token": changes["lease_token"], "b_agent_id": agent_id}
    row = _BY_HOLDER.first(conn, {**guard, **values})
    if row is None:
        return None
    defer(conn, _write_history, history_row(task_id, agent_id, "in_progress", "completed", now, changes.get("notes")))
    return {**row, "from_status": "in_progress"}


def cancel(conn: Connection, task_id: str, tenant_scope: str | None, actor: str, reason: str | None, now: datetime) -> Transition:
    task = _get(conn, task_id, tenant_scope, lock=True)
    if task["status"] not in UNFINISHED:
        raise Conflict(f"task '{task_id}' is already {task['status']}", details={"status": task["status"]})
    return _move(conn, task, "cancelled", actor, now, reason, last_error=reason)


def _back_in_queue(now: datetime) -> dict[str, Any]:
    """What a task that goes back to the queue from anywhere but a claim's release gets: claimable at once by a new
    claim, from the start, with no lease (the holder of one it had is refused from then on, 409)."""
    return {
        "available_at": now, "finished_at": None, "claimed_by": None, "lease_token": None, "lease_expires_at": None,
        "progress": 0,
    }  # fmt: skip


def requeue(conn: Connection, task_id: str, tenant_scope: str | None, actor: str, reset_attempts: bool, now: datetime) -> Transition:
    task = _get(conn, task_id, tenant_scope, lock=True)
    if task["status"] not in ("dead_letter", "failed"):
        raise Conflict(f"only dead-lettered or failed tasks are requeued; this one is {task['status']}", details={"status": task["status"]})
    if not reset_attempts and task["attempts"] >= task["max_attempts"]:
        raise InvalidArgument("no attempts left: requeue with reset_attempts", details={"field": "reset_attempts"})
    return _requeue(conn, task, actor, reset_attempts, now)


def _requeue(conn: Connection, task: dict[str, Any], actor: str, reset_attempts: bool, now: datetime) -> Transition:
    attempts = {"attempts": 0} if reset_attempts else {}
    return _move(conn, task, "pending", actor, now, "requeued", **_back_in_queue(now), **attempts)


def requeue_dead_letters(
    conn: Connection, tenant_scope: str | None, agent_id: str | None, task_type: str | None, actor: str, limit: int, now: datetime
) -> tuple[list[Transition], bool]:
    """Up to ``limit`` dead-lettered tasks back in the queue, oldest first, attempts counted from zero (for an agent,
    ``agent_id``, only those it created or was assigned); and whether more are left. On PostgreSQL a task another
    transaction holds is skipped, not waited for: it is being moved."""
    stmt = select(tasks).where(status_is("dead_letter"))
    if tenant_scope is not None:
        stmt = stmt.where(tasks.c.tenant_id == tenant_scope)
    if agent_id is not None:
        stmt = stmt.where(or_(tasks.c.created_by == agent_id, tasks.c.assignee == agent_id))
    if task_type is not None:
        stmt = stmt.where(tasks.c.task_type == task_type)
    stmt = stmt.order_by(tasks.c.created_at, tasks.c.task_id).limit(limit + 1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).mappings().all()
    moved = [_requeue(conn, dict(r), actor, True, now) for r in rows[:limit]]
    return moved, len(rows) > limit


def reassign(
    conn: Connection, task_id: str, tenant_id: str, actor: str, target: dict[str, Any], note: str, now: datetime
) -> Transition:
    """Give a task a new target (``target``: its assignee, required_capabilities and preferred_agent_id as stored).
    Anything but a completed or cancelled task may be reassigned, and it is pending afterwards: a running one loses
    its lease, a failed or dead-lettered one is back in the queue. Attempts count from zero: the new target gets the
    task's whole budget."""
    task = _get(conn, task_id, tenant_id, lock=True)
    if task["status"] in ("completed", "cancelled"):
        raise Conflict(f"task '{task_id}' is already {task['status']}", details={"status": task["status"]})
    conn.execute(delete(task_requirements).where(task_requirements.c.task_id == task_id))
    if target["required_capabilities"]:
        _INSERT_REQUIREMENT.execute_many(conn, [{"task_id": task_id, "capability": c} for c in target["required_capabilities"]])
    return _move(conn, task, "pending", actor, now, note, **_back_in_queue(now), **target, attempts=0)


def set_priority(conn: Connection, task_id: str, tenant_id: str, actor: str, priority: int, now: datetime) -> Transition:
    task = _get(conn, task_id, tenant_id, lock=True)
    if task["status"] not in UNFINISHED:
        raise Conflict(f"task '{task_id}' is already {task['status']}", details={"status": task["status"]})
    note = f"priority {PriorityLevel(task['priority']).name} → {PriorityLevel(priority).name}"
    return _move(conn, task, task["status"], actor, now, note, priority=priority)


_A_LEASE_EXPIRED = Prepared(select(tasks.c.task_id).where(status_is("in_progress"), tasks.c.lease_expires_at < bindparam("now")).limit(1))
_A_DEADLINE_PASSED = Prepared(select(tasks.c.task_id).where(status_is(*UNFINISHED), tasks.c.deadline < bindparam("now")).limit(1))


@point_read
def any_expired(conn: Connection, now: datetime) -> bool:
    """Two index probes, so the expiry job (every 0.5 s) takes a write turn only when a lease or deadline ran out."""
    return any(probe.first(conn, {"now": now}) is not None for probe in (_A_LEASE_EXPIRED, _A_DEADLINE_PASSED))


def expire_leases(conn: Connection, now: datetime, limit: int = 500) -> list[Transition]:
    """Leases that ran out: the task goes back to the queue (with backoff) or, out of attempts, to the dead letter."""
    stmt = select(tasks).where(status_is("in_progress"), tasks.c.lease_expires_at < now).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [_retry_or_bury(conn, dict(r), "system", "lease expired", now) for r in conn.execute(stmt).mappings().all()]


def expire_deadlines(conn: Connection, now: datetime, limit: int = 500) -> list[Transition]:
    stmt = select(tasks).where(status_is(*UNFINISHED), tasks.c.deadline < now).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [_move(conn, dict(r), "failed", "system", now, "expired", last_error="expired") for r in conn.execute(stmt).mappings().all()]


_SORTS = {
    "priority": (tasks.c.priority.desc(), tasks.c.created_at),
    "deadline": (tasks.c.deadline.is_(None), tasks.c.deadline, tasks.c.created_at),
    "created": (tasks.c.created_at,),
}


def list_tasks(
    conn: Connection, tenant_scope: str | None, *, agent_id: str | None, status: str | None, task_type: str | None,
    workflow_id: str | None, sort: str, limit: int, offset: int,
) -> tuple[list[dict[str, Any]], int]:
    stmt = select(tasks)
    if tenant_scope is not None:
        stmt = stmt.where(tasks.c.tenant_id == tenant_scope)
    if agent_id is not None:
        stmt = stmt.where(or_(tasks.c.assignee == agent_id, tasks.c.claimed_by == agent_id))
    if status is not None:
        stmt = stmt.where(tasks.c.status == status)
    if task_type is not None:
        stmt = stmt.where(tasks.c.task_type == task_type)
    if workflow_id is not None:
        stmt = stmt.where(tasks.c.workflow_id == workflow_id)
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = conn.execute(stmt.order_by(*_SORTS[sort], tasks.c.task_id).limit(limit).offset(offset)).mappings().all()
    return [dict(r) for r in rows], total


def history(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    stmt = select(task_history).where(task_history.c.task_id == task_id).order_by(task_history.c.seq)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def stats(conn: Connection, tenant_scope: str | None, task_type: str | None, now: datetime) -> dict[str, Any]:
    scope = [] if tenant_scope is None else [tasks.c.tenant_id == tenant_scope]
    if task_type:
        scope.append(tasks.c.task_type == task_type)
    counts = conn.execute(select(tasks.c.task_type, tasks.c.status, func.count()).where(*scope).group_by(tasks.c.task_type, tasks.c.status)).all()
    by_status: dict[str, int] = {}
    by_type: dict[str, dict[str, int]] = {}
    for kind, status, n in counts:
        by_status[status] = by_status.get(status, 0) + n
        by_type.setdefault(kind, {})[status] = n
    oldest = conn.execute(select(func.min(tasks.c.created_at)).where(*scope, status_is("pending"))).scalar()
    return {
        "by_status": by_status,
        "by_type": by_type,
        "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else None,
        "in_flight_leases": by_status.get("in_progress", 0),
        "dead_letter": by_status.get("dead_letter", 0),
    }


_NEXT_AVAILABLE = Prepared(
    select(func.min(tasks.c.available_at)).where(
        tasks.c.tenant_id == bindparam("tenant_id"), status_is("pending"), tasks.c.available_at > bindparam("now")
    )
)


def next_available(conn: Connection, tenant_id: str, now: datetime) -> datetime | None:
    """When the next task held back by a retry backoff becomes claimable (a waiting claimer sets its timer by it)."""
    result: datetime | None = _NEXT_AVAILABLE.scalar(conn, {"tenant_id": tenant_id, "now": now})
    return result
