"""``notifications/tools/list_changed`` for MCP clients when the gateway's imported tools change, per tenant.

The two protocol revisions hear of changes differently. A 2026-07-28 client opens a ``subscriptions/listen``
stream: each tenant has its own subscription bus, so a stream hears only of changes its caller can see. A
2025-11-25 client keeps a session whose standalone stream carries server notifications; the SDK has no fan-out
for those, so the sessions are remembered (by ``Mcp-Session-Id``, from any of their requests) with the caller
they were opened by, and told directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import DEFAULT_MAX_SESSIONS
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ServerEvent, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from agora.core.auth import Principal
from agora.gateway import sees

from .toolsets import Toolsets

log = logging.getLogger("agora.mcp")

SEND_TIMEOUT = 5.0  # a session that cannot take one notification in this time is forgotten


class ToolListChanges:
    """The listen handler of the MCP server, and the announcer the gateway calls when imported tools change."""

    def __init__(self, caller: Callable[[ServerRequestContext[Any]], Principal], session_limit: int = DEFAULT_MAX_SESSIONS):
        self._caller = caller
        self._listeners: dict[str | None, ListenHandler] = {}
        self._buses: dict[str | None, InMemorySubscriptionBus] = {}
        self._sessions: OrderedDict[str, tuple[ServerSession, str | None]] = OrderedDict()
        self._session_limit = session_limit  # the session manager keeps no more sessions than this
        self._pending: set[asyncio.Task[None]] = set()

    def bus(self, scope: str | None) -> InMemorySubscriptionBus:
        """The subscription bus of one tenant's listen streams (the admin's: None)."""
        if scope not in self._buses:
            self._buses[scope] = InMemorySubscriptionBus()
            self._listeners[scope] = ListenHandler(self._buses[scope])
        return self._buses[scope]

    async def listen(self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams) -> types.SubscriptionsListenResult:
        """``subscriptions/listen``, served on the caller's tenant's bus."""
        scope = self._caller(ctx).tenant_scope()
        self.bus(scope)
        return await self._listeners[scope](ctx, params)

    def remember(self, ctx: ServerRequestContext[Any], principal: Principal, toolsets: Toolsets) -> None:
        """Note a 2025-11-25 session that lists imported tools, so a later change reaches it."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS or ctx.request is None:
            return
        session_id = ctx.request.headers.get("mcp-session-id")
        if not session_id or not toolsets.includes_category("ext"):
            return
        self._sessions[session_id] = (ctx.session, principal.tenant_scope())
        self._sessions.move_to_end(session_id)
        while len(self._sessions) > self._session_limit:
            self._sessions.popitem(last=False)

    def changed(self, tenant_id: str | None) -> None:
        """The imported tools ``tenant_id`` sees (None: every tenant) changed; announce it without blocking the caller."""
        task = asyncio.get_running_loop().create_task(self._announce(tenant_id, ToolsListChanged()), name="mcp-tools-changed")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _announce(self, tenant_id: str | None, event: ServerEvent) -> None:
        for scope, bus in list(self._buses.items()):
            if sees(scope, tenant_id):
                await bus.publish(event)
        for session_id, (session, scope) in list(self._sessions.items()):
            if not sees(scope, tenant_id):
                continue
            try:
                with anyio.fail_after(SEND_TIMEOUT):
                    await session.send_tool_list_changed()
            except Exception:  # noqa: BLE001 - a closed or stuck session is simply forgotten
                log.debug("MCP session %s gone; forgotten", session_id)
                self._sessions.pop(session_id, None)

    async def close(self) -> None:
        for listener in self._listeners.values():
            listener.close()
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)


__all__ = ["ToolListChanges"]
