"""The outermost ASGI layer: what every HTTP request and WebSocket handshake goes through, whichever door it is for.

- a request id (``X-Request-ID``, the client's own if it is sane) and one structured log line per request, with
  HTTP metrics;
- the body limit: a declared ``Content-Length`` over ``--max-body-bytes`` is answered 413 before a byte of the body
  is read, and a body without one is counted as it streams in (413 the moment it passes the limit, whatever door
  was reading it);
- requests without a key (or a console session cookie) are rate-limited per client address (429 with ``Retry-After``); after any 429 the
  connection is not read again until its ``Retry-After`` has passed (``protocol.py``);
- the security headers every answer carries unless its route set its own (``security_headers``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from agora.config import Settings
from agora.core.ids import new_id
from agora.limits import client_address
from agora.observability import metrics
from agora.transports.rest.errors import error_response
from agora_sdk.errors import AgoraError, InvalidArgument, PayloadTooLarge

from .protocol import HOLD_SCOPE_KEY, MAX_HOLD_SECONDS

log = logging.getLogger("agora.request")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A console session cookie stands for a key: the console charges the principal's limits, or (a cookie that names no
# session) the address's anonymous ones.
CONSOLE_COOKIE = b"agora_console="


def _valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= 128 and all(c.isalnum() or c in "._:-" for c in value.decode("latin-1"))


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """Headers for browsers: no sniffing, no framing, nothing loaded or sent elsewhere, no caching of answers.

    A route that serves a page (``/docs``) sets its own Content-Security-Policy, which then wins."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cache-control", b"no-store"),
    ]
    if settings.hsts_seconds:
        headers.append((b"strict-transport-security", b"max-age=%d; includeSubDomains" % settings.hsts_seconds))
    return headers


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.max_body = settings.max_body_bytes
        self.headers = security_headers(settings)
        self.header_names = frozenset(name for name, _ in self.headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            refusal = await self._anonymous_refusal(scope, has_key=any(k == b"authorization" for k, _ in scope["headers"]))
            if refusal is not None:
                await WebSocket(scope, receive, send).send_denial_response(error_response(refusal))
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = authorization = length = chunked = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                request_id = value
            elif key == b"authorization" or (key == b"cookie" and CONSOLE_COOKIE in value):
                authorization = value
            elif key == b"content-length":
                length = value
            elif key == b"transfer-encoding":
                chunked = value
        rid = request_id.decode("latin-1") if request_id is not None and _valid_request_id(request_id) else new_id("req")
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        extra = [*self.headers, (b"x-request-id", rid.encode())]
        names = self.header_names

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                own = message.get("headers") or []
                if status == 429:
                    _hold_connection(scope, own)
                if any(k in names for k, _ in own):
                    set_by_route = {k for k, _ in own}
                    message["headers"] = [*own, *((k, v) for k, v in extra if k not in set_by_route)]
                else:
                    message["headers"] = [*own, *extra]
            await send(message)

        try:
            refusal = self._length_refusal(length) or await self._anonymous_refusal(scope, authorization is not None)
            if refusal is not None:
                await _answer(refusal, scope, receive, send_with_headers)
            elif length is None and (chunked is not None or scope["method"] in _BODY_METHODS):
                await _BodyLimit(self.max_body).run(self.app, scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            metrics.count_request(scope["method"], status)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "request_id": rid,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": duration_ms,
                        "principal": state.get("principal"),
                        "tool": state.get("tool"),
                    },
                )

    def _length_refusal(self, length: bytes | None) -> AgoraError | None:
        if length is None:
            return None
        if not length.isdigit():
            return InvalidArgument("Content-Length must be a number of bytes")
        if int(length) > self.max_body:
            return PayloadTooLarge(f"request body is {int(length)} bytes; the limit is {self.max_body}", details={"limit": self.max_body})
        return None

    @staticmethod
    async def _anonymous_refusal(scope: Scope, has_key: bool) -> AgoraError | None:
        """A request without a key costs its client address a token (nothing before the hub has started)."""
        if has_key:
            return None
        hub = getattr(scope["app"].state, "hub", None)
        if hub is None:
            return None
        try:
            await hub.throttle.anonymous(client_address(scope["client"][0] if scope.get("client") else None))
        except AgoraError as exc:
            return exc
        return None



def _hold_connection(scope: Scope, headers: list[tuple[bytes, bytes]]) -> None:
    """Ask the edge protocol not to read this connection's next request before the ``Retry-After`` it was given: a
    client that keeps sending on a connection it was told to wait on queues in its own socket, not in the hub."""
    for name, value in headers:
        if name.lower() == b"retry-after" and value.isdigit():
            scope[HOLD_SCOPE_KEY] = min(float(value), MAX_HOLD_SECONDS)
            return


class _BodyLimit:
    """Counts a streamed body; past the limit the app's reading fails (413), its own answer is dropped and the
    client gets the 413, whichever door was reading."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self.exceeded = False

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.size += len(message.get("body", b""))
                if self.size > self.limit:
                    self.exceeded = True
                    raise PayloadTooLarge(f"request body exceeds the limit of {self.limit} bytes", details={"limit": self.limit})
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if self.exceeded:
                return
            started = True
            await send(message)

        try:
            await app(scope, counted, guarded_send)
        except Exception:
            if not self.exceeded or started:
                raise
        if self.exceeded and not started:
            metrics.count_edge_refusal("body_size")
            too_large = PayloadTooLarge(f"request body exceeds the limit of {self.limit} bytes", details={"limit": self.limit})
            await _answer(too_large, scope, receive, send)


async def _answer(exc: AgoraError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the error; after a 413 the unread rest of the body ends the connection."""
    await error_response(exc, headers={"Connection": "close"} if exc.status == 413 else None)(scope, receive, send)
