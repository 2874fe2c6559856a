"""The A2A ceiling: an ``a2a-sdk`` server (its own default request handler, in-memory task store) whose agent does
what the hub's benchmark agent does for ``tck-complete-task``: completes the task with the message "Hello from TCK".

Served exactly as ``agora serve`` serves the hub (same uvicorn options, the SDK's spans off), JSON-RPC at ``/``.
A round trip through the hub also crosses the hub's store and a second process (the agent, over the hub's task
queue); the ratio to this server measures that.
"""

from __future__ import annotations

import argparse

import agora  # noqa: F401, I001 - before a2a: it turns the a2a-sdk's OpenTelemetry spans off, as in the hub

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from a2a.helpers import new_task, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2 as pb
from agora.cli.serve import UVICORN_OPTIONS


class Hello(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        history = [context.message] if context.message else []
        await event_queue.enqueue_event(new_task(context.task_id, context.context_id, pb.TaskState.TASK_STATE_SUBMITTED, history=history))
        await updater.complete(updater.new_agent_message([new_text_part("Hello from TCK")]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def card(port: int) -> pb.AgentCard:
    url = f"http://127.0.0.1:{port}/"
    return pb.AgentCard(
        name="a2a-ceiling", description="The A2A SDK's own server", version="1.0.0",
        supported_interfaces=[pb.AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=pb.AgentCapabilities(streaming=True), default_input_modes=["text"], default_output_modes=["text"],
        skills=[pb.AgentSkill(id="hello", name="hello", description="says hello", tags=["hello"])],
    )  # fmt: skip


async def ready(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    handler = DefaultRequestHandler(agent_executor=Hello(), task_store=InMemoryTaskStore(), agent_card=card(port))
    app = Starlette(routes=[*create_jsonrpc_routes(handler, rpc_url="/"), Route("/ready", ready)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **UVICORN_OPTIONS)  # exactly as agora serve
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
