"""The console's pages: each gathers what it shows with catalog calls (``View.call``) and renders a template.

A page's live part is a function ``(view, params) -> {fragment name: html}``, used both to render the page and,
by ``live.py``, to push the same fragments again when the hub's events say something changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import Response

from agora_sdk.errors import AgoraError, InvalidArgument, NotFound
from agora_sdk.wire.common import AgentStatus
from agora_sdk.wire.messaging import Performative, PriorityLevel
from agora_sdk.wire.tasks import TaskStatus

from .door import View, page
from .render import render_text

Fragments = Callable[[View, Mapping[str, str]], Awaitable[dict[str, str]]]
AGENT_STATUSES = [s.value for s in AgentStatus]
PRIORITIES = [p.name for p in PriorityLevel]
TASK_STATUSES = list(dict.fromkeys(s.value for s in TaskStatus))  # (the enum has capitalised aliases)
PAGE_SIZE = 50


async def overview_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    health = await view.call("agora.admin.health")
    agents = await view.call("agora.query.marketplace")
    tasks = await view.call("agora.task.stats")
    return {"overview": render_text("_overview.html", view=view, health=health, agents=agents, tasks=tasks)}


def tool_args(params: Mapping[str, str], fields: Mapping[str, str], choices: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """A list page's filters from its query string (so a view can be bookmarked), as its tool takes them: ``fields``
    maps a URL parameter to the tool's argument; empty ones are left out, ``choices`` are checked here (400)."""
    args: dict[str, Any] = {"limit": PAGE_SIZE}
    for param, arg in fields.items():
        value = params.get(param, "").strip()
        if not value:
            continue
        if choices and param in choices and value not in choices[param]:
            raise InvalidArgument(f"unknown {param} {value!r}")
        args[arg] = value
    return args


AGENT_FILTERS = {"q": "text", "status": "status", "cursor": "cursor"}
TASK_FILTERS = {"status": "status", "type": "task_type", "agent": "agent", "cursor": "cursor"}
MESSAGE_FILTERS = {
    "from": "from_agent", "to": "to_agent", "topic": "topic", "kind": "kind", "type": "message_type",
    "performative": "performative", "since": "since", "until": "until", "q": "text", "tenant": "tenant", "cursor": "cursor",
}  # fmt: skip
MESSAGE_CHOICES = {"kind": ["direct", "broadcast", "topic"], "performative": [p.value for p in Performative]}


async def agents_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.query.agents", **tool_args(params, AGENT_FILTERS, {"status": AGENT_STATUSES}))
    return {"agents": render_text("_agents_rows.html", view=view, agents=found.agents, next_cursor=found.next_cursor, params=params)}


async def _agent_parts(view: View, ref: str) -> tuple[Any, dict[str, str]]:
    agent = await view.call("agora.agents.get", agent=ref)
    tasks = await view.call("agora.task.list", agent=agent.agent_id, limit=10)
    return agent, {"agent": render_text("_agent_live.html", view=view, agent=agent, tasks=tasks.tasks)}


async def agent_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    return (await _agent_parts(view, params.get("agent", "")))[1]


async def tasks_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.task.list", **tool_args(params, TASK_FILTERS, {"status": TASK_STATUSES}))
    return {"tasks": render_text("_tasks_rows.html", view=view, tasks=found.tasks, total=found.total, next_cursor=found.next_cursor, params=params)}


async def task_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    task = await view.call("agora.task.get", task_id=params.get("task", ""))
    history = await view.call("agora.task.history", task_id=task.task_id)
    return {"task": render_text("_task_live.html", view=view, task=task, history=history.transitions)}


async def messages_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.messaging.search", **tool_args(params, MESSAGE_FILTERS, MESSAGE_CHOICES))
    return {"messages": render_text("_messages_rows.html", view=view, messages=found.messages, next_cursor=found.next_cursor, params=params)}


