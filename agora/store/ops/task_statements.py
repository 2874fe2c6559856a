"""The task queue's hot transitions as one statement each, on PostgreSQL: claiming tasks, and completing leased ones.

Through ``tasks``' functions a claim is six statements in a transaction (the agent, a probe for preferred tasks, the
locking select, the update, its history, the events), and a completion four, each a round trip from the hub's event
loop to the database and back. The last ones ran under the events lock, which every task transition of the hub
takes: under load transitions queued on it while its holder waited for the busy event loop to send its COMMIT.
Here a transition is one statement of data-modifying CTEs (the move, its history, its events), which the store runs
without BEGIN and COMMIT (``Store.write_statement``): the events lock is then held only while the database itself
finishes the statement and commits it.

They move only tasks no service follows (``Followed``): a followed task's transition runs that service's writes in
the same transaction. A claim that finds one changes nothing and says so, and a completion leaves it as it is; the
caller then runs those transitions through ``tasks``' functions, in a transaction. SQLite runs a transition's
statements back to back on its single writer and needs none of this (its completion by the lease holder is one
``UPDATE … RETURNING`` there too: ``tasks.complete_leased``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    CTE,
    Boolean,
    ColumnElement,
    Connection,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..prepared import Prepared
from ..schema import agents, task_history, tasks
from . import credits as credit_ops
from . import events as event_ops
from .dialect import one_of
from .tasks import CLAIM_ORDER, COMPLETION_FIELDS, EVENT_FIELDS, Transition, claimable, lease_token, status_is

_NOW = bindparam("now", type_=tasks.c.updated_at.type)


@dataclass(frozen=True)
class Followed:
    """The tasks whose transitions other services follow in the same transaction: those of ``task_types``, and every
    task of a workflow if ``workflows``."""

    task_types: frozenset[str] = frozenset()
    workflows: bool = False

    def __call__(self, task: dict[str, Any]) -> bool:
        return task["task_type"] in self.task_types or (self.workflows and task.get("workflow_id") is not None)

    def __or__(self, other: Followed) -> Followed:
        return Followed(self.task_types | other.task_types, self.workflows or other.workflows)

    def params(self) -> dict[str, Any]:
        return {"followed_types": sorted(self.task_types), "follow_workflows": self.workflows}


def _followed(of: Any) -> ColumnElement[bool]:
    """SQL for ``Followed`` (parameters ``followed_types``, ``follow_workflows``) on the task columns of ``of``."""
    return or_(
        one_of("postgresql", of.c.task_type, "followed_types"),
        and_(of.c.workflow_id.is_not(None), bindparam("follow_workflows", type_=Boolean)),
    )


def constant(value: str) -> ColumnElement[str]:
    """A fixed word of the statement, typed text (PostgreSQL cannot type a bound parameter inside jsonb_build_object)."""
    return cast(literal_column(f"'{value}'"), Text)


def recorded(moved: CTE, actor: ColumnElement[Any], from_status: str, to_status: str, note: ColumnElement[Any], event: str) -> list[CTE]:
    """The history rows and the events of the tasks ``moved`` (a CTE returning their rows and an order ``n``)."""
    history = insert(task_history).from_select(
        ["task_id", "at", "actor", "from_status", "to_status", "note"],
        select(moved.c.task_id, _NOW, actor, constant(from_status), constant(to_status), note),
    ).cte(f"{moved.name}_history")
    fields = {name: constant(from_status) if name == "from_status" else moved.c[name] for name in EVENT_FIELDS}
    data = func.jsonb_build_object(*(part for name, value in fields.items() for part in (constant(name), value)))
    # As ``services.tasks.record_transitions``: a task addressed to an agent is pushed to it.
    visible_to = case((func.starts_with(moved.c.assignee, constant("agent_")), moved.c.assignee), else_=None)
    values = {
        "tenant_id": moved.c.tenant_id, "type": constant(event), "visible_to": visible_to, "data": data, "created_at": _NOW,
    }  # fmt: skip
    return [history, event_ops.append_for(moved, values, moved.c.n)]


@lru_cache(maxsize=4)
def _claim_statement(types: int) -> Prepared:
    """Up to ``limit`` tasks the agent may claim, its preferred ones first, leased to it with the tokens of
    ``tokens``; ``types``: how many task types the claimer names (0, 1, or more, bound as the array ``task_types``).
    Its rows: the claimer's ``claimer_name`` and ``claimer_capabilities`` and whether a followed task was found
    (``followed``: then nothing was moved), with each task claimed (NULLs when none); none when there is no such
    agent."""
    claimer = (
        select(agents.c.agent_id, agents.c.agent_name, agents.c.capabilities)
        .where(agents.c.tenant_id == bindparam("tenant_id"), agents.c.agent_id == bindparam("agent_id"))
        .cte("claimer")
    )
    eligible = claimable(types if types < 2 else 0, agent_name=select(claimer.c.agent_name).scalar_subquery()).where(exists(select(claimer.c.agent_id)))
    if types > 1:
        eligible = eligible.where(one_of("postgresql", tasks.c.task_type, "task_types"))

    def arm(preferred: bool) -> CTE:
        """A lazy arm: the second runs only when the first found fewer than ``limit`` tasks."""
        mine = tasks.c.preferred_agent_id == bindparam("agent_id")
        found = eligible.where(mine if preferred else tasks.c.preferred_agent_id.is_distinct_from(bindparam("agent_id")))
        return found.order_by(*CLAIM_ORDER).limit(bindparam("limit")).with_for_update(skip_locked=True).cte("preferred" if preferred else "others")

    arms = [(rank, arm(rank == 0)) for rank in (0, 1)]
    first = union_all(*(
        select(a.c.task_id, a.c.priority, a.c.created_at, _followed(a).label("followed"), literal_column(str(rank)).label("arm"))
        for rank, a in arms
    )).limit(bindparam("limit")).subquery("first")  # fmt: skip
    order = func.row_number().over(order_by=(first.c.arm, first.c.priority.desc(), first.c.created_at))
    picked = select(first.c.task_id, first.c.followed, order.label("n")).cte("picked")
    tokens = func.unnest(bindparam("tokens", type_=ARRAY(String))).table_valued("token", with_ordinality="n").render_derived()
    moved = (
        update(tasks)
        .where(
            tasks.c.task_id == picked.c.task_id, tokens.c.n == picked.c.n,
            ~exists(select(picked.c.task_id).where(picked.c.followed).scalar_subquery()),
        )  # fmt: skip
        .values(
            status="in_progress", updated_at=_NOW, claimed_by=bindparam("agent_id"), attempts=tasks.c.attempts + 1,
            lease_token=tokens.c.token, fencing_token=tasks.c.fencing_token + 1,
            lease_expires_at=bindparam("expires", type_=tasks.c.lease_expires_at.type), started_at=func.coalesce(tasks.c.started_at, _NOW),
        )  # fmt: skip
        .returning(*tasks.c, picked.c.n)
        .cte("claimed")
    )
    note = constant("attempt ") + cast(moved.c.attempts, Text)
    flag = select(func.coalesce(func.bool_or(picked.c.followed), false()).label("followed")).subquery("flag")
    return Prepared(
        select(claimer.c.agent_name.label("claimer_name"), claimer.c.capabilities.label("claimer_capabilities"), flag.c.followed, moved)
        .select_from(claimer.join(flag, true()).outerjoin(moved, true()))
        .order_by(moved.c.n)
        .add_cte(*recorded(moved, bindparam("agent_id"), "pending", "in_progress", note, "task_claimed"))
    )


def claim(
    conn: Connection, tenant_id: str, agent_id: str, task_types: list[str], lease: timedelta, now: datetime, limit: int,
    followed: Followed,
) -> tuple[dict[str, Any], list[Transition]] | None:
    """Claim as ``tasks.claim`` would: the claimer (``agent_id``, ``agent_name``, ``capabilities``) and the tasks it
    took. None (nothing changed) when there is no such agent or a task found is followed."""
    types = list(dict.fromkeys(task_types))
    by_type = {"task_type": types[0]} if len(types) == 1 else {"task_types": types} if types else {}
    params = {
        "tenant_id": tenant_id, "agent_id": agent_id, "now": now, "expires": now + lease, "limit": limit,
        "tokens": [lease_token() for _ in range(limit)], **by_type, **followed.params(),
    }  # fmt: skip
    rows = _claim_statement(min(len(types), 2)).rows(conn, params)
    if not rows or rows[0]["followed"]:
        return None
    agent = {"agent_id": agent_id, "agent_name": rows[0]["claimer_name"], "capabilities": rows[0]["claimer_capabilities"]}
    return agent, [_transition(r, "pending") for r in rows if r["task_id"] is not None]


@lru_cache(maxsize=8)
def _complete_statement(fields: tuple[str, ...], metered: bool = False) -> Prepared:
    """Complete the agent's tasks of ``task_ids`` whose leases are the ``tokens`` (and which are not followed),
    setting ``fields`` (of ``COMPLETION_FIELDS``, arrays of the same length) beside; progress is 100 unless given.
    ``metered``: a per_unit instance's one completion, with the unit report of its result and its debit
    (``credits.report_and_charge``), made only if it completed. Its rows: the tasks completed, in the order given."""
    arrays = {
        "task_id": ARRAY(String), "token": ARRAY(String), "result": ARRAY(JSONB), "notes": ARRAY(Text),
        "progress": ARRAY(tasks.c.progress.type),
    }  # fmt: skip
    names = ["task_id", "token", *fields]
    given = func.unnest(*(bindparam(f"{name}s", type_=arrays[name]) for name in names)).table_valued(*names, with_ordinality="n").render_derived()
    values: dict[str, Any] = {f: given.c[f] for f in fields}
    values.setdefault("progress", 100)
    moved = (
        update(tasks)
        .where(
            tasks.c.task_id == given.c.task_id, tasks.c.tenant_id == bindparam("tenant_id"), status_is("in_progress"),
            tasks.c.lease_token == given.c.token, tasks.c.claimed_by == bindparam("agent_id"), ~_followed(tasks),
        )  # fmt: skip
        .values(status="completed", updated_at=_NOW, finished_at=_NOW, lease_token=None, lease_expires_at=None, **values)
        .returning(*tasks.c, given.c.n)
        .cte("completed")
    )
    note = moved.c.notes if "notes" in fields else cast(None, Text)
    ctes = recorded(moved, bindparam("agent_id"), "in_progress", "completed", note, "task_completed")
    return Prepared(select(moved).order_by(moved.c.n).add_cte(*ctes, *(credit_ops.report_and_charge(after=moved) if metered else ())))


def complete(
    conn: Connection, tenant_id: str, agent_id: str, completions: list[dict[str, Any]], now: datetime, followed: Followed,
    report: dict[str, Any] | None = None,
) -> list[Transition]:  # fmt: skip
    """Complete the agent's leased tasks: ``completions`` (distinct ``task_id``, ``lease_token``, and the same ones of
    ``COMPLETION_FIELDS`` each) as ``tasks.update_task`` would. The tasks completed; any other (its lease lost,
    already finished, followed, not there) is left as it was. ``report``: one completion's unit report and debit
    (``credits.report_and_charge``'s parameters), made with it in the same statement."""
    fields = tuple(f for f in COMPLETION_FIELDS if f in completions[0])
    params = {
        "tenant_id": tenant_id, "agent_id": agent_id, "now": now, **followed.params(),
        "task_ids": [c["task_id"] for c in completions], "tokens": [c["lease_token"] for c in completions],
        **{f"{f}s": [c[f] for c in completions] for f in fields}, **(report or {}),
    }  # fmt: skip
    return [_transition(r, "in_progress") for r in _complete_statement(fields, report is not None).rows(conn, params)]


def _transition(row: dict[str, Any], from_status: str) -> Transition:
    moved = {k: v for k, v in row.items() if k in tasks.c}
    return {**moved, "from_status": from_status}
