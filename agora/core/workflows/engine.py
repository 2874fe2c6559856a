"""The workflow engine: plans a workflow when it is created, and moves it along inside the transaction of every change
that concerns it (its creation, a transition of one of its tasks, a signal, a cancel).

Because every move happens in the transaction of its cause, a crash at any point leaves either the state before it or
the state after it: a step is dispatched exactly once (its task is created with the step's move), and a task's
completion is taken into its step exactly once (its transition and the step's move commit together). A restarted hub
has nothing to replay: a running workflow moves again as soon as one of its tasks does.

Step states: ``pending`` (waiting for its dependencies), ``running`` (its tasks are out), ``waiting`` (an approval),
then ``completed``, ``failed``, ``skipped`` or ``cancelled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.events import record
from agora.core.ids import new_id
from agora.core.services import tasks as task_service
from agora.store.ops import agents as agent_ops
from agora.store.ops import tasks as task_ops
from agora.store.ops import workflows as workflow_ops
from agora_sdk.errors import AgoraError, Conflict, InvalidArgument, NotFound
from agora_sdk.wire.workflows import FailurePolicy, Step, StepKind

from . import expressions as ex

FINISHED = frozenset({"completed", "failed", "skipped", "cancelled"})
BROKEN = frozenset({"failed", "cancelled"})
TASK_ENDS = {"completed": "completed", "failed": "failed", "dead_letter": "failed", "cancelled": "cancelled"}


def _invalid(step: str, field: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"step '{step}', {field}: {why}", details={"step": step, "field": field})


# -- planning (at create) -------------------------------------------------------------------------------------------


@dataclass
class Plan:
    steps: list[dict[str, Any]]  # workflow_steps rows, without workflow_id
    warnings: list[str]


def plan(conn: Connection, tenant_id: str, steps: list[Step]) -> Plan:
    """Check a workflow's steps and turn them into rows: names, dependencies (a DAG), references and conditions
    (each may read only the input and the steps before it), agents (an unknown one is a warning, as for tasks)."""
    names = [s.name for s in steps]
    duplicate = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if duplicate:
        raise _invalid(duplicate, "name", "two steps have this name")
    depends = {s.name: (s.depends_on if s.depends_on is not None else names[i - 1 : i]) for i, s in enumerate(steps)}
    for name, deps in depends.items():
        for dep in deps:
            if dep not in depends:
                raise _invalid(name, "depends_on", f"no step '{dep}'")
            if dep == name:
                raise _invalid(name, "depends_on", "a step cannot depend on itself")
    before = _ancestors(depends)
    warnings: list[str] = []
    rows = []
    for position, step in enumerate(steps):
        _check_reads(step, before[step.name])
        agent_id = _agent(conn, tenant_id, step, warnings)
        spec = step.model_dump(mode="json", exclude={"name", "depends_on", "kind"})
        rows.append({
            "name": step.name, "position": position, "kind": step.kind.value, "spec": spec, "depends_on": depends[step.name],
            "state": "pending", "agent_id": agent_id, "task_ids": [], "item_results": {}, "result": None, "error": None,
            "started_at": None, "finished_at": None,
        })  # fmt: skip
    return Plan(rows, warnings)


def _ancestors(depends: dict[str, list[str]]) -> dict[str, set[str]]:
    """Every step's transitive dependencies; a cycle is refused, naming a step on it."""
    done: dict[str, set[str]] = {}
    visiting: set[str] = set()

    def visit(name: str) -> set[str]:
        if name in done:
            return done[name]
        if name in visiting:
            raise _invalid(name, "depends_on", "the dependencies form a cycle through this step")
        visiting.add(name)
        found: set[str] = set()
        for dep in depends[name]:
            found |= {dep, *visit(dep)}
        visiting.discard(name)
        done[name] = found
        return found

    for name in depends:
        visit(name)
    return done


def _check_reads(step: Step, before: set[str]) -> None:
    """A step reads only the workflow input and the results of steps it (transitively) depends on."""
    reads: list[tuple[str, list[str]]] = []
    for field, find in (("input", lambda: ex.references(step.input)), ("items", lambda: _items(step)), ("when", lambda: _when(step))):
        try:
            reads += [(field, path) for path in find()]
        except ex.ExpressionError as exc:
            raise _invalid(step.name, field, str(exc)) from None
    for field, path in reads:
        if path[0] == "steps" and path[1] not in before:
            raise _invalid(step.name, field, f"reads step '{path[1]}', which is not one of its dependencies (direct or not)")


def _items(step: Step) -> list[list[str]]:
    if not step.items:
        return []
    if not ex.REFERENCE.fullmatch(step.items.strip()):
        raise ex.ExpressionError("give one reference, e.g. ${steps.split.result.files}")
    return list(ex.references(step.items))


