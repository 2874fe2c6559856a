"""A minimal HTTP/1.1 keep-alive client on asyncio streams, and a blocking readiness probe.

httpx costs several times more CPU per request than the server under test spends on a trivial
endpoint; on two shared cores that would make the client the bottleneck. This client does only what
the benchmarks need: one request at a time per connection, Content-Length or chunked responses.
"""

from __future__ import annotations

import asyncio
import socket

HOST = "127.0.0.1"  # the benchmarks only ever talk to the loopback interface


def build_request(method: str, path: str, port: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one request; the caller appends nothing (the body is included)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection to 127.0.0.1:port."""

    def __init__(self, port: int):
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def send(self, raw_request: bytes) -> tuple[int, bytes]:
        """Send a request built by ``build_request``; return (status, body)."""
        assert self._reader is not None and self._writer is not None, "use 'async with Connection(...)'"
        self._writer.write(raw_request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = head.lower()
        marker = headers.find(b"\r\ncontent-length:")
        if marker >= 0:
            end = headers.index(b"\r\n", marker + 2)
            return status, await self._reader.readexactly(int(headers[marker + 17 : end]))
        if b"\r\ntransfer-encoding: chunked" in headers:
            return status, await self._read_chunked()
        return status, b""

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)


def probe_status(port: int, path: str, timeout: float = 0.5) -> int | None:
    """GET ``path`` on a fresh connection; the status, or None when nothing answers yet."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
            return int(head[9:12]) if head.startswith(b"HTTP/1.") else None
    except OSError:
        return None