# The live views: what ``/ui/live/<name>`` may push, and what wakes it: "events" (the hub events of the principal's
# tenant: agents, tasks, workflows, instances) or "messages" (messages stored in it).
LIVE: dict[str, tuple[Fragments, str]] = {
    "overview": (overview_fragments, "events"),
    "agents": (agents_fragments, "events"),
    "agent": (agent_fragments, "events"),
    "tasks": (tasks_fragments, "events"),
    "task": (task_fragments, "events"),
    "messages": (messages_fragments, "messages"),
}


async def _list_page(view: View, name: str, title: str, **context: Any) -> Response:
    """A filtered list: the whole page, or (its filters changed: an htmx request) its live region again, streaming
    with the new filters."""
    params = view.request.query_params
    fragment = (await LIVE[name][0](view, params))[name]
    if view.partial:
        return view.render("_region.html", name=name, query=view.request.url.query, html=fragment)
    return view.render(f"{name}.html", title=title, nav=name, fragments={name: fragment}, params=params, **context)


@page
async def overview(view: View) -> Response:
    fragments = await overview_fragments(view, view.request.query_params)
    return view.render("overview.html", title="Overview", nav="overview", fragments=fragments)


@page
async def agents(view: View) -> Response:
    return await _list_page(view, "agents", "Agents", statuses=AGENT_STATUSES)


@page
async def agent(view: View) -> Response:
    agent, fragments = await _agent_parts(view, view.request.path_params["agent_id"])
    return view.render("agent.html", title=agent.agent_name, nav="agents", fragments=fragments, agent=agent)


@page
async def messages(view: View) -> Response:
    return await _list_page(view, "messages", "Messages", choices=MESSAGE_CHOICES)


@page
async def tasks(view: View) -> Response:
    return await _list_page(view, "tasks", "Tasks", statuses=TASK_STATUSES)


@page
async def task(view: View) -> Response:
    task_id = view.request.path_params["task_id"]
    fragments = await task_fragments(view, {"task": task_id})
    return view.render("task.html", title="Task", nav="tasks", fragments=fragments, task_id=task_id, priorities=PRIORITIES)


# What a person may do to a task from its page: the tool and how the form's fields become its arguments.
TASK_ACTIONS: dict[str, tuple[str, Callable[[Mapping[str, Any]], dict[str, Any]], str]] = {
    "cancel": ("agora.task.cancel", lambda form: {"reason": str(form.get("reason") or "") or None}, "Cancelled."),
    "requeue": ("agora.task.requeue", lambda form: {}, "Back in the queue."),
    "reassign": ("agora.task.reassign", lambda form: {"assignee": str(form.get("assignee") or "") or None}, "Reassigned."),
    "priority": ("agora.task.set_priority", lambda form: {"priority": str(form.get("priority") or "")}, "Priority changed."),
}


@page
async def requeue_dead_letter(view: View) -> Response:
    """The tasks page's bulk action: the dead letter (of one task type, if the page filters by one) back in the queue."""
    form = await view.request.form()
    args = {"task_type": str(form.get("type") or "") or None, "limit": 1000}
    try:
        done = await view.call("agora.task.requeue_dead_letter", **args)
    except AgoraError as exc:
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    more = " (more remain: run it again)" if done.has_more else ""
    return view.render("_result.html", ok=True, message=f"{done.requeued} task{'' if done.requeued == 1 else 's'} back in the queue{more}.")


@page
async def task_action(view: View) -> Response:
    """A form on a task's page: the tool's answer (or its error, with its own message) goes beside the button; the
    page's live region shows the task's new state."""
    action = TASK_ACTIONS.get(view.request.path_params["action"])
    if action is None:
        raise NotFound("no such action")
    tool, args, done = action
    form = await view.request.form()
    try:
        await view.call(tool, task_id=view.request.path_params["task_id"], **args(form))
    except AgoraError as exc:
        if isinstance(exc, NotFound):
            raise
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    return view.render("_result.html", ok=True, message=done)
