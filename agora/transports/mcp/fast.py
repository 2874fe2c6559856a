"""The MCP door's fast path: a plain stateless request answered straight from the catalog.

A 2026-07-28 request is one POST carrying one JSON-RPC request, so for the common ones (``tools/call``,
``tools/list``, ``resources/read``) the SDK's per-request machinery — a connection and session object, a
middleware chain, a task group and a memory stream per request to decide between JSON and an event stream — costs
more than the catalog call it wraps. This path does what that machinery does for such a request with the SDK's own
functions (transport security, ``Accept`` and routing-header checks, the envelope classifier, the per-revision
request validation and result sieve, the server-info stamp), runs the catalog call, and writes the JSON-RPC answer.

Whatever it is not sure of goes to the SDK unchanged, the body it read handed on as it came: other revisions and
sessions, notifications, batches, unknown tools, the conformance extension's tools, calls asking for progress or
for a task, ``Mcp-Param-*`` headers, anything the SDK would refuse. A request it keeps is answered byte for byte
as the SDK would answer it (``tests/test_mcp_fast_path.py`` sends a corpus to both and compares).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any

import mcp_types as types
import orjson
from mcp.server.caching import apply_cache_hint
from mcp.server.runner import modern_error_data
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, InboundLadderRejection, classify_inbound_request
from mcp_types import methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError
from starlette.types import Message, Receive, Scope, Send

from agora.catalog.tool import EXT_PREFIX
from agora.core.auth import Principal
from agora.core.context import Hub

from . import resources, tasks
from .server import CatalogServer
from .toolsets import Toolsets

ROUTING_HEADERS = frozenset({"mcp-protocol-version", "mcp-method", "mcp-name"})
ENVELOPE = frozenset({"jsonrpc", "id", "method", "params"})
META = frozenset({types.PROTOCOL_VERSION_META_KEY, types.CLIENT_INFO_META_KEY, types.CLIENT_CAPABILITIES_META_KEY})
# The methods served here, with the params each may carry. (``ping`` is not a 2026-07-28 method: the SDK refuses it.)
PARAMS = {"tools/call": frozenset({"name", "arguments", "_meta"}), "tools/list": frozenset({"_meta"}), "resources/read": frozenset({"uri", "_meta"})}
SSE_AFTER = 15.0  # as the SDK: a call silent this long is answered as an event stream kept open by pings
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache, no-transform"),
               (b"connection", b"keep-alive"), (b"x-accel-buffering", b"no")]  # fmt: skip


class FastPath:
    def __init__(self, server: CatalogServer, security: TransportSecuritySettings | None, max_body: int):
        self.server = server
        self.sdk = server.server
        # The SDK copies it for each answer so that no answer aliases it; here each is written out at once.
        self.stamp = self.sdk.server_info_stamp
        self.security = TransportSecurityMiddleware(security)
        self.max_body = max_body

    async def serve(self, scope: Scope, receive: Receive, send: Send, principal: Principal, toolsets: Toolsets) -> Receive | None:
        """Answer the request and return None, or return the ``receive`` the SDK reads it with (the body, if this
        path read it, comes first)."""
        headers = _headers(scope)
        if headers is None or scope["method"] != "POST" or headers.get("mcp-protocol-version") not in MODERN_PROTOCOL_VERSIONS:
            return receive
        if not await self._envelope_ok(headers):
            return receive
        read, body = await _read(receive, self.max_body)
        replay = _replaying(read, receive)
        if body is None:
            return replay
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:  # json.loads may still read it (a huge integer): the SDK decides
            return replay
        if not _plain(decoded):
            return replay
        verdict = classify_inbound_request(decoded, headers=headers)
        if isinstance(verdict, InboundLadderRejection):
            return replay
        method, params = decoded["method"], decoded.get("params")
        try:
            methods.validate_client_request(method, verdict.protocol_version, params)
        except (ValidationError, KeyError):
            return replay
        hub: Hub = scope["app"].state.hub
        work = self._work(hub, principal, toolsets, method, params, verdict.client_capabilities, scope["state"]["request_id"])
        if work is None:
            return replay
        answer, may_last = work
        if may_last:
            await self._answer_in_time(decoded["id"], method, verdict.protocol_version, answer, scope, receive, send)
        else:
            await _write(await self._reply(decoded["id"], method, verdict.protocol_version, answer), scope, send)
        return None

    async def _envelope_ok(self, headers: dict[str, str]) -> bool:
        """The HTTP-level checks the SDK makes before reading the body all pass (else it answers them). The SDK's
        checks read ``request.headers`` only: they are given the headers as a request would give them."""
        request: Any = _HeadersOnly(headers)
        if await self.security.validate_request(request, is_post=True) is not None:
            return False
        has_json, has_sse = check_accept_headers(request)
        return has_json and has_sse

    def _work(
        self, hub: Hub, principal: Principal, toolsets: Toolsets, method: str, params: dict[str, Any], capabilities: Any, request_id: str
    ) -> tuple[Awaitable[Any], bool] | None:
        """The handler's work for this request and whether it may run long, or None for a request the SDK serves."""
        if method == "tools/list":
            return self.server.tools_listing(hub, principal, toolsets), False
        extension = self.server.extension
        if method == "resources/read":
            uri = params["uri"]
            if extension and extension.owns(str(uri)):
                return None
            return resources.read(hub, principal, str(uri)), False
        name = params["name"]
        if extension and extension.has_tool(name):
            return None
        tool = self.server.offered(hub, principal, toolsets, name)
        if tool is None or (tasks.support(tool) and tasks.wants_tasks(capabilities)):
            return None  # an unknown tool's error, or a call the client may want as a task: the SDK's
        arguments = params.get("arguments") or {}
        return self.server.run_call(hub, principal, name, arguments, request_id), tool.long_running or name.startswith(EXT_PREFIX)

    async def _reply(self, request_id: Any, method: str, version: str, answer: Awaitable[Any]) -> dict[str, Any]:
        """The JSON-RPC answer (``JSONRPCResponse`` or ``JSONRPCError`` as the SDK dumps them), shaped as the SDK
        shapes a handler's result or its failure."""
        try:
            result = self._shape(method, version, await answer)
        except Exception as exc:  # noqa: BLE001 - as the SDK: the error's code and message, never internals
            error = modern_error_data(exc)
            return {"jsonrpc": "2.0", "id": request_id, "error": error.model_dump(mode="json", by_alias=True, exclude_none=True)}
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def _shape(self, method: str, version: str, result: Any) -> dict[str, Any]:
        """``mcp.server.runner.ServerRunner._serialize``: cache hint, the revision's result sieve, ``resultType``, and
        the server-info stamp."""
        dumped = _laid_out(result) if method == "tools/call" else None
        if dumped is None:
            dumped = self._sieved(method, version, result)
        meta = dumped.get("_meta")
        if meta is None:
            dumped["_meta"] = {types.SERVER_INFO_META_KEY: self.stamp}
        elif isinstance(meta, dict) and meta.get(types.SERVER_INFO_META_KEY) is None:
            dumped["_meta"] = {**meta, types.SERVER_INFO_META_KEY: self.stamp}
        return dumped

    def _sieved(self, method: str, version: str, result: Any) -> dict[str, Any]:
        if (hint := self.sdk.cache_hints.get(method)) is not None:
            if isinstance(result, types.CacheableResult):
                result = apply_cache_hint(result, hint)
            elif isinstance(result, dict):
                result = {"ttlMs": hint.ttl_ms, "cacheScope": hint.scope, **result}
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True) if isinstance(result, BaseModel) else dict(result)
        dumped = methods.serialize_server_result(method, version, dumped)
        if dumped.get("resultType") is None:
            dumped["resultType"] = "complete"
        return dumped

    async def _answer_in_time(
        self, request_id: Any, method: str, version: str, answer: Awaitable[Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A call that may run long, as the SDK serves it: JSON if it ends within ``SSE_AFTER``, else an event stream
        kept open by pings until it does; the caller hanging up cancels it."""
        reply = asyncio.ensure_future(self._reply(request_id, method, version, answer))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({reply, gone}, timeout=SSE_AFTER, return_when=asyncio.FIRST_COMPLETED)
            if reply.done():
                await _write(reply.result(), scope, send)
                return
            if gone.done():
                return
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            while not reply.done():
                await send({"type": "http.response.body", "body": b": ping\r\n\r\n", "more_body": True})
                await asyncio.wait({reply, gone}, timeout=SSE_AFTER, return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    return
            data = json.dumps(reply.result(), separators=(",", ":"))
            await send({"type": "http.response.body", "body": f"event: message\r\ndata: {data}\r\n\r\n".encode(), "more_body": False})
        finally:
            for task in (reply, gone):
                task.cancel()
            await asyncio.gather(reply, gone, return_exceptions=True)


def _laid_out(result: Any) -> dict[str, Any] | None:
    """A catalog tool's result (its JSON as one text content, and as structured content) as the revision's result
    sieve lays it out, built directly (the sieve validates and re-dumps the whole result); None for any other."""
    if not isinstance(result, types.CallToolResult) or result.meta is not None or result.structured_content is None or len(result.content) != 1:
        return None
    content = result.content[0]
    if type(content) is not types.TextContent or content.annotations is not None or content.meta is not None:
        return None
    return {"content": [{"text": content.text, "type": "text"}], "isError": result.is_error, "resultType": "complete",
            "structuredContent": result.structured_content}  # fmt: skip


class _HeadersOnly:
    __slots__ = ("headers",)

    def __init__(self, headers: dict[str, str]):
        self.headers = headers


def _headers(scope: Scope) -> dict[str, str] | None:
    """The request's headers as a mapping that, like Starlette's, gives a header's first value; None when a routing
    header comes twice (the SDK refuses that) or an ``Mcp-Param-*`` header is there (the SDK checks those against the
    tool's schema)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if name in headers:
            if name in ROUTING_HEADERS:
                return None
            continue
        if name.startswith("mcp-param-"):
            return None
        headers[name] = raw_value.decode("latin-1")
    return headers


def _plain(decoded: Any) -> bool:
    """One JSON-RPC request of a method this path serves, with nothing in it the path would have to interpret."""
    if not isinstance(decoded, dict) or not decoded.keys() <= ENVELOPE or decoded.get("jsonrpc") != "2.0":
        return False
    request_id, method, params = decoded.get("id"), decoded.get("method"), decoded.get("params")
    if isinstance(request_id, bool) or not isinstance(request_id, (int, str)) or method not in PARAMS:
        return False
    if not isinstance(params, dict) or not params.keys() <= PARAMS[method]:
        return False
    meta = params.get("_meta")
    return isinstance(meta, dict) and meta.keys() <= META


async def _read(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages read and the whole body, or None for the body when it ran past ``limit`` bytes or the client
    hung up (the SDK then reads the same messages again and answers as it does)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` again first."""
    pending = list(reversed(messages))

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _disconnected(receive: Receive) -> None:
    """Returns when the caller hangs up (the body is read already: nothing else comes before that)."""
    message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()


async def _write(message: dict[str, Any], scope: Scope, send: Send) -> None:
    """As the SDK writes a JSON-RPC answer: compact JSON, the HTTP status its error code maps to."""
    status = ERROR_CODE_HTTP_STATUS.get(message["error"]["code"], 200) if "error" in message else 200
    body = json.dumps(message, separators=(",", ":")).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    with contextlib.suppress(OSError):
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
