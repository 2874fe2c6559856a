"""Workflows: runs with their live DAG; approve, reject, signal, cancel.

The DAG is drawn on the server as inline SVG (steps in columns by dependency depth, an edge per dependency, each node
classed by its state so the stylesheet colours it in either theme; no inline style, as the CSP wants), beside a table
of the same steps with the data each was given and gave, for screen readers and phones. Everything comes from
``agora.workflow.status``; every change is a catalog call (``signal``, ``cancel``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora_sdk.errors import AgoraError, InvalidArgument, NotFound
from agora_sdk.wire.workflows import Decision, StepKind, StepStatus, WorkflowStatus

from .door import View, page
from .liveviews import live_view
from .pages import list_page, tool_args
from .render import render_text

STATUSES = ["running", "completed", "failed", "cancelled"]
FILTERS = {"status": "status", "cursor": "cursor"}

# The drawing's geometry, in SVG user units (CSS pixels at 1:1).
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 176, 54, 56, 18, 8
LABEL_CHARS = 20


@live_view("workflows")
async def workflows_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.workflow.list", **tool_args(params, FILTERS, {"status": STATUSES}))
    return {"workflows": render_text("_workflows_rows.html", view=view, workflows=found.workflows, next_cursor=found.next_cursor, params=params)}


@dataclass(frozen=True)
class Node:
    step: StepStatus
    x: int
    y: int
    label: str  # the name, shortened to fit the box (the whole name is in its <title>)


@dataclass(frozen=True)
class Edge:
    path: str  # an SVG path from the dependency's right side to the step's left side
    state: str  # the dependency's state: a completed one has passed its data on


@dataclass(frozen=True)
class Drawing:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    summary: str  # the picture in words, for its <desc>
    node_width: int = NODE_W
    node_height: int = NODE_H


def depths(steps: list[StepStatus]) -> dict[str, int]:
    """Each step's column: the length of the longest chain of dependencies leading to it (the DAG has no cycle)."""
    by_name = {s.name: s for s in steps}
    found: dict[str, int] = {}
    for step in steps:
        stack = [step.name]
        while stack:
            name = stack[-1]
            pending = [d for d in by_name[name].depends_on if d in by_name and d not in found]
            if pending:
                stack.extend(pending)
                continue
            found[name] = 1 + max((found[d] for d in by_name[name].depends_on if d in by_name), default=-1)
            stack.pop()
    return found


def layout(steps: list[StepStatus]) -> Drawing:
    """Columns by depth, left to right; each column centred on the tallest; edges as gentle curves."""
    depth = depths(steps)
    columns: dict[int, list[StepStatus]] = {}
    for step in steps:
        columns.setdefault(depth[step.name], []).append(step)
    rows = max((len(c) for c in columns.values()), default=0)
    height = PAD * 2 + rows * NODE_H + max(rows - 1, 0) * GAP_Y
    nodes: dict[str, Node] = {}
    for column, members in columns.items():
        top = PAD + (rows - len(members)) * (NODE_H + GAP_Y) // 2
        for row, step in enumerate(members):
            label = step.name if len(step.name) <= LABEL_CHARS else step.name[: LABEL_CHARS - 1] + "…"
            nodes[step.name] = Node(step, PAD + column * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y), label)
    edges = []
    for node in nodes.values():
        for dep in node.step.depends_on:
            source = nodes.get(dep)
            if source is None:
                continue
            x1, y1, x2, y2 = source.x + NODE_W, source.y + NODE_H // 2, node.x - 4, node.y + NODE_H // 2
            middle = (x1 + x2) // 2
            edges.append(Edge(f"M{x1} {y1} C{middle} {y1} {middle} {y2} {x2} {y2}", source.step.state))
    width = PAD * 2 + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    counts = Counter(s.state for s in steps)
    summary = f"{len(steps)} step{'' if len(steps) == 1 else 's'}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return Drawing(list(nodes.values()), edges, width, height, summary)


@dataclass(frozen=True)
class Moment:
    at: datetime
    step: str
    what: str
    state: str
    note: str | None = None


