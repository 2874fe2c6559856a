"""Tasks: assign, claim under a lease, heartbeat, update, cancel, requeue, and the queue's views.

Every transition is recorded as a hub event in its own transaction and wakes waiting claimers on every replica
(wake key ``tasks:<tenant>``), so a worker blocked in ``claim(wait=…)`` gets new work at once, without polling.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.auth import Principal, PrincipalKind
from agora.core.context import CallContext, Hub
from agora.core.events import announce
from agora.core.handoff import Taker
from agora.core.ids import new_id
from agora.core.services import credits as credit_service
from agora.core.services.acting import acting_agent, tenant_in_scope
from agora.core.wakeups import claimer_keys
from agora.observability import metrics
from agora.store import schema
from agora.store.ops import agents as agent_ops
from agora.store.ops import events as event_ops
from agora.store.ops import inserts
from agora.store.ops import task_statements
from agora.store.ops import tasks as task_ops
from agora.store.ops.task_statements import Followed
from agora.store.ops.pagination import decode_cursor, encode_cursor
from agora_sdk.errors import AgoraError, Conflict, InvalidArgument, NotFound, PermissionDenied
from agora_sdk.wire.tasks import (
    Assigned,
    AssignedBatch,
    AssignTask,
    AssignTasks,
    CancelTask,
    Claim,
    Claimed,
    ClaimedBatch,
    ClaimTask,
    ClaimTasks,
    Lease,
    ListTasks,
    Reassign,
    Requeue,
    RequeuedDeadLetters,
    RequeueDeadLetters,
    SetPriority,
    StatsRequest,
    Task,
    TaskHeartbeat,
    TaskHistory,
    TaskList,
    TaskRef,
    TaskStats,
    Transition,
    UpdatedBatch,
    UpdateError,
    UpdateResult,
    UpdateTask,
    UpdateTasks,
)

# The event each status change is announced as.
_EVENTS = {
    "in_progress": "task_claimed",
    "completed": "task_completed",
    "failed": "task_failed",
    "cancelled": "task_cancelled",
    "dead_letter": "task_dead_lettered",
}


def task_model(row: dict[str, Any]) -> Task:
    return Task.model_validate({**row, "preferred_agent": row["preferred_agent_id"]})


def _event_type(t: dict[str, Any]) -> str:
    if "event" in t:  # named by the service that moved it
        return str(t["event"])
    if t["from_status"] is None:  # a new task
        return "task_assigned"
    if t["status"] == t["from_status"]:
        return "task_updated"
    if t["status"] == "pending":
        return "task_requeued" if t["from_status"] in ("dead_letter", "failed") else "task_released"
    return _EVENTS[t["status"]]


# Other services that follow some tasks' transitions in the same transaction: A2A turns (task type "a2a.message"),
# workflow steps (tasks with a workflow_id), hosting operations.
Follower = Callable[[Connection, dict[str, Any], datetime], list[Event]]
_FOLLOWERS: list[tuple[Followed, Follower]] = []
_FOLLOWED = Followed()  # what all of them see


def follow(follower: Follower, *, task_types: Iterable[str] = (), workflows: bool = False) -> None:
    """Have ``follower(conn, transition, now)`` see every transition of the tasks of ``task_types`` (and of every task
    of a workflow if ``workflows``), in the transaction that moves them."""
    global _FOLLOWED
    concerns = Followed(frozenset(task_types), workflows)
    _FOLLOWERS.append((concerns, follower))
    _FOLLOWED = _FOLLOWED | concerns


def followed() -> Followed:
    """Every task some follower sees."""
    return _FOLLOWED


def transition_event(t: dict[str, Any], now: datetime) -> tuple[dict[str, Any], Event]:
    """A transition's hub event: its row in the events table, and as announced."""
    type_ = _event_type(t)
    row = task_ops.transition_row(t, type_, now)
    return row, Event(type_, t["tenant_id"], row["data"])


