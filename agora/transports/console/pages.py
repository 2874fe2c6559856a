"""The console's first pages — overview, agents, messages, tasks: each gathers what it shows with catalog calls
(``View.call``) and renders a template; its live part is registered with ``@live_view`` (see ``liveviews.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from agora.core.services.task_output import output_key
from agora.core.wakeups import inbox_key
from agora_sdk.errors import AgoraError, InvalidArgument, NotFound
from agora_sdk.wire.common import AgentStatus
from agora_sdk.wire.messaging import Performative, PriorityLevel
from agora_sdk.wire.tasks import Chunk, TaskStatus

from .door import View, page
from .liveviews import LIVE, live_view
from .render import render_text

AGENT_STATUSES = [s.value for s in AgentStatus]
PRIORITIES = [p.name for p in PriorityLevel]
TASK_STATUSES = list(dict.fromkeys(s.value for s in TaskStatus))  # (the enum has capitalised aliases)
PAGE_SIZE = 50


@live_view("overview", wakes_on=("events", "messages"), every=10.0)
async def overview_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    health = await view.call("agora.admin.health")
    agents = await view.call("agora.query.marketplace")
    tasks = await view.call("agora.task.stats")
    activity = await view.call("agora.query.activity", minutes=60)
    html = render_text("_overview.html", view=view, health=health, agents=agents, tasks=tasks, charts=activity_charts(activity))
    return {"overview": html}


def activity_charts(activity: Any) -> dict[str, dict[str, Any]]:
    """The overview's charts as charts.js draws them: rates per second, errors per interval, latency."""
    points, step = activity.points, activity.step_seconds
    x = [int(p.at.timestamp()) for p in points]

    def rate(name: str) -> list[float]:
        return [round(getattr(p, name) / step, 3) for p in points]

    return {
        "messages": {"x": x, "unit": "/s", "series": [{"label": "Messages", "values": rate("messages")}]},
        "tasks": {"x": x, "unit": "/s", "series": [
            {"label": "Created", "values": rate("tasks_created")},
            {"label": "Completed", "values": rate("tasks_done"), "color": "ok"},
            {"label": "Failed", "values": rate("tasks_failed"), "color": "bad"},
        ]},
        "errors": {"x": x, "unit": "", "series": [
            {"label": "4xx answers", "values": [p.rejected for p in points], "color": "warn"},
            {"label": "5xx answers", "values": [p.failed for p in points], "color": "bad"},
        ]},
        "latency": {"x": x, "unit": " ms", "series": [
            {"label": "p50", "values": [p.p50_ms for p in points]},
            {"label": "p95", "values": [p.p95_ms for p in points], "color": "warn"},
        ]},
    }  # fmt: skip


def may(view: View, tool: str) -> bool:
    """Whether the signed-in principal holds the scopes ``tool`` needs: a viewer is not shown buttons that would only
    be refused."""
    return view.is_admin or view.hub.catalog.get(tool).scopes <= view.principal.scopes


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


AGENT_FILTERS = {"q": "text", "status": "status", "rated": "min_rating", "tenant": "tenant", "sort": "sort", "cursor": "cursor"}
AGENT_SORTS = ["id", "name", "status", "rating", "reputation"]
AGENT_RATINGS = ["3", "4", "4.5"]  # "rated at least": marketplace agents whose listing is rated so well
TASK_FILTERS = {"status": "status", "type": "task_type", "agent": "agent", "tenant": "tenant", "sort": "sort", "cursor": "cursor"}
TASK_SORTS = ["created", "priority", "deadline"]
MESSAGE_FILTERS = {
    "from": "from_agent", "to": "to_agent", "topic": "topic", "kind": "kind", "type": "message_type",
    "performative": "performative", "since": "since", "until": "until", "q": "text", "tenant": "tenant", "cursor": "cursor",
}  # fmt: skip
MESSAGE_CHOICES = {"kind": ["direct", "broadcast", "topic"], "performative": [p.value for p in Performative]}