def history(run: WorkflowStatus) -> list[Moment]:
    """What the status tells of the run's course: when it began, each step's start and end, its end; in order."""
    moments = [Moment(run.created_at, "", "workflow started", "running")]
    for step in run.steps:
        if step.started_at:
            what = "waiting for a decision" if step.kind is StepKind.approval else "started"
            moments.append(Moment(step.started_at, step.name, what, "waiting" if step.kind is StepKind.approval else "running"))
        if step.finished_at:
            moments.append(Moment(step.finished_at, step.name, step.state, step.state, step.error))
    if run.finished_at:
        moments.append(Moment(run.finished_at, "", f"workflow {run.status}", run.status))
    return sorted(moments, key=lambda m: m.at)


def outputs(run: WorkflowStatus) -> dict[str, Any]:
    """The run's output: the results of its last steps (those no other step depends on) that completed."""
    needed = {d for s in run.steps for d in s.depends_on}
    return {s.name: s.result for s in run.steps if s.name not in needed and s.state == "completed"}


async def _workflow_parts(view: View, workflow_id: str) -> tuple[WorkflowStatus, dict[str, str]]:
    run = await view.call("agora.workflow.status", workflow_id=workflow_id)
    html = render_text("_workflow_live.html", view=view, run=run, drawing=layout(run.steps), history=history(run), outputs=outputs(run))
    return run, {"workflow": html}


@live_view("workflow")
async def workflow_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    return (await _workflow_parts(view, params.get("workflow", "")))[1]


@page
async def workflows(view: View) -> Response:
    return await list_page(view, "workflows", "Workflows", statuses=STATUSES)


@page
async def workflow(view: View) -> Response:
    run, fragments = await _workflow_parts(view, view.request.path_params["workflow_id"])
    approvals = [s for s in run.steps if s.kind is StepKind.approval]
    waiting = next((s.name for s in approvals if s.state == "waiting"), None)
    return view.render(
        "workflow.html", title=run.workflow_name, nav="workflows", fragments=fragments, run=run, approvals=approvals, waiting=waiting
    )


def _json(text: str, field: str) -> Any:
    """An optional JSON field of a form: empty is None; anything else must parse (else a 400 beside the form)."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not valid JSON ({exc})", details={"field": field}) from None


def _signal(form: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    decision, step = str(form.get("decision") or ""), str(form.get("step") or "")
    args = {"step": step, "decision": decision, "data": _json(str(form.get("data") or ""), "data"), "note": str(form.get("note") or "") or None}
    return args, f"{'Approved' if decision == Decision.approve else 'Rejected'} step '{step}'."


def _cancel(form: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    return {"reason": str(form.get("reason") or "") or None}, "Workflow cancelled."


# What a person may do to a run from its page: the tool, and the form's fields as its arguments plus what to say.
ACTIONS: dict[str, tuple[str, Callable[[Mapping[str, Any]], tuple[dict[str, Any], str]]]] = {
    "signal": ("agora.workflow.signal", _signal),
    "cancel": ("agora.workflow.cancel", _cancel),
}


@page
async def workflow_action(view: View) -> Response:
    """A form on a run's page: the tool's answer (or its error, with its own message) goes beside the button; the
    page's live region shows the run moving on."""
    action = ACTIONS.get(view.request.path_params["action"])
    if action is None:
        raise NotFound("no such action")
    tool, parse = action
    form = await view.request.form()
    try:
        args, done = parse(form)
        await view.call(tool, workflow_id=view.request.path_params["workflow_id"], **args)
    except AgoraError as exc:
        if isinstance(exc, NotFound):
            raise
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    return view.render("_result.html", ok=True, message=done)


ROUTES: list[BaseRoute] = [
    Route("/ui/workflows", workflows, methods=["GET"]),
    Route("/ui/workflows/{workflow_id}", workflow, methods=["GET"]),
    Route("/ui/workflows/{workflow_id}/{action}", workflow_action, methods=["POST"]),
]