def record_transitions(conn: Connection, transitions: list[dict[str, Any]], now: Any) -> list[Event]:
    """One hub event per transition (dependents failed along with a task included), and what followers record.

    The transitions' own events are written together (one statement, and on PostgreSQL one round trip under the
    events lock instead of one per event), each batch before anything a follower or a dependent records after it."""
    events: list[Event] = []
    rows: list[dict[str, Any]] = []  # events not written yet: the last len(rows) of ``events``

    def write() -> None:
        if rows:
            event_ops.append_many(conn, rows)
            rows.clear()

    for t in transitions:
        for concerns, follower in _FOLLOWERS:
            if concerns(t):
                write()
                events += follower(conn, t, now)
        row, event = transition_event(t, now)
        rows.append(row)
        events.append(event)
        if t.get("dependents_failed"):
            write()
            events += record_transitions(conn, t["dependents_failed"], now)
    write()
    return events


def _tenant(ctx: CallContext) -> str:
    return ctx.principal.tenant_id


async def assign(ctx: CallContext, req: AssignTask) -> Assigned:
    return (await _assign_all(ctx, [req]))[0]


async def assign_batch(ctx: CallContext, req: AssignTasks) -> AssignedBatch:
    """Every task of the batch in one transaction: all are queued, or (the first refusal answered, with its
    ``index`` in the details) none."""
    results = await _assign_all(ctx, req.tasks)
    return AssignedBatch(results=results, created=sum(r.created for r in results))


async def _assign_all(ctx: CallContext, reqs: list[AssignTask]) -> list[Assigned]:
    p = ctx.principal
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[list[tuple[dict[str, Any], bool, list[str]]], list[Event], dict[str, Any]]:
        queued: list[tuple[dict[str, Any], bool, list[str]]] = []
        events: list[Event] = []
        # Assigning changes no agent's load (tasks in progress), so a batch reads each capability set's least
        # loaded agents once; each task still picks among them at random.
        candidates: dict[tuple[str, ...], list[str]] = {}

        def least_loaded(capabilities: list[str]) -> str | None:
            key = tuple(sorted(set(capabilities)))
            if key not in candidates:
                candidates[key] = task_ops.least_loaded_agents(conn, p.tenant_id, capabilities)
            return random.choice(candidates[key]) if candidates[key] else None

        batch = task_ops.NewTasks()
        for index, req in enumerate(reqs):
            try:
                task, created, task_events, warnings = _assign_one(conn, p, req, now, least_loaded, batch)
            except AgoraError as exc:
                if len(reqs) > 1:
                    exc.message, exc.details = f"task {index}: {exc.message}", {**exc.details, "index": index}
                raise
            queued.append((task, created, warnings))
            events += task_events
        events += flush_new(conn, batch, now)
        durations = {t: task_ops.estimated_duration(conn, p.tenant_id, t) for t in {r.task_type for r in reqs}}
        return queued, events, durations

    if len(reqs) == 1 and ctx.store.dialect == "postgresql" and _made_at_once(reqs[0]):
        queued, events, durations = await _assign_at_once(ctx, reqs[0], now)
    else:
        queued, events, durations = await ctx.store.write(op)
    await announce(ctx.hub, events)
    results = []
    for req, (task, created, warnings) in zip(reqs, queued):
        status = task["status"]
        duration = durations[req.task_type]
        results.append(Assigned(
            task_id=task["task_id"],
            status=status,
            created=created,
            estimated_completion=now + duration if duration is not None and status == "pending" else None,
            warnings=warnings if created else [],
        ))  # fmt: skip
    return results


def assign_in(conn: Connection, p: Principal, req: AssignTask, now: datetime) -> tuple[dict[str, Any], list[Event], list[str]]:
    """One task queued as ``p`` inside the caller's transaction (a schedule's tick): (task, events, warnings)."""
    batch = task_ops.NewTasks()

    def least_loaded(capabilities: list[str]) -> str | None:
        candidates = task_ops.least_loaded_agents(conn, p.tenant_id, capabilities)
        return random.choice(candidates) if candidates else None

    task, _created, events, warnings = _assign_one(conn, p, req, now, least_loaded, batch)
    return task, events + flush_new(conn, batch, now), warnings


def _assign_one(
    conn: Connection, p: Principal, req: AssignTask, now: datetime, least_loaded: Callable[[list[str]], str | None],
    batch: task_ops.NewTasks,
) -> tuple[dict[str, Any], bool, list[Event], list[str]]:
    """Queue one task inside the caller's transaction: (task as stored, created, events, warnings)."""
    warnings: list[str] = []  # made here: the store may run an operation twice
    assignee, preferred = req.assignee, None
    if req.assignee is not None:
        try:
            agent = agent_ops.resolve(conn, p.tenant_id, req.assignee)
            assignee = agent["agent_id"]
            if agent["status"] != "active":
                _unavailable(req, warnings, f"assignee '{req.assignee}' is {agent['status']}; the task waits for it")
        except NotFound:
            _unavailable(req, warnings, f"no agent '{req.assignee}' yet; the task waits for an agent of that name")
    else:
        preferred = _preferred(req, least_loaded(req.required_capabilities), warnings)
    task, created, events = create_in(conn, _assigned_row(p, req, now, assignee, preferred), p.label, now, batch)
    return task, created, events, warnings


