"""WebSocket clients for the stream benchmarks, run as their own processes so the client never shares the hub's CPU.

python -m benchmarks.stream_client latency HUB_PORT SENDER_TOKEN RECEIVER_TOKEN RECEIVER_ID RATE SECONDS OUT
    One receiver on /ws and one sender at a steady RATE messages/s (open loop): per message, the send's HTTP
    latency and the send → frame latency (both clocks are this process's); frames still missing DRAIN_SECONDS after
    the last send are counted as "unanswered" (a hub that cannot keep up), not waited for.
python -m benchmarks.stream_client echo HUB_PORT SENDER_TOKEN ECHO_AGENT_ID RATE SECONDS OUT
    The same, sending to an agent that replies with the message's content, the sender's own /ws taking the replies:
    send → handler → reply → frame.
python -m benchmarks.stream_client fanout URL_OF_WS TOKENS_FILE SECONDS OUT
    One WebSocket per token; counts broadcast messages (single frames, or the events of batch frames) until
    SECONDS after the first one, acking with up_to every ACK_EVERY messages.
Each writes its figures as JSON to OUT and prints "ready" once its sockets are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop
import websockets

from .http import Connection, build_request

ACK_EVERY = 200
SENDER_CONNECTIONS = 16
DRAIN_SECONDS = 30  # how long frames still due are waited for after the last send


async def _connect(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**22)
    ready = json.loads(await ws.recv())
    assert ready["type"] == "ready", ready
    return ws


async def latency(port: int, sender: str, receiver: str, to_agent: str, rate: float, seconds: float) -> dict[str, Any]:
    """``receiver``'s stream takes what ``sender`` sends to ``to_agent`` (the receiver, or an agent that replies)."""
    ws = await _connect(f"ws://127.0.0.1:{port}/ws?types=message_received", receiver)
    run = secrets.token_hex(4)  # frames of an earlier run (late replies to it) are not this run's
    sent_at: dict[int, float] = {}
    delivery_ms: list[float] = []
    send_ms: list[float] = []
    total = int(rate * seconds)
    print("ready", flush=True)

    async def receive() -> None:
        while len(delivery_ms) < total:
            frame = json.loads(await ws.recv())
            if frame["type"] != "message_received" or frame["message"]["content"].get("run") != run:
                continue
            delivery_ms.append((time.perf_counter() - sent_at[frame["message"]["content"]["n"]]) * 1000)
            if len(delivery_ms) % ACK_EVERY == 0:
                await ws.send(json.dumps({"type": "ack", "up_to": frame["message"]["cursor"]}))

    headers = {"Authorization": f"Bearer {sender}", "Content-Type": "application/json"}
    idle: asyncio.Queue[Connection] = asyncio.Queue()

    async def send(n: int) -> None:
        sent_at[n] = started = time.perf_counter()
        connection = await idle.get()  # (the lightweight client: httpx would make this process the bottleneck)
        body = json.dumps({"to_agent": to_agent, "content": {"n": n, "run": run}}).encode()
        status, answer = await connection.send(build_request("POST", "/agora/messaging/send", port, headers, body))
        idle.put_nowait(connection)
        if status != 200:
            raise RuntimeError(f"send answered {status}: {answer[:200]!r}")
        send_ms.append((time.perf_counter() - started) * 1000)

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(SENDER_CONNECTIONS):
            idle.put_nowait(await stack.enter_async_context(Connection(port)))
        receiver_task = asyncio.create_task(receive())
        begin = time.perf_counter()
        sends = []
        for n in range(total):  # open loop: message n leaves at begin + n / rate, whatever the others do
            await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            sends.append(asyncio.create_task(send(n)))
        await asyncio.gather(*sends)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver_task, DRAIN_SECONDS)
        elapsed = time.perf_counter() - begin
    await ws.close()
    return {"delivery_ms": delivery_ms, "send_ms": send_ms, "messages": total, "unanswered": total - len(delivery_ms), "elapsed": elapsed}


async def fanout(url: str, tokens: list[str], seconds: float) -> dict[str, Any]:
    sockets = [await _connect(url, token) for token in tokens]
    counts = [0] * len(sockets)
    first: list[float] = []
    print("ready", flush=True)

    async def read(i: int, ws: websockets.ClientConnection) -> None:
        while True:
            frame = orjson.loads(await ws.recv(decode=False))  # (the client's CPU is the hub's on this machine)
            events = [e for e in (frame["events"] if frame["type"] == "batch" else [frame]) if e["type"] == "broadcast_message"]
            if not events:
                continue
            if not first:
                first.append(time.perf_counter())
            counts[i] += len(events)
            if counts[i] // ACK_EVERY > (counts[i] - len(events)) // ACK_EVERY:
                await ws.send(json.dumps({"type": "ack", "up_to": events[-1]["message"]["cursor"]}))

    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
    while not first:
        await asyncio.sleep(0.001)
    await asyncio.sleep(max(0.0, first[0] + seconds - time.perf_counter()))
    delivered = sum(counts)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws in sockets:
        await ws.close()
    return {"deliveries": delivered, "seconds": seconds, "cpu_seconds": time.process_time()}


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "latency":
        port, sender, receiver, receiver_id, rate, seconds, out = args
        result = uvloop.run(latency(int(port), sender, receiver, receiver_id, float(rate), float(seconds)))
    elif mode == "echo":
        port, sender, echo_agent, rate, seconds, out = args
        result = uvloop.run(latency(int(port), sender, sender, echo_agent, float(rate), float(seconds)))
    else:
        url, tokens_file, seconds, out = args
        result = uvloop.run(fanout(url, Path(tokens_file).read_text().split(), float(seconds)))
    result["cpu_seconds"] = time.process_time()
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