def _when(step: Step) -> list[list[str]]:
    return list(ex.condition_paths(ex.parse_condition(step.when))) if step.when else []


def _agent(conn: Connection, tenant_id: str, step: Step, warnings: list[str]) -> str | None:
    """The step's agent id, if it names one. An agent that does not exist yet, or capabilities no active agent has,
    are warnings: the step's task waits, as a task assigned alone would."""
    if step.agent is None:
        if step.required_capabilities and not task_ops.least_loaded_agents(conn, tenant_id, step.required_capabilities):
            wanted = ", ".join(step.required_capabilities)
            warnings.append(f"step '{step.name}': no active agent has {wanted} yet; its tasks wait for one")
        return None
    try:
        return str(agent_ops.resolve(conn, tenant_id, step.agent)["agent_id"])
    except NotFound:
        warnings.append(f"step '{step.name}': no agent '{step.agent}' yet; its task waits for an agent of that name")
        return None


# -- moving a workflow along --------------------------------------------------------------------------------------------


def event(conn: Connection, workflow: dict[str, Any], kind: str, now: datetime, **data: Any) -> Event:
    return record(conn, workflow["tenant_id"], kind, {"workflow_id": workflow["workflow_id"], "status": workflow["status"], **data}, now)


def _move_step(
    conn: Connection, workflow: dict[str, Any], step: dict[str, Any], state: str, now: datetime, note: str | None = None, **changes: Any
) -> Event:
    if state in FINISHED:
        changes.setdefault("finished_at", now)
    workflow_ops.save_step(conn, step, {"state": state, **changes})
    return event(conn, workflow, "workflow_updated", now, step=step["name"], state=state, **({"note": note} if note else {}))


def _context(workflow: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"input": workflow["input"], "steps": {s["name"]: {"result": s["result"], "state": s["state"]} for s in steps}}


def step_input(workflow: dict[str, Any], steps: list[dict[str, Any]], step: dict[str, Any]) -> Any:
    """What a step was given: its input resolved as at dispatch once it has started (it reads only finished
    ancestors, whose results no longer change), the input as written while it has not."""
    written = step["spec"].get("input")
    return written if step["started_at"] is None else ex.resolve(written, _context(workflow, steps))


def advance(conn: Connection, workflow: dict[str, Any], now: datetime) -> list[Event]:
    """Dispatch every step whose dependencies are done, skip those that will never run, finish the workflow when
    every step has. Idempotent: a second call with nothing new changes nothing."""
    if workflow["status"] != "running":
        return []
    steps = workflow_ops.steps(conn, workflow["workflow_id"])
    by_name = {s["name"]: s for s in steps}
    events: list[Event] = []
    moved = True
    while moved:  # a skip can make the next step skippable, or runnable
        moved = False
        for step in steps:
            if step["state"] != "pending":
                continue
            deps = [by_name[d] for d in step["depends_on"]]
            if any(d["state"] not in FINISHED for d in deps):
                continue
            broken = [d["name"] for d in deps if d["state"] in BROKEN]
            if broken:
                events.append(_move_step(conn, workflow, step, "skipped", now, error=f"depends on {', '.join(broken)}, which did not complete"))
            elif deps and all(d["state"] == "skipped" for d in deps):
                events.append(_move_step(conn, workflow, step, "skipped", now, error="every step it depends on was skipped"))
            elif step["spec"].get("when") and not ex.evaluate(ex.parse_condition(step["spec"]["when"]), _context(workflow, steps)):
                events.append(_move_step(conn, workflow, step, "skipped", now, error="its condition is false"))
            else:
                events += _dispatch(conn, workflow, step, _context(workflow, steps), now)
            moved = True
    return events + _finish_if_done(conn, workflow, steps, now)


def _finish_if_done(conn: Connection, workflow: dict[str, Any], steps: list[dict[str, Any]], now: datetime) -> list[Event]:
    if not all(s["state"] in FINISHED for s in steps):
        return []
    status = "failed" if any(s["state"] in BROKEN for s in steps) else "completed"
    workflow_ops.save_workflow(conn, workflow, {"status": status, "updated_at": now, "finished_at": now})
    return [event(conn, workflow, f"workflow_{status}", now)]


