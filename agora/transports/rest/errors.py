"""Every failure leaves the REST door as ``{"error": {"code", "message", "details"}}`` with a fitting status."""

from __future__ import annotations

import logging
import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from agora_sdk.errors import (
    AgoraError,
    Internal,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
)

log = logging.getLogger("agora.rest")


def retry_after(exc: AgoraError) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) for a refusal that says when to come back (429, 503)."""
    wait = exc.details.get("retry_after_seconds") if exc.details else None
    return {"Retry-After": str(max(1, math.ceil(wait)))} if isinstance(wait, (int, float)) else {}


def error_response(exc: AgoraError, headers: dict[str, str] | None = None) -> Response:
    """The error as JSON, with ``Retry-After`` when the error says when to come back."""
    if wait := retry_after(exc):
        headers = {**(headers or {}), **wait}
    return Response(orjson.dumps(exc.to_body()), status_code=exc.status, media_type="application/json", headers=headers)


def _from_http(exc: StarletteHTTPException, allowed: str | None) -> AgoraError:
    if exc.status_code == 404:
        return NotFound("no such endpoint; tools are served at /agora/{category}/{action} (see /openapi.json)")
    if exc.status_code == 405:
        return MethodNotAllowed(f"this endpoint takes {allowed}", details={"allowed": allowed})
    err = AgoraError(str(exc.detail), status=exc.status_code)
    return err


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (a path may have a route per method, as the aliases do)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(AgoraError)
    async def _agora(_request: Request, exc: AgoraError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code != 405:
            return error_response(_from_http(exc, None), headers=exc.headers)
        allowed = _allowed_methods(request)
        return error_response(_from_http(exc, allowed), headers={**(exc.headers or {}), "Allow": allowed})

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        # Never the input itself: it may be a secret (a token, an env value), and the caller has it already.
        errors = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"], "type": e["type"]} for e in exc.errors()]
        return error_response(InvalidArgument("invalid request", details={"errors": errors}, status=422))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(Internal("internal error; the request id in the response headers finds it in the logs"))
