"""The catalog as an MCP server (official ``mcp`` SDK, low-level ``Server``): every tool, in catalog order.

The handlers only translate: ``tools/list`` renders catalog tools, ``tools/call`` goes through ``Catalog.call``
with the principal the door authenticated, so an agent's MCP call acts as that agent with its rights. A tool's
failure is an ``isError`` result carrying the error code and message as text (the model can read and correct it)
and the whole error body in ``_meta["agora/error"]`` (not as structured content: that would have to fit the tool's
output schema, and clients such as MCP Inspector refuse a result whose structured content does not); an unknown
tool is a protocol error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import x_mcp_header_map

from agora import __version__
from agora.catalog import Catalog, Tool
from agora.catalog.tool import EXT_PREFIX
from agora.core import progress
from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.ids import new_id
from agora_sdk.errors import AgoraError
from agora_sdk.wire.gateway import ExtResult

from . import prompts, resources, tasks
from .changes import ToolListChanges
from .results import failure, output_result, result
from .legacy_tasks import LegacyTasks
from .toolsets import Toolsets

if TYPE_CHECKING:
    from .extension import McpExtension

INSTRUCTIONS = (
    "Agora is a hub where software agents find each other, exchange messages and hand out tasks. Every tool is "
    "named agora.{category}.{action}. Start with agora.agents.register (or act as the agent whose key you hold), "
    "agora.query.agents to find agents by capability, agora.messaging.send and agora.task.assign to work with them."
)


def mcp_tool(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.name.split(".", 1)[1].replace(".", " ").replace("_", " "),
        description=tool.description,
        input_schema=tool.input_schema(),
        output_schema=None if tool.category == "ext" else tool.output_schema(),  # an upstream's result is its own
        execution=types.ToolExecution(task_support="optional") if tasks.support(tool) else None,  # 2025-11-25 only
        annotations=types.ToolAnnotations(
            read_only_hint=tool.read_only,
            destructive_hint=tool.action in ("deregister", "cancel", "revoke", "override"),
            open_world_hint=False,
        ),
    )


class AgoraServer(Server[Any]):
    """The SDK server, declaring ``tools.listChanged`` to 2025-11-25 clients too (the gateway's tools come and go)."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> InitializationOptions:
        return super().create_initialization_options(notification_options or NotificationOptions(tools_changed=True), *args, **kwargs)


def agora_server(
    handlers: Any, input_schema: Callable[[str], Mapping[str, Any] | None] | None = None, **more: Any
) -> Server[Any]:
    """The SDK server named Agora whose tools, resources and prompts are answered by ``handlers``' methods.

    ``input_schema`` answers the SDK's per-call schema lookup (for ``Mcp-Param-*`` header checks); without it the
    SDK runs a whole ``tools/list`` before every call. ``more`` adds other ``Server`` handlers.
    """
    return AgoraServer(
        "agora",
        version=__version__,
        title="Agora",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=input_schema,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_resource_templates,
        on_read_resource=handlers.read_resource,
        on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt,
        **more,
    )


class CatalogServer:
    """Builds the SDK ``Server`` whose handlers read the hub, the caller and its toolsets from each request."""

    def __init__(self, catalog: Catalog, extension: McpExtension | None = None):
        self.catalog = catalog
        self.extension = extension
        self.changes = ToolListChanges(lambda ctx: _caller(ctx)[1])  # list_changed, per tenant, for both revisions
        more = extension.handlers() if extension else {}
        self.server = agora_server(self, self.input_schema, on_subscriptions_listen=self.changes.listen, **more)
        self.tasks = tasks.McpTasks(extension, _caller, output_result)
        self.legacy_tasks = LegacyTasks(self.tasks, self.start_task)
        self.tasks.install(self.server, self.legacy_tasks)
        self.server.middleware.append(self.legacy_tasks)  # 2025-11-25 task-augmented calls, and their capability
        # A multi-round-trip call's requestState comes back from the client: sealed, so it cannot be forged.
        self.server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience="agora"))
        self._listings: dict[Toolsets, list[types.Tool]] = {}
        self._header_schemas = {t.name: t.input_schema() for t in catalog if x_mcp_header_map(t.input_schema())}

    def visible(self, toolsets: Toolsets) -> Iterable[Tool]:
        return (tool for tool in self.catalog if toolsets.includes(tool))

    def input_schema(self, name: str) -> dict[str, Any] | None:
        """The schema the SDK checks a call's ``Mcp-Param-*`` headers against, for tools that declare such headers.

        No catalog tool does (this is checked at start), and walking a schema that declares none finds nothing to
        check, so None skips the walk on every call; an imported tool's headers are its upstream's to check.
        """
        if self.extension and self.extension.has_tool(name):
            return self.extension.input_schema(name)
        return self._header_schemas.get(name)

    async def list_tools(self, ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        hub, principal, toolsets = _caller(ctx)
        self.changes.remember(ctx, principal, toolsets)
        return await self.tools_listing(hub, principal, toolsets)

    async def tools_listing(self, hub: Hub, principal: Principal, toolsets: Toolsets) -> types.ListToolsResult:
        """What ``tools/list`` answers this caller (with the toolsets it asked for)."""
        if toolsets not in self._listings:  # the built-in catalog does not change while the hub runs
            self._listings[toolsets] = [mcp_tool(t) for t in self.visible(toolsets)] + (self.extension.tools if self.extension else [])
        imported = [mcp_tool(t) for t in self._imported(hub, principal, toolsets)]
        return types.ListToolsResult(tools=self._listings[toolsets] + imported)

    @staticmethod
    def _imported(hub: Hub, principal: Principal, toolsets: Toolsets) -> list[Tool]:
        """Tools of the external MCP servers this caller sees (the gateway), when the toolsets include them. A down
        server's tools stay listed (discovery says they are unavailable): a call answers when to try again."""
        if hub.gateway is None:
            return []
        return [t for t in hub.gateway.tools_for(principal) if toolsets.includes(t)]

    def offered(self, hub: Hub, principal: Principal, toolsets: Toolsets, name: str) -> Tool | None:
        """The tool ``name`` if ``tools/list`` shows it to this caller."""
        if name.startswith(EXT_PREFIX):
            return next((t for t in self._imported(hub, principal, toolsets) if t.name == name), None)
        tool = self.catalog.get(name) if name in self.catalog else None
        return tool if tool is not None and toolsets.includes(tool) else None

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult | dict[str, Any]:
        hub, principal, toolsets = _caller(ctx)
        if self.extension and self.extension.has_tool(params.name):
            extension, bus = self.extension, self.changes.bus(principal.tenant_scope())
            if tasks.as_task(ctx, extension.task_support(params)):
                return tasks.created(await self.tasks.start_extension(ctx, params, lambda round_params: extension.call_tool(ctx, round_params, bus)))
            return await extension.call_tool(ctx, params, bus)
        offered = self.offered(hub, principal, toolsets, params.name)
        if offered is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool '{params.name}'")
        relay = progress.reporter.set(ctx.session.report_progress)  # an imported tool passes its upstream's on
        try:
            if tasks.as_task(ctx, tasks.support(offered)):
                return tasks.created(await self.tasks.start(ctx, params))
            return await self.run_call(hub, principal, params.name, params.arguments or {}, _request_id(ctx))
        except AgoraError as exc:  # the task was refused
            return failure(exc)
        finally:
            progress.reporter.reset(relay)

    @staticmethod
    async def run_call(hub: Hub, principal: Principal, name: str, arguments: dict[str, Any], request_id: str) -> types.CallToolResult:
        """The tool's answer as a CallToolResult; a refusal or failure of the tool is one too (``isError``)."""
        try:
            _, output, _ = await hub.catalog.call(hub, principal, name, arguments, request_id)
        except AgoraError as exc:
            return failure(exc)
        if isinstance(output, ExtResult):  # an upstream MCP server's own result, passed on as it came
            return types.CallToolResult.model_validate(
                {"content": output.content, "structuredContent": output.structured_content, "isError": output.is_error}
            )
        return result(output.model_dump(mode="json", by_alias=True))

    async def start_task(self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> dict[str, Any]:
        """A 2025-11-25 task-augmented call: the task's row; -32601 for a tool that takes no tasks, -32602 for a call
        refused before it ran (there is no CallToolResult to carry the refusal in)."""
        hub, principal, toolsets = _caller(ctx)
        if self.extension and self.extension.has_tool(params.name):
            extension, bus = self.extension, self.changes.bus(principal.tenant_scope())
            if extension.task_support(params) not in ("optional", "required"):
                raise _no_tasks(params.name)
            return await self.tasks.start_extension(ctx, params, lambda round_params: extension.call_tool(ctx, round_params, bus))
        offered = self.offered(hub, principal, toolsets, params.name)
        if offered is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool '{params.name}'")
        if tasks.support(offered) is None:
            raise _no_tasks(params.name)
        try:
            return await self.tasks.start(ctx, params)
        except AgoraError as exc:
            raise MCPError(types.INVALID_PARAMS, f"{exc.code}: {exc.message}", data=exc.to_body()) from None

    async def list_resources(self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[resources.SERVICES, *(self.extension.resources if self.extension else [])])

    async def list_resource_templates(
        self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates = [t.listing() for t in resources.TEMPLATES] + (self.extension.templates if self.extension else [])
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        if self.extension and self.extension.owns(str(params.uri)):
            return self.extension.read_resource(str(params.uri))
        hub, principal, _ = _caller(ctx)
        return await resources.read(hub, principal, str(params.uri))

    async def list_prompts(self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[p.listing() for p in prompts.PROMPTS] + (self.extension.prompts if self.extension else []))

    async def get_prompt(
        self, _ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        if self.extension and self.extension.has_prompt(params.name):
            return self.extension.get_prompt(params)
        return prompts.render(params.name, params.arguments)


def _no_tasks(name: str) -> MCPError:
    return MCPError(types.METHOD_NOT_FOUND, f"tool '{name}' does not run as a task (its execution.taskSupport is forbidden)")


def _request_id(ctx: ServerRequestContext[Any]) -> str:
    """The HTTP request's id (the edge gave it one, and logs it), for the call made for it."""
    state = ctx.request.scope.get("state", {}) if ctx.request is not None else {}
    return state.get("request_id") or new_id("req")


def _caller(ctx: ServerRequestContext[Any]) -> tuple[Hub, Principal, Toolsets]:
    """What the door put in the request's scope: the hub, the authenticated principal and the toolsets asked for."""
    if ctx.request is None:
        raise MCPError(types.INTERNAL_ERROR, "no HTTP request behind this MCP message")
    scope = ctx.request.scope
    return scope["app"].state.hub, scope["agora.principal"], scope["agora.toolsets"]
