"""A real A2A agent outside the hub, for the bridge tests (official ``a2a-sdk`` server): ``--port P``.

What it does with a message, by its text: ``refuse`` rejects it; ``fail`` fails it; ``ask`` wants input (and the
follow-up completes it with "got <text>"); ``slow S`` works S seconds, then completes; anything else completes with
the message's data part (or text) as an artifact and "done: <text>". ``GET /cancelled`` lists the texts of the tasks
its callers cancelled. ``--token T`` wants ``Authorization: Bearer T``;
``--no-streaming`` says so in the card (callers must poll); ``--garbage-calls`` answers every call with a JSON-RPC
response that is not A2A.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvicorn
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from a2a.helpers import new_data_part, new_task, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2 as pb


CANCELLED: list[str] = []  # the first text of each task a caller cancelled


def _text(message: pb.Message) -> str:
    return " ".join(p.text for p in message.parts if p.text).strip()


class Remote(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id and context.message
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        text = _text(context.message)
        data = next((MessageToDict(p)["data"] for p in context.message.parts if p.HasField("data")), None)
        if context.current_task is None:  # a new task: it must exist before its status changes
            await event_queue.enqueue_event(new_task(context.task_id, context.context_id, pb.TaskState.TASK_STATE_SUBMITTED, history=[context.message]))
        await updater.start_work()
        say = lambda words: updater.new_agent_message([new_text_part(words)])  # noqa: E731
        if text == "refuse":
            await updater.reject(say("not my kind of work"))
        elif text == "fail":
            await updater.failed(say("it broke"))
        elif text == "ask":
            await updater.requires_input(say("which one?"))
        elif context.current_task is not None and context.current_task.status.state == pb.TaskState.TASK_STATE_INPUT_REQUIRED:
            await updater.complete(say(f"got {text}"))
        else:
            if text.startswith("slow "):
                await asyncio.sleep(float(text.split()[1]))
            part = new_data_part(data) if data is not None else new_text_part(text)
            await updater.add_artifact([part], name="echo")
            await updater.complete(say(f"done: {text}"))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        history = context.current_task.history if context.current_task else []
        CANCELLED.append(_text(history[0]) if history else "")
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def card(port: int, streaming: bool) -> pb.AgentCard:
    url = f"http://127.0.0.1:{port}/"
    return pb.AgentCard(
        name="remote-echo", description="An A2A agent outside the hub", version="1.0.0",
        supported_interfaces=[pb.AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=pb.AgentCapabilities(streaming=streaming), default_input_modes=["text"], default_output_modes=["text"],
        skills=[pb.AgentSkill(id="echo", name="echo", description="echoes", tags=["echo"]),
                pb.AgentSkill(id="review docs", name="review", description="reviews", tags=["review"])],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    parser.add_argument("--no-streaming", action="store_true")
    parser.add_argument("--garbage-calls", action="store_true")
    args = parser.parse_args()
    the_card = card(args.port, streaming=not args.no_streaming)
    handler = DefaultRequestHandler(agent_executor=Remote(), task_store=InMemoryTaskStore(), agent_card=the_card)

    async def card_endpoint(_request: Request) -> JSONResponse:
        return JSONResponse(agent_card_to_dict(the_card))

    async def garbage(request: Request) -> Response:
        body = json.loads(await request.body())
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {"nonsense": True}})

    async def cancelled(_request: Request) -> JSONResponse:
        return JSONResponse(CANCELLED)

    routes = [Route("/.well-known/agent-card.json", card_endpoint), Route("/cancelled", cancelled)]
    routes += [Route("/", garbage, methods=["POST"])] if args.garbage_calls else create_jsonrpc_routes(handler, rpc_url="/")
    app = Starlette(routes=routes)
    if args.token:
        inner, expected = app, f"Bearer {args.token}".encode()

        async def guarded(scope, receive, send):  # type: ignore[no-untyped-def]
            if scope["type"] == "http" and scope["path"] != "/.well-known/agent-card.json" and dict(scope["headers"]).get(b"authorization") != expected:
                await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
                return
            await inner(scope, receive, send)

        uvicorn.run(guarded, host="127.0.0.1", port=args.port, log_level="warning")
        return
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
