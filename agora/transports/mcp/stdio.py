"""``agora mcp``: a stdio MCP server for desktop clients that forwards every request to a hub's ``/mcp``.

Desktop clients (Claude Desktop, Cursor, VS Code, …) start MCP servers as local commands. This one holds no
catalog of its own: each request is sent on to the hub over Streamable HTTP with the user's API key, as a
stateless 2026-07-28 request, so the hub can restart underneath without the desktop session noticing more than a
failed call while it is down. ``toolsets`` narrows the tools exactly as ``/mcp?toolsets=`` does. A standing
``subscriptions/listen`` stream to the hub carries tool list changes, passed on to the desktop client in its own
revision's way (and announced once more after the stream is re-opened, as something may have changed meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from agora.core.exception_groups import innermost
from agora_sdk.config import ClientConfig

from .server import agora_server

log = logging.getLogger("agora.mcp.stdio")
T = TypeVar("T")
UPSTREAM_TIMEOUT = 60.0  # seconds a forwarded request may take (long polls included)
RELISTEN_BACKOFF_CAP = 10.0  # seconds between attempts to re-open the hub's change stream


def hub_endpoint(config: ClientConfig, toolsets: str | None) -> str:
    query = f"?{urlencode({'toolsets': toolsets})}" if toolsets else ""
    return f"{config.url}/mcp{query}"


@contextlib.asynccontextmanager
async def connect(config: ClientConfig, toolsets: str | None) -> AsyncIterator[Client]:
    """An ``mcp`` client session with the hub, authenticated with the configured key."""
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=UPSTREAM_TIMEOUT)
    transport = streamable_http_client(hub_endpoint(config, toolsets), http_client=http)
    async with http, Client(transport, mode="2026-07-28") as client:
        yield client


class Forwarder:
    """The stdio server's handlers: the same request, sent to the hub; its answer or its error, passed back.

    Each request gets its own upstream connection: the SDK's HTTP client transport does not survive a refused
    connection, and a stateless request costs no handshake, so a hub that restarts costs only the calls made
    while it was down.
    """

    def __init__(self, config: ClientConfig, toolsets: str | None):
        self.config = config
        self.toolsets = toolsets
        self.changes = InMemorySubscriptionBus()  # a 2026-07-28 desktop client listens here
        self.session: ServerSession | None = None  # a 2025-11-25 desktop client's session, from its requests

    async def relay_changes(self) -> None:
        """Keep a listen stream open to the hub and pass each tool list change on to the desktop client."""
        attempt = 0
        while True:
            try:
                async with connect(self.config, self.toolsets) as hub, hub.listen(tools_list_changed=True) as changes:
                    if attempt:
                        await self.announce()  # a change may have happened while the stream was down
                    attempt = 0
                    async for _change in changes:
                        await self.announce()
            except Exception as exc:  # noqa: BLE001 - the hub is down or restarting: try again
                log.debug("change stream to the hub ended (%s); opening it again", exc)
            await anyio.sleep(min(RELISTEN_BACKOFF_CAP, 0.5 * 2**attempt))
            attempt += 1

    async def announce(self) -> None:
        await self.changes.publish(ToolsListChanged())
        if self.session is not None:
            try:
                await self.session.send_tool_list_changed()
            except Exception:  # noqa: BLE001 - the desktop client has gone; serving ends with it
                self.session = None

    async def forward(self, ask: Callable[[Client], Awaitable[T]]) -> T:
        try:
            async with connect(self.config, self.toolsets) as hub:
                return await ask(hub)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an MCP error the desktop client can show
            cause = innermost(exc)
            if isinstance(cause, MCPError):
                raise cause from None
            raise MCPError(types.INTERNAL_ERROR, f"hub unreachable at {self.config.url}: {cause}") from None

    async def list_tools(self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            self.session = ctx.session
        return await self.forward(lambda hub: hub.list_tools(cursor=_cursor(params), cache_mode="bypass"))

    async def call_tool(self, _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            return await self.forward(lambda hub: hub.call_tool(params.name, params.arguments))
        except MCPError as exc:
            if exc.error.code != types.INTERNAL_ERROR:
                raise  # the hub's own protocol error (an unknown tool): passed on as it is
            return types.CallToolResult(content=[types.TextContent(type="text", text=exc.error.message)], is_error=True)

    async def list_resources(self, _ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return await self.forward(lambda hub: hub.list_resources(cursor=_cursor(params), cache_mode="bypass"))

    async def list_resource_templates(
        self, _ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return await self.forward(lambda hub: hub.list_resource_templates(cursor=_cursor(params), cache_mode="bypass"))

    async def read_resource(self, _ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await self.forward(lambda hub: hub.read_resource(str(params.uri)))

    async def list_prompts(self, _ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return await self.forward(lambda hub: hub.list_prompts(cursor=_cursor(params), cache_mode="bypass"))

    async def get_prompt(self, _ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return await self.forward(lambda hub: hub.get_prompt(params.name, params.arguments))


def _cursor(params: types.PaginatedRequestParams | None) -> str | None:
    return params.cursor if params else None


async def serve_stdio(config: ClientConfig, toolsets: str | None) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    forwarder = Forwarder(config, toolsets)
    server = agora_server(forwarder, on_subscriptions_listen=ListenHandler(forwarder.changes))
    async with stdio_server() as (read, write), anyio.create_task_group() as group:
        group.start_soon(forwarder.relay_changes)
        await server.run(read, write, server.create_initialization_options())
        group.cancel_scope.cancel()
