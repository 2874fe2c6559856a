"""What every HTTP door does around its work: authenticate the bearer key and turn failures into the error shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from agora.core.auth import Principal
from agora.core.context import Hub
from agora.limits import scope_source
from agora_sdk.errors import AgoraError, Internal, Unauthenticated

from .errors import error_response

log = logging.getLogger("agora.rest")


async def authenticate(request: Request) -> Principal:
    principal = await request.app.state.hub.auth.authenticate(request.headers.get("authorization"), scope_source(request.scope))
    request.scope["state"]["principal"] = principal.label
    return principal


def challenge(exc: Unauthenticated, resource_metadata: str | None = None, presented: bool = False) -> Response:
    """A 401 with its RFC 6750 challenge; ``resource_metadata`` (RFC 9728) tells an OAuth client where to sign in, and
    a credential that was ``presented`` but refused is an ``invalid_token``."""
    params = ['realm="agora"']
    if presented:
        params.append('error="invalid_token"')
    if resource_metadata:
        params.append(f'resource_metadata="{resource_metadata}"')
    return error_response(exc, headers={"WWW-Authenticate": "Bearer " + ", ".join(params)})


async def guarded(request: Request, tool_name: str, run: Callable[[Hub, Principal], Awaitable[Response]], headers: dict[str, str] | None = None) -> Response:
    """Authenticate, run, and turn every failure into the one error shape (401 with a challenge, 4xx, or a logged 500)."""
    hub: Hub = request.app.state.hub
    request.scope["state"]["tool"] = tool_name
    try:
        return await run(hub, await authenticate(request))
    except Unauthenticated as exc:
        return challenge(exc)
    except AgoraError as exc:
        return error_response(exc, headers=headers or None)
    except Exception:
        log.exception("tool failed", extra={"tool": tool_name})
        return error_response(Internal(f"{tool_name} failed unexpectedly; the request id finds it in the logs"))
