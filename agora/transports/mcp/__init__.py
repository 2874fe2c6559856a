"""The MCP door: Streamable HTTP at ``/mcp`` in the hub's own app, authenticated with the hub's API keys.

The SDK's session manager serves both protocol revisions (2025-11-25 sessions and 2026-07-28 stateless requests)
on the one URL; this door authenticates each HTTP request first and leaves the principal and the requested
toolsets in the ASGI scope, where the MCP handlers (``server.py``) read them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from agora.catalog import Catalog
from agora.config import LOOPBACK, Settings
from agora.limits import scope_source
from agora.observability import metrics
from agora.transports import oauth
from agora.transports.rest.errors import error_response
from agora.transports.rest.guard import challenge
from agora_sdk.errors import AgoraError, Unauthenticated

from . import extension
from .fast import FastPath
from .server import CatalogServer
from .toolsets import Toolsets

PATH = "/mcp"


def _security(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection (Host and Origin checks) whenever the hub listens on loopback only."""
    if host not in LOOPBACK:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def _without_ows(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """An ``Mcp-*`` header's value without the whitespace around it (RFC 9110 5.5: not part of the value), before the
    SDK compares it with the body; the HTTP parser leaves it in."""
    return (name, value.strip(b" \t")) if name.startswith(b"mcp-") else (name, value)


class McpDoor:
    def __init__(self, catalog: Catalog, settings: Settings):
        self.catalog = catalog
        self.settings = settings
        self.oauth = settings.console and settings.oauth  # 401s point OAuth clients at the hub's sign-in
        extra = extension.load(settings.mcp_extension) if settings.mcp_extension else None
        self.anonymous = extra.anonymous if extra else None
        self.server = CatalogServer(catalog, extra)
        security = _security(settings.host)
        self.sessions = StreamableHTTPSessionManager(
            app=self.server.server,
            security_settings=security,
            event_store=extra.event_store if extra else None,
            retry_interval=extra.retry_interval_ms if extra else None,
        )
        fast = settings.mcp_fast_path and not settings.opentelemetry
        self.fast = FastPath(self.server, security, self.sessions.max_request_body_size) if fast else None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.sessions.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["tool"] = "mcp"
        authorization = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        try:
            if authorization is None and self.anonymous is not None:
                principal = self.anonymous
            else:
                principal = await scope["app"].state.hub.auth.authenticate(authorization, scope_source(scope))
            asked = Request(scope).query_params.get("toolsets") if scope.get("query_string") else None
            toolsets = Toolsets.parse(asked, self.catalog)
        except Unauthenticated as exc:
            metadata = oauth.resource_metadata_url(Request(scope), self.settings, "/mcp") if self.oauth else None
            await challenge(exc, metadata, presented=authorization is not None)(scope, receive, send)
            return
        except AgoraError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope["state"]["principal"] = principal.label
        scope["agora.principal"] = principal
        scope["agora.toolsets"] = toolsets
        if any(name.startswith(b"mcp-") and value != value.strip(b" \t") for name, value in scope["headers"]):
            scope["headers"] = [_without_ows(name, value) for name, value in scope["headers"]]
        if self.fast is not None:
            unanswered = await self.fast.serve(scope, receive, send, principal, toolsets)
            if unanswered is None:
                metrics.count_mcp_request("fast")
                return
            receive = unanswered  # the SDK's, the body read so far given again
        metrics.count_mcp_request("sdk")
        await self.sessions.handle_request(scope, receive, send)


def mount(app: FastAPI, catalog: Catalog, settings: Settings) -> McpDoor:
    """The route serves GET and DELETE (and answers 405 for the rest); a POST, the hot one, is dispatched straight to
    the door (``rest/dispatch.ToolDispatch``)."""
    door = McpDoor(catalog, settings)
    app.add_route(PATH, door, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    return door


__all__ = ["PATH", "McpDoor", "mount"]
