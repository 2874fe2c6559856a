"""Every failure leaves the REST door as ``{"error": {"code", "message", "details"}}`` with a fitting status."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from agora_sdk.errors import (
    AgoraError,
    Internal,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
)

log = logging.getLogger("agora.rest")


def error_response(exc: AgoraError, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(exc.to_body()), status_code=exc.status, media_type="application/json", headers=headers)


def _from_http(exc: StarletteHTTPException) -> AgoraError:
    if exc.status_code == 404:
        return NotFound("no such endpoint; tools are served at /agora/{category}/{action} (see /openapi.json)")
    if exc.status_code == 405:
        return MethodNotAllowed("method not allowed on this endpoint", details={"allowed": (exc.headers or {}).get("Allow")})
    err = AgoraError(str(exc.detail), status=exc.status_code)
    return err


def install(app: FastAPI) -> None:
    @app.exception_handler(AgoraError)
    async def _agora(_request: Request, exc: AgoraError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(_from_http(exc), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(InvalidArgument("invalid request", details={"errors": exc.errors()}, status=422))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(Internal("internal error; the request id in the response headers finds it in the logs"))