def _dispatch(conn: Connection, workflow: dict[str, Any], step: dict[str, Any], context: dict[str, Any], now: datetime) -> list[Event]:
    """Start a step: its task (one per item for for_each), or, for an approval, wait for the signal."""
    spec = step["spec"]
    if step["kind"] == StepKind.approval:
        return [_move_step(conn, workflow, step, "waiting", now, started_at=now)]
    payload = ex.resolve(spec.get("input"), context)
    payload = payload if isinstance(payload, dict) else ({} if payload is None else {"input": payload})
    if step["kind"] == StepKind.for_each:
        items = ex.resolve(spec["items"], context)
        if not isinstance(items, list):
            return [_move_step(conn, workflow, step, "failed", now, started_at=now, error=f"items is not a list but {type(items).__name__}")]
        if not items:
            return [_move_step(conn, workflow, step, "completed", now, started_at=now, result=[])]
        work = [({**payload, "item": item, "index": i}, i) for i, item in enumerate(items)]
    else:
        work = [(payload, None)]
    events: list[Event] = []
    task_ids = []
    for body, item in work:
        row = task_service.new_task_row(
            workflow["tenant_id"], spec.get("task_type") or step["name"], body, workflow["created_by"], now,
            assignee=step["agent_id"] or spec.get("agent"), required_capabilities=spec.get("required_capabilities") or [],
            max_attempts=spec["retry"]["attempts"], retry_backoff_seconds=spec["retry"].get("backoff_seconds"),
            workflow_id=workflow["workflow_id"],
            deadline=now + timedelta(seconds=spec["timeout"]) if spec.get("timeout") else None,
        )  # fmt: skip
        workflow_ops.link_task(conn, row["task_id"], workflow["workflow_id"], step["name"], item)
        task, _, created = task_service.create_in(conn, row, workflow["created_by"], now)
        task_ids.append(task["task_id"])
        events += created
    return [*events, _move_step(conn, workflow, step, "running", now, started_at=now, task_ids=task_ids)]


def task_moved(conn: Connection, task: dict[str, Any], now: datetime) -> list[Event]:
    """A task of a workflow finished (or was claimed): its step takes it in, and the workflow moves on."""
    end = TASK_ENDS.get(task["status"])
    if end is None and task["status"] != "in_progress":
        return []
    link = workflow_ops.step_of_task(conn, task["task_id"])
    if link is None:
        return []  # a task assigned with a workflow_id by hand: not one of the engine's
    workflow = workflow_ops.get(conn, link["workflow_id"], None, lock=True)
    if workflow["status"] != "running":
        return []
    step = next(s for s in workflow_ops.steps(conn, workflow["workflow_id"]) if s["name"] == link["step"])
    if step["state"] != "running":
        return []
    if end is None:  # claimed: the step shows who works on it
        if step["agent_id"] is None:
            workflow_ops.save_step(conn, step, {"agent_id": task["claimed_by"]})
        return []
    if end == "completed" and step["kind"] == StepKind.for_each:
        results = {**step["item_results"], str(link["item"]): task.get("result")}
        if len(results) < len(step["task_ids"]):
            workflow_ops.save_step(conn, step, {"item_results": results})
            return []
        events = [_move_step(conn, workflow, step, "completed", now, item_results=results, result=[results[str(i)] for i in range(len(results))])]
    elif end == "completed":
        events = [_move_step(conn, workflow, step, "completed", now, result=task.get("result"))]
    else:
        events = [_move_step(conn, workflow, step, end, now, error=task.get("last_error") or f"its task was {task['status']}")]
        if workflow["failure_policy"] == FailurePolicy.fail_fast:
            return events + stop(conn, workflow, "failed", f"step '{step['name']}' failed", "system", now)
    return events + advance(conn, workflow, now)


def stop(conn: Connection, workflow: dict[str, Any], status: str, reason: str, actor: str, now: datetime) -> list[Event]:
    """End the workflow (failed or cancelled): unfinished steps are cancelled, their tasks too."""
    workflow_ops.save_workflow(conn, workflow, {"status": status, "updated_at": now, "finished_at": now})
    events = [event(conn, workflow, f"workflow_{status}", now, reason=reason)]  # first: the tasks' own moves see it ended
    for step in workflow_ops.steps(conn, workflow["workflow_id"]):
        if step["state"] in FINISHED:
            continue
        for task_id in step["task_ids"]:
            try:
                moved = task_ops.cancel(conn, task_id, None, actor, reason, now)
            except AgoraError:  # that task already finished
                continue
            events += task_service.record_transitions(conn, [moved], now)
        workflow_ops.save_step(conn, step, {"state": "cancelled", "finished_at": now, "error": reason})
    return events


