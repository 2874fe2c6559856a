"""Routes generated from the catalog, resource-style aliases, and the operational endpoints."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, time, timezone
from email.utils import format_datetime
from typing import Awaitable, TypeVar
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from agora.catalog import Catalog, Tool
from agora.catalog.tool import EXT_PREFIX
from agora.core.auth import Principal
from agora.core.context import Hub
from agora.observability import metrics
from agora.store import migrate
from agora.store.ops import agents as agent_ops
from agora_sdk.errors import (
    AgoraError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

from . import acp, bus, payments, sse
from .errors import error_response
from .dispatch import Endpoint
from .guard import authenticate, challenge, guarded
from .inputs import query_input, read_json_body
from .openapi import build_openapi, operation_docs

log = logging.getLogger("agora.rest")
T = TypeVar("T")
# Swagger UI's page loads its script and styles from jsDelivr and runs one inline script; nothing else.
SWAGGER_UI_POLICY = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; style-src https://cdn.jsdelivr.net "
    "'unsafe-inline'; img-src https://fastapi.tiangolo.com data:; connect-src 'self'; frame-ancestors 'none'"
)
CLIENT_CLOSED_REQUEST = 499  # nginx's code for a request whose client hung up before the answer
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_text(text: str) -> str:
    """``text`` as a header value: printable ASCII as it is, anything else (and ``%``) percent-encoded UTF-8 — a
    header is Latin-1 on the wire, and a warning naming a step "Ωmega" must not turn a done call into a 500."""
    return quote(text, safe=_HEADER_SAFE)


@dataclass(frozen=True)
class Alias:
    """A resource-style path for a tool (seed 000's ``POST /agents/register``, ``GET /agents/{id}`` …)."""

    method: str
    path: str
    tool: str
    path_fields: tuple[str, ...] = ()


ALIASES = (
    Alias("POST", "/agents/register", "agora.agents.register"),
    Alias("GET", "/agents", "agora.agents.list"),
    Alias("GET", "/agents/{agent}", "agora.agents.get", ("agent",)),
    Alias("GET", "/agents/{agent}/status", "agora.agents.get", ("agent",)),
    Alias("POST", "/agents/{agent}/heartbeat", "agora.agents.heartbeat", ("agent",)),
    Alias("PATCH", "/agents/{agent}", "agora.agents.update", ("agent",)),
    Alias("DELETE", "/agents/{agent}", "agora.agents.deregister", ("agent",)),
    Alias("GET", "/discovery/list", "agora.discovery.list"),
    Alias("GET", "/discovery/schema/{name}", "agora.discovery.schema", ("name",)),
    # seed 003's marketplace API
    Alias("GET", "/marketplace/agents", "agora.marketplace.discover"),
    Alias("POST", "/marketplace/agents", "agora.marketplace.publish"),
    Alias("DELETE", "/marketplace/agents/{listing}", "agora.marketplace.unlist", ("listing",)),
    Alias("GET", "/marketplace/agents/{listing}/reviews", "agora.reviews.list", ("listing",)),
    Alias("POST", "/marketplace/agents/{listing}/reviews", "agora.reviews.write", ("listing",)),
    Alias("POST", "/marketplace/instances", "agora.marketplace.create_instance"),
    Alias("GET", "/marketplace/instances", "agora.marketplace.list_instances"),
    Alias("GET", "/marketplace/instances/{instance_id}", "agora.marketplace.get_instance", ("instance_id",)),
    Alias("POST", "/marketplace/instances/{instance_id}/pause", "agora.marketplace.pause_instance", ("instance_id",)),
    Alias("POST", "/marketplace/instances/{instance_id}/resume", "agora.marketplace.resume_instance", ("instance_id",)),
    Alias("POST", "/marketplace/instances/{instance_id}/execute", "agora.marketplace.execute", ("instance_id",)),
    Alias("DELETE", "/marketplace/instances/{instance_id}", "agora.marketplace.terminate_instance", ("instance_id",)),
    Alias("GET", "/marketplace/dashboard", "agora.marketplace.dashboard"),
    # seed 001's marketplace chat
    Alias("POST", "/marketplace/chat", "agora.marketplace.chat"),
)


def _deprecation_headers(tool: Tool) -> dict[str, str]:
    if tool.deprecation_date is None:
        return {}
    deprecated_at = datetime.combine(tool.deprecation_date, time(), timezone.utc)
    headers = {
        "Deprecation": f"@{int(deprecated_at.timestamp())}",
        "Warning": f'299 agora "{tool.name} is deprecated; use {tool.replacement}"',
        "Link": f'</{(tool.replacement or "").split("@")[0].replace(".", "/")}>; rel="successor-version"',
    }
    if tool.sunset_date:
        headers["Sunset"] = format_datetime(datetime.combine(tool.sunset_date, time(), timezone.utc), usegmt=True)
    return headers


async def _unless_client_leaves(request: Request, call: Awaitable[T]) -> T | None:
    """Run a long poll (``wait``) only while its client is there: a claim or receive answered to a closed
    connection would hand out work nobody gets, stuck until its lease or visibility timeout ends."""
    work = asyncio.ensure_future(call)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if work.done():
        return work.result()
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    return None


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read: only a disconnect is left to come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def tool_endpoint(tool: Tool, path_fields: tuple[str, ...] = ()) -> Endpoint:
    headers = _deprecation_headers(tool)

    async def run(request: Request, hub: Hub, principal: Principal) -> Response:
        if request.method == "GET":
            args = query_input(request, tool.input_model)
        else:
            args = await read_json_body(request)
        if request.method == "DELETE":  # OpenAPI gives a DELETE's input as query parameters
            args = {**query_input(request, tool.input_model), **args}
        for name in path_fields:
            value = request.path_params[name]
            if args.setdefault(name, value) != value:
                raise InvalidArgument(f"'{name}' is given in the path and differs in the input", details={"field": name})
        if tool.streams_events and sse.asked_for(request):
            return await sse.answer(hub, principal, tool, args, request.scope["state"]["request_id"])
        call = hub.catalog.call(hub, principal, tool.name, args, request.scope["state"]["request_id"])
        if isinstance(args, dict) and args.get("wait"):
            outcome = await _unless_client_leaves(request, call)
            if outcome is None:
                return Response(status_code=CLIENT_CLOSED_REQUEST)
        else:
            outcome = await call
        _, result, ctx = outcome
        extra = dict(headers)
        if ctx.warnings:
            extra["Agora-Warnings"] = header_text(" | ".join(ctx.warnings))
        status = 202 if ctx.accepted else 200
        return Response(result.model_dump_json(by_alias=True), status_code=status, media_type="application/json", headers=extra)

    async def endpoint(request: Request) -> Response:
        return await guarded(request, tool.name, lambda hub, principal: run(request, hub, principal), headers)

    endpoint.__name__ = tool.name.replace(".", "_")
    return endpoint


async def imported_tool(request: Request) -> Response:
    """``POST /ext/<server>/<tool>``: a tool imported from an external MCP server (``ext.<server>.<tool>``)."""
    name = f"{EXT_PREFIX}{request.path_params['server']}.{request.path_params['tool'].replace('/', '.')}"

    async def run(hub: Hub, principal: Principal) -> Response:
        args = await read_json_body(request)
        _, result, _ = await hub.catalog.call(hub, principal, name, args, request.scope["state"]["request_id"])
        return Response(result.model_dump_json(by_alias=True), media_type="application/json")

    return await guarded(request, name, run)


async def unknown_tool(request: Request) -> Response:
    try:
        await authenticate(request)
    except Unauthenticated as exc:
        return challenge(exc)
    name = "agora." + request.path_params["rest"].strip("/").replace("/", ".")
    try:
        tool = request.app.state.hub.catalog.get(name)
    except NotFound:
        return error_response(NotFound(f"unknown tool '{name}'; agora.discovery.list lists the tools", details={"tool": name}))
    if request.url.path.rstrip("/") != tool.http_path:  # the tool's name written as a path: a path it is not at
        message = f"no endpoint {request.url.path}; {name} is served at {tool.http_path}"
        return error_response(NotFound(message, details={"tool": name, "path": tool.http_path}))
    allowed = ", ".join(tool.http_methods)
    return error_response(
        MethodNotAllowed(f"{name} takes {allowed}, not {request.method}", details={"allowed": allowed}),
        headers={"Allow": allowed},
    )


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    hub: Hub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        return error_response(Unavailable("the hub is starting"))
    if hub.stopping:
        return error_response(Unavailable("the hub is stopping"))
    try:
        revision = await hub.store.migration_revision()
    except Exception as exc:  # noqa: BLE001 - readiness reports the failure
        return error_response(Unavailable("database unreachable", details={"reason": str(exc)[:300]}))
    schema = migrate.status_of(revision)
    if not schema.state.serves:  # behind; a schema a newer release migrated (during a rolling upgrade) still serves
        return error_response(
            Unavailable("database schema is not current", details={"revision": revision, "head": schema.head})
        )
    bus = "up" if hub.notifier.healthy() else "down"  # down: still ready; wake-ups between replicas fall back to polling
    return JSONResponse({"status": "ready", "database": hub.store.dialect, "revision": revision, "schema": schema.state.value, "bus": bus})


async def metrics_endpoint(request: Request) -> Response:
    try:
        principal = await authenticate(request)
        if not principal.is_admin:  # hub-wide counts: a tenant (even its admin) never counts other tenants' agents
            raise PermissionDenied("/metrics is reserved to the hub administrator (authority 255)")
    except Unauthenticated as exc:
        return challenge(exc)
    except AgoraError as exc:
        return error_response(exc)
    hub: Hub = request.app.state.hub
    counts = await hub.store.read(agent_ops.counts, None)
    return Response(metrics.render(counts["by_status"], hub.store.writes_in_flight), media_type="text/plain; version=0.0.4")


def _docs_endpoints(app: FastAPI, catalog: Catalog, public: bool) -> None:
    async def guarded(request: Request) -> Principal | Response | None:
        if public:
            return None
        try:
            return await authenticate(request)
        except Unauthenticated as exc:
            return challenge(exc)

    async def openapi_json(request: Request) -> Response:
        denied = await guarded(request)
        if isinstance(denied, Response):
            return denied
        return JSONResponse(app.openapi())

    async def docs(request: Request) -> Response:
        denied = await guarded(request)
        if isinstance(denied, Response):
            return denied
        html: HTMLResponse = get_swagger_ui_html(openapi_url="/openapi.json", title="Agora API")
        html.headers["Content-Security-Policy"] = SWAGGER_UI_POLICY
        return html

    app.add_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.openapi = lambda: build_openapi(app, catalog)  # type: ignore[method-assign]


def mount(app: FastAPI, catalog: Catalog, public_docs: bool) -> dict[tuple[str, str], Endpoint]:
    """Add the REST door's routes; returns the catalog's paths by method and path, for ``ToolDispatch``."""
    endpoints: dict[tuple[str, str], Endpoint] = {}
    for tool in catalog:
        endpoint = tool_endpoint(tool)
        app.add_api_route(tool.http_path, endpoint, methods=tool.http_methods, name=tool.name, **operation_docs(tool))
        endpoints.update({(method, tool.http_path): endpoint for method in tool.http_methods})
    for alias in ALIASES:
        tool = catalog.get(alias.tool)
        app.add_api_route(
            alias.path,
            tool_endpoint(tool, alias.path_fields),
            methods=[alias.method],
            name=f"{tool.name} ({alias.method} {alias.path})",
            **operation_docs(tool, alias.method, alias.path_fields),
        )
    acp.mount(app)
    bus.mount(app)
    payments.mount(app)
    app.add_route("/ext/{server}/{tool:path}", imported_tool, methods=["POST"], include_in_schema=False)
    app.add_route("/agora/{rest:path}", unknown_tool, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    app.add_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_route("/ready", ready, methods=["GET"], include_in_schema=False)
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    _docs_endpoints(app, catalog, public_docs)
    return endpoints

