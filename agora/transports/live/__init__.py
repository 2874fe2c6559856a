"""The live doors: WebSocket ``/ws`` and Server-Sent Events ``/events``, both views of one ``core.streams.Stream``; and a
task's output as it is made, ``/tasks/{task_id}/output/stream`` (SSE) and ``/tasks/{task_id}/output/ws`` (WebSocket)."""

from fastapi import FastAPI

from . import output, sse, websocket


def mount(app: FastAPI) -> None:
    app.add_api_websocket_route("/ws", websocket.endpoint)
    app.add_api_route("/events", sse.endpoint, methods=["GET"], include_in_schema=False)
    app.add_api_route("/tasks/{task_id}/output/stream", output.endpoint, methods=["GET"], include_in_schema=False)
    app.add_api_websocket_route("/tasks/{task_id}/output/ws", output.websocket_endpoint)


__all__ = ["mount"]