def signal(
    conn: Connection, workflow: dict[str, Any], step_name: str, approve: bool, data: Any, actor: str, now: datetime, note: str | None = None
) -> list[Event]:
    step = next((s for s in workflow_ops.steps(conn, workflow["workflow_id"]) if s["name"] == step_name), None)
    if step is None:
        raise _invalid(step_name, "step", "no such step in this workflow")
    if step["kind"] != StepKind.approval or step["state"] != "waiting":
        raise Conflict(f"step '{step_name}' is not waiting for a signal (it is {step['state']})", details={"step": step_name, "state": step["state"]})
    if approve:
        events = [_move_step(conn, workflow, step, "completed", now, note, result=data)]
    else:
        events = [_move_step(conn, workflow, step, "failed", now, note, error=f"rejected by {actor}" + (f": {note}" if note else ""))]
        if workflow["failure_policy"] == FailurePolicy.fail_fast:
            return events + stop(conn, workflow, "failed", f"step '{step_name}' was rejected", actor, now)
    return events + advance(conn, workflow, now)


def new_workflow_id() -> str:
    return new_id("wf")


def modify(conn: Connection, workflow: dict[str, Any], change: Any, now: datetime) -> tuple[list[Event], list[str]]:
    """Add, remove, reassign or rewire steps that have not started, checked as at create (a DAG, reads of ancestors
    only); a change that touches a step already started is refused, naming it. Returns (events, warnings)."""
    rows = workflow_ops.steps(conn, workflow["workflow_id"])
    by_name = {r["name"]: r for r in rows}
    for name in [*change.remove, *change.reassign, *change.depends_on]:
        if name not in by_name:
            raise _invalid(name, "step", "no such step in this workflow")
        if by_name[name]["state"] != "pending":
            raise Conflict(f"step '{name}' is {by_name[name]['state']}: only steps that have not started change", details={"step": name, "state": by_name[name]["state"]})
    steps = [_as_step(r) for r in rows]
    for name in change.remove:  # what depended on a removed step depends on its dependencies instead
        gone = next(s for s in steps if s.name == name)
        steps = [s for s in steps if s.name != name]
        for s in steps:
            if s.depends_on and name in s.depends_on:
                s.depends_on = list(dict.fromkeys(d for dep in s.depends_on for d in ((gone.depends_on or []) if dep == name else [dep])))
    for name, agent in change.reassign.items():
        step = next(s for s in steps if s.name == name)
        step.agent, step.required_capabilities = agent, []
    for name, deps in change.depends_on.items():
        next(s for s in steps if s.name == name).depends_on = deps
    last = steps[-1].name if steps else None
    steps += [a.model_copy(update={"depends_on": a.depends_on if a.depends_on is not None else ([last] if last else [])}) for a in change.add]
    planned = plan(conn, workflow["tenant_id"], steps)
    for position, row in enumerate(planned.steps):
        old = by_name.get(row["name"])
        if old is None:
            conn.execute(workflow_ops.insert_step(), {**row, "workflow_id": workflow["workflow_id"], "position": position})
        elif old["state"] == "pending":
            workflow_ops.save_step(conn, old, {k: row[k] for k in ("position", "spec", "depends_on", "agent_id")})
        else:
            workflow_ops.save_step(conn, old, {"position": position})
    for name in change.remove:
        workflow_ops.remove_step(conn, workflow["workflow_id"], name)
    summary = {"added": [a.name for a in change.add], "removed": change.remove, "reassigned": list(change.reassign), "rewired": list(change.depends_on)}
    events = [event(conn, workflow, "workflow_updated", now, modified=summary)]
    return events + advance(conn, workflow, now), planned.warnings


def _as_step(row: dict[str, Any]) -> Step:
    return Step.model_validate({**row["spec"], "name": row["name"], "kind": row["kind"], "depends_on": row["depends_on"]})


STATE_STYLES = {
    "pending": "fill:#f6f8fa,stroke:#8c959f", "running": "fill:#ddf4ff,stroke:#0969da", "waiting": "fill:#fff8c5,stroke:#9a6700",
    "completed": "fill:#dafbe1,stroke:#1a7f37", "failed": "fill:#ffebe9,stroke:#cf222e", "skipped": "fill:#eaeef2,stroke:#6e7781,stroke-dasharray:4",
    "cancelled": "fill:#eaeef2,stroke:#6e7781",
}  # fmt: skip


def mermaid(steps: list[dict[str, Any]]) -> str:
    """The DAG as a Mermaid flowchart: a node per step (its name, kind and state), an edge per dependency."""
    lines = ["flowchart TD"]
    for step in steps:
        kind = "" if step["kind"] == StepKind.task else f" ({step['kind']})"
        lines.append(f'    {step["name"]}["{step["name"]}{kind}<br/>{step["state"]}"]:::{step["state"]}')
    lines += [f"    {dep} --> {step['name']}" for step in steps for dep in step["depends_on"]]
    lines += [f"    classDef {state} {style}" for state, style in STATE_STYLES.items()]
    return "\n".join(lines)
