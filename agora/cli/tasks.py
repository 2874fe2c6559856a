"""``agora tasks ls|show|assign|cancel|requeue|reassign|priority|requeue-dead|stats``: the work queue from a terminal."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import fail, table

app = typer.Typer(help="Hand out work and watch it being done.", no_args_is_help=True)

TASK_COLUMNS = ["task_id", "type", "status", "agent", "priority", "progress", "attempts", "created"]


def _task_row(t: dict[str, Any]) -> list[Any]:
    agent = t["claimed_by"] or t["assignee"]
    return [t["task_id"], t["task_type"], t["status"], agent, t["priority"], f"{t['progress']}%", t["attempts"], t["created_at"][:19]]


@hub_command(app, "ls")
def ls(
    hub: Hub,
    status: Annotated[str | None, typer.Option(help="pending, in_progress, completed, failed, cancelled, …")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Only this task type.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only tasks assigned to or claimed by this agent.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only tasks of this workflow.")] = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """List tasks, oldest first."""
    result = hub.call("agora.task.list", status=status, task_type=task_type, agent=agent, workflow_id=workflow, limit=limit)
    more = " (more: use --limit)" if result["has_more"] else ""
    hub.show(result, lambda r: table(f"{r['total']} task(s){more}", TASK_COLUMNS, [_task_row(t) for t in r["tasks"]]))


@hub_command(app, "show")
def show(hub: Hub, task_id: Annotated[str, typer.Argument(help="The task id (task_…).")]) -> None:
    """Show one task and its history of transitions."""
    task = hub.call("agora.task.get", task_id=task_id)
    history = hub.call("agora.task.history", task_id=task_id)

    def human(_: Any) -> None:
        table(task_id, ["field", "value"], [[k, jsonlib.dumps(v) if isinstance(v, (dict, list)) else v] for k, v in task.items()])
        rows = [[t["at"], t["actor"], t["from_status"], t["to_status"], t["note"]] for t in history["transitions"]]
        table("history", ["at", "by", "from", "to", "note"], rows)

    hub.show({"task": task, "history": history["transitions"]}, human)


@hub_command(app, "assign")
def assign(
    hub: Hub,
    task_type: Annotated[str, typer.Argument(help="What kind of work, e.g. summarize.")],
    payload: Annotated[str, typer.Option(help="The task's input as a JSON object.")] = "{}",
    assignee: Annotated[str | None, typer.Option(help="Give it to this agent (id or name); otherwise any capable agent claims it.")] = None,
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help="A capability the claimer needs (repeatable).")] = None,
    priority: Annotated[str | None, typer.Option(help="low, normal, high or urgent.")] = None,
    deadline: Annotated[str | None, typer.Option(help="ISO 8601 time by which it must be done.")] = None,
    max_attempts: Annotated[int | None, typer.Option("--max-attempts", help="Attempts before it is dead-lettered.")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="Assigning again with this key creates nothing new.")] = None,
) -> None:
    """Create a task for an agent, or for whichever capable agent claims it first."""
    try:
        body = jsonlib.loads(payload)
    except ValueError as exc:
        raise fail(f"--payload is not JSON ({exc})") from None
    result = hub.call(
        "agora.task.assign",
        task_type=task_type,
        payload=body,
        assignee=assignee,
        required_capabilities=capability,
        priority=priority,
        deadline=deadline,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
    )

    def human(r: dict[str, Any]) -> None:
        typer.echo(f"{'created' if r['created'] else 'already there'}: {r['task_id']} ({r['status']})")
        for warning in r.get("warnings") or []:
            typer.echo(f"warning: {warning}", err=True)

    hub.show(result, human)


@hub_command(app, "cancel")
def cancel(
    hub: Hub,
    task_id: Annotated[str, typer.Argument(help="The task id (task_…).")],
    reason: Annotated[str | None, typer.Option(help="Why, for the task's history.")] = None,
) -> None:
    """Cancel a task that has not finished."""
    task = hub.call("agora.task.cancel", task_id=task_id, reason=reason)
    hub.show(task, lambda t: typer.echo(f"{t['task_id']}: {t['status']}"))


@hub_command(app, "requeue")
def requeue(
    hub: Hub,
    task_id: Annotated[str, typer.Argument(help="The task id (task_…).")],
    reset_attempts: Annotated[bool, typer.Option("--reset-attempts", help="Start counting attempts from zero again.")] = False,
) -> None:
    """Put a failed or dead-lettered task back in the queue."""
    task = hub.call("agora.task.requeue", task_id=task_id, reset_attempts=reset_attempts or None)
    hub.show(task, lambda t: typer.echo(f"{t['task_id']}: {t['status']} (attempts {t['attempts']})"))


@hub_command(app, "reassign")
def reassign(
    hub: Hub,
    task_id: Annotated[str, typer.Argument(help="The task id (task_…).")],
    assignee: Annotated[str | None, typer.Option(help="Give it to this agent (id or name).")] = None,
    capability: Annotated[
        list[str] | None, typer.Option("--capability", "-c", help="Or: a capability the claimer needs (repeatable).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the task's history.")] = None,
) -> None:
    """Give a task to another agent, or to any agent with these capabilities; a running one loses its lease and a
    failed or dead-lettered one goes back to the queue."""
    task = hub.call("agora.task.reassign", task_id=task_id, assignee=assignee, required_capabilities=capability, reason=reason)

    def human(t: dict[str, Any]) -> None:
        target = t["assignee"] or "agents with " + ", ".join(t["required_capabilities"])
        typer.echo(f"{t['task_id']}: {t['status']} for {target}")

    hub.show(task, human)


@hub_command(app, "priority")
def priority(
    hub: Hub,
    task_id: Annotated[str, typer.Argument(help="The task id (task_…).")],
    level: Annotated[str, typer.Argument(help="low, normal, high or urgent.")],
) -> None:
    """Change the priority of a task that has not finished."""
    task = hub.call("agora.task.set_priority", task_id=task_id, priority=level)
    hub.show(task, lambda t: typer.echo(f"{t['task_id']}: priority {t['priority']}"))


@hub_command(app, "requeue-dead")
def requeue_dead(
    hub: Hub,
    task_type: Annotated[str | None, typer.Option("--type", help="Only this task type.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's tasks (an admin key; id or name).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many (1-1000, default 100).")] = None,
) -> None:
    """Put dead-lettered tasks back in the queue, oldest first, with their attempts counted from zero."""
    result = hub.call("agora.task.requeue_dead_letter", task_type=task_type, tenant=tenant, limit=limit)

    def human(r: dict[str, Any]) -> None:
        for task_id in r["task_ids"]:
            typer.echo(task_id)
        more = " (more are left: run it again)" if r["has_more"] else ""
        typer.echo(f"requeued {r['requeued']} task(s){more}")

    hub.show(result, human)


@hub_command(app, "stats")
def stats(hub: Hub, task_type: Annotated[str | None, typer.Option("--type", help="Only this task type.")] = None) -> None:
    """Counts by status and type, the oldest waiting task, leases in flight and the dead-letter count."""
    result = hub.call("agora.task.stats", task_type=task_type)

    def human(r: dict[str, Any]) -> None:
        table("tasks by status", ["status", "count"], sorted(r["by_status"].items()))
        if r["by_type"]:
            rows = [[kind, ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))] for kind, counts in sorted(r["by_type"].items())]
            table("tasks by type", ["type", "by status"], rows)
        oldest = r["oldest_pending_seconds"]
        typer.echo(f"oldest pending: {'-' if oldest is None else f'{oldest:.1f} s'}; leases in flight: {r['in_flight_leases']}; dead-lettered: {r['dead_letter']}")

    hub.show(result, human)
