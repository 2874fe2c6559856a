"""The live doors: WebSocket ``/ws`` and Server-Sent Events ``/events``, both views of one ``core.streams.Stream``."""

from fastapi import FastAPI

from . import sse, websocket


def mount(app: FastAPI) -> None:
    app.add_api_websocket_route("/ws", websocket.endpoint)
    app.add_api_route("/events", sse.endpoint, methods=["GET"], include_in_schema=False)


__all__ = ["mount"]