def _preferred(req: AssignTask, agent_id: str | None, warnings: list[str]) -> str | None:
    """The least loaded agent picked for a task any agent with its capabilities may take; a warning (or, with
    ``require_available``, a refusal) when there is none."""
    if agent_id is None:
        _unavailable(req, warnings, f"no active agent has {', '.join(req.required_capabilities)}; the task waits for one")
    return agent_id


def _made_at_once(req: AssignTask) -> bool:
    """A task ``_assign_at_once`` can queue: for any agent with its capabilities, with nothing to look up or wait
    for first (no idempotency key, no dependencies), no service following it and no conversation to keep."""
    plain = req.assignee is None and req.idempotency_key is None and not req.depends_on and req.workflow_id is None and req.conversation_id is None
    return plain and req.task_type not in followed().task_types


async def _assign_at_once(ctx: CallContext, req: AssignTask, now: datetime) -> tuple[list[tuple[dict[str, Any], bool, list[str]]], list[Event], dict[str, Any]]:
    """PostgreSQL, one ``_made_at_once`` task: ``_assign_all``'s transaction as a read (the least loaded agents, the
    recent duration) and one statement for every row it adds (``inserts.insert_all``): three round trips, not eight."""
    p = ctx.principal

    def read(conn: Connection) -> tuple[list[str], timedelta | None]:
        return task_ops.least_loaded_agents(conn, p.tenant_id, req.required_capabilities), task_ops.estimated_duration(conn, p.tenant_id, req.task_type)

    candidates, duration = await ctx.store.read(read)
    warnings: list[str] = []
    row = _assigned_row(p, req, now, None, _preferred(req, random.choice(candidates) if candidates else None, warnings))
    requirements = [{"task_id": row["task_id"], "capability": c} for c in row["required_capabilities"]]
    history = [task_ops.history_row(row["task_id"], p.label, None, "pending", now, None)]
    event_row, event = transition_event({**row, "from_status": None}, now)
    tables = [(schema.tasks, [row]), (schema.task_requirements, requirements), (schema.task_history, history)]
    await ctx.store.write_statement(inserts.insert_all, tables, [event_row], schema.tasks)
    return [(row, True, warnings)], [event], {req.task_type: duration}


def _assigned_row(p: Principal, req: AssignTask, now: datetime, assignee: str | None, preferred: str | None) -> dict[str, Any]:
    return new_task_row(
        p.tenant_id, req.task_type, req.payload, p.agent_id or p.label, now,
        assignee=assignee,
        required_capabilities=list(dict.fromkeys(req.required_capabilities)),
        preferred_agent_id=preferred,
        priority=int(req.priority),
        deadline=req.deadline,
        max_attempts=req.max_attempts,
        retry_backoff_seconds=req.retry_backoff_seconds,
        depends_on=list(dict.fromkeys(req.depends_on)),
        run_if_dependency_fails=req.run_if_dependency_fails,
        workflow_id=req.workflow_id,
        conversation_id=req.conversation_id,
        idempotency_key=req.idempotency_key,
    )  # fmt: skip


def new_task_row(tenant_id: str, task_type: str, payload: dict[str, Any], created_by: str, now: datetime, **options: Any) -> dict[str, Any]:
    """A pending task as it is first stored; ``options`` set the columns that differ from a plain task's."""
    return {
        "task_id": new_id("task"), "tenant_id": tenant_id, "task_type": task_type, "status": "pending",
        "assignee": None, "required_capabilities": [], "preferred_agent_id": None, "claimed_by": None,
        "payload": payload, "result": None, "progress": 0, "notes": None, "priority": 2, "deadline": None,
        "max_attempts": 3, "attempts": 0, "retry_backoff_seconds": None, "depends_on": [], "run_if_dependency_fails": False, "has_dependents": False, "workflow_id": None,
        "conversation_id": None, "output_seq": 0, "idempotency_key": None, "lease_token": None, "fencing_token": 0, "lease_expires_at": None, "last_error": None,
        "created_by": created_by, "created_at": now, "updated_at": now, "available_at": now, "started_at": None,
        "finished_at": None, **options,
    }  # fmt: skip


