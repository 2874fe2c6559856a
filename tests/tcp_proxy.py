"""A TCP proxy between a client and a server (a hub, a database), on its own thread, that the tests can make
misbehave: cut every connection in the middle of what it is forwarding, swallow or delay what the server answers,
partition the network (nothing gets through until it heals), or refuse WebSocket upgrades (as a proxy that does not
carry WebSockets would)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

REFUSAL = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class TcpProxy:
    def __init__(self, upstream_port: int, refuse_websockets: bool = False):
        self.upstream_port = upstream_port
        self.refuse_websockets = refuse_websockets
        self.swallow_answers = False  # what the hub sends is dropped (the client waits for answers that never come)
        self.delay = 0.0  # seconds each chunk the server sends waits before it is forwarded (a slow server or network)
        self.cuts = 0
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        self._sock = sock
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._cutting = False
        self._healed: asyncio.Event | None = None  # set while there is no partition
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut(0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _serve(self) -> None:
        self._healed = asyncio.Event()
        self._healed.set()
        self._server = await asyncio.start_server(self._accept, sock=self._sock)

    def cut(self, window: float = 0.1) -> None:
        """Cut every open connection: one that forwards something within ``window`` seconds is cut halfway through
        that chunk (mid-frame), the others when the window closes."""

        def start() -> None:
            self.cuts += 1
            self._cutting = True
            self._loop.call_later(window, finish)

        def finish() -> None:
            self._cutting = False
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(start)

    def partition(self) -> None:
        """A network cut: open connections die, and new ones are held unanswered (as if every packet were dropped:
        a client waits for its own timeout) until :meth:`heal`."""
        assert self._healed is not None

        def start() -> None:
            assert self._healed is not None
            self.cuts += 1
            self._healed.clear()
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(start)

    def heal(self) -> None:
        """The network is back: the connections held meanwhile are reset (their clients retry), new ones get through."""
        assert self._healed is not None
        self._loop.call_soon_threadsafe(self._healed.set)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._healed is not None
        if not self._healed.is_set():
            await self._healed.wait()
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        first = await reader.read(65536)
        if self.refuse_websockets and b"upgrade: websocket" in first.lower():
            writer.write(REFUSAL)
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            up_writer.transport.abort()
            return
        up_writer.write(first)
        await asyncio.gather(self._pipe(reader, up_writer, False), self._pipe(up_reader, writer, True), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
        while chunk := await reader.read(65536):
            if answers and self.swallow_answers:
                continue
            if answers and self.delay:
                await asyncio.sleep(self.delay)
            if self._cutting and len(chunk) > 1:
                writer.write(chunk[: len(chunk) // 2])
                await writer.drain()
                break
            writer.write(chunk)
            await writer.drain()
        writer.transport.abort()


@contextlib.contextmanager
def proxy(upstream_port: int, refuse_websockets: bool = False) -> Iterator[TcpProxy]:
    with TcpProxy(upstream_port, refuse_websockets) as p:
        yield p
