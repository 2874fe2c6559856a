"""The edge, tried from outside with raw sockets: header floods, slowloris, oversized bodies, connection floods,
WebSocket frames, and the headers every answer carries; then how an answer is written, on a recorded connection. (A WebSocket client that stops reading is cut off: see
tests/test_streams.py::test_a_client_that_stops_reading_is_cut_off_and_resumes.)"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from ..conftest import call, expect_error, ok
from ..hubproc import HubProcess


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def answer_of(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the hub sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass  # the answer ends with the connection (or the timeout): what came before is the answer
    return data


@pytest.fixture(scope="module")
def edge_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub with short timeouts (so the tests need not wait for the defaults) and a small connection ceiling."""
    hub = HubProcess(
        tmp_path_factory.mktemp("edge"),
        extra_args=["--header-timeout", "1.5", "--body-timeout", "1.5", "--keepalive-timeout", "1", "--max-connections", "150"],
    ).start()
    yield hub
    hub.stop()


def test_huge_headers_are_refused_before_they_are_buffered(sqlite_hub):
    """20 clients each trying to send 100 MB of headers: 431 after the first 64 KiB, and the hub's memory stays flat."""
    pid = sqlite_hub.proc.pid
    before = rss_mb(pid)
    peak = [before]
    answers: list[bytes] = []

    def flood() -> None:
        with socket.create_connection(("127.0.0.1", sqlite_hub.port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            chunk = b"a" * 65536
            try:
                for _ in range(100 * 16):  # 100 MB
                    sock.sendall(chunk)
            except OSError:
                pass  # the hub closed the connection: what it answered before is still readable
            answers.append(answer_of(sock))

    threads = [threading.Thread(target=flood) for _ in range(20)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak.append(rss_mb(pid))
        time.sleep(0.02)
    assert max(peak) - before <= 20, f"RSS grew from {before:.0f} to {max(peak):.0f} MB"
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 431 ")]
    assert len(refused) >= 15, answers  # a client whose unread bytes were reset may miss the answer; most see it
    assert b'"code":"headers_too_large"' in refused[0]
    ok(httpx.get(sqlite_hub.url + "/health"))


def test_too_many_header_lines_is_431(sqlite_hub):
    headers = {f"X-H{i}": "v" for i in range(150)}
    response = httpx.get(sqlite_hub.url + "/health", headers=headers)
    expect_error(response, 431, "headers_too_large")


def test_slowloris_connections_are_closed_after_the_header_timeout(edge_hub):
    """100 connections sending their head a byte at a time are all answered 408 and closed at the timeout, while
    the hub keeps answering others at once."""
    socks = []
    for _ in range(100):
        sock = socket.create_connection(("127.0.0.1", edge_hub.port))
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        socks.append(sock)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        for sock in socks:
            sock.sendall(b"X")
        assert ok(httpx.get(edge_hub.url + "/health", timeout=2))["status"] == "ok"
        time.sleep(0.2)
    answers = [answer_of(sock, timeout=3) for sock in socks]
    for sock in socks:
        sock.close()
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
    assert time.monotonic() - started < 4


def test_a_silent_connection_is_closed_after_the_header_timeout(edge_hub):
    with socket.create_connection(("127.0.0.1", edge_hub.port)) as sock:
        started = time.monotonic()
        answer = answer_of(sock, timeout=5)
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"code":"request_timeout"' in answer
    assert 1.0 < time.monotonic() - started < 4


def test_a_body_that_never_completes_is_408(edge_hub):
    with edge_hub.client() as admin:
        key = admin.headers["Authorization"]
    with socket.create_connection(("127.0.0.1", edge_hub.port)) as sock:
        sock.sendall(
            b"POST /agora/agents/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + key.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"agent_name\":"
        )
        answer = answer_of(sock, timeout=5)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_an_idle_kept_alive_connection_is_closed(edge_hub):
    with socket.create_connection(("127.0.0.1", edge_hub.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert answer_of(sock, timeout=5) == b""  # closed without another word
        assert time.monotonic() - started < 3


def test_connections_past_the_ceiling_are_refused_at_once(edge_hub):
    socks = [socket.create_connection(("127.0.0.1", edge_hub.port)) for _ in range(150)]
    try:
        with socket.create_connection(("127.0.0.1", edge_hub.port)) as extra:
            answer = answer_of(extra, timeout=2)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
    finally:
        for sock in socks:
            sock.close()
    time.sleep(0.2)
    ok(httpx.get(edge_hub.url + "/health"))


def test_a_declared_oversized_body_is_refused_before_it_is_sent(sqlite_hub):
    key = f"Bearer {sqlite_hub.admin_key}"
    with socket.create_connection(("127.0.0.1", sqlite_hub.port)) as sock:
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: "
            + key.encode() + b"\r\nContent-Length: 50000000\r\n\r\n"
        )  # fmt: skip
        answer = answer_of(sock, timeout=5)  # not a byte of the body sent: the answer comes anyway
    assert answer.startswith(b"HTTP/1.1 413 ") and b'"code":"payload_too_large"' in answer


@pytest.mark.parametrize("path", ["/agora/agents/register", "/mcp", "/agent/message", "/a2a"])
def test_a_streamed_body_past_the_limit_is_413_at_every_door(sqlite_hub, path):
    def body() -> Iterator[bytes]:
        for _ in range(64):  # 4 MiB, chunked: no Content-Length to refuse up front
            yield b" " * 65536

    with sqlite_hub.client() as admin:
        response = admin.post(path, content=body(), headers={"Content-Type": "application/json"})
        expect_error(response, 413, "payload_too_large")
        ok(call(admin, "agora.discovery.list"))


def test_answers_carry_security_headers_and_no_cors_by_default(sqlite_hub):
    admin = sqlite_hub.client()
    for response in (admin.get("/health"), call(admin, "agora.discovery.list"), admin.get("/agora/agents/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
    docs = admin.get("/docs")
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]  # the page's own, not the default
    preflight = httpx.options(
        sqlite_hub.url + "/agora/agents/list",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = admin.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers
    admin.close()


def test_cors_answers_only_the_configured_origins(tmp_path):
    hub = HubProcess(tmp_path, extra_args=["--cors-origin", "https://console.example"]).start()
    try:
        asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
        good = httpx.options(hub.url + "/agora/agents/list", headers={"Origin": "https://console.example", **asked})
        assert good.status_code == 200 and good.headers["access-control-allow-origin"] == "https://console.example"
        assert "authorization" in good.headers["access-control-allow-headers"].lower()
        bad = httpx.options(hub.url + "/agora/agents/list", headers={"Origin": "https://evil.example", **asked})
        assert bad.headers.get("access-control-allow-origin") is None
        with hub.client() as admin:
            answer = admin.get("/agora/discovery/list", headers={"Origin": "https://console.example"})
        assert answer.headers["access-control-allow-origin"] == "https://console.example"
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
    finally:
        hub.stop()


def test_a_websocket_frame_past_the_limit_closes_the_socket(sqlite_hub):
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=f"ws-frame-{time.monotonic_ns()}"))

    async def run() -> int | None:
        url = sqlite_hub.url.replace("http", "ws") + "/ws"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {agent['agent_token']}"}, max_size=None) as ws:
            await ws.recv()  # ready
            await ws.send('{"type": "ping", "ref": "' + "x" * (512 * 1024) + '"}')
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(run()) == 1009


class _RecordingTransport(asyncio.Transport):
    """What the protocol writes to its connection, each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _edge_connection(app: object) -> tuple[object, _RecordingTransport]:
    """The hub's edge protocol on a recorded connection, serving ``app``."""
    import uvicorn
    from uvicorn.server import ServerState

    from agora.transports.edge.protocol import EdgeLimits, protocol_class

    config = uvicorn.Config(app, http=protocol_class(EdgeLimits()), lifespan="off", log_level="warning")  # type: ignore[arg-type]
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
    transport = _RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[attr-defined]
    return protocol, transport


async def test_an_answer_leaves_in_one_write_and_a_streamed_head_does_not_wait_for_its_body():
    """uvicorn writes a head and a body apart (two system calls, two TCP segments); the edge sends them as one. A
    streamed answer's head still leaves in the turn it was written, before a body that comes later."""
    body_may_come = asyncio.Event()

    async def app(scope, receive, send):  # noqa: ANN001 - an ASGI app
        streamed = scope["path"] == "/stream"
        length = [] if streamed else [(b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), *length]})
        if streamed:
            await body_may_come.wait()
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    protocol, transport = _edge_connection(app)
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: hub\r\n\r\n")  # type: ignore[attr-defined]
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert len(transport.writes) == 1, transport.writes
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and transport.writes[0].endswith(b'\r\n\r\n{"ok":true}')

    protocol.data_received(b"GET /stream HTTP/1.1\r\nhost: hub\r\n\r\n")  # type: ignore[attr-defined]
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert len(transport.writes) == 2 and transport.writes[1].startswith(b"HTTP/1.1 200 OK\r\n") and transport.writes[1].endswith(b"\r\n\r\n")
    body_may_come.set()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert transport.writes[2:] == [b'b\r\n{"ok":true}\r\n0\r\n\r\n'], transport.writes
