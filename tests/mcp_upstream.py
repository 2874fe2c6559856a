"""A real external MCP server for the gateway tests (official ``mcp`` SDK): ``--http PORT`` or ``--stdio``.

With ``--token T`` the HTTP server answers 401 to any request without ``Authorization: Bearer T``. With
``--garbage`` it is no MCP server at all: every request gets 200 and a body that is not JSON-RPC. With
``--garbage-results`` it is a real server except that every ``tools/call`` is answered with a result that is not one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

server = MCPServer("upstream-fixture", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@server.tool()
async def slow(seconds: float) -> str:
    """Answer after a while."""
    await asyncio.sleep(seconds)
    return "done"


@server.tool()
async def count(steps: int, ctx: Context) -> str:
    """Count to ``steps``, reporting progress at each step."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step} of {steps}")
        await asyncio.sleep(0.02)
    return f"counted to {steps}"


CANCELLED: set[str] = set()  # keys of `wait` calls that were cancelled by their caller


@server.tool()
async def wait(key: str) -> str:
    """Wait until cancelled (and remember that it was)."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        CANCELLED.add(key)
        raise
    return "not cancelled"


@server.tool()
def was_cancelled(key: str) -> bool:
    """Whether the `wait` call with ``key`` was cancelled by its caller."""
    return key in CANCELLED


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Add a tool called ``name`` (it echoes its text) and announce that the tool list changed."""

    def echo(text: str) -> str:
        return text

    server.add_tool(echo, name=name, description=f"{name}: added while running")
    await ctx.notify_tools_changed()  # 2026-07-28 clients: their subscriptions/listen stream
    with contextlib.suppress(Exception):  # 2025-11-25 sessions: the standalone stream
        await ctx.request_context.session.send_tool_list_changed()
    return name


@server.tool()
def seen_authorization(ctx: Context) -> str:
    """The Authorization header this server received (to show whose credentials the gateway sends)."""
    request = ctx.request_context.request
    return request.headers.get("authorization", "") if request is not None else "stdio"


async def garbage(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("<html>this is not an MCP server</html>")(scope, receive, send)


class GarbageResults:
    """Answers ``tools/call`` with a well-formed JSON-RPC response whose result breaks the MCP schema."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        request = json.loads(body or b"{}")
        if isinstance(request, dict) and request.get("method") == "tools/call":
            answer = {"jsonrpc": "2.0", "id": request.get("id"), "result": {"content": "not a list", "isError": "perhaps"}}
            await JSONResponse(answer)(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:  # the body once, then whatever the connection says (a disconnect)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class RequireToken:
    def __init__(self, app: ASGIApp, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    parser.add_argument("--stdio", action="store_true")
    parser.add_argument("--token")
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--garbage-results", action="store_true")
    args = parser.parse_args()
    if args.stdio:
        server.run(transport="stdio")
        return
    app = garbage if args.garbage else server.streamable_http_app()
    if args.garbage_results:
        app = GarbageResults(app)
    asgi = RequireToken(app, args.token) if args.token else app
    uvicorn.run(asgi, host="127.0.0.1", port=args.http, log_level="warning")


if __name__ == "__main__":
    main()
