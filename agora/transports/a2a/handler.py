"""The A2A request handler behind every agent's A2A front: the SDK's dispatchers parse JSON-RPC and HTTP+JSON (1.0,
and 0.3 through its compatibility layer) and call these methods with protobuf requests; they answer from the A2A
service (``core/services/a2a.py``), which speaks the A2A JSON shapes.

Which agent and which caller a request is for was settled by the door before the SDK saw it (``access.py``) and is
in ``context.state["front"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

from google.protobuf.json_format import MessageToDict, ParseDict

from a2a.server.context import ServerCallContext
from a2a.server.events import Event as A2AEvent
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    A2AError,
    InternalError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from agora.core.auth import Scope
from agora.core.services import a2a, a2a_push
from agora.store.ops.pagination import decode_cursor, encode_cursor
from agora_sdk.errors import AgoraError, Conflict, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

from .access import Front

log = logging.getLogger("agora.a2a")

T = TypeVar("T")
FIRST_EVENT_WAIT = 1.0  # seconds a streaming send waits for the agent's first move before showing the task as is
DEFAULT_PAGE, MAX_PAGE = 50, 100


@contextlib.contextmanager
def a2a_errors() -> Iterator[None]:
    """Agora's errors as the A2A errors the SDK turns into JSON-RPC codes and HTTP statuses (never a bare 500)."""
    try:
        yield
    except A2AError:
        raise
    except NotFound as exc:
        raise TaskNotFoundError(exc.message, data=exc.details or None) from None
    except InvalidArgument as exc:
        raise InvalidParamsError(exc.message, data=exc.details or None) from None
    except PermissionDenied as exc:  # A2A has no error of its own for it: an operation this caller may not use
        raise UnsupportedOperationError(exc.message, data={"reason": "PERMISSION_DENIED", **(exc.details or {})}) from None
    except (FailedPrecondition, Conflict) as exc:
        if (exc.details or {}).get("reason") == "a2a_task_not_cancelable":
            raise TaskNotCancelableError(exc.message, data=exc.details) from None
        raise UnsupportedOperationError(exc.message, data=exc.details or None) from None
    except AgoraError as exc:
        raise InternalError(exc.message) from None
    except Exception:
        log.exception("A2A request failed")
        raise InternalError("the request failed unexpectedly; the hub's logs have the details") from None


def send_answer(task: dict[str, Any], history_length: int | None = None) -> tuple[str, dict[str, Any]]:
    """What a SendMessage answers with, in its JSON form: the agent's message alone when it answered with one and no
    task ("message"), else the task ("task")."""
    if task["message_only"] and task["status_message"]:
        return "message", task["status_message"]
    return "task", a2a.document(task, history_length)


def _task(task: dict[str, Any], history_length: int | None = None, artifacts: bool = True) -> pb.Task:
    return ParseDict(a2a.document(task, history_length, artifacts), pb.Task())


def _event(body: dict[str, Any]) -> A2AEvent:
    response = ParseDict(body, pb.StreamResponse())
    return getattr(response, response.WhichOneof("payload"))


def _history_length(request: Any) -> int | None:
    """The historyLength a request (or its configuration) gives, if any: 0 or more, else InvalidParams."""
    if request is None or not request.HasField("history_length"):
        return None
    if request.history_length < 0:
        raise InvalidParamsError("historyLength must be 0 or more", data={"field": "historyLength"})
    return int(request.history_length)