def create_in(
    conn: Connection, row: dict[str, Any], actor: str, now: datetime, batch: task_ops.NewTasks | None = None,
    handed_to: str | None = None,
) -> tuple[dict[str, Any], bool, list[Event]]:
    """Store a new task inside the caller's transaction and record its events: (task, created, events).

    With ``batch``, a task without dependencies is only added to it (``flush_new`` writes it and records its event);
    one with dependencies writes the batch first, so events keep the order the tasks came in. ``handed_to``: the
    agent the caller leases the task to in this transaction (``hand_off``), so its creation wakes no claimer."""
    deferred = batch is not None and not row["depends_on"]
    events = flush_new(conn, batch, now) if batch is not None and not deferred else []
    task, created, transitions = task_ops.create(conn, row, actor, batch)
    if created and not deferred:
        events += record_transitions(conn, [{**task, "from_status": None, "claimed_by": handed_to}], now)
    if transitions:  # a task whose dependency already failed is stored failed
        task = {**task, "status": transitions[-1]["status"]}
    return task, created, events + record_transitions(conn, transitions, now)


def flush_new(conn: Connection, batch: task_ops.NewTasks, now: datetime) -> list[Event]:
    """Write the batch's tasks and record their ``task_assigned`` events."""
    return record_transitions(conn, [{**t, "from_status": None} for t in batch.flush(conn)], now)


def _unavailable(req: AssignTask, warnings: list[str], why: str) -> None:
    if req.require_available:
        raise Conflict(why.split(";")[0] + " (require_available is set)", details={"require_available": True})
    warnings.append(why)


async def claim(ctx: CallContext, req: ClaimTask) -> Claimed:
    taken, _ = await _claim(ctx, req, 1)
    return Claimed(task=taken[0].task, lease=taken[0].lease) if taken else Claimed(task=None, lease=None)


async def claim_batch(ctx: CallContext, req: ClaimTasks) -> ClaimedBatch:
    claims, next_available = await _claim(ctx, req, req.max_tasks)
    return ClaimedBatch(claims=claims, next_available_at=next_available)


async def _claim(ctx: CallContext, req: ClaimTask, limit: int) -> tuple[list[Claim], datetime | None]:
    """Up to ``limit`` tasks under leases, as soon as at least one is eligible (or none once ``req.wait`` ran out,
    with when a task backing off becomes eligible, if one is)."""
    p = ctx.principal
    if p.kind is PrincipalKind.agent and req.agent is None:  # the common case: the agent is read in the claim itself
        claimer, tenant_id = p.agent_id, p.tenant_id
    else:
        row = await acting_agent(ctx, req.agent, "claims tasks")
        claimer, tenant_id = row["agent_id"], row["tenant_id"]
    deadline = time.monotonic() + req.wait
    agent: dict[str, Any] | None = None  # known after the first claim: then only work it may take wakes it
    while True:
        with ctx.hub.wakeups.armed(claimer_keys(tenant_id, agent)) as woken:
            agent, taken, events, next_available = await _claim_now(ctx, tenant_id, claimer, req.task_types, req.lease_seconds, limit)
            if taken:
                await announce(ctx.hub, events)
                return [claim_of(t) for t in taken], None
            remaining = ctx.hub.wakeups.remaining(deadline)
            if remaining <= 0:
                return [], next_available
            if next_available is not None:  # a retry's backoff ends before the wait does
                remaining = min(remaining, max(0.0, (next_available - ctx.clock.now()).total_seconds()) + 0.005)
            await woken.wait(remaining)


