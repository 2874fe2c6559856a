"""OAuth 2.0 for MCP clients: the metadata that tells a client where to sign in, and the authorization server's
endpoints (the ``mcp`` SDK's handlers over ``core/oauth.OAuthServer``).

- ``/.well-known/oauth-protected-resource/mcp`` (RFC 9728; the hub's root too): ``/mcp`` is protected by this hub.
  A 401 from any door points there in its ``WWW-Authenticate`` challenge (``resource_metadata``).
- ``/.well-known/oauth-authorization-server`` (RFC 8414), ``/authorize`` (sends the person to the console's consent
  page), ``/token`` (PKCE S256; refresh tokens rotate), ``/register`` (RFC 7591, open: a client registers itself),
  ``/revoke`` (RFC 7009).

The issuer is ``--public-url`` when set, else the URL the request came to (as for A2A cards).
"""

from __future__ import annotations

from fastapi import FastAPI
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.json_response import PydanticJSONResponse
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.routes import (
    AUTHORIZATION_PATH,
    REGISTRATION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    build_metadata,
    cors_middleware,
)
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import ProtectedResourceMetadata
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from agora.config import Settings
from agora.core.auth import ALL_SCOPES, DEFAULT_SCOPES
from agora.core.oauth import OAuthServer
from agora.transports.public_url import base_url

RESOURCE_METADATA = "/.well-known/oauth-protected-resource"
REGISTRATION = ClientRegistrationOptions(enabled=True, valid_scopes=sorted(ALL_SCOPES), default_scopes=sorted(DEFAULT_SCOPES))
REVOCATION = RevocationOptions(enabled=True)
_CACHED = {"Cache-Control": "public, max-age=3600"}


def resource_metadata_url(request: Request, settings: Settings, resource_path: str = "") -> str:
    """Where a 401's challenge sends the client: this resource's RFC 9728 document."""
    return f"{base_url(request, settings.public_url)}{RESOURCE_METADATA}{resource_path}"


class OAuthDoor:
    """The SDK's handlers, each over the running hub's ``OAuthServer`` (made when the hub starts)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    async def authorize(self, request: Request) -> Response:
        return await AuthorizationHandler(server_of(request)).handle(request)

    async def token(self, request: Request) -> Response:
        server = server_of(request)
        return await TokenHandler(server, ClientAuthenticator(server)).handle(request)

    async def register(self, request: Request) -> Response:
        return await RegistrationHandler(server_of(request), REGISTRATION).handle(request)

    async def revoke(self, request: Request) -> Response:
        server = server_of(request)
        return await RevocationHandler(server, ClientAuthenticator(server)).handle(await _with_secret_field(request))

    async def server_metadata(self, request: Request) -> Response:
        metadata = build_metadata(base_url(request, self.settings.public_url), None, REGISTRATION, REVOCATION)  # type: ignore[arg-type]
        return PydanticJSONResponse(content=metadata, headers=_CACHED)

    async def resource_metadata(self, request: Request) -> Response:
        base = base_url(request, self.settings.public_url)
        resource = request.url.path.removeprefix(RESOURCE_METADATA)
        oidc = self.settings.oidc
        # The identity provider first when its access tokens are accepted here: MCP clients sign in with it directly.
        servers = [oidc.issuer, base] if oidc is not None and oidc.audience else [base]
        metadata = ProtectedResourceMetadata(
            resource=f"{base}{resource}",  # type: ignore[arg-type]
            authorization_servers=servers,  # type: ignore[arg-type]
            scopes_supported=sorted(ALL_SCOPES),
            resource_name="Agora",
            resource_documentation=f"{base}/docs" if self.settings.public_docs else None,  # type: ignore[arg-type]
        )
        return PydanticJSONResponse(content=metadata, headers=_CACHED)


async def _with_secret_field(request: Request) -> Request:
    """RFC 7009: a public client revokes with ``token`` and ``client_id`` alone, but the SDK's revocation form wants a
    ``client_secret`` field (None allowed, absent not): an empty one is added to such a form."""
    body = await request.body()
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded") or b"client_secret=" in body:
        return request
    extended = body + (b"&" if body else b"") + b"client_secret="

    async def receive() -> Message:
        return {"type": "http.request", "body": extended, "more_body": False}

    return Request(request.scope, receive)


def server_of(request: Request) -> OAuthServer:
    """The running hub's OAuth server (this door and the console's consent page are mounted only when it has one)."""
    server = request.app.state.hub.oauth
    assert server is not None, "mounted only when the hub is an OAuth server"
    return server  # type: ignore[no-any-return]


def mount(app: FastAPI, settings: Settings) -> None:
    if not (settings.console and settings.oauth):
        return
    door = OAuthDoor(settings)
    public = ["GET", "OPTIONS"]
    posted = ["POST", "OPTIONS"]
    app.router.routes.extend([
        Route(RESOURCE_METADATA, cors_middleware(door.resource_metadata, public), methods=public),
        Route(f"{RESOURCE_METADATA}/mcp", cors_middleware(door.resource_metadata, public), methods=public),
        Route("/.well-known/oauth-authorization-server", cors_middleware(door.server_metadata, public), methods=public),
        Route(AUTHORIZATION_PATH, door.authorize, methods=["GET", "POST"]),  # a browser is sent here, never fetches it
        Route(TOKEN_PATH, cors_middleware(door.token, posted), methods=posted),
        Route(REGISTRATION_PATH, cors_middleware(door.register, posted), methods=posted),
        Route(REVOCATION_PATH, cors_middleware(door.revoke, posted), methods=posted),
    ])  # fmt: skip