class AgoraRequestHandler(RequestHandler):
    def __init__(self, blocking_timeout: float):
        self.blocking_timeout = blocking_timeout

    @staticmethod
    def front(context: ServerCallContext) -> Front:
        return context.state["front"]

    async def _guard(self, work: Awaitable[T]) -> T:
        with a2a_errors():
            return await work

    # -- messages ---------------------------------------------------------------------------------------------------

    async def _send(self, params: pb.SendMessageRequest, context: ServerCallContext, blocking: bool) -> dict[str, Any]:
        front = self.front(context)
        if not params.message.parts:
            raise InvalidParamsError("a message needs at least one part", data={"field": "message.parts"})
        push = None
        if params.configuration.HasField("task_push_notification_config"):  # a webhook for the task, from its start
            push = await a2a_push.checked(front.hub, MessageToDict(params.configuration.task_push_notification_config), front.caller)
        return await self.sent(front, MessageToDict(params.message), push, blocking)

    async def sent(self, front: Front, message: dict[str, Any], push: dict[str, Any] | None, blocking: bool) -> dict[str, Any]:
        """``message`` sent (its task's webhook ``push`` set from the start); when the call blocks and the agent can
        move the task, the task once it settles (or at the blocking timeout). The wake-up is armed before the send,
        so the first look at the task needs no read."""
        task_id = a2a.task_id_for(message)
        with front.hub.wakeups.armed(a2a.settled_keys(task_id)) as woken:
            task = await front.hub_send(message, task_id)
            if push is not None:
                await a2a_push.put(front.hub, task["task_id"], push, from_start=True)
            if not blocking or not front.reachable:
                return task
            return await a2a.settled(front.hub, task_id, self.blocking_timeout, (task, woken))

    async def on_message_send(self, params: pb.SendMessageRequest, context: ServerCallContext) -> pb.Task | pb.Message:
        config = params.configuration if params.HasField("configuration") else None
        history = _history_length(config)  # refused before anything is sent
        with a2a_errors():
            task = await self._send(params, context, blocking=config is None or not config.return_immediately)
            kind, answer = send_answer(task, history)
            return ParseDict(answer, pb.Message() if kind == "message" else pb.Task())

    async def on_message_send_stream(self, params: pb.SendMessageRequest, context: ServerCallContext) -> AsyncGenerator[A2AEvent]:
        with a2a_errors():
            front = self.front(context)
            task = await self._send(params, context, blocking=False)
        first = await self._first_move(front, task["task_id"], task["last_seq"])
        if first is not None and "message" in first["body"]:
            yield _event(first["body"])  # the agent answered with a message: that is the whole stream
            return
        async for event in self._from_snapshot(front, task["task_id"], a2a.ENDS_STREAM):
            yield event

    async def _first_move(self, front: Front, task_id: str, after: int) -> dict[str, Any] | None:
        """The agent's first telling event after the task was created: anything but a bare "working" (an agent that
        answers with a message starts working too, and its stream is that message alone). None if it makes none
        within FIRST_EVENT_WAIT, or cannot (offline): the stream then starts with the task as it is."""
        if not front.reachable:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_EVENT_WAIT):
                async for row in a2a.events(front.hub, task_id, after):
                    status = row["body"].get("statusUpdate", {}).get("status", {})
                    if row["final"] or status.get("state") != a2a.wire_state("working") or "message" in status:
                        return row
        return None

    async def _from_snapshot(self, front: Front, task_id: str, ends: frozenset[str]) -> AsyncGenerator[A2AEvent]:
        """The task as it is now, then every later event, until one whose state is in ``ends``."""
        with a2a_errors():
            task, seq = await front.snapshot(task_id)
        yield _task(task)
        if task["state"] in ends:
            return
        async for row in a2a.events(front.hub, task_id, seq):
            yield _event(row["body"])
            state = row["body"].get("statusUpdate", {}).get("status", {}).get("state")
            if "message" in row["body"] or (state and a2a.state_from_wire(state) in ends):
                return

    # -- tasks ------------------------------------------------------------------------------------------------------

    async def on_get_task(self, params: pb.GetTaskRequest, context: ServerCallContext) -> pb.Task | None:
        history = _history_length(params)
        front = self.front(context)
        task = await self._guard(front.get(params.id))
        return _task(task, history)

    async def on_list_tasks(self, params: pb.ListTasksRequest, context: ServerCallContext) -> pb.ListTasksResponse:
        front = self.front(context)
        size = params.page_size if params.HasField("page_size") else DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE:
            raise InvalidParamsError(f"page_size must be 1 to {MAX_PAGE}", data={"field": "page_size"})
        history = _history_length(params)
        _check_state_filter(params.status, context)
        after = _page_key(params.page_token) if params.page_token else None
        filters = {
            "context_id": params.context_id or None,
            "state": a2a.state_from_wire(pb.TaskState.Name(params.status)) if params.status else None,
            "updated_after": params.status_timestamp_after.ToDatetime(tzinfo=timezone.utc) if params.HasField("status_timestamp_after") else None,
            "after": after,
            "limit": size,
        }  # fmt: skip
        rows, total = await self._guard(front.list(**filters))
        response = pb.ListTasksResponse(
            tasks=[_task(r, history, params.include_artifacts) for r in rows], page_size=size, total_size=total
        )
        if len(rows) == size and total > size:
            last = rows[-1]
            response.next_page_token = encode_cursor(f"{int(last['updated_at'].timestamp() * 1_000_000)}_{last['task_id']}")
        return response

    async def on_cancel_task(self, params: pb.CancelTaskRequest, context: ServerCallContext) -> pb.Task | None:
        front = self.front(context)
        return _task(await self._guard(front.cancel(params.id)))

    async def on_subscribe_to_task(self, params: pb.SubscribeToTaskRequest, context: ServerCallContext) -> AsyncGenerator[A2AEvent]:
        front = self.front(context)
        task = await self._guard(front.get(params.id))
        if task["state"] in a2a.TERMINAL:
            raise UnsupportedOperationError(f"task {params.id} is {task['state']}; there is nothing left to stream")
        async for event in self._from_snapshot(front, params.id, a2a.TERMINAL):
            yield event

    # -- push notifications --------------------------------------------------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: pb.TaskPushNotificationConfig, context: ServerCallContext
    ) -> pb.TaskPushNotificationConfig:
        with a2a_errors():
            front = self.front(context)
            await front.get(params.task_id)
            front.require(Scope.tasks_write, "push notification config set")
            push = await a2a_push.checked(front.hub, MessageToDict(params), front.caller)
            return _push_config(await a2a_push.put(front.hub, params.task_id, push, from_start=False))

    async def on_get_task_push_notification_config(
        self, params: pb.GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> pb.TaskPushNotificationConfig:
        with a2a_errors():
            front = self.front(context)
            await front.get(params.task_id)
            if not params.id:  # A2A 0.3 asks for "the task's config" by the task's id alone: its first one
                configs = await a2a_push.of_task(front.hub, params.task_id)
                if not configs:
                    raise InvalidParamsError(f"task {params.task_id} has no push config", data={"field": "id"})
                return _push_config(configs[0])
            try:
                return _push_config(await a2a_push.get(front.hub, params.task_id, params.id))
            except NotFound as exc:
                raise InvalidParamsError(exc.message, data=exc.details) from None

    async def on_list_task_push_notification_configs(
        self, params: pb.ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> pb.ListTaskPushNotificationConfigsResponse:
        with a2a_errors():
            front = self.front(context)
            await front.get(params.task_id)
            configs = await a2a_push.of_task(front.hub, params.task_id)
            return pb.ListTaskPushNotificationConfigsResponse(configs=[_push_config(c) for c in configs])

    async def on_delete_task_push_notification_config(
        self, params: pb.DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        with a2a_errors():
            front = self.front(context)
            await front.get(params.task_id)
            front.require(Scope.tasks_write, "push notification config delete")
            await a2a_push.remove(front.hub, params.task_id, params.id)

    async def on_get_extended_agent_card(self, params: pb.GetExtendedAgentCardRequest, context: ServerCallContext) -> pb.AgentCard:
        raise UnsupportedOperationError("this agent has no extended card (capabilities.extendedAgentCard is false)")


def _push_config(config: dict[str, Any]) -> pb.TaskPushNotificationConfig:
    return ParseDict(config, pb.TaskPushNotificationConfig())


def _check_state_filter(status: int, context: ServerCallContext) -> None:
    """A status filter names a task state: a number no state has (gRPC), or a word the SDK's parsing dropped
    (HTTP+JSON's query string), is InvalidParams, not an unfiltered list."""
    given = context.state.get("query", {}).get("status")
    if status not in pb.TaskState.values() or (given and not status):
        raise InvalidParamsError(f"status must be a task state such as TASK_STATE_WORKING, not {given or status!r}", data={"field": "status"})


def _page_key(token: str) -> tuple[datetime, str]:
    try:
        micros, task_id = (decode_cursor(token) or "").split("_", 1)
        return datetime.fromtimestamp(int(micros) / 1_000_000, tz=timezone.utc), task_id
    except (ValueError, InvalidArgument):
        raise InvalidParamsError("page_token is not one this agent issued", data={"field": "page_token"}) from None


__all__ = ["AgoraRequestHandler"]