@live_view("agents")
async def agents_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    args = tool_args(params, AGENT_FILTERS, {"status": AGENT_STATUSES, "sort": AGENT_SORTS, "rated": AGENT_RATINGS})
    found = await view.call("agora.query.agents", include_load=True, **args)
    return {"agents": render_text("_agents_rows.html", view=view, agents=found.agents, next_cursor=found.next_cursor, params=params)}


async def _agent_parts(view: View, ref: str) -> tuple[Any, dict[str, str]]:
    agent = await view.call("agora.agents.get", agent=ref, include_counts=True)
    tasks = await view.call("agora.task.list", agent=agent.agent_id, limit=10)
    received = await view.call("agora.messaging.search", to_agent=agent.agent_id, limit=10)
    sent = await view.call("agora.messaging.search", from_agent=agent.agent_id, limit=10)
    html = render_text("_agent_live.html", view=view, agent=agent, tasks=tasks.tasks, received=received.messages, sent=sent.messages)
    return agent, {"agent": html}


@live_view("agent", wakes_on=("events", "messages"))
async def agent_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    return (await _agent_parts(view, params.get("agent", "")))[1]


@live_view("tasks")
async def tasks_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.task.list", **tool_args(params, TASK_FILTERS, {"status": TASK_STATUSES, "sort": TASK_SORTS}))
    return {"tasks": render_text("_tasks_rows.html", view=view, tasks=found.tasks, total=found.total, next_cursor=found.next_cursor, params=params)}


OUTPUT_SHOWN = 1_000  # a task page shows at most this many of the task's last output chunks (agora.task.watch's most)


async def _task_keys(view: View, params: Mapping[str, str]) -> list[str]:
    """A task page is woken by its tenant's hub events (as ``"events"`` would be) and by the task's output."""
    tenant = view.principal.tenant_scope()
    return [f"events:{'*' if tenant is None else tenant}", output_key(params.get("task", ""))]


@live_view("task", narrow=_task_keys)
async def task_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    task = await view.call("agora.task.get", task_id=params.get("task", ""))
    history = await view.call("agora.task.history", task_id=task.task_id)
    chunks, hidden = await output_tail(view, task.task_id)
    output = output_parts(chunks)
    return {"task": render_text("_task_live.html", view=view, task=task, history=history.transitions, output=output, hidden=hidden)}


async def output_tail(view: View, task_id: str) -> tuple[list[Chunk], int]:
    """The task's last ``OUTPUT_SHOWN`` chunks and how many earlier ones are left out (chunks are numbered 1, 2, …
    without gaps)."""
    chunks = list((await view.call("agora.task.watch", task_id=task_id, last=OUTPUT_SHOWN)).chunks)
    return chunks, chunks[0].seq - 1 if chunks else 0


def output_parts(chunks: list[Chunk]) -> list[dict[str, str]]:
    """Chunks as the task page shows them, in order: runs of text joined as the task wrote them, each data chunk as
    one line of compact JSON, the overflow chunk (always the last) as a notice of what the hub did not keep."""
    parts: list[dict[str, str]] = []
    ends_line = True
    for chunk in chunks:
        if chunk.kind == "text" and chunk.text:
            if parts and parts[-1]["kind"] == "text":
                parts[-1]["text"] += chunk.text
            else:
                parts.append({"kind": "text", "text": chunk.text})
            ends_line = chunk.text.endswith("\n")
        elif chunk.kind == "data":
            line = orjson.dumps(chunk.data).decode()
            parts.append({"kind": "data", "text": ("" if ends_line else "\n") + line + "\n"})
            ends_line = True
        elif chunk.kind == "overflow":
            data = chunk.data if isinstance(chunk.data, dict) else {}
            count, size = int(data.get("chunks", 0)), int(data.get("bytes", 0))
            parts.append({"kind": "overflow", "text": f"… {count:,} more chunk{'' if count == 1 else 's'} ({byte_size(size)}) not kept"})
    return parts


def byte_size(n: int) -> str:
    if n < 1024:
        return f"{n} byte{'' if n == 1 else 's'}"
    if n < 1024 * 1024:
        return f"{n / 1024:,.0f} KB"
    return f"{n / (1024 * 1024):,.1f} MB"