async def _claim_now(
    ctx: CallContext, tenant_id: str, claimer: str, task_types: list[str], lease_seconds: float, limit: int, *, then: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Event], datetime | None]:
    """One try: (the claimer's agent row, the tasks it took, their events, and if none was taken and ``then``, when a
    task backing off becomes eligible). On PostgreSQL one statement, unless it finds a task a follower sees."""
    now = ctx.clock.now()
    lease = timedelta(seconds=lease_seconds)
    if ctx.store.dialect == "postgresql":
        found = await ctx.store.write_statement(task_statements.claim, tenant_id, claimer, task_types, lease, now, limit, followed())
        if found is not None:
            agent, taken = found
            if taken or not then:
                return agent, taken, [transition_event(t, now)[1] for t in taken], None
            return agent, [], [], await ctx.store.read(task_ops.next_available, tenant_id, now)

    def op(conn: Connection) -> tuple[dict[str, Any], list[dict[str, Any]], list[Event], Any]:
        agent = agent_ops.resolve(conn, tenant_id, claimer)
        taken = task_ops.claim(conn, agent, task_types, lease, now, limit)
        if not taken:
            return agent, [], [], task_ops.next_available(conn, tenant_id, now) if then else None
        return agent, taken, record_transitions(conn, taken, now), None

    return await ctx.store.write(op)


def hand_off(
    conn: Connection, task: dict[str, Any], taker: Taker, now: datetime, *, a2a_moved: bool = False
) -> tuple[dict[str, Any], list[Event]]:
    """Lease a task made in this transaction (``create_in(…, handed_to=…)``) to the agent whose channel ``taker``
    reserved room for: the claim it would have made, without the wake-up and the write of its own. ``a2a_moved``:
    the caller moves the turn's A2A task itself (A2A's follower leaves it alone)."""
    leased = task_ops.lease_new(conn, task, taker.agent_id, timedelta(seconds=taker.lease_seconds), now)
    return leased, record_transitions(conn, [{**leased, "a2a_moved": True} if a2a_moved else leased], now)


def claim_of(task: dict[str, Any]) -> Claim:
    return Claim(task=task_model(task), lease=Lease(token=task["lease_token"], fencing_token=task["fencing_token"], expires_at=task["lease_expires_at"]))


async def heartbeat(ctx: CallContext, req: TaskHeartbeat) -> Task:
    agent = await acting_agent(ctx, req.agent, "runs tasks")
    row = await ctx.store.write_statement(
        task_ops.heartbeat, req.task_id, agent["tenant_id"], agent["agent_id"], req.lease_token, req.progress,
        req.notes, timedelta(seconds=req.lease_seconds), ctx.clock.now(),
    )
    return task_model(row)


async def update(ctx: CallContext, req: UpdateTask) -> Task:
    p = ctx.principal
    changes = req.model_dump(exclude={"task_id"}, exclude_unset=True, mode="json")
    completed = await _complete_at_once(ctx, [req.task_id], [changes])
    if not completed and task_ops.reports_units(changes) and task_ops.plain_completion(changes, with_units=True):
        completed = await _complete_metered(ctx, req.task_id, changes)
    if completed:
        return task_model(completed[0])
    actor = p.agent_id or p.label

    def move(conn: Connection, now: datetime) -> dict[str, Any]:
        return _metered(conn, p.agent_id, changes, task_ops.update_task(conn, req.task_id, p.tenant_scope(), actor, p.agent_id, changes, now), now)

    return await _apply(ctx, move)


async def _complete_metered(ctx: CallContext, task_id: str, changes: dict[str, Any]) -> list[dict[str, Any]]:
    """An agent completing its leased task with units in the result: the completion and, if the agent is a per_unit
    instance's, the units' report and debit with it — one statement on PostgreSQL (the report checked first, so bad
    units refuse the completion), one transaction on SQLite. Nothing when the completion was not made (the general
    path says why)."""
    p, now = ctx.principal, ctx.clock.now()
    if p.kind is not PrincipalKind.agent or p.agent_id is None:
        return []
    agent_id = p.agent_id
    if ctx.store.dialect == "postgresql":  # the completion, its history, event, report and debit in one statement
        report = await credit_service.result_report(ctx, agent_id, task_id, changes["result"]["units"], now)
        done = await ctx.store.write_statement(task_statements.complete, p.tenant_id, agent_id, [{"task_id": task_id, **changes}], now, followed(), report)
        if done and report is not None:
            metrics.count_unit_report("accepted")
        await announce(ctx.hub, [transition_event(t, now)[1] for t in done])
        return done

    def op(conn: Connection) -> tuple[list[dict[str, Any]], list[Event]]:
        moved = task_ops.complete_leased(conn, task_id, p.tenant_id, agent_id, changes, now)
        done = [moved] if moved is not None else []
        return [_metered(conn, agent_id, changes, t, now) for t in done], record_transitions(conn, done, now)

    done, events = await ctx.store.write(op)
    await announce(ctx.hub, events)
    return done


