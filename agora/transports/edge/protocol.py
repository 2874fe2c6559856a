"""uvicorn's httptools protocol with the limits a server on the internet needs before any ASGI code runs.

httptools has no limit on a request head: it gathers a header value of any size before handing it over, so five
clients with 100 MB of headers each could take the hub past 700 MB before authentication. uvicorn has no read
timeout either: a client that sends its head one byte every few seconds holds a connection and a task forever. This
protocol keeps uvicorn's parsing and request cycle as they are and adds, per connection:

- a head budget: the parser is fed at most ``max_header_bytes`` of a request head, and at most ``max_headers``
  header lines (431 past either: nothing more of that head is ever buffered);
- a head timeout, from the connection's start or a request's first byte to the end of its head (408);
- a body timeout, from the end of the head to the end of the body (408, or the connection closed if an answer is
  already on its way);
- a ceiling on open connections: one more is answered 503 and closed at once, before it can send a byte;
- a hold: after a 429 the connection is not read until its ``Retry-After`` has passed (``HOLD_SCOPE_KEY``).

The idle time between two requests of a kept-alive connection is uvicorn's own ``timeout_keep_alive``. And an answer
leaves in one send where uvicorn makes two (its head, then its body): ``_TurnWrites``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from agora.observability import metrics

log = logging.getLogger("agora.edge")

# Set in a request's scope (by the edge middleware, on a 429) to the seconds its connection is not read after the
# answer: a client flooding on kept-alive connections then costs the hub a request a connection per Retry-After,
# not one per round trip. Longer waits (lockouts) end in the keep-alive timeout, which closes the connection.
HOLD_SCOPE_KEY = "agora.hold_seconds"
MAX_HOLD_SECONDS = 5.0


@dataclass(frozen=True)
class EdgeLimits:
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096


class _Refusal(Exception):
    """Raised inside a parser callback to stop parsing; httptools hands it back as the context of its own error."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def refusal_bytes(status: int, code: str, message: str, details: dict[str, Any]) -> bytes:
    """A complete HTTP/1.1 answer in the hub's error shape, closing the connection."""
    body = orjson.dumps({"error": {"code": code, "message": message, "details": details}})
    head = (
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"x-content-type-options: nosniff\r\n"
        b"connection: close\r\n\r\n"
    )
    return STATUS_LINE[status] + head + body


class _TurnWrites:
    """The transport a request's answer is written through: what is written in one turn of the event loop leaves in
    one send at its end (or before a close). uvicorn writes an answer's head and body separately, each its own system
    call and TCP segment; written in the same turn, they now go as one (a streamed answer's head still leaves at
    once: at the end of the turn that wrote it)."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop = transport, loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held = []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring. ``limits`` is set on the subclass that ``protocol_class`` makes."""

    limits: EdgeLimits = EdgeLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._answers = _TurnWrites(transport, self.loop)
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "unavailable", "too many open connections; try again shortly", {"limit": self.limits.max_connections}, "connections")
            return
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        while data:
            if self._in_head:
                room = self.limits.max_header_bytes - self._head_bytes
                if room <= 0:
                    self._refuse_head_size()
                    return
                piece, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
                self._head_bytes += len(piece)  # counted before feeding: a head that ends in it resets the count
            else:
                piece, data = data, b""
            if not self._feed(piece):
                return

    def _feed(self, data: bytes) -> bool:
        """Feed the parser as uvicorn does; False once the connection is answered, upgraded or refused."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._cancel_timers()
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        except httptools.HttpParserError as exc:
            refusal = exc.__context__
            if isinstance(refusal, _Refusal):
                self._refuse(refusal.status, refusal.code, refusal.message, refusal.details, "headers")
            else:
                self._refuse(400, "invalid_argument", "invalid HTTP request", {}, "malformed")
            return False
        return not self.transport.is_closing()

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        if self._head_timer is None:  # a kept-alive connection's next request: its head has this long from now
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _Refusal(431, "headers_too_large", f"more than {self.limits.max_headers} header lines", {"limit_count": self.limits.max_headers})
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = self._answers  # type: ignore[assignment]
        if not self.parser.should_upgrade():
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        hold = cycle.scope.get(HOLD_SCOPE_KEY) if cycle is not None else None
        if hold and not self.transport.is_closing():
            self.flow.pause_reading()
            # Spread out: a flood's connections, held together, would otherwise all be read again at one instant.
            self.loop.call_later(hold * random.uniform(1.0, 1.5), self._release)

    def _release(self) -> None:
        if not self.transport.is_closing():
            self.flow.resume_reading()

    # Refusals
    def _refuse_head_size(self) -> None:
        limit = self.limits.max_header_bytes
        self._refuse(431, "headers_too_large", f"the request head is larger than {limit} bytes", {"limit_bytes": limit}, "headers")

    def _head_timed_out(self) -> None:
        self._head_timer = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if busy:  # a pipelined head arriving while an answer is being written: just end the connection
            self.transport.close()
            metrics.count_edge_refusal("header_timeout")
            return
        message = f"the request head did not arrive within {self.limits.header_timeout:g} s"
        self._refuse(408, "request_timeout", message, {"timeout_seconds": self.limits.header_timeout}, "header_timeout")

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # the connection_lost that follows tells the app its client is gone
            metrics.count_edge_refusal("body_timeout")
            return
        if self.cycle is not None:
            self.cycle.response_complete = True  # the app must not write into what follows: it sees a disconnect
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        message = f"the request body did not arrive within {self.limits.body_timeout:g} s"
        self._refuse(408, "request_timeout", message, {"timeout_seconds": self.limits.body_timeout}, "body_timeout")

    def _refuse(self, status: int, code: str, message: str, details: dict[str, Any], reason: str) -> None:
        self._cancel_timers()
        self._answers.flush()  # (an answer written before it goes first)
        if not self.transport.is_closing():
            self.transport.write(refusal_bytes(status, code, message, details))
            self.transport.close()
        metrics.count_edge_refusal(reason)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        log.warning("request refused at the edge", extra={"status": status, "reason": reason, "client": client})

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None


def protocol_class(limits: EdgeLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``), bound to these limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
