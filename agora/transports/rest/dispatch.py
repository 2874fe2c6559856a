"""The catalog's own paths (``/agora/{category}/{action}``), and other doors' hot paths, found by one dict lookup.

Every tool call is one of these paths, so they skip the router's scan of ~100 routes and FastAPI's per-request
dependency solving (together ~a third of a call's time on the event loop, measured with cProfile). The endpoints are
the same ones the FastAPI routes hold: those stay registered for OpenAPI and for the methods and paths this table
does not know (HEAD, 405 answers, resource aliases with path parameters). ``doors`` are ASGI apps mounted as routes
too (``POST /mcp``): the same skip, for the requests they take most.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class ToolDispatch:
    """ASGI middleware: a request whose method and exact path are in ``endpoints`` goes straight to its endpoint."""

    def __init__(self, app: ASGIApp, endpoints: dict[tuple[str, str], Endpoint], doors: dict[tuple[str, str], ASGIApp] | None = None):
        self.app = app
        self.endpoints = endpoints
        self.doors = doors or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"])
        endpoint = self.endpoints.get(key)
        if endpoint is not None:
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        await self.doors.get(key, self.app)(scope, receive, send)
