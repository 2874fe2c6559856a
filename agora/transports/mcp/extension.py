"""Extra MCP tools, resources and prompts served beside the catalog on ``/mcp``: ``agora serve --mcp-extension``.

An extension is any object with the attributes of ``McpExtension``, named ``module:attribute`` (a class or factory is
called with no arguments). It answers the names it declares; everything else is the catalog's. Its callers are the
door's: authenticated as usual, or, when the extension names an ``anonymous`` principal, unauthenticated requests act
as that principal (only on a loopback ``--host``). The repository's MCP conformance fixtures
(``tests/mcp_fixtures.py``) are served this way.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http import EventStore
from mcp.server.subscriptions import SubscriptionBus

from agora.core.auth import Principal


class McpExtension(Protocol):
    anonymous: Principal | None  # who an unauthenticated request is; None: every request needs a key
    event_store: EventStore | None  # lets a client resume an SSE stream that closed mid-call
    retry_interval_ms: int | None  # how soon a client told to reconnect an SSE stream comes back
    tools: list[types.Tool]
    resources: list[types.Resource]
    templates: list[types.ResourceTemplate]
    prompts: list[types.Prompt]

    def has_tool(self, name: str) -> bool: ...

    def task_support(self, params: types.CallToolRequestParams) -> str | None:
        """Whether this call may run as an MCP task: "optional", "required", or None (it runs at once)."""
        ...

    def input_schema(self, name: str) -> dict[str, Any] | None: ...

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, bus: SubscriptionBus
    ) -> types.CallToolResult | types.InputRequiredResult: ...

    def owns(self, uri: str) -> bool: ...

    def read_resource(self, uri: str) -> types.ReadResourceResult: ...

    def has_prompt(self, name: str) -> bool: ...

    def get_prompt(self, params: types.GetPromptRequestParams) -> types.GetPromptResult | types.InputRequiredResult: ...

    def handlers(self) -> dict[str, Any]:
        """More ``Server`` handlers (``on_set_logging_level``, ``on_completion``, …) the extension answers."""
        ...


def load(spec: str) -> McpExtension:
    """The extension named ``module:attribute``; a ValueError says what is wrong with the name."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"'{spec}' is not module:attribute")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load '{spec}': {exc}") from None
    return found() if callable(found) else found
