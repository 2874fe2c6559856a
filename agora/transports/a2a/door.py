"""The A2A door: every agent with an A2A front at ``/a2a/agents/{agent id or name}``, on the official ``a2a-sdk``.

The hub itself is an A2A agent too, at ``/a2a`` with its card at ``/a2a/.well-known/agent-card.json`` and at the
hub's root (unless ``--a2a-default-agent`` names an agent whose card the root shows): a directory that finds and
describes the agents it hosts (``directory.py``). JSON-RPC is served at each agent's URL (with or without a
trailing slash), HTTP+JSON under it (``/message:send``,
``/tasks/{id}``, …), both in A2A 1.0 and, for requests without ``A2A-Version: 1.0``, in 0.3 through the SDK's
compatibility layer; the agent's card is at ``…/.well-known/agent-card.json``. The SDK's dispatchers parse and
answer the protocol; ``access.admit`` decides who reaches which agent first; ``handler.AgoraRequestHandler`` answers
from the A2A service. Errors before the SDK (unknown agent, missing key, rate limit) are answered in the route's own
dialect: a JSON-RPC error object on the JSON-RPC route, the A2A HTTP error shape on the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.request_handlers.response_helpers import build_error_response
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.utils.error_handlers import build_rest_error_payload
from a2a.utils.errors import ContentTypeNotSupportedError
from agora.config import Settings
from agora.core.ids import is_id
from agora.store.ops import agents as agent_ops
from agora.transports.public_url import base_url
from agora.transports.rest.errors import retry_after
from agora_sdk.errors import AgoraError, NotFound, Unauthenticated

from . import cards, fast
from .access import Endpoint, FrontContext, admit, admitted, caller
from .directory import SKILLS, Caller, DirectoryHandler
from .handler import AgoraRequestHandler

PREFIX = "/a2a/agents/{agent}"
DIRECTORY = "/a2a"  # the hub's own A2A agent
JSON_RPC_CODES = {401: -32600, 404: -32001, 429: -32603}  # how a refusal before the SDK reads in JSON-RPC
HTTP_STATUS_NAMES = {401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 507: "UNAVAILABLE"}


def _headers(exc: AgoraError) -> dict[str, str]:
    headers = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="agora"'
    return {**headers, **retry_after(exc)}


def _error_info(exc: AgoraError) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": exc.code.upper(), "domain": "agora", "metadata": {k: str(v) for k, v in (exc.details or {}).items()}}


def jsonrpc_refusal(exc: AgoraError) -> Response:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": JSON_RPC_CODES.get(exc.status, -32603), "message": exc.message, "data": [_error_info(exc)]}}
    return Response(orjson.dumps(body), status_code=exc.status, media_type="application/json", headers=_headers(exc))


def http_refusal(exc: AgoraError) -> Response:
    status = HTTP_STATUS_NAMES.get(exc.status, "FAILED_PRECONDITION")
    body = {"error": {"code": exc.status, "status": status, "message": exc.message, "details": [_error_info(exc)]}}
    return Response(orjson.dumps(body), status_code=exc.status, media_type="application/json", headers=_headers(exc))


A2A_MEDIA_TYPE = "application/a2a+json"
JSON_MEDIA_TYPES = ("application/json", A2A_MEDIA_TYPE)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def json_only(endpoint: Endpoint) -> Endpoint:
    """JSON-RPC takes JSON: another content type is ContentTypeNotSupported (-32005), not a parse error."""

    async def checked(request: Request) -> Response:
        media_type = _media_type(request)
        if media_type not in JSON_MEDIA_TYPES:
            error = ContentTypeNotSupportedError(f"JSON-RPC requests are application/json, not '{media_type or 'none'}'")
            return Response(orjson.dumps(build_error_response(None, error)), media_type="application/json")
        body = await request.body()  # kept by the request: the SDK reads the same bytes
        if b"ListTasks" in body or b"tasks/list" in body:
            request.scope["agora.params"] = _params(body)  # as sent: the SDK's parsing drops a word it does not know
        return await endpoint(request)

    return checked


def _params(body: bytes) -> dict[str, Any]:
    try:
        params = orjson.loads(body).get("params")
    except (orjson.JSONDecodeError, AttributeError):
        return {}
    return params if isinstance(params, dict) else {}


def json_body_only(endpoint: Endpoint) -> Endpoint:
    """An HTTP+JSON request with a body takes a JSON one: another content type is 415 with the A2A error
    (CONTENT_TYPE_NOT_SUPPORTED), where the SDK would read the body as JSON whatever it is labelled. Answers are
    ``application/json`` (the SDK labels them ``application/a2a+json``, which a caller gets if it accepts that)."""

    async def checked(request: Request) -> Response:
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        if has_body and _media_type(request) not in JSON_MEDIA_TYPES:
            error = ContentTypeNotSupportedError(f"HTTP+JSON bodies are application/json, not '{_media_type(request) or 'none'}'")
            payload = build_rest_error_payload(error)
            payload["error"]["code"] = 415
            return Response(orjson.dumps(payload), status_code=415, media_type="application/json")
        response = await endpoint(request)
        if response.headers.get("content-type") == A2A_MEDIA_TYPE and A2A_MEDIA_TYPE not in request.headers.get("accept", ""):
            response.headers["content-type"] = "application/json"  # the binding's type (spec 11.1), unless asked for
        return response

    return checked


def jsonrpc_answers(endpoint: Endpoint) -> Endpoint:
    """Two corrections to the SDK's JSON-RPC answers (JSON-RPC 2.0, sections 5 and 5.1):
    - a success always carries ``result``: the SDK's 0.3 layer drops a null one (a 0.3 push config delete answered
      ``{"jsonrpc": "2.0", "id": …}``);
    - Invalid Request (-32600) is for an envelope that is not a request; when ours is one (``jsonrpc`` "2.0", a
      method name, an id that may be one), what the SDK refused was its params: Invalid params (-32602)."""

    async def answered(request: Request) -> Response:
        response = await endpoint(request)
        body = getattr(response, "body", None)  # a stream has none
        if not isinstance(body, bytes):
            return response
        missing_result = b'"result"' not in body and b'"error"' not in body
        if not missing_result and b"-32600" not in body:
            return response
        answer = orjson.loads(body)
        if not isinstance(answer, dict) or "jsonrpc" not in answer:
            return response
        if missing_result:
            answer["result"] = None
        elif (answer.get("error") or {}).get("code") == -32600 and _is_request(await request.body()):
            answer["error"] = {**answer["error"], "code": -32602, "message": "Invalid params"}
        else:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(orjson.dumps(answer), status_code=response.status_code, headers=headers)

    return answered


def _is_request(body: bytes) -> bool:
    """Whether ``body`` is a well-formed JSON-RPC 2.0 request envelope, whatever its params hold."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(envelope, dict) or envelope.get("jsonrpc") != "2.0" or not isinstance(envelope.get("method"), str):
        return False
    request_id = envelope.get("id")
    return request_id is None or (isinstance(request_id, (str, int)) and not isinstance(request_id, bool))


