"""agora.tools.search and agora.tools.call: a client that loads only these two can still reach every tool; and
agora.tools.start, which runs a call in the background as an Agora task (``core/services/tool_runs.py``).

MCP clients cap how many tools they load (Cursor 40-80, Windsurf 50, VS Code 128); with ``?toolsets=`` narrowing
the list, these two stay listed so nothing is out of reach.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from agora.core.auth import Scope
from agora.core.context import CallContext
from agora.core.ids import new_id
from agora.core.services.tasks import task_model
from agora_sdk.errors import InvalidArgument
from agora_sdk.wire import discovery as d
from agora_sdk.wire.tasks import Task

from ..tool import Tool


def _score(tool: Tool, words: list[str]) -> int:
    name, description = tool.name.lower(), tool.description.lower()
    return sum(3 * (w in name) + (w in description) for w in words)


async def search(ctx: CallContext, req: d.ToolSearch) -> d.ToolMatches:
    words = req.text.lower().split() if req.text else []
    imported = ctx.hub.gateway.tools_for(ctx.principal) if ctx.hub.gateway else []
    candidates = [t for t in [*ctx.hub.catalog, *imported] if req.category in (None, t.category) and t.category != "tools"]
    scored = [(_score(t, words), i, t) for i, t in enumerate(candidates)]
    ranked = sorted((s for s in scored if s[0] > 0 or not words), key=lambda s: (-s[0], s[1]))[: req.limit]
    found = [
        d.ToolMatch(name=t.name, category=t.category, description=t.description, read_only=t.read_only, input_schema=t.input_schema())
        for _, _, t in ranked
    ]
    return d.ToolMatches(tools=found, count=len(found))


async def call(ctx: CallContext, req: d.ToolCall) -> d.ToolCallResult:
    if req.name.startswith("agora.tools."):
        raise InvalidArgument("agora.tools.call calls other tools, not itself or agora.tools.search", details={"field": "name"})
    _, output, _ = await ctx.hub.catalog.call(ctx.hub, ctx.principal, req.name, req.arguments, ctx.request_id)
    return d.ToolCallResult(name=req.name, result=output.model_dump(mode="json", by_alias=True))


async def start(ctx: CallContext, req: d.ToolCall) -> Task:
    """The call is checked now (a refusal is this answer, and nothing is stored), run in the background, and its
    outcome is its task's."""
    if req.name.startswith("agora.tools."):
        raise InvalidArgument("agora.tools.start runs other tools, not the agora.tools ones", details={"field": "name"})
    hub, principal, arguments = ctx.hub, ctx.principal, dict(req.arguments)
    hub.catalog.admit(hub, principal, req.name, arguments)

    async def run(_run: Any) -> dict[str, Any]:
        _, output, _ = await hub.catalog.call(hub, principal, req.name, arguments, new_id("req"))
        return output.model_dump(mode="json", by_alias=True)

    return task_model(await hub.tool_runs.start(principal, req.name, arguments, run))


TOOLS = [
    Tool(
        name="agora.tools.search",
        version="1.0.0",
        description="Find tools by words and category; each match comes with its input schema, ready for agora.tools.call.",
        input_model=d.ToolSearch,
        output_model=d.ToolMatches,
        handler=search,
        read_only=True,
    ),
    Tool(
        name="agora.tools.call",
        version="1.0.0",
        description="Call any tool by name with its arguments (the called tool's own rights and checks apply).",
        input_model=d.ToolCall,
        output_model=d.ToolCallResult,
        handler=call,
        new_work=False,  # the called tool decides whether a halted hub refuses it
    ),
    Tool(
        name="agora.tools.start",
        version="1.0.0",
        description="Start any tool call in the background and get its task (type tool.call) at once: the call is "
        "checked now, its output or error becomes the task's result, agora.task.get reads it and agora.task.cancel "
        "stops it. For calls that wait long (a marketplace execute, a long-poll, an imported tool).",
        input_model=d.ToolCall,
        output_model=Task,
        handler=start,
        scopes=frozenset({Scope.tasks_write.value}),  # it records a task; the called tool's own scopes apply too
        new_work=False,  # the called tool decides whether a halted hub refuses it
        last_updated=date(2026, 11, 25),
    ),
]