async def _one_inbox(view: View, params: Mapping[str, str]) -> list[str] | None:
    """A tail of the messages sent to one agent is woken by that agent's deliveries alone."""
    to = params.get("to", "").strip()
    return [inbox_key((await view.call("agora.agents.get", agent=to)).agent_id)] if to else None


@live_view("messages", wakes_on=("messages",), narrow=_one_inbox)
async def messages_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.messaging.search", **tool_args(params, MESSAGE_FILTERS, MESSAGE_CHOICES))
    return {"messages": render_text("_messages_rows.html", view=view, messages=found.messages, next_cursor=found.next_cursor, partial=found.partial, params=params)}


async def list_page(view: View, name: str, title: str, nav: str | None = None, **context: Any) -> Response:
    """A filtered list: the whole page, or (its filters changed: an htmx request) its live region again, streaming
    with the new filters."""
    params = view.request.query_params
    fragment = (await LIVE[name].fragments(view, params))[name]
    if view.partial:
        return view.render("_region.html", name=name, query=view.request.url.query, html=fragment)
    return view.render(f"{name}.html", title=title, nav=nav or name, fragments={name: fragment}, params=params, **context)


@page
async def overview(view: View) -> Response:
    fragments = await overview_fragments(view, view.request.query_params)
    return view.render("overview.html", title="Overview", nav="overview", fragments=fragments)


@page
async def agents(view: View) -> Response:
    return await list_page(view, "agents", "Agents", statuses=AGENT_STATUSES, ratings=AGENT_RATINGS)


@page
async def agent(view: View) -> Response:
    agent, fragments = await _agent_parts(view, view.request.path_params["agent_id"])
    return view.render("agent.html", title=agent.agent_name, nav="agents", fragments=fragments, agent=agent)


@page
async def messages(view: View) -> Response:
    return await list_page(view, "messages", "Messages", choices=MESSAGE_CHOICES)


@page
async def tasks(view: View) -> Response:
    return await list_page(view, "tasks", "Tasks", statuses=TASK_STATUSES)


@page
async def task(view: View) -> Response:
    task_id = view.request.path_params["task_id"]
    fragments = await task_fragments(view, {"task": task_id})
    return view.render("task.html", title="Task", nav="tasks", fragments=fragments, task_id=task_id, priorities=PRIORITIES)


# A form on an object's page: the tool, how the form's fields become its arguments, and what to say when it is done.
FormAction = tuple[str, Callable[[FormData], dict[str, Any]], str]


def form_actions(actions: Mapping[str, FormAction], id_param: str) -> Callable[[Request], Awaitable[Response]]:
    """``POST …/{<id_param>}/{action}``: the action's tool on that object; its answer (or the catalog's refusal, with
    its own message: nothing changed) goes beside the button, and the page's live region shows the new state."""

    @page
    async def act(view: View) -> Response:
        action = actions.get(view.request.path_params["action"])
        if action is None:
            raise NotFound("no such action")
        tool, args, done = action
        form = await view.request.form()
        try:
            await view.call(tool, **{id_param: view.request.path_params[id_param]}, **args(form))
        except NotFound:
            raise
        except AgoraError as exc:
            return view.render("_result.html", exc.status, ok=False, message=exc.message)
        return view.render("_result.html", ok=True, message=done)

    return act


TASK_ACTIONS: dict[str, FormAction] = {
    "cancel": ("agora.task.cancel", lambda form: {"reason": str(form.get("reason") or "") or None}, "Cancelled."),
    "requeue": ("agora.task.requeue", lambda form: {}, "Back in the queue."),
    "reassign": ("agora.task.reassign", lambda form: {"assignee": str(form.get("assignee") or "") or None}, "Reassigned."),
    "priority": ("agora.task.set_priority", lambda form: {"priority": str(form.get("priority") or "")}, "Priority changed."),
}
task_action = form_actions(TASK_ACTIONS, "task_id")


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