def _served(
    handler: RequestHandler, prefix: str, admit: Callable[[Request], Awaitable[Any]], fast: Callable[[Endpoint], Endpoint] | None = None
) -> list[BaseRoute]:
    """The SDK's JSON-RPC (at ``prefix``, with or without a trailing slash) and HTTP+JSON routes (under it) for
    ``handler``, 1.0 and 0.3, each behind ``admit``; ``fast`` puts a fast path in front of the JSON-RPC one."""
    context = FrontContext()
    jsonrpc = create_jsonrpc_routes(handler, rpc_url=prefix, context_builder=context, enable_v0_3_compat=True)
    rest = create_rest_routes(handler, context_builder=context, enable_v0_3_compat=True, path_prefix=prefix)
    routes: list[BaseRoute] = []
    for route in jsonrpc:
        assert isinstance(route, Route)
        endpoint = route.endpoint if fast is None else fast(route.endpoint)
        endpoint = admitted(json_only(jsonrpc_answers(endpoint)), admit, jsonrpc_refusal)
        routes += [Route(route.path, endpoint, methods=["POST"]), Route(route.path + "/", endpoint, methods=["POST"])]
    for route in rest:
        if isinstance(route, Mount):
            continue  # the SDK's /{tenant} mount would swallow every path after it; Agora has no A2A tenants
        assert isinstance(route, Route)
        routes.append(Route(route.path, admitted(json_body_only(route.endpoint), admit, http_refusal), methods=list(route.methods or [])))
    return routes


class A2ADoor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.handler = AgoraRequestHandler(settings.a2a_blocking_timeout)
        self.directory = DirectoryHandler()
        self.grpc = cards.Grpc(settings.a2a_grpc_port, settings.a2a_default_agent) if settings.a2a_grpc_port else None

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for card in ("/.well-known/agent-card.json", cards.LEGACY_CARD):  # 1.0 (0.3 on request), and 0.3
            routes += [
                Route(f"{PREFIX}{card}", self.agent_card, methods=["GET"]),
                Route(card, self.root_card, methods=["GET"]),
                Route(f"{DIRECTORY}{card}", self.hub_card, methods=["GET"]),  # beside its endpoint too
            ]
        fast_path = self.settings.a2a_fast_path and not self.settings.opentelemetry
        routes += _served(self.handler, PREFIX, admit, (lambda sdk: fast.served(sdk, self.handler)) if fast_path else None)
        routes += _served(self.directory, DIRECTORY, self.directory_caller)
        return routes

    async def directory_caller(self, request: Request) -> Caller:
        principal = await caller(request, "directory")
        return Caller(request.app.state.hub, principal, base_url(request, self.settings.public_url))

    async def hub_card(self, request: Request) -> Response:
        request.scope["state"]["tool"] = "a2a.card"
        card = cards.hub_card(base_url(request, self.settings.public_url), SKILLS, self.grpc)
        return cards.card_response(request, card, None, self.settings.a2a_strict_cards)

    async def root_card(self, request: Request) -> Response:
        """The card at the hub's root: the default agent's (``--a2a-default-agent``), or else the hub's own."""
        if self.settings.a2a_default_agent is None:
            return await self.hub_card(request)
        return await self._agent_card(request, self.settings.a2a_default_agent, named_by_operator=True)

    async def agent_card(self, request: Request) -> Response:
        """Any agent's card by its id (so a caller learns how to authenticate); by name, a public one's."""
        return await self._agent_card(request, request.path_params["agent"], named_by_operator=False)

    async def _agent_card(self, request: Request, ref: str, named_by_operator: bool) -> Response:
        hub = request.app.state.hub
        request.scope["state"]["tool"] = "a2a.card"
        try:
            agent = await hub.store.read(agent_ops.resolve, None, ref)
        except AgoraError:
            agent = None
        shown = named_by_operator or is_id(ref, "agent") or (agent is not None and (agent["a2a"] or {}).get("access") == "public")
        if agent is None or agent["a2a"] is None or not shown:
            return http_refusal(NotFound(f"no A2A agent '{ref}' here", details={"agent": ref}))
        card = cards.agent_card(agent, base_url(request, self.settings.public_url), self.grpc)
        return cards.card_response(request, card, agent["updated_at"], self.settings.a2a_strict_cards)