def _metered(conn: Connection, agent_id: str | None, changes: dict[str, Any], moved: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A completion whose result reports units: if a per_unit instance's agent made it, its unit report (and debit),
    in the completion's transaction (bad units refuse the completion)."""
    if agent_id is not None and moved["status"] == "completed" and task_ops.reports_units(changes):
        credit_service.record_result_units(conn, agent_id, moved["task_id"], changes["result"]["units"], now)
    return moved


async def _complete_at_once(ctx: CallContext, task_ids: list[str], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PostgreSQL, an agent completing tasks it leased (each update sets the same fields): one statement for all.
    The transitions made, announced; an update it did not make (a lost lease, a finished task, a task a follower
    sees; or all when these are not such updates) is the caller's to make or refuse."""
    p = ctx.principal
    if (
        ctx.store.dialect != "postgresql"
        or p.kind is not PrincipalKind.agent
        or len(set(task_ids)) < len(task_ids)
        or not all(task_ops.plain_completion(c) for c in changes)
        or len({tuple(f for f in task_ops.COMPLETION_FIELDS if f in c) for c in changes}) > 1
    ):
        return []
    completions = [{"task_id": t, **c} for t, c in zip(task_ids, changes)]
    now = ctx.clock.now()
    done = await ctx.store.write_statement(task_statements.complete, p.tenant_id, p.agent_id, completions, now, followed())
    await announce(ctx.hub, [transition_event(t, now)[1] for t in done])
    return done


class _UpdateFailed(Exception):
    """One update of a batch run without savepoints failed: run the batch again, each update in its own."""


async def update_batch(ctx: CallContext, req: UpdateTasks) -> UpdatedBatch:
    """Several updates, each made or refused on its own: one that fails (a lost lease, a finished task) changes
    nothing and is reported in its place; the others still apply. They run in one transaction (on PostgreSQL an
    agent's completions of its leased tasks first, in one statement of their own; the transaction then makes the
    rest; on SQLite each such completion is one statement, without reading the task first). Savepoints cost as much
    as the updates themselves, so the transaction runs without them first and again with one per update only when
    an update failed. ``claim_next`` then takes the caller's next tasks in that transaction (or, with nothing left
    for one, in a claim's one statement): a worker reports and takes work in one call."""
    p = ctx.principal
    actor = p.agent_id or p.label
    changes = [u.model_dump(exclude={"task_id"}, exclude_unset=True, mode="json") for u in req.updates]
    claim_next = req.claim_next
    if claim_next is not None and p.kind is not PrincipalKind.agent:
        raise InvalidArgument("claim_next: only an agent claims its next tasks; call as the agent", details={"field": "claim_next"})
    if ctx.hub.halt.halted:
        claim_next = None  # outcomes are still taken while the hub is halted; new work is not
    ids = [u.task_id for u in req.updates]
    done = {t["task_id"]: t for t in await _complete_at_once(ctx, ids, changes)}
    outcomes: dict[int, dict[str, Any] | AgoraError] = {i: done[u.task_id] for i, u in enumerate(req.updates) if u.task_id in done}
    rest = [i for i in range(len(req.updates)) if i not in outcomes]
    now = ctx.clock.now()
    quick = p.agent_id if ctx.store.dialect == "sqlite" and p.kind is PrincipalKind.agent and len(set(ids)) == len(ids) else None

    def op(conn: Connection, isolated: bool) -> tuple[dict[int, dict[str, Any] | AgoraError], list[dict[str, Any]], list[Event]]:
        made: dict[int, dict[str, Any] | AgoraError] = {}
        if quick:  # SQLite: a completion under the agent's lease in one statement; the others are read, then made
            for i in rest:
                if task_ops.plain_completion(changes[i]):
                    completed = task_ops.complete_leased(conn, req.updates[i].task_id, p.tenant_id, quick, changes[i], now)
                    if completed is not None:
                        made[i] = completed
        left = [i for i in rest if i not in made]
        locked = task_ops.lock_many(conn, [req.updates[i].task_id for i in left], p.tenant_scope()) if left else {}
        for i in left:
            task_id = req.updates[i].task_id
            try:
                with conn.begin_nested() if isolated else contextlib.nullcontext():
                    # A task updated twice in one batch is read again the second time: the first update changed it.
                    row = locked.pop(task_id, None)
                    moved = task_ops.update_task(conn, task_id, p.tenant_scope(), actor, p.agent_id, changes[i], now, row)
                    made[i] = _metered(conn, p.agent_id, changes[i], moved, now)
            except AgoraError as exc:
                if not isolated:
                    raise _UpdateFailed from exc
                made[i] = exc
        taken: list[dict[str, Any]] = []
        if claim_next is not None:
            assert p.agent_id is not None
            lease = timedelta(seconds=claim_next.lease_seconds)
            taken = task_ops.claim_by_id(conn, p.tenant_id, p.agent_id, claim_next.task_types, lease, now, claim_next.max_tasks)
        # Recorded last: on PostgreSQL the events lock is then held only from here to the commit.
        moved = [made[i] for i in sorted(made) if not isinstance(made[i], AgoraError)]
        return made, taken, record_transitions(conn, moved + taken, now)

    taken: list[dict[str, Any]] = []
    if rest:
        try:
            made, taken, events = await ctx.store.write(op, False)
        except _UpdateFailed:
            made, taken, events = await ctx.store.write(op, True)
        outcomes.update(made)
        await announce(ctx.hub, events)
    elif claim_next is not None:  # every update made at once: the next tasks too
        assert p.agent_id is not None
        _, taken, events, _ = await _claim_now(ctx, p.tenant_id, p.agent_id, claim_next.task_types, claim_next.lease_seconds, claim_next.max_tasks, then=False)
        await announce(ctx.hub, events)
    results = []
    for i, u in enumerate(req.updates):
        o = outcomes[i]
        if isinstance(o, AgoraError):
            results.append(UpdateResult(task_id=u.task_id, error=UpdateError(code=o.code, message=o.message, details=o.details)))
        else:
            results.append(UpdateResult(task_id=u.task_id, task=None if req.brief else task_model(o)))
    failed = sum(r.error is not None for r in results)
    return UpdatedBatch(results=results, updated=len(results) - failed, failed=failed, claims=[claim_of(t) for t in taken])


async def _apply(ctx: CallContext, move: Callable[[Connection, datetime], dict[str, Any]]) -> Task:
    """Run one transition and record its events in a transaction, then announce them."""
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[dict[str, Any], list[Event]]:
        moved = move(conn, now)
        return moved, record_transitions(conn, [moved], now)

    moved, events = await ctx.store.write(op)
    await announce(ctx.hub, events)
    return task_model(moved)


async def _own_or_tenant(ctx: CallContext, task_id: str) -> dict[str, Any]:
    """An agent changes only the tasks it created or was assigned; customers and admins any of their tenant's."""
    task = await ctx.store.read(task_ops.get, task_id, ctx.principal.tenant_scope())
    p = ctx.principal
    if p.kind is PrincipalKind.agent and p.agent_id not in (task["created_by"], task["assignee"]):
        raise PermissionDenied(
            "an agent cancels, requeues, reassigns or reprioritizes only tasks it created or was assigned",
            details={"task_id": task_id},
        )
    return task


async def cancel(ctx: CallContext, req: CancelTask) -> Task:
    task = await _own_or_tenant(ctx, req.task_id)
    label = ctx.principal.label
    return await _apply(ctx, lambda conn, now: task_ops.cancel(conn, req.task_id, task["tenant_id"], label, req.reason, now))


async def requeue(ctx: CallContext, req: Requeue) -> Task:
    task = await _own_or_tenant(ctx, req.task_id)
    label = ctx.principal.label
    return await _apply(
        ctx, lambda conn, now: task_ops.requeue(conn, req.task_id, task["tenant_id"], label, req.reset_attempts, now)
    )


async def reassign(ctx: CallContext, req: Reassign) -> Task:
    """A new assignee (an agent of the task's tenant: 404 otherwise) or new required capabilities (the least loaded
    active agent with them preferred, as at assign). Announced as ``task_reassigned``, which wakes the claimers that
    may take it now."""
    task = await _own_or_tenant(ctx, req.task_id)
    label = ctx.principal.label
    tenant_id = task["tenant_id"]

    def move(conn: Connection, now: datetime) -> dict[str, Any]:
        if req.assignee is not None:
            agent_id = agent_ops.resolve(conn, tenant_id, req.assignee)["agent_id"]
            target = {"assignee": agent_id, "required_capabilities": [], "preferred_agent_id": None}
            to = agent_id
        else:
            capabilities = list(dict.fromkeys(req.required_capabilities))
            candidates = task_ops.least_loaded_agents(conn, tenant_id, capabilities)
            preferred = random.choice(candidates) if candidates else None
            target = {"assignee": None, "required_capabilities": capabilities, "preferred_agent_id": preferred}
            to = "agents with " + ", ".join(capabilities)
        note = f"reassigned to {to}" + (f": {req.reason}" if req.reason else "")
        return {**task_ops.reassign(conn, req.task_id, tenant_id, label, target, note, now), "event": "task_reassigned"}

    return await _apply(ctx, move)


async def set_priority(ctx: CallContext, req: SetPriority) -> Task:
    task = await _own_or_tenant(ctx, req.task_id)
    label = ctx.principal.label
    return await _apply(
        ctx, lambda conn, now: task_ops.set_priority(conn, req.task_id, task["tenant_id"], label, int(req.priority), now)
    )


async def requeue_dead_letter(ctx: CallContext, req: RequeueDeadLetters) -> RequeuedDeadLetters:
    """The dead letter back in the queue in one transaction, as ``requeue`` would put each task (attempts from zero).
    An agent reaches the tasks it could requeue one by one: those it created or was assigned."""
    p = ctx.principal
    tenant_id = await tenant_in_scope(ctx, req.tenant)
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[list[dict[str, Any]], bool, list[Event]]:
        moved, more = task_ops.requeue_dead_letters(conn, tenant_id, p.agent_id, req.task_type, p.label, req.limit, now)
        return moved, more, record_transitions(conn, moved, now)

    moved, more, events = await ctx.store.write(op)
    await announce(ctx.hub, events)
    return RequeuedDeadLetters(task_ids=[t["task_id"] for t in moved], requeued=len(moved), has_more=more)


async def get(ctx: CallContext, req: TaskRef) -> Task:
    return task_model(await ctx.store.read(task_ops.get, req.task_id, ctx.principal.tenant_scope()))


async def list_tasks(ctx: CallContext, req: ListTasks) -> TaskList:
    offset = req.offset
    if req.cursor is not None:
        value = decode_cursor(req.cursor) or ""
        if not value.startswith("o") or not value[1:].isdigit():
            raise InvalidArgument("cursor is not a task-list cursor of this hub", details={"field": "cursor"})
        offset = int(value[1:])
    scope = await tenant_in_scope(ctx, req.tenant)
    agent_id = None
    if req.agent is not None:
        agent_id = (await ctx.store.read(agent_ops.resolve, scope, req.agent))["agent_id"]
    rows, total = await ctx.store.read(
        lambda conn: task_ops.list_tasks(
            conn, scope, agent_id=agent_id, status=req.status.value if req.status else None,
            task_type=req.task_type, workflow_id=req.workflow_id, sort=req.sort.value, limit=req.limit, offset=offset,
        )
    )
    has_more = offset + len(rows) < total
    return TaskList(
        tasks=[task_model(r) for r in rows],
        total=total,
        has_more=has_more,
        next_cursor=encode_cursor(f"o{offset + len(rows)}") if has_more else None,
    )


async def history(ctx: CallContext, req: TaskRef) -> TaskHistory:
    await ctx.store.read(task_ops.get, req.task_id, ctx.principal.tenant_scope())  # 404 unless visible
    rows = await ctx.store.read(task_ops.history, req.task_id)
    return TaskHistory(task_id=req.task_id, transitions=[Transition.model_validate(r) for r in rows])


async def stats(ctx: CallContext, req: StatsRequest) -> TaskStats:
    return TaskStats.model_validate(
        await ctx.store.read(task_ops.stats, ctx.principal.tenant_scope(), req.task_type, ctx.clock.now())
    )


async def expire(hub: Hub) -> None:
    """Housekeeping: leases that ran out go back to the queue (or the dead letter); passed deadlines fail."""
    now = hub.clock.now()
    if not await hub.store.read(task_ops.any_expired, now):
        return

    def op(conn: Connection) -> list[Event]:
        moved = task_ops.expire_leases(conn, now) + task_ops.expire_deadlines(conn, now)
        return record_transitions(conn, moved, now)

    await announce(hub, await hub.store.write(op))
