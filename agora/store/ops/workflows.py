"""Workflows, their steps, and which step each dispatched task belongs to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from agora_sdk.errors import NotFound

from ..schema import (
    workflow_definitions,
    workflow_step_tasks,
    workflow_steps,
    workflows,
)

_GET = select(workflows).where(workflows.c.workflow_id == bindparam("workflow_id"))
_GET_LOCKED = _GET.with_for_update()
_STEPS = select(workflow_steps).where(workflow_steps.c.workflow_id == bindparam("workflow_id")).order_by(workflow_steps.c.position)
_SAVE_WORKFLOW = update(workflows).where(workflows.c.workflow_id == bindparam("b_workflow_id"))
_SAVE_STEP = update(workflow_steps).where(
    workflow_steps.c.workflow_id == bindparam("b_workflow_id"), workflow_steps.c.name == bindparam("b_name")
)
_STEP_OF_TASK = select(workflow_step_tasks).where(workflow_step_tasks.c.task_id == bindparam("task_id"))


def insert_workflow(conn: Connection, row: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    conn.execute(insert(workflows), row)
    conn.execute(insert(workflow_steps), steps)


def get(conn: Connection, workflow_id: str, tenant_scope: str | None, lock: bool = False) -> dict[str, Any]:
    row = conn.execute(_GET_LOCKED if lock else _GET, {"workflow_id": workflow_id}).mappings().first()
    if row is None or (tenant_scope is not None and row["tenant_id"] != tenant_scope):
        raise NotFound(f"no workflow '{workflow_id}'", details={"workflow_id": workflow_id})
    return dict(row)


def steps(conn: Connection, workflow_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(_STEPS, {"workflow_id": workflow_id}).mappings()]


def save_workflow(conn: Connection, workflow: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    conn.execute(_SAVE_WORKFLOW, {"b_workflow_id": workflow["workflow_id"], **changes})
    return {**workflow, **changes}


def save_step(conn: Connection, step: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    conn.execute(_SAVE_STEP, {"b_workflow_id": step["workflow_id"], "b_name": step["name"], **changes})
    step.update(changes)
    return step


def insert_step() -> Any:
    return insert(workflow_steps)


def remove_step(conn: Connection, workflow_id: str, name: str) -> None:
    conn.execute(delete(workflow_steps).where(workflow_steps.c.workflow_id == workflow_id, workflow_steps.c.name == name))


def link_task(conn: Connection, task_id: str, workflow_id: str, step: str, item: int | None) -> None:
    conn.execute(insert(workflow_step_tasks), {"task_id": task_id, "workflow_id": workflow_id, "step": step, "item": item})


def step_of_task(conn: Connection, task_id: str) -> dict[str, Any] | None:
    row = conn.execute(_STEP_OF_TASK, {"task_id": task_id}).mappings().first()
    return dict(row) if row else None


def running(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(select(workflows.c.workflow_id).where(workflows.c.status == "running"))]


def list_workflows(
    conn: Connection, tenant_scope: str | None, status: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; ``after`` is the (created_at, workflow_id) of the last row of the previous page."""
    w = workflows.c
    stmt = select(workflows)
    if tenant_scope is not None:
        stmt = stmt.where(w.tenant_id == tenant_scope)
    if status is not None:
        stmt = stmt.where(w.status == status)
    if after is not None:
        stamp, workflow_id = after
        stmt = stmt.where(or_(w.created_at < stamp, and_(w.created_at == stamp, w.workflow_id < workflow_id)))
    return [dict(r) for r in conn.execute(stmt.order_by(w.created_at.desc(), w.workflow_id.desc()).limit(limit)).mappings()]


def define(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    """Store the next version of a definition (1 for a new name)."""
    d = workflow_definitions.c
    latest = conn.execute(
        select(func.max(d.version)).where(d.tenant_id == row["tenant_id"], d.workflow_name == row["workflow_name"])
    ).scalar()
    row = {**row, "version": (latest or 0) + 1}
    conn.execute(insert(workflow_definitions), row)
    return row


def definition(conn: Connection, tenant_id: str, name: str, version: int | None) -> dict[str, Any]:
    d = workflow_definitions.c
    stmt = select(workflow_definitions).where(d.tenant_id == tenant_id, d.workflow_name == name)
    stmt = stmt.where(d.version == version) if version is not None else stmt.order_by(d.version.desc()).limit(1)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        at = f" at version {version}" if version is not None else ""
        raise NotFound(f"no workflow definition '{name}'{at}; agora.workflow.define saves one", details={"workflow_name": name})
    return dict(row)
