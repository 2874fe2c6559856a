"""agora.workflow.*: create, read, list, cancel and signal workflows; the engine (``core/workflows``) moves them."""

from __future__ import annotations

from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.auth import Principal
from agora.core.context import CallContext
from agora.core.events import announce
from agora.core.services import tasks as task_service
from agora.core.workflows import engine
from agora.store.ops import workflows as workflow_ops
from agora.store.ops.pagination import decode_cursor, encode_cursor
from agora_sdk.errors import Conflict, InvalidArgument
from agora_sdk.wire import workflows as w


def _summary_figures(steps: list[dict[str, Any]]) -> tuple[int | None, float]:
    done = sum(1 for s in steps if s["state"] in engine.FINISHED)
    current = next((i for i, s in enumerate(steps) if s["state"] in ("running", "waiting")), None)
    return current, round(100.0 * done / len(steps), 1) if steps else 100.0


# What a workflow starts from, read inside its creating transaction: the steps, the failure policy, and metadata.
Source = Callable[[Connection], tuple[list[w.Step], str, dict[str, Any]]]


async def create(ctx: CallContext, req: w.CreateWorkflow) -> w.WorkflowCreated:
    source: Source = lambda _conn: (req.steps, req.failure_policy.value, req.metadata)  # noqa: E731
    return await _start(ctx, req.workflow_name, source, req.input, req.assigned_agents)


async def run(ctx: CallContext, req: w.RunWorkflow) -> w.WorkflowCreated:
    """Start a saved definition (its latest version unless one is named) with this input."""
    return await _start(ctx, req.workflow_name, saved_source(ctx.principal, req), req.input, [])


async def _start(ctx: CallContext, name: str, source: Source, input_: dict[str, Any], assigned_agents: list[str]) -> w.WorkflowCreated:
    """Plan and start a workflow in one transaction: its rows, its first steps' tasks, its events."""
    now = ctx.clock.now()
    workflow, warnings, events = await ctx.store.write(start_in, ctx.principal, name, source, input_, assigned_agents, now)
    await announce(ctx.hub, events)
    return w.WorkflowCreated(workflow_id=workflow["workflow_id"], status=workflow["status"], created_at=now, warnings=warnings)


def start_in(
    conn: Connection, p: Principal, name: str, source: Source, input_: dict[str, Any], assigned_agents: list[str], now: datetime
) -> tuple[dict[str, Any], list[str], list[Event]]:
    """Start a workflow as ``p`` inside the caller's transaction: (workflow, warnings, events to announce)."""
    steps, policy, metadata = source(conn)
    plan = engine.plan(conn, p.tenant_id, steps)
    workflow = {
        "workflow_id": engine.new_workflow_id(), "tenant_id": p.tenant_id, "workflow_name": name, "status": "running",
        "failure_policy": policy, "input": input_, "metadata": metadata, "assigned_agents": assigned_agents,
        "created_by": p.agent_id or p.label, "created_at": now, "updated_at": now, "finished_at": None,
    }  # fmt: skip
    workflow_ops.insert_workflow(conn, workflow, [{**s, "workflow_id": workflow["workflow_id"]} for s in plan.steps])
    events = [engine.event(conn, workflow, "workflow_created", now, workflow_name=name)]
    return workflow, plan.warnings, events + engine.advance(conn, workflow, now)


def saved_source(p: Principal, req: w.RunWorkflow) -> Source:
    """A saved definition (its latest version unless one is named) as what a run starts from."""

    def source(conn: Connection) -> tuple[list[w.Step], str, dict[str, Any]]:
        saved = workflow_ops.definition(conn, p.tenant_id, req.workflow_name, req.version)
        steps = [w.Step.model_validate(s) for s in saved["steps"]]
        return steps, saved["failure_policy"], {**req.metadata, "definition_version": saved["version"]}

    return source


async def define(ctx: CallContext, req: w.DefineWorkflow) -> w.WorkflowDefinition:
    p = ctx.principal
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[dict[str, Any], list[str]]:
        plan = engine.plan(conn, p.tenant_id, req.steps)  # checked now, not at the first run
        row = {
            "tenant_id": p.tenant_id, "workflow_name": req.workflow_name, "description": req.description,
            "steps": [s.model_dump(mode="json", exclude_unset=True) for s in req.steps], "failure_policy": req.failure_policy.value,
            "created_by": p.agent_id or p.label, "created_at": now,
        }  # fmt: skip
        return workflow_ops.define(conn, row), plan.warnings

    row, warnings = await ctx.store.write(op)
    return w.WorkflowDefinition(workflow_name=row["workflow_name"], version=row["version"], total_steps=len(req.steps), created_at=now, warnings=warnings)


