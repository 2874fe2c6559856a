"""agora.discovery.* read the live catalog; agora.query.services reads its stored copy (``services`` table)."""

from __future__ import annotations

import contextlib
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from agora.core.context import CallContext
from agora.store.ops import services as service_ops
from agora_sdk.errors import InvalidArgument, NotFound
from agora_sdk.wire import discovery as d

from ..tool import EXT_PREFIX, Tool


def version_filter(spec: str | None):
    """'1.0.0' matches exactly; '>=1.0,<2' is a range. Returns a predicate over version strings."""
    if not spec:
        return lambda _v: True
    with contextlib.suppress(InvalidVersion):
        exact = Version(spec)
        return lambda v: Version(v) == exact
    try:
        specifier = SpecifierSet(spec)
    except InvalidSpecifier:
        raise InvalidArgument(
            f"'{spec}' is neither a version nor a version range such as '>=1.0,<2'", details={"field": "version"}
        ) from None
    return lambda v: Version(v) in specifier


def tool_info(tool: Tool) -> d.ToolInfo:
    return d.ToolInfo(
        name=tool.name,
        version=tool.version,
        category=tool.category,
        status=tool.status,
        description=tool.description,
        read_only=tool.read_only,
        refused_when_halted=tool.refused_when_halted,
        scopes=sorted(tool.scopes) + (["admin (authority 255)"] if tool.admin_only else []),
        deprecation_date=tool.deprecation_date,
        sunset_date=tool.sunset_date,
        replacement=tool.replacement,
        last_updated=tool.last_updated.isoformat() + "T00:00:00Z",
    )


async def list_tools(ctx: CallContext, req: d.ListTools) -> d.ToolList:
    matches = version_filter(req.version)
    words = req.text.lower().split() if req.text else []
    imported = ctx.hub.gateway.tools_for(ctx.principal) if ctx.hub.gateway else []
    found = [
        tool_info(t)
        for t in [*ctx.hub.catalog, *imported]
        if (req.category is None or t.category == req.category)
        and (req.status is None or t.status == req.status)
        and matches(t.version)
        and all(w in f"{t.name} {t.description}".lower() for w in words)
    ]
    return d.ToolList(services=found, count=len(found))


async def schema(ctx: CallContext, req: d.SchemaRequest) -> d.ToolSchema:
    gateway = ctx.hub.gateway
    tool = gateway.tool(ctx.principal, req.name) if gateway and req.name.startswith(EXT_PREFIX) else ctx.hub.catalog.get(req.name)
    if not version_filter(req.version)(tool.version):
        raise NotFound(
            f"{tool.name} is served at version {tool.version}, which does not match '{req.version}'",
            details={"tool": tool.name, "served_version": tool.version},
        )
    return d.ToolSchema(
        name=tool.name,
        version=tool.version,
        status=tool.status,
        description=tool.description,
        input_schema=tool.input_schema(),
        output_schema=tool.output_schema(),
        http={"methods": tool.http_methods, "path": tool.http_path},
    )


async def query_services(ctx: CallContext, req: d.QueryServices) -> d.ServiceList:
    matches = version_filter(req.version)
    rows = await ctx.store.read(service_ops.query, req.category, req.status)
    found = [d.Service.model_validate(r) for r in rows if matches(r["version"])]
    return d.ServiceList(services=found, count=len(found))


def catalog_rows(tools: Any) -> list[dict[str, Any]]:
    """The catalog as rows of the ``services`` table."""
    return [
        {
            "service_name": t.name,
            "version": t.version,
            "category": t.category,
            "description": t.description,
            "status": t.status.value,
            "deprecation_date": t.deprecation_date,
            "sunset_date": t.sunset_date,
            "replacement": t.replacement,
            "schema": {"input": t.input_schema(), "output": t.output_schema()},
        }
        for t in tools
    ]


TOOLS = [
    Tool(
        name="agora.discovery.list",
        version="1.0.0",
        description="List the hub's tools, filtered by category, status, version range and text.",
        input_model=d.ListTools,
        output_model=d.ToolList,
        handler=list_tools,
        read_only=True,
    ),
    Tool(
        name="agora.discovery.schema",
        version="1.0.0",
        description="The input and output JSON Schema of one tool (optionally checking its version).",
        input_model=d.SchemaRequest,
        output_model=d.ToolSchema,
        handler=schema,
        read_only=True,
    ),
]
