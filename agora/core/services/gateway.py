"""agora.mcp_servers.*: register, list and remove the external MCP servers of the gateway.

Registration is all or nothing: the hub connects first (through the egress policy of the caller), and stores the
server only once it has answered as an MCP server and listed its tools; an error answer leaves no trace.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from agora.core.auth import Principal, PrincipalKind
from agora.core.context import CallContext
from agora.core.egress import http_url, unreachable
from agora.core.ids import new_id
from agora.store.ops import keys as key_ops
from agora.store.ops import mcp_servers as server_ops
from agora_sdk.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from agora_sdk.wire import gateway as w

if TYPE_CHECKING:
    from agora.gateway import McpGateway  # the MCP client side loads with the hub, not with the catalog

FIRST_CONNECT_SECONDS = 10.0  # how long registration waits for the server to answer before it refuses it


def _gateway(ctx: CallContext) -> McpGateway:
    if ctx.hub.gateway is None:
        raise Unavailable("the MCP gateway is not running on this hub")
    return ctx.hub.gateway


def _not_an_agent(principal: Principal, what: str) -> None:
    if principal.kind is PrincipalKind.agent:
        raise PermissionDenied(f"agents cannot {what} MCP servers; a customer or admin key can")


async def _tenant_for(ctx: CallContext, requested: str | None) -> str | None:
    """The tenant that will see the server: a customer's own; for the admin the one named, or every tenant (None)."""
    principal = ctx.principal
    if not principal.is_admin:
        if requested and requested != principal.tenant_id:
            raise PermissionDenied("a customer key registers servers for its own tenant only", details={"field": "tenant"})
        return principal.tenant_id
    if requested is None:
        return None
    tenant = await ctx.store.read(key_ops.resolve_tenant, requested)
    if tenant is None:
        raise NotFound(f"no tenant '{requested}'", details={"field": "tenant"})
    return str(tenant["tenant_id"])


def _check_command(command: str) -> None:
    found = shutil.which(command) if os.sep not in command else (command if os.access(command, os.X_OK) else None)
    if found is None:
        raise InvalidArgument(f"command '{command}' is not an executable on the hub's PATH", details={"field": "command"})


async def register(ctx: CallContext, req: w.RegisterMcpServer) -> w.McpServer:
    _not_an_agent(ctx.principal, "register")
    gateway = _gateway(ctx)
    if req.command is not None:
        if not ctx.principal.is_admin:
            raise PermissionDenied(
                "a stdio MCP server is a command run on the hub's host; only the admin registers one", details={"field": "command"}
            )
        _check_command(req.command)
    if req.url is not None:
        try:
            http_url(req.url)
        except ValueError as exc:
            raise InvalidArgument(f"url: {exc}", details={"field": "url"}) from None
    row = {
        "server_id": new_id("mcp"),
        "name": req.name,
        "tenant_id": await _tenant_for(ctx, req.tenant),
        "transport": w.Transport.stdio if req.command else w.Transport.http,
        "url": req.url,
        "command": req.command,
        "args": req.args,
        "secrets": {"headers": req.headers, "bearer_token": req.bearer_token, "env": req.env},
        "timeout_seconds": req.timeout_seconds,
        "created_by": ctx.principal.label,
        "created_at": ctx.clock.now(),
    }
    if await ctx.store.read(server_ops.exists, req.name):
        raise server_ops.taken(req.name)
    upstream = gateway.trial(row)
    try:
        await upstream.wait_settled(min(req.timeout_seconds, FIRST_CONNECT_SECONDS))
        if upstream.state is not w.UpstreamState.up:
            if req.url is not None:  # the same words for a refused address, a closed port, a timeout or not MCP
                raise InvalidArgument(unreachable(req.url, "an MCP server"), details={"field": "url"})
            raise InvalidArgument(f"'{req.command}' did not start an MCP server: {upstream.last_error}", details={"field": "command"})
        await ctx.store.write(server_ops.insert_server, row)
    except BaseException:
        await upstream.stop()
        raise
    return gateway.describe(await gateway.adopt(upstream))


async def list_servers(ctx: CallContext, _req: w.ListMcpServers) -> w.McpServerList:
    gateway = _gateway(ctx)
    servers = [gateway.describe(u) for u in sorted(gateway.visible(ctx.principal), key=lambda u: u.name)]
    return w.McpServerList(servers=servers, count=len(servers))


async def remove(ctx: CallContext, req: w.McpServerRef) -> w.McpServerRemoved:
    _not_an_agent(ctx.principal, "remove")
    gateway = _gateway(ctx)
    if not any(u.name == req.name for u in gateway.visible(ctx.principal)):
        raise NotFound(f"no MCP server '{req.name}'", details={"field": "name"})
    upstream = gateway.upstreams[req.name]
    if ctx.principal.tenant_scope() is not None and upstream.row["tenant_id"] is None:
        raise PermissionDenied("this server is shared by every tenant; only the admin removes it")
    removed = await ctx.store.write(server_ops.delete_server, req.name)
    await gateway.drop(req.name)
    return w.McpServerRemoved(name=req.name, removed=removed is not None)