async def status(ctx: CallContext, req: w.StatusRequest) -> w.WorkflowStatus:
    def op(conn: Connection) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return workflow_ops.get(conn, req.workflow_id, ctx.principal.tenant_scope()), workflow_ops.steps(conn, req.workflow_id)

    workflow, steps = await ctx.store.read(op)
    current, progress = _summary_figures(steps)
    return w.WorkflowStatus(
        **{k: workflow[k] for k in ("workflow_id", "workflow_name", "status", "failure_policy", "input", "metadata", "created_at", "finished_at")},
        current_step=current,
        total_steps=len(steps),
        progress=progress,
        mermaid=engine.mermaid(steps) if req.mermaid else None,
        steps=[
            w.StepStatus(
                name=s["name"], kind=s["kind"], state=s["state"], depends_on=s["depends_on"], agent=s["agent_id"] or s["spec"].get("agent"),
                task_ids=s["task_ids"], input=engine.step_input(workflow, steps, s), started_at=s["started_at"], finished_at=s["finished_at"], result=s["result"], error=s["error"],
            )  # fmt: skip
            for s in steps
        ],
    )


async def list_workflows(ctx: CallContext, req: w.ListWorkflows) -> w.WorkflowList:
    after = _page_key(req.cursor) if req.cursor else None

    def op(conn: Connection) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        rows = workflow_ops.list_workflows(conn, ctx.principal.tenant_scope(), req.status, after, req.limit + 1)
        return [(r, workflow_ops.steps(conn, r["workflow_id"])) for r in rows]

    found = await ctx.store.read(op)
    page, more = found[: req.limit], len(found) > req.limit
    summaries = []
    for workflow, steps in page:
        _, progress = _summary_figures(steps)
        summaries.append(w.WorkflowSummary(
            workflow_id=workflow["workflow_id"], workflow_name=workflow["workflow_name"], status=workflow["status"],
            total_steps=len(steps), progress=progress, created_at=workflow["created_at"], finished_at=workflow["finished_at"],
        ))  # fmt: skip
    last = page[-1][0] if page else None
    cursor = encode_cursor(f"{int(last['created_at'].timestamp() * 1_000_000)}_{last['workflow_id']}") if more and last else None
    return w.WorkflowList(workflows=summaries, count=len(summaries), next_cursor=cursor)


def _page_key(cursor: str) -> tuple[datetime, str]:
    try:
        micros, workflow_id = (decode_cursor(cursor) or "").split("_", 1)
        return datetime.fromtimestamp(int(micros) / 1_000_000, tz=timezone.utc), workflow_id
    except ValueError:
        raise InvalidArgument("cursor is not a workflow-list cursor of this hub", details={"field": "cursor"}) from None


async def _apply(ctx: CallContext, workflow_id: str, move: Any) -> w.WorkflowStatus:
    """Run ``move(conn, workflow, now)`` on a running workflow of the caller's tenant, then report its status."""
    now = ctx.clock.now()

    def op(conn: Connection) -> list[Event]:
        workflow = workflow_ops.get(conn, workflow_id, ctx.principal.tenant_scope(), lock=True)
        if workflow["status"] != "running":
            raise Conflict(f"workflow {workflow_id} is already {workflow['status']}", details={"status": workflow["status"]})
        return move(conn, workflow, now)

    await announce(ctx.hub, await ctx.store.write(op))
    return await status(ctx, w.StatusRequest(workflow_id=workflow_id))


async def modify(ctx: CallContext, req: w.ModifyWorkflow) -> w.WorkflowStatus:
    def move(conn: Connection, workflow: dict[str, Any], now: Any) -> list[Event]:
        events, warnings = engine.modify(conn, workflow, req, now)
        ctx.warnings.extend(warnings)
        return events

    return await _apply(ctx, req.workflow_id, move)


async def cancel(ctx: CallContext, req: w.CancelWorkflow) -> w.WorkflowStatus:
    reason = req.reason or f"cancelled by {ctx.principal.label}"
    return await _apply(ctx, req.workflow_id, lambda conn, wf, now: engine.stop(conn, wf, "cancelled", reason, ctx.principal.label, now))


async def signal(ctx: CallContext, req: w.Signal) -> w.WorkflowStatus:
    approve = req.decision is w.Decision.approve
    actor = ctx.principal.agent_id or ctx.principal.label
    return await _apply(ctx, req.workflow_id, lambda conn, wf, now: engine.signal(conn, wf, req.step, approve, req.data, actor, now, req.note))


task_service.follow(engine.task_moved, workflows=True)
