"""The A2A gRPC binding: the SDK's gRPC servicers (1.0, and 0.3 through its compatibility layer) on a port of their
own (``--a2a-grpc-port``), for every agent's A2A front and the hub's directory.

One endpoint serves many agents the way A2A has it: a request's ``tenant`` names the agent (its id or name; the
agent's card declares it on its gRPC interface, and the SDK's client sends it). A request without one (0.3 has no
tenant, and some clients ignore it) goes to ``--a2a-default-agent``, or else to the hub's directory. Callers are
admitted exactly as over HTTP (``access.front_of``): ``authorization: Bearer <key>`` metadata, public fronts open to
anonymous callers rate-limited per address; a refusal is the gRPC status of the HTTP one. Each call writes one line
to the request log.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

import a2a.types.a2a_pb2_grpc as a2a_grpc
from a2a.compat.v0_3 import a2a_v0_3_pb2_grpc as a2a_v03_grpc
from a2a.compat.v0_3.grpc_handler import CompatGrpcHandler
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.grpc_handler import GrpcHandler
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2 as pb
from a2a.utils.grpc_status import status_to_grpc
from agora.config import Settings
from agora.core.context import Hub
from agora.core.ids import new_id
from agora.limits import client_address
from agora_sdk.errors import AgoraError

from .access import front_of, principal_of
from .directory import Caller, DirectoryHandler
from .handler import AgoraRequestHandler

log = logging.getLogger("agora.request")

STATUS = {
    401: grpc.StatusCode.UNAUTHENTICATED, 404: grpc.StatusCode.NOT_FOUND, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE, 507: grpc.StatusCode.UNAVAILABLE,  # (a busy or full store: try again later)
}  # fmt: skip
PEER = re.compile(r"^ipv[46]:\[?(?P<host>[^\]]+?)\]?:\d+$")  # grpc's peer(): ipv4:1.2.3.4:5 or ipv6:[::1]:5


def _source(context: grpc.aio.ServicerContext) -> str:
    match = PEER.match(context.peer() or "")
    return client_address(match["host"] if match else None)


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name.lower() == key:
            return value if isinstance(value, str) else value.decode()
    return None


class Routed(RequestHandler):
    """Each call goes to the front its tenant names, or the directory; the caller is admitted first."""

    def __init__(self, hub: Callable[[], Hub], settings: Settings):
        self.hub = hub
        self.agents = AgoraRequestHandler(settings.a2a_blocking_timeout)
        self.directory = DirectoryHandler()
        self.default_agent = settings.a2a_default_agent
        self.base = settings.public_url or f"http://{settings.host}:{settings.port}"

    async def _admit(self, context: ServerCallContext) -> RequestHandler:
        grpc_context: grpc.aio.ServicerContext = context.state["grpc_context"]
        hub, ref = self.hub(), context.tenant or self.default_agent
        try:
            principal = await principal_of(hub, _metadata(grpc_context, "authorization"), _source(grpc_context), f"agent:{ref or 'directory'}")
            if ref:
                context.state["front"] = await front_of(hub, ref, principal)
                return self.agents
        except AgoraError as exc:
            wait = (exc.details or {}).get("retry_after_seconds")
            trailing = (("retry-after", str(max(1, round(wait)))),) if isinstance(wait, (int, float)) else ()
            await grpc_context.abort(STATUS.get(exc.status, grpc.StatusCode.FAILED_PRECONDITION), exc.message, trailing)
        context.state["front"] = Caller(hub, principal, self.base)
        return self.directory

    async def _unary(self, name: str, params: Any, context: ServerCallContext) -> Any:
        handler = await self._admit(context)
        return await getattr(handler, name)(params, context)

    async def _stream(self, name: str, params: Any, context: ServerCallContext) -> AsyncIterator[Any]:
        handler = await self._admit(context)
        async for event in getattr(handler, name)(params, context):
            yield event

    def on_get_task(self, params: pb.GetTaskRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_get_task", params, context)

    def on_list_tasks(self, params: pb.ListTasksRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_list_tasks", params, context)

    def on_cancel_task(self, params: pb.CancelTaskRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_cancel_task", params, context)

    def on_message_send(self, params: pb.SendMessageRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_message_send", params, context)

    def on_message_send_stream(self, params: pb.SendMessageRequest, context: ServerCallContext) -> AsyncIterator[Any]:
        return self._stream("on_message_send_stream", params, context)

    def on_subscribe_to_task(self, params: pb.SubscribeToTaskRequest, context: ServerCallContext) -> AsyncIterator[Any]:
        return self._stream("on_subscribe_to_task", params, context)

    def on_create_task_push_notification_config(self, params: pb.TaskPushNotificationConfig, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_create_task_push_notification_config", params, context)

    def on_get_task_push_notification_config(self, params: pb.GetTaskPushNotificationConfigRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_get_task_push_notification_config", params, context)

    def on_list_task_push_notification_configs(self, params: pb.ListTaskPushNotificationConfigsRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_list_task_push_notification_configs", params, context)

    def on_delete_task_push_notification_config(self, params: pb.DeleteTaskPushNotificationConfigRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_delete_task_push_notification_config", params, context)

    def on_get_extended_agent_card(self, params: pb.GetExtendedAgentCardRequest, context: ServerCallContext) -> Awaitable[Any]:
        return self._unary("on_get_extended_agent_card", params, context)


# The A2A-Version values each service takes (an empty one is 0.3, which the 1.0 SDK serves as well).
SERVED = {"/lf.a2a.v1.A2AService/": {"", "1", "1.0"}, "/a2a.v1.A2AService/": {"", "0.3", "0.3.0"}}


class Calls(grpc.aio.ServerInterceptor):
    """Around every call: one line in the request log, as the HTTP edge writes for every request; and an
    ``a2a-version`` the service does not speak refused with VersionNotSupported (UNIMPLEMENTED), before any work."""

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        version = next((str(v).strip() for k, v in details.invocation_metadata or () if k.lower() == "a2a-version"), "")
        spoken = next((versions for prefix, versions in SERVED.items() if method.startswith(prefix)), {version})

        async def check(context: grpc.aio.ServicerContext) -> None:
            if version not in spoken:
                await _refuse_version(context, version)

        def logged(behaviour: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started, failed = time.perf_counter(), True
                try:
                    await check(context)
                    answer = await behaviour(request, context)
                    failed = False
                    return answer
                finally:
                    _log(method, context, started, failed)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                started, failed = time.perf_counter(), True
                try:
                    await check(context)
                    async for item in behaviour(request, context):
                        yield item
                    failed = False
                finally:
                    _log(method, context, started, failed)

            return stream if streaming else unary

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                logged(handler.unary_unary, False), handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                logged(handler.unary_stream, True), handler.request_deserializer, handler.response_serializer
            )
        return handler


async def _refuse_version(context: grpc.aio.ServicerContext, version: str) -> None:
    """Abort with VersionNotSupported as the A2A gRPC binding maps it: UNIMPLEMENTED, with its ErrorInfo."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="VERSION_NOT_SUPPORTED", domain="a2a-protocol.org"))
    message = f"A2A version '{version}' is not served here; this endpoint speaks 1.0 and 0.3"
    status = status_pb2.Status(code=grpc.StatusCode.UNIMPLEMENTED.value[0], message=message, details=[info])
    await context.abort_with_status(status_to_grpc(status))


def _log(method: str, context: grpc.aio.ServicerContext, started: float, failed: bool) -> None:
    """The call's line; a call that raised without a status set is UNKNOWN, as gRPC answers it."""
    if log.isEnabledFor(logging.INFO):
        code = context.code()
        status = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN" if failed else "OK"
        log.info("request", extra={
            "request_id": new_id("req"), "method": "GRPC", "path": method, "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3), "tool": "a2a.grpc",
        })  # fmt: skip


async def start(hub: Callable[[], Hub], settings: Settings) -> grpc.aio.Server:
    """The gRPC server on ``settings.a2a_grpc_port``, serving A2A 1.0 and 0.3."""
    server = grpc.aio.server(interceptors=[Calls()])
    routed = Routed(hub, settings)
    a2a_grpc.add_A2AServiceServicer_to_server(GrpcHandler(routed), server)
    a2a_v03_grpc.add_A2AServiceServicer_to_server(CompatGrpcHandler(routed), server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    server.add_insecure_port(f"{host}:{settings.a2a_grpc_port}")
    await server.start()
    return server
