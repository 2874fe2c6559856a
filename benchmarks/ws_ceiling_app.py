"""The WebSocket fan-out ceiling: a trivial Starlette app that pushes one prepared frame to every connected client.

Served like the hub (agora/cli/serve.py options). ``POST /blast?frames=N`` sends N frames, shaped like the hub's
broadcast frames, to each connected /ws client as fast as the sockets take them, and answers when done.
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from agora.cli.serve import UVICORN_OPTIONS

clients: set[WebSocket] = set()


def frame(n: int) -> str:
    message = {"message_id": f"msg_{n:016x}", "cursor": "MQ", "kind": "broadcast", "content": {"text": "hello", "n": n}}
    return orjson.dumps({"type": "broadcast_message", "id": "ZTBtMQ", "message": message}).decode()


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text('{"type":"ready","id":"ZTBtMA"}')
    clients.add(websocket)
    try:
        while True:
            await websocket.receive_text()  # acks: read and dropped
    except WebSocketDisconnect:
        clients.discard(websocket)


async def blast(request: Request) -> JSONResponse:
    frames = int(request.query_params.get("frames", "1000"))
    for n in range(frames):
        text = frame(n)
        await asyncio.gather(*(c.send_text(text) for c in tuple(clients)), return_exceptions=True)
    return JSONResponse({"frames": frames, "clients": len(clients)})


async def ready(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


app = Starlette(routes=[WebSocketRoute("/ws", ws), Route("/blast", blast, methods=["POST"]), Route("/ready", ready)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=parser.parse_args().port, **UVICORN_OPTIONS)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
