"""MCP resources: the hub's things under ``agora://`` URIs, each read through the catalog tool that serves it.

``agora://services`` is the tool catalog; ``agora://agents/{agent}`` an agent's card (id or name);
``agora://tasks/{task_id}`` a task with its history. Reads run as the caller, so tenancy applies as everywhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.ids import new_id
from agora_sdk.errors import AgoraError
from agora_sdk.wire.common import ID_HEX

JSON = "application/json"


@dataclass(frozen=True)
class Template:
    name: str
    uri_template: str
    description: str
    pattern: re.Pattern[str]
    reads: list[tuple[str, str]]  # (tool, argument the captured value goes to); several are merged into one document

    def listing(self) -> types.ResourceTemplate:
        return types.ResourceTemplate(name=self.name, uri_template=self.uri_template, description=self.description, mime_type=JSON)


TEMPLATES = [
    Template("agent", "agora://agents/{agent}", "An agent's card: capabilities, tier, status, manifest.",
             re.compile(r"^agora://agents/([^/]{1,128})$"), [("agora.agents.get", "agent")]),
    Template("task", "agora://tasks/{task_id}", "A task: status, payload, result, lease holder, and its history.",
             re.compile(rf"^agora://tasks/(task_{ID_HEX})$"), [("agora.task.get", "task_id"), ("agora.task.history", "task_id")]),
]  # fmt: skip

SERVICES = types.Resource(
    name="services", uri="agora://services", mime_type=JSON,
    description="The hub's tool catalog: every agora.* tool, and those imported from external MCP servers (ext.*), with version, status and description.",
)  # fmt: skip


async def read(hub: Hub, principal: Principal, uri: str) -> types.ReadResourceResult:
    if uri == SERVICES.uri:
        document = await _call(hub, principal, uri, "agora.discovery.list", {})
        return _contents(uri, document)
    for template in TEMPLATES:
        match = template.pattern.match(uri)
        if match:
            document: dict[str, Any] = {}
            for tool, argument in template.reads:
                document.update(await _call(hub, principal, uri, tool, {argument: match.group(1)}))
            return _contents(uri, document)
    raise MCPError(types.INVALID_PARAMS, f"unknown resource '{uri}'; see resources/templates/list", data={"uri": uri})


async def _call(hub: Hub, principal: Principal, uri: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    try:
        _, output, _ = await hub.catalog.call(hub, principal, tool, args, new_id("req"))
    except AgoraError as exc:  # a missing or foreign thing is "no such resource" (the same 404 as REST; SEP-2164)
        raise MCPError(types.INVALID_PARAMS, f"{exc.code}: {exc.message}", data={"uri": uri}) from exc
    return output.model_dump(mode="json", by_alias=True)


def _contents(uri: str, document: dict[str, Any]) -> types.ReadResourceResult:
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=JSON, text=json.dumps(document))])
