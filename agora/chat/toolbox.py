"""The chat's hands: catalog tools called through ``Catalog.call`` as the caller (its scopes, tenancy and rate
limits), every call recorded (``tool_calls``) and every answer kept (``data``).

A call made twice in one turn is made once: when the LLM fails half-way and the deterministic planner answers
instead, a write the LLM already made is not made again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from agora.core import progress
from agora.core.call_events import emit
from agora.core.context import CallContext
from agora_sdk.errors import AgoraError, PermissionDenied
from agora_sdk.wire.chat import CallStatus, Intent, ToolResult, ToolUse

if TYPE_CHECKING:  # the catalog holds the chat's tool: the chat reaches tools through the hub's catalog
    from agora.catalog.tool import Tool

SEARCH, LISTING, STATS = "agora.marketplace.search", "agora.marketplace.get_listing", "agora.marketplace.stats"
AGENT, AGENTS, AGENT_STATS = "agora.agents.get", "agora.query.agents", "agora.query.marketplace"
CREATE_INSTANCE, REGISTER = "agora.marketplace.create_instance", "agora.agents.register"
READS = (SEARCH, LISTING, STATS, AGENT, AGENTS, AGENT_STATS)
WRITES = {CREATE_INSTANCE: Intent.start_instance, REGISTER: Intent.register_agent}  # and the intent that asks for each


@dataclass(frozen=True)
class Called:
    result: dict[str, Any] | None  # the tool's output as JSON, when it answered
    error: AgoraError | None = None


class Toolbox:
    def __init__(self, ctx: CallContext):
        self.ctx = ctx
        self.uses: list[ToolUse] = []
        self.results: list[ToolResult] = []
        self._made: dict[bytes, Called] = {}

    def tool(self, name: str) -> Tool:
        return self.ctx.hub.catalog.get(name)

    def offered(self) -> list[Tool]:
        """The chat's tools this caller may call."""
        return [self.tool(name) for name in (*READS, *WRITES) if self.refusal(name) is None]

    def refusal(self, name: str) -> str | None:
        """Why the caller may not call ``name`` through the chat (None: it may)."""
        if name not in READS and name not in WRITES:
            return f"{name} is not one of the chat's tools"
        tool, principal = self.tool(name), self.ctx.principal
        if tool.admin_only and not principal.is_admin:
            return f"{name} is reserved to the hub administrator"
        missing = sorted(tool.scopes - principal.scopes) if not principal.is_admin else []
        return f"{name} needs scope(s) {', '.join(missing)}, which this key does not have" if missing else None

    async def call(self, name: str, args: dict[str, Any]) -> Called:
        """Call ``name`` as the caller (once per turn for the same arguments); a refusal or an error is recorded and
        returned, never raised."""
        key = orjson.dumps([name, args], option=orjson.OPT_SORT_KEYS)
        if key in self._made:
            return self._made[key]
        refusal = self.refusal(name)
        if refusal is not None:
            await self.refuse(name, args, refusal)
            called = Called(None, PermissionDenied(refusal))
        else:
            called = await self._run(name, args)
        self._made[key] = called
        return called

    async def _run(self, name: str, args: dict[str, Any]) -> Called:
        ctx = self.ctx
        try:
            _, output, _ = await ctx.hub.catalog.call(ctx.hub, ctx.principal, name, args, ctx.request_id)
        except AgoraError as exc:
            await self._record(ToolUse(tool=name, status=CallStatus.failed, arguments=args, reason=f"{exc.code}: {exc.message}"))
            return Called(None, exc)
        result = output.model_dump(mode="json", by_alias=True)
        self.results.append(ToolResult(tool=name, arguments=args, result=result))
        await self._record(ToolUse(tool=name, status=CallStatus.used, arguments=args))
        return Called(result)

    async def refuse(self, name: str, args: dict[str, Any], reason: str) -> None:
        await self._record(ToolUse(tool=name, status=CallStatus.refused, arguments=args, reason=reason))

    async def _record(self, use: ToolUse) -> None:
        self.uses.append(use)
        emit("tool", use.model_dump(mode="json"))
        report = progress.reporter.get()
        if report is not None:  # an MCP caller that asked for progress hears of each call
            await report(float(len(self.uses)), None, f"{use.tool}: {use.status.value}")

    @property
    def names(self) -> list[str]:
        """Seed 001's ``tools_used``: each tool asked for, by name, once."""
        return list(dict.fromkeys(use.tool for use in self.uses))
