"""The console's pages: each gathers what it shows with catalog calls (``View.call``) and renders a template.

A page's live part is a function ``(view, params) -> {fragment name: html}``, used both to render the page and,
by ``live.py``, to push the same fragments again when the hub's events say something changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import Response

from agora_sdk.errors import InvalidArgument
from agora_sdk.wire.common import AgentStatus

from .door import View, page
from .render import render_text

Fragments = Callable[[View, Mapping[str, str]], Awaitable[dict[str, str]]]
AGENT_STATUSES = [s.value for s in AgentStatus]
PAGE_SIZE = 50


async def overview_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    health = await view.call("agora.admin.health")
    agents = await view.call("agora.query.marketplace")
    tasks = await view.call("agora.task.stats")
    return {"overview": render_text("_overview.html", view=view, health=health, agents=agents, tasks=tasks)}


def agent_filters(params: Mapping[str, str]) -> dict[str, Any]:
    """The agents page's filters from its query string (bookmarkable), as ``agora.query.agents`` takes them."""
    args: dict[str, Any] = {"limit": PAGE_SIZE}
    if text := params.get("q", "").strip():
        args["text"] = text
    if status := params.get("status", ""):
        if status not in AGENT_STATUSES:
            raise InvalidArgument(f"unknown status {status!r}")
        args["status"] = status
    if cursor := params.get("cursor", ""):
        args["cursor"] = cursor
    return args


async def agents_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.query.agents", **agent_filters(params))
    return {"agents": render_text("_agents_rows.html", view=view, agents=found.agents, next_cursor=found.next_cursor, params=params)}


async def _agent_parts(view: View, ref: str) -> tuple[Any, dict[str, str]]:
    agent = await view.call("agora.agents.get", agent=ref)
    tasks = await view.call("agora.task.list", agent=agent.agent_id, limit=10)
    return agent, {"agent": render_text("_agent_live.html", view=view, agent=agent, tasks=tasks.tasks)}


async def agent_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    return (await _agent_parts(view, params.get("agent", "")))[1]


# The live views: what ``/ui/live/<name>`` may push, and which query parameters of the page it needs.
LIVE: dict[str, Fragments] = {"overview": overview_fragments, "agents": agents_fragments, "agent": agent_fragments}


@page
async def overview(view: View) -> Response:
    fragments = await overview_fragments(view, view.request.query_params)
    return view.render("overview.html", title="Overview", nav="overview", fragments=fragments, live="overview")


@page
async def agents(view: View) -> Response:
    params = view.request.query_params
    fragments = await agents_fragments(view, params)
    if view.partial:  # the filters changed: the live region again, streaming with the new ones
        return view.render("_agents_view.html", query=view.request.url.query, html=fragments["agents"])
    return view.render("agents.html", title="Agents", nav="agents", fragments=fragments, params=params, statuses=AGENT_STATUSES,
                       live="agents")  # fmt: skip


@page
async def agent(view: View) -> Response:
    params = {"agent": view.request.path_params["agent_id"]}
    agent, fragments = await _agent_parts(view, params["agent"])
    return view.render("agent.html", title=agent.agent_name, nav="agents", fragments=fragments, agent=agent, live="agent", live_params=params)
